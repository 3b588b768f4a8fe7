//! Amazon SES bounce and complaint notifications, as SNS posts them to `/inbound/ses`.

use serde::Deserialize;
use sqlx::PgPool;

use super::json::{self, Object};
use super::report::ReportKind;
use super::{Inbound, Outcome, ProviderReport, apply_provider};

/// What SNS posts: a subscription confirmation, or a notification whose `Message` is the SES
/// notification as JSON text. Without a `Message` (raw message delivery) the body is the SES
/// notification itself.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Envelope {
    #[serde(rename = "Type", deserialize_with = "json::text")]
    kind: Option<String>,
    #[serde(rename = "SubscribeURL", deserialize_with = "json::text")]
    subscribe_url: Option<String>,
    #[serde(deserialize_with = "json::text")]
    message: Option<String>,
}

/// An SES notification (`notificationType`), or an event of a configuration set's event
/// destination (`eventType`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Notification {
    /// When present it decides, whatever it holds (`Some(None)`: nothing to read).
    #[serde(deserialize_with = "json::present_text")]
    notification_type: Option<Option<String>>,
    #[serde(deserialize_with = "json::text")]
    event_type: Option<String>,
    #[serde(deserialize_with = "json::object")]
    mail: Option<Mail>,
    #[serde(deserialize_with = "json::object")]
    bounce: Option<Bounce>,
    #[serde(deserialize_with = "json::object")]
    complaint: Option<Complaint>,
}

/// The message the notification is about.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Mail {
    /// The envelope sender: our VERP address.
    #[serde(deserialize_with = "json::text")]
    source: Option<String>,
    #[serde(deserialize_with = "json::object")]
    common_headers: Option<CommonHeaders>,
    /// Every header of our message, when the identity is set to include them.
    #[serde(deserialize_with = "json::objects")]
    headers: Vec<Option<Header>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CommonHeaders {
    #[serde(deserialize_with = "json::text")]
    message_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "json::text")]
    name: Option<String>,
    #[serde(deserialize_with = "json::text")]
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Bounce {
    /// `Permanent`, `Transient` or `Undetermined`.
    #[serde(deserialize_with = "json::text")]
    bounce_type: Option<String>,
    #[serde(deserialize_with = "json::objects")]
    bounced_recipients: Vec<Option<Recipient>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Complaint {
    /// `abuse`, `fraud`, … (absent from most complaints).
    #[serde(deserialize_with = "json::text")]
    complaint_feedback_type: Option<String>,
    #[serde(deserialize_with = "json::objects")]
    complained_recipients: Vec<Option<Recipient>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Recipient {
    #[serde(deserialize_with = "json::text")]
    email_address: Option<String>,
    #[serde(deserialize_with = "json::text")]
    status: Option<String>,
    #[serde(deserialize_with = "json::text")]
    diagnostic_code: Option<String>,
}

impl Mail {
    /// Our `Message-ID`: from the common headers, else from the full list.
    fn message_id(&self) -> Option<String> {
        let common = self.common_headers.as_ref().and_then(|h| h.message_id.clone());
        common.or_else(|| {
            self.headers.iter().flatten().find_map(|h| {
                let name = h.name.as_deref()?;
                name.eq_ignore_ascii_case("message-id").then(|| h.value.clone()).flatten()
            })
        })
    }
}

/// The first recipient a report names (an element that is not an object names nobody).
fn first(recipients: Vec<Option<Recipient>>) -> Recipient {
    recipients.into_iter().next().flatten().unwrap_or_default()
}

/// What an SNS post says, before anyone is looked up.
#[derive(Debug, PartialEq, Eq)]
enum Post {
    /// Confirm the subscription by visiting this URL.
    Subscribe(String),
    Ignored(&'static str),
    Report(ProviderReport),
}

/// Reads an SNS post (or a bare SES notification). None when the body is not such JSON.
fn read(raw: &[u8]) -> Option<Post> {
    let Object(envelope) = serde_json::from_slice::<Object<Envelope>>(raw).ok()?;
    match envelope.kind.as_deref() {
        Some("SubscriptionConfirmation") => return envelope.subscribe_url.map(Post::Subscribe),
        Some("UnsubscribeConfirmation") => {
            return Some(Post::Ignored("an SNS unsubscribe confirmation"));
        }
        _ => {}
    }
    let notification = match &envelope.message {
        Some(inner) => serde_json::from_str::<Object<Notification>>(inner),
        None => serde_json::from_slice::<Object<Notification>>(raw),
    };
    notification.ok()?.0.read()
}

impl Notification {
    /// None when it says nothing of what it is.
    fn read(self) -> Option<Post> {
        let kind = match self.notification_type {
            Some(kind) => kind,
            None => self.event_type,
        };
        let mail = self.mail.unwrap_or_default();
        let message_id = mail.message_id();
        let envelope_sender = mail.source;
        let report = match kind?.as_str() {
            "Bounce" => {
                let bounce = self.bounce.unwrap_or_default();
                let kind = match bounce.bounce_type.as_deref() {
                    Some("Permanent") => ReportKind::Hard,
                    Some("Transient") => ReportKind::Soft,
                    _ => return Some(Post::Ignored("an undetermined SES bounce")),
                };
                let first = first(bounce.bounced_recipients);
                ProviderReport {
                    kind,
                    status: first.status,
                    diagnostic: first.diagnostic_code,
                    recipient: first.email_address,
                    envelope_sender,
                    message_id,
                }
            }
            "Complaint" => {
                let complaint = self.complaint.unwrap_or_default();
                ProviderReport {
                    kind: ReportKind::Complaint,
                    status: None,
                    diagnostic: complaint
                        .complaint_feedback_type
                        .map(|t| format!("Feedback-Type: {t}")),
                    recipient: first(complaint.complained_recipients).email_address,
                    envelope_sender,
                    message_id,
                }
            }
            _ => return Some(Post::Ignored("not a bounce or complaint")),
        };
        Some(Post::Report(report))
    }
}

/// What an SNS post came to.
pub enum Handled {
    /// SNS asks to confirm the subscription by visiting this URL ([`confirm`]).
    Subscribe(String),
    Processed(Outcome),
}

/// `POST /inbound/ses`: an SNS message (`SubscriptionConfirmation`, or a `Notification`
/// carrying an SES `Bounce` or `Complaint`), or an SES notification on its own. None when
/// the body is not such JSON.
pub async fn process(db: &PgPool, inbound: &Inbound, raw: &[u8]) -> sqlx::Result<Option<Handled>> {
    Ok(Some(match read(raw) {
        None => return Ok(None),
        Some(Post::Subscribe(url)) => Handled::Subscribe(url),
        Some(Post::Ignored(why)) => Handled::Processed(Outcome::Ignored(why)),
        Some(Post::Report(report)) => {
            Handled::Processed(apply_provider(db, inbound, "ses", report, raw).await?)
        }
    }))
}

/// What visiting a `SubscribeURL` came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// Not an SNS endpoint: not fetched.
    NotAmazon,
    /// SNS answered, with another status than success.
    Refused,
    /// SNS could not be reached (it sends the confirmation again).
    Unreachable,
    /// No HTTP client could be built.
    NoClient,
}

/// The URL when it is Amazon's: `https://sns.<region>.amazonaws.com[.cn]/…` on the default
/// port, without credentials. Nobody makes us fetch elsewhere.
fn sns_endpoint(url: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(url).ok().filter(|u| {
        let host = u.host_str().unwrap_or_default();
        let region = host
            .strip_prefix("sns.")
            .and_then(|h| h.strip_suffix(".amazonaws.com").or(h.strip_suffix(".amazonaws.com.cn")));
        u.scheme() == "https"
            && u.port().is_none()
            && u.username().is_empty()
            && u.password().is_none()
            && region.is_some_and(|r| {
                !r.is_empty()
                    && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    })
}

/// Confirms an SNS subscription by visiting its `SubscribeURL`, when that is Amazon's;
/// redirects are not followed.
pub async fn confirm(url: &str) -> Confirmation {
    let Some(url) = sns_endpoint(url) else {
        tracing::warn!(
            "SNS subscription confirmation with a SubscribeURL that is not Amazon's; refused"
        );
        return Confirmation::NotAmazon;
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client");
            return Confirmation::NoClient;
        }
    };
    match client.get(url).send().await {
        Ok(res) if res.status().is_success() => {
            tracing::info!("SNS subscription confirmed");
            Confirmation::Confirmed
        }
        Ok(res) => {
            tracing::warn!(status = %res.status(), "SNS refused the subscription confirmation");
            Confirmation::Refused
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach SNS to confirm the subscription");
            Confirmation::Unreachable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An SNS notification around an SES one, as the SES developer guide shows them.
    fn sns(message: &serde_json::Value) -> Vec<u8> {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": message.to_string(),
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEw6JRN...",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96"
        })
        .to_string()
        .into_bytes()
    }

    fn permanent_bounce() -> serde_json::Value {
        json!({
            "notificationType": "Bounce",
            "bounce": {
                "feedbackId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": "gone@example.org", "action": "failed", "status": "5.1.1",
                     "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                    {"emailAddress": "other@example.org", "status": "5.1.1"}
                ],
                "timestamp": "2012-05-25T14:59:38.605Z",
                "remoteMtaIp": "127.0.2.0",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"
            },
            "mail": {
                "timestamp": "2012-05-25T14:59:38.605Z",
                "source": "bounces+d7-abc@news.example.com",
                "sourceArn": "arn:aws:ses:us-west-2:123456789012:identity/news.example.com",
                "sendingAccountId": "123456789012",
                "messageId": "000001378603176d-5a4b5ad9-6f30-4198-a8c3-b1eb0c270a1d-000000",
                "destination": ["gone@example.org"],
                "headersTruncated": false,
                "headers": [
                    {"name": "From", "value": "paperboy <digest@news.example.com>"},
                    {"name": "Message-ID", "value": "<from-headers@news.example.com>"}
                ],
                "commonHeaders": {
                    "from": ["paperboy <digest@news.example.com>"],
                    "to": ["gone@example.org"],
                    "messageId": "<digest-1@news.example.com>",
                    "subject": "paperboy"
                }
            }
        })
    }

    fn report(post: Option<Post>) -> ProviderReport {
        match post {
            Some(Post::Report(report)) => report,
            other => panic!("not a report: {other:?}"),
        }
    }

    #[test]
    fn a_permanent_bounce_is_hard_and_names_the_first_recipient() {
        let r = report(read(&sns(&permanent_bounce())));
        assert_eq!(
            r,
            ProviderReport {
                kind: ReportKind::Hard,
                status: Some("5.1.1".into()),
                diagnostic: Some("smtp; 550 5.1.1 user unknown".into()),
                recipient: Some("gone@example.org".into()),
                envelope_sender: Some("bounces+d7-abc@news.example.com".into()),
                message_id: Some("<digest-1@news.example.com>".into()),
            }
        );
    }

    #[test]
    fn a_transient_bounce_is_soft_and_an_undetermined_one_is_ignored() {
        let mut bounce = permanent_bounce();
        bounce["bounce"]["bounceType"] = json!("Transient");
        bounce["bounce"]["bounceSubType"] = json!("MailboxFull");
        bounce["bounce"]["bouncedRecipients"] = json!([{"emailAddress": "full@example.org"}]);
        let r = report(read(&sns(&bounce)));
        assert_eq!((r.kind, r.status, r.diagnostic), (ReportKind::Soft, None, None));
        assert_eq!(r.recipient.as_deref(), Some("full@example.org"));
        bounce["bounce"]["bounceType"] = json!("Undetermined");
        assert_eq!(read(&sns(&bounce)), Some(Post::Ignored("an undetermined SES bounce")));
        bounce["bounce"] = json!(null);
        assert_eq!(read(&sns(&bounce)), Some(Post::Ignored("an undetermined SES bounce")));
    }

    #[test]
    fn a_complaint_finds_our_message_id_in_the_full_headers_too() {
        let complaint = json!({
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": "angry@example.org"}],
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2009-12-03T04:24:21.000-05:00",
                "timestamp": "2012-05-25T14:59:38.623Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
            },
            "mail": {
                "source": "digest@news.example.com",
                "messageId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
                "headers": [{"name": "To", "value": "angry@example.org"},
                            {"name": "message-id", "value": "<digest-2@news.example.com>"}]
            }
        });
        let r = report(read(&sns(&complaint)));
        assert_eq!(r.kind, ReportKind::Complaint);
        assert_eq!(r.diagnostic.as_deref(), Some("Feedback-Type: abuse"));
        assert_eq!(r.recipient.as_deref(), Some("angry@example.org"));
        assert_eq!(r.message_id.as_deref(), Some("<digest-2@news.example.com>"));
        assert_eq!(r.envelope_sender.as_deref(), Some("digest@news.example.com"));
        assert_eq!(r.status, None);
    }

    #[test]
    fn an_event_delivered_raw_reads_as_its_notification() {
        let mut event = permanent_bounce();
        event["eventType"] = event["notificationType"].take();
        event.as_object_mut().unwrap().remove("notificationType");
        let r = report(read(event.to_string().as_bytes()));
        assert_eq!(r.kind, ReportKind::Hard);
        let delivery = json!({"eventType": "Delivery", "mail": {}, "delivery": {}});
        assert_eq!(read(&sns(&delivery)), Some(Post::Ignored("not a bounce or complaint")));
    }

    #[test]
    fn a_subscription_confirmation_asks_to_visit_its_url() {
        let confirm = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SignatureVersion": "1"
        });
        let Some(Post::Subscribe(url)) = read(confirm.to_string().as_bytes()) else {
            panic!("not a subscription confirmation");
        };
        assert!(sns_endpoint(&url).is_some(), "{url}");
        let mut without_url = confirm.clone();
        without_url.as_object_mut().unwrap().remove("SubscribeURL");
        assert_eq!(read(without_url.to_string().as_bytes()), None);
        let unsubscribed = json!({"Type": "UnsubscribeConfirmation", "Message": "bye"});
        assert_eq!(
            read(unsubscribed.to_string().as_bytes()),
            Some(Post::Ignored("an SNS unsubscribe confirmation"))
        );
    }

    #[test]
    fn only_amazons_sns_endpoints_are_visited() {
        for ok in [
            "https://sns.us-east-1.amazonaws.com/?Action=x",
            "https://sns.cn-north-1.amazonaws.com.cn/",
        ] {
            assert!(sns_endpoint(ok).is_some(), "{ok}");
        }
        for refused in [
            "http://sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com:8443/",
            "https://user:pw@sns.us-east-1.amazonaws.com/",
            "https://sns.amazonaws.com/",
            "https://sns.evil.example/x.amazonaws.com",
            "https://sns.us-east-1.amazonaws.com.evil.example/",
            "https://sns.us_east.amazonaws.com/",
            "http://127.0.0.1:1/?Action=ConfirmSubscription",
        ] {
            assert!(sns_endpoint(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn malformed_json_or_no_notification_type_is_not_a_report() {
        let not_json = b"{not json".as_slice();
        let bad_message = json!({"Type": "Notification", "Message": "{not json"}).to_string();
        let untyped = sns(&json!({"mail": {"source": "x@y"}}));
        for body in [not_json, b"", b"[]", b"\"Bounce\"", bad_message.as_bytes(), &untyped] {
            assert_eq!(read(body), None, "{}", String::from_utf8_lossy(body));
        }
        // A `notificationType` that is not a string decides all the same: nothing to read.
        let mut both = permanent_bounce();
        both["eventType"] = json!("Bounce");
        both["notificationType"] = json!(null);
        assert_eq!(read(&sns(&both)), None);
    }

    #[test]
    fn fields_of_another_type_are_absent_and_unknown_ones_ignored() {
        let mut odd = permanent_bounce();
        odd["mail"]["commonHeaders"] = json!(["<not-an-object@example>"]);
        odd["bounce"]["bouncedRecipients"][0]["status"] = json!(511);
        odd["bounce"]["somethingNew"] = json!({"nested": [1, 2, 3]});
        let r = report(read(&sns(&odd)));
        assert_eq!(r.status, None);
        assert_eq!(r.recipient.as_deref(), Some("gone@example.org"));
        assert_eq!(r.message_id.as_deref(), Some("<from-headers@news.example.com>"));
        odd["mail"] = json!("nothing");
        odd["bounce"]["bouncedRecipients"] = json!(["gone@example.org"]);
        let r = report(read(&sns(&odd)));
        assert_eq!((r.envelope_sender, r.message_id, r.recipient), (None, None, None));
        assert_eq!(r.kind, ReportKind::Hard);
    }
}
