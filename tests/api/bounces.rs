//! Bounces and complaints: VERP envelopes, reports by HTTP (`/inbound/mime`) and by the
//! real binary (`paperboy inbound`), hard and soft bounces, complaints, auto-replies,
//! forged and replayed reports, refusals at send time, signing up again.

use std::io::Write;
use std::process::Stdio;

use reqwest::StatusCode;
use secrecy::ExposeSecret;

use paperboy::store::deliveries::DeliveryStatus;

use crate::binary::{paperboy, scratch_dir};
use crate::helpers::{TestApp, app_with_papers, section, wait_for_empty_mail_queue, with_admin};
use crate::smtp::Mode;

const TOKEN: &str = "inbound-secret-token";
const BOUNCES: &str = "bounces@news.example.com";
/// Bounces come back to `BOUNCES` (VERP), and reports are posted with `TOKEN`.
const ENV: &[(&str, &str)] =
    &[("PAPERBOY_BOUNCE_ADDRESS", BOUNCES), ("PAPERBOY_INBOUND_TOKEN", TOKEN)];

/// A DSN as Postfix writes it, to `to`, about `recipient`, quoting `message_id`.
fn dsn(to: &str, recipient: &str, status: &str, message_id: &str, nonce: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.org\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\nX-Nonce: {nonce}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\n\
Content-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--B\r\n\
Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n\r\n--B\r\n\
Content-Type: text/rfc822-headers\r\n\r\nFrom: paperboy <digest@paperboy.test>\r\nMessage-ID: {message_id}\r\n\r\n--B--\r\n"
    )
}

fn arf(to: &str, recipient: &str, message_id: &str) -> String {
    format!(
        "From: fbl@isp.example\r\nTo: {to}\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"X\"\r\n\r\n--X\r\n\
Content-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n--X\r\n\
Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\n\
Version: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n--X\r\nContent-Type: message/rfc822\r\n\r\n\
From: digest@paperboy.test\r\nMessage-ID: {message_id}\r\nSubject: paperboy\r\n\r\nbody\r\n--X--\r\n"
    )
}

async fn post_report(app: &TestApp, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
    let res = reqwest::Client::new()
        .post(format!("{}/inbound/mime", app.address))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_hard_bounce_to_the_verp_address_makes_the_subscriber_bounced() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("gone@example.org", &[]).await;
    let fine = app.subscriber("fine@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("gone@example.org")[0];
    let (local, domain) = digest.from.split_once('@').unwrap();
    assert_eq!(domain, "news.example.com");
    assert!(local.starts_with("bounces+d"), "a VERP envelope sender: {}", digest.from);
    let confirmation = &app.smtp.messages()[0];
    assert!(confirmation.from.starts_with("bounces+m"), "transactional mail too");

    // A digest of the next day is queued for both when the report arrives.
    app.queue_edition("2025-11-07").await;

    let report = dsn(&digest.from, "gone@example.org", "5.1.1", "<not-ours@example.org>", "1");
    let (status, body) = post_report(&app, report.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("hard applied"), "{body}");
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "bounced");
    assert_eq!(
        app.status_of("fine@example.org").await.unwrap(),
        "confirmed",
        "only the subscriber it proves"
    );
    assert_eq!(digest.manage_path(), prefs);
    let page = app.get_page(&prefs).await;
    assert!(page.contains("Mail to this address bounced"), "the subscriber is told");
    let bounces = app.export_of(&prefs).await["bounces"].clone();
    assert_eq!(bounces.as_array().unwrap().len(), 1, "{bounces}");
    let b = &bounces[0];
    assert_eq!(
        (&b["kind"], &b["status_code"], &b["source"], &b["proven"]),
        (&"hard".into(), &"5.1.1".into(), &"mime".into(), &true.into())
    );
    assert_eq!(app.export_of(&fine).await["bounces"], serde_json::json!([]));
    let deliveries = app.deliveries().await;
    let gone = |edition: &str| {
        deliveries
            .iter()
            .find(|d| d.email.as_deref() == Some("gone@example.org") && d.edition_label == edition)
            .unwrap()
    };
    assert_eq!(
        gone("2025-11-06").status,
        DeliveryStatus::Bounced,
        "the digest that bounced says so"
    );
    assert_eq!(
        deliveries.iter().filter(|d| d.status == DeliveryStatus::Bounced).count(),
        1,
        "and no other"
    );
    let cancelled = gone("2025-11-07");
    assert_eq!(
        (cancelled.status, cancelled.last_error.as_deref()),
        (DeliveryStatus::Cancelled, Some("the address bounced"))
    );
    let events = app.events_of("gone@example.org").await;
    assert_eq!(events.iter().filter(|e| *e == "bounced").count(), 1, "{events:?}");
    assert!(!app.events_of("fine@example.org").await.contains(&"bounced".to_string()));

    // The same report again (a replay) changes and counts nothing.
    let (status, body) = post_report(&app, report).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("processed before"), "{body}");
    assert_eq!(app.export_of(&prefs).await["bounces"].as_array().unwrap().len(), 1);

    // The next send reaches the others only.
    let summary = app.send_edition("2025-11-07").await;
    assert_eq!(summary.sent, 1);
    assert_eq!(app.digests_to("gone@example.org").len(), 1);

    // Signing up again starts a fresh double opt-in, and its confirmation goes out.
    let before = app.smtp.messages().len();
    app.subscribe("gone@example.org", "").await;
    let mail = app.smtp.wait_for_mail_to("gone@example.org", 3).await;
    assert!(mail.link("/confirm/").is_some());
    assert!(app.smtp.messages().len() > before);
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "pending");
}

#[tokio::test]
async fn forged_or_unproven_reports_change_nobody() {
    let (app, _up) = app_with_papers(ENV).await;
    let victim = app.subscriber("victim@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("victim@example.org")[0];
    // A forged tag (the MAC of another message), and a report naming only the address.
    let forged = digest.from.replacen("bounces+d1-", "bounces+d2-", 1);
    for (i, to) in [forged.as_str(), "bounces+d1-00000000000000000000@news.example.com", BOUNCES]
        .into_iter()
        .enumerate()
    {
        let report =
            dsn(to, "victim@example.org", "5.1.1", "<made-up@example.org>", &i.to_string());
        let (status, body) = post_report(&app, report).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(body.contains("does not prove"), "{body}");
    }
    let complaint = arf(BOUNCES, "victim@example.org", "<made-up@example.org>");
    let (_, body) = post_report(&app, complaint).await;
    assert!(body.contains("does not prove"), "{body}");
    assert_eq!(app.status_of("victim@example.org").await.unwrap(), "confirmed");
    // Each is kept against them (their data export lists it), and changed nothing.
    let kept = app.export_of(&victim).await["bounces"].clone();
    let unproven = kept.as_array().unwrap().iter().filter(|b| b["proven"] == false).count();
    assert_eq!(unproven, 4, "{kept}");

    // A report about nobody we know, an auto-reply, and things that are not messages.
    let stranger = dsn(BOUNCES, "nobody@example.net", "5.1.1", "<x@y>", "s");
    assert!(post_report(&app, stranger).await.1.contains("no known subscriber"));
    let ooo = "From: victim@example.org\r\nTo: digest@paperboy.test\r\nSubject: Out of office\r\n\
Auto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n";
    let (status, body) = post_report(&app, ooo).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("automatic reply"), "{body}");
    for garbage in [&b""[..], b"\x00\xff\xfe not mail", b"\r\n\r\n"] {
        assert_eq!(post_report(&app, garbage.to_vec()).await.0, StatusCode::BAD_REQUEST);
    }
    let truncated = dsn(&digest.from, "victim@example.org", "5.1.1", "<a@b>", "t");
    let (status, _) = post_report(&app, truncated[..200].to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.status_of("victim@example.org").await.unwrap(), "confirmed");
}

#[tokio::test]
async fn soft_bounces_count_until_enough_across_enough_days() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("full@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("full@example.org")[0];
    // Several reports about one message count once.
    for i in 0..3 {
        let report = dsn(&digest.from, "full@example.org", "4.2.2", "<a@b>", &format!("n{i}"));
        let (status, body) = post_report(&app, report).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(body.contains("soft recorded"), "{body}");
    }
    // Postmark reports each bounced message (by address): four more make five messages.
    let soft = |i: i64| {
        serde_json::json!({"RecordType": "Bounce", "Type": "SoftBounce", "ID": i,
            "Email": "full@example.org", "Details": "452 4.2.2 Mailbox full"})
        .to_string()
    };
    for i in 0..4 {
        let (_, body) = post_json(&app, "/inbound/postmark", soft(i)).await;
        assert!(body.contains("soft recorded"), "{body}");
    }
    assert_eq!(
        app.status_of("full@example.org").await.unwrap(),
        "confirmed",
        "five, but within a day"
    );
    // The subscriber confirmed a month ago, and the first came eight days ago: one more is
    // one too many. Raw SQL: the days pass; no interface moves the clock.
    sqlx::query("UPDATE subscribers SET confirmed_at = now() - interval '30 days'")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE bounces SET received_at = now() - interval '8 days'
         WHERE id = (SELECT min(id) FROM bounces)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (_, body) = post_json(&app, "/inbound/postmark", soft(9)).await;
    assert!(body.contains("soft applied"), "{body}");
    assert_eq!(app.status_of("full@example.org").await.unwrap(), "bounced");
}

#[tokio::test]
async fn a_complaint_unsubscribes_at_once_matched_by_our_message_id() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("angry@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("angry@example.org")[0];
    // Providers' feedback loops send to their own address, quoting our message.
    let report = arf("fbl-reports@paperboy.test", "angry@example.org", &digest.message_id());
    let (status, body) = post_report(&app, report).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("complaint applied"), "{body}");
    assert_eq!(app.status_of("angry@example.org").await.unwrap(), "unsubscribed");
    assert_eq!(
        app.events_of("angry@example.org").await,
        ["subscribed", "confirmed", "unsubscribed", "complained"]
    );
    let metrics = app.get_page("/metrics").await;
    assert!(metrics.contains("paperboy_complaints_total"), "{metrics}");
}

#[tokio::test]
async fn the_inbound_routes_want_their_token_and_a_sane_size() {
    let (app, _up) = app_with_papers(ENV).await;
    let url = format!("{}/inbound/mime", app.address);
    let client = reqwest::Client::new();
    let body = dsn(BOUNCES, "a@b.example", "5.1.1", "<x@y>", "z");
    let none = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = client.post(&url).bearer_auth("nope").body(body.clone()).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic =
        client.post(&url).basic_auth("ses", Some(TOKEN)).body(body.clone()).send().await.unwrap();
    assert_eq!(basic.status(), StatusCode::ACCEPTED, "basic auth, the token as the password");
    let huge = vec![b'a'; 11 * 1024 * 1024];
    let res = client.post(&url).bearer_auth(TOKEN).body(huge).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Without a configured token, the routes do not exist.
    let plain = crate::helpers::spawn_app().await;
    let res = client
        .post(format!("{}/inbound/mime", plain.address))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_unknown_refusal_at_send_time_is_a_hard_bounce() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("unknown@example.org", &[]).await;
    app.smtp.set_mode(Mode::RejectUnknownUser);
    let summary = app.send_edition("2025-11-06").await;
    assert_eq!(summary.failed, 1);
    assert_eq!(app.status_of("unknown@example.org").await.unwrap(), "bounced");
    let bounces = app.export_of(&prefs).await["bounces"].clone();
    assert_eq!(bounces[0]["source"], "smtp", "{bounces}");
    assert_eq!(bounces[0]["kind"], "hard", "{bounces}");

    // A refusal for another reason (policy) is a failed delivery, not a bounce.
    app.smtp.set_mode(Mode::Accept);
    app.subscriber("policy@example.org", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    app.send_edition("2025-11-06").await;
    assert_eq!(app.status_of("policy@example.org").await.unwrap(), "confirmed");
}

#[tokio::test]
async fn paperboy_inbound_reads_a_report_on_stdin_and_exits_0() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("piped@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("piped@example.org")[0];
    let dir = scratch_dir();
    let db_url = app.settings.database.url.expose_secret().to_string();
    let env = [("DATABASE_URL", db_url.as_str()), ("PAPERBOY_BOUNCE_ADDRESS", BOUNCES)];
    let pipe = |input: Vec<u8>, env: &[(&str, &str)]| {
        let mut child = paperboy(&dir, env)
            .arg("inbound")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    };
    // Garbage and auto-replies: handled by ignoring them, exit 0.
    let out = pipe(b"\x00garbage".to_vec(), &env);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ignored"));
    // A DSN matched by our Message-ID in the returned headers.
    let report =
        dsn("postmaster@paperboy.test", "piped@example.org", "5.1.1", &digest.message_id(), "p");
    let out = pipe(report.into_bytes(), &env);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hard applied"), "{out:?}");
    assert_eq!(app.status_of("piped@example.org").await.unwrap(), "bounced");
    // No database: EX_TEMPFAIL, so the mail server tries again later.
    let down = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/paperboy")];
    let out = pipe(b"From: a@b\r\n\r\nhi\r\n".to_vec(), &down);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
}

async fn post_json(app: &TestApp, path: &str, body: String) -> (StatusCode, String) {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", app.address))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// An SNS notification around an SES event, shaped as in the SES developer guide's
/// examples ("Amazon SNS notification examples for Amazon SES").
fn sns(message: serde_json::Value) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-bounces",
        "Message": message.to_string(),
        "Timestamp": "2016-01-27T14:59:38.237Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1234.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
    })
    .to_string()
}

#[tokio::test]
async fn amazon_ses_bounces_and_complaints_through_sns() {
    let (app, _up) = app_with_papers(ENV).await;
    for email in ["ses-hard@example.org", "ses-soft@example.org", "ses-spam@example.org"] {
        app.subscriber(email, &[]).await;
    }
    app.send_edition("2025-11-06").await;
    let hard = &app.digests_to("ses-hard@example.org")[0];
    let spam = &app.digests_to("ses-spam@example.org")[0];

    // A permanent bounce, found by the VERP envelope sender SES reports as `mail.source`.
    let bounce = serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "ses-hard@example.org", "action": "failed",
                "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2016-01-27T14:59:38.237Z", "feedbackId": "0000013786031775-fea503bc"
        },
        "mail": {"timestamp": "2016-01-27T14:59:38.237Z", "source": hard.from,
                 "messageId": "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
                 "destination": ["ses-hard@example.org"]}
    });
    let (status, body) = post_json(&app, "/inbound/ses", sns(bounce)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.status_of("ses-hard@example.org").await.unwrap(), "bounced");

    // A transient one, by recipient: counted, nothing changes yet.
    let soft = serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
                   "bouncedRecipients": [{"emailAddress": "ses-soft@example.org"}]},
        "mail": {"source": "digest@paperboy.test", "messageId": "ses-id-2"}
    });
    let (_, body) = post_json(&app, "/inbound/ses", sns(soft)).await;
    assert!(body.contains("soft recorded"), "{body}");
    assert_eq!(app.status_of("ses-soft@example.org").await.unwrap(), "confirmed");

    // A complaint, found by our Message-ID in the common headers.
    let complaint = serde_json::json!({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "ses-spam@example.org"}],
                      "complaintFeedbackType": "abuse", "timestamp": "2016-01-27T14:59:38.237Z"},
        "mail": {"source": "digest@paperboy.test", "messageId": "ses-id-3",
                 "commonHeaders": {"messageId": spam.message_id(), "subject": "paperboy"}}
    });
    let (_, body) = post_json(&app, "/inbound/ses", sns(complaint)).await;
    assert!(body.contains("complaint applied"), "{body}");
    assert_eq!(app.status_of("ses-spam@example.org").await.unwrap(), "unsubscribed");

    // A subscription confirmation whose URL is not Amazon's is refused, never fetched.
    let confirm = serde_json::json!({
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9",
        "Token": "2336412f37", "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic",
        "SubscribeURL": "http://127.0.0.1:1/?Action=ConfirmSubscription"
    });
    let (status, _) = post_json(&app, "/inbound/ses", confirm.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post_json(&app, "/inbound/ses", "{not json".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let metrics = app.get_page("/metrics").await;
    assert!(metrics.contains("paperboy_bounces_total{kind=\"hard\"}"), "{metrics}");
}

#[tokio::test]
async fn postmark_bounce_and_spam_complaint_webhooks() {
    let (app, _up) = app_with_papers(ENV).await;
    let hard = app.subscriber("pm-hard@example.org", &[]).await;
    app.subscriber("pm-spam@example.org", &[]).await;
    // Shaped as Postmark's bounce webhook documentation shows it.
    let bounce = serde_json::json!({
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807_i64,
        "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "pm-hard@example.org", "From": "digest@paperboy.test",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": true, "Inactive": true,
        "CanActivate": true, "Subject": "paperboy", "Metadata": {}
    });
    let (status, body) = post_json(&app, "/inbound/postmark", bounce.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.status_of("pm-hard@example.org").await.unwrap(), "bounced");
    let bounces = app.export_of(&hard).await["bounces"].clone();
    assert_eq!(bounces[0]["status_code"], "5.1.1", "{bounces}");

    let complaint = serde_json::json!({
        "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
        "TypeCode": 512, "Name": "Spam complaint", "Tag": "", "MessageID": "00000000-0000-0000-0000-000000000000",
        "ServerID": 1234, "Description": "", "Details": "Test spam complaint details",
        "Email": "pm-spam@example.org", "From": "digest@paperboy.test",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z", "Subject": "paperboy"
    });
    let (_, body) = post_json(&app, "/inbound/postmark", complaint.to_string()).await;
    assert!(body.contains("complaint applied"), "{body}");
    assert_eq!(app.status_of("pm-spam@example.org").await.unwrap(), "unsubscribed");

    let open = serde_json::json!({"RecordType": "Open", "Email": "pm-spam@example.org"});
    let (status, body) = post_json(&app, "/inbound/postmark", open.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("ignored"), "{body}");
    let (status, _) = post_json(&app, "/inbound/postmark", "[]".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_operator_sees_rates_warnings_and_each_subscribers_reports() {
    let (app, _up) = app_with_papers(&with_admin(ENV)).await;
    app.subscriber("dead@example.org", &[]).await;
    app.subscriber("alive@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("dead@example.org")[0];
    let report = dsn(&digest.from, "dead@example.org", "5.1.1", "<x@y>", "admin");
    assert_eq!(post_report(&app, report).await.0, StatusCode::ACCEPTED);

    let admin = app.admin_login().await;
    let overview = admin.get_page("/admin").await;
    let rates = section(&overview, "<h2>Bounces and complaints</h2>");
    assert!(rates.contains("<td>7 days</td><td>2</td><td>1 (50.00 %)</td>"), "{rates}");
    assert!(rates.contains("Hard bounces over the last 7 days are 50.00 %"), "a warning above 2 %");
    assert!(!rates.contains("Complaints over the last"), "no complaint warning without complaints");

    let bounced = admin.get_page("/admin/deliveries?status=bounced").await;
    assert!(bounced.contains("dead@example.org") && !bounced.contains("alive@example.org"));
    let id = app.subscriber_id("dead@example.org").await;
    let page = admin.get_page(&format!("/admin/subscribers/{id}")).await;
    assert!(page.contains("<td>hard</td><td>mime</td><td>5.1.1</td>"), "{page}");
    // (The status badge says "bounced" too: the event is read from the events list.)
    assert!(section(&page, "<h2>Events</h2>").contains(": bounced</li>"), "the event is listed");
}

#[tokio::test]
async fn reports_about_someone_else_our_side_or_with_odd_bytes_change_nobody() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("forwarder@example.org", &[]).await;
    app.subscriber("feedonly@example.org", &[("frequency", "feed")]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("forwarder@example.org")[0];
    // The subscriber forwards to a dead address: the report names that address, not theirs.
    let forwarded = dsn(&digest.from, "dead-forward@example.net", "5.1.1", "<x@y>", "f");
    assert!(post_report(&app, forwarded).await.1.contains("no known subscriber"));
    // The same in prose, as Exim and qmail write it, with our valid VERP tag.
    let exim = format!(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\nTo: {}\r\n\
Subject: Mail delivery failed: returning message to sender\r\n\r\n\
This message was created automatically by mail delivery software.\r\n\r\n\
A message that you sent could not be delivered to one or more of its\r\n\
recipients. This is a permanent error. The following address(es) failed:\r\n\r\n\
  dead-forward@example.net\r\n    SMTP error from remote mail server after RCPT TO:<dead-forward@example.net>:\r\n\
    550 5.1.1 User unknown\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\n\
Return-Path: <{}>\r\nTo: forwarder@example.org\r\nMessage-ID: {}\r\n",
        digest.from,
        digest.from,
        digest.message_id()
    );
    assert!(post_report(&app, exim).await.1.contains("no known subscriber"));
    let qmail = format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: {}\r\nSubject: failure notice\r\n\r\n\
Hi. This is the qmail-send program at mx.example.net.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n\
<dead-forward@example.net>:\r\nRemote host said: 550 5.1.1 user unknown\r\n\r\n\
--- Below this line is a copy of the message.\r\n\r\nTo: forwarder@example.org\r\n",
        digest.from
    );
    assert!(post_report(&app, qmail).await.1.contains("no known subscriber"));
    assert_eq!(app.status_of("forwarder@example.org").await.unwrap(), "confirmed");
    // Our own DMARC or policy problem is not a dead address.
    let policy = dsn(&digest.from, "forwarder@example.org", "5.7.26", "<x@y>", "p");
    assert!(post_report(&app, policy).await.1.contains("not a bounce"));
    // A NUL byte in the diagnostic: kept without it, no 500.
    let nul = dsn(&digest.from, "forwarder@example.org", "4.2.2", "<x@y>", "n")
        .replace("Recipient address rejected", "Recipient \0 rejected");
    let (status, body) = post_report(&app, nul).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.status_of("forwarder@example.org").await.unwrap(), "confirmed");

    // A feed-only subscriber whose address died keeps their feed.
    let mail = &app.smtp.messages_to("feedonly@example.org")[0];
    let report = dsn(&mail.from, "feedonly@example.org", "5.1.1", "<x@y>", "feed");
    assert!(post_report(&app, report).await.1.contains("hard recorded"));
    assert_eq!(app.status_of("feedonly@example.org").await.unwrap(), "confirmed");

    // A bounced subscriber cannot come back through unsubscribe + resubscribe (only a new
    // double opt-in proves the address works).
    let dead = dsn(&digest.from, "forwarder@example.org", "5.1.1", "<x@y>", "d");
    post_report(&app, dead).await;
    assert_eq!(app.status_of("forwarder@example.org").await.unwrap(), "bounced");
    let prefs = digest.manage_path();
    app.unsubscribe(&prefs).await;
    app.resubscribe(&prefs).await;
    assert_eq!(app.status_of("forwarder@example.org").await.unwrap(), "bounced");
}

#[tokio::test]
async fn a_bounced_or_complaining_address_comes_back_only_through_a_new_confirmation() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("gone@example.org", &[]).await;
    app.subscriber("annoyed@example.org", &[]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("gone@example.org")[0];
    let prefs = digest.manage_path();
    post_report(&app, dsn(&digest.from, "gone@example.org", "5.1.1", "<x@y>", "d")).await;
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "bounced");

    // Someone posts the sign-up form for the dead address, then unsubscribes and
    // resubscribes it with the old manage link: it stays off, and the page says why.
    assert_eq!(app.subscribe("gone@example.org", "agents").await.status(), 200);
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "pending");
    app.unsubscribe(&prefs).await;
    let page = app.resubscribe(&prefs).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Confirm your address first"), "{page}");
    assert!(!page.contains("Welcome back"));
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "unsubscribed");
    app.send_edition("2025-11-07").await;
    assert_eq!(app.digests_to("gone@example.org").len(), 1, "nothing more to a dead address");

    // A completed double opt-in proves the address again; from then on an unsubscribe
    // can be undone.
    wait_for_empty_mail_queue(&app.db).await;
    app.subscribe_and_confirm("gone@example.org", "").await;
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "confirmed");
    app.unsubscribe(&prefs).await;
    let page = app.resubscribe(&prefs).await.text().await.unwrap();
    assert!(page.contains("Welcome back"), "{page}");
    assert_eq!(app.status_of("gone@example.org").await.unwrap(), "confirmed");

    // A complaint is not undone by the resubscribe button either.
    let digest = &app.digests_to("annoyed@example.org")[0];
    let prefs = digest.manage_path();
    post_report(&app, arf("fbl@paperboy.test", "annoyed@example.org", &digest.message_id())).await;
    assert_eq!(app.status_of("annoyed@example.org").await.unwrap(), "unsubscribed");
    let page = app.resubscribe(&prefs).await.text().await.unwrap();
    assert!(page.contains("Confirm your address first"), "{page}");
    assert_eq!(app.status_of("annoyed@example.org").await.unwrap(), "unsubscribed");
}
