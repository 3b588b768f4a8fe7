//! Postmark's bounce and spam-complaint webhooks, as posted to `/inbound/postmark`.

use serde::Deserialize;
use sqlx::PgPool;

use super::json::{self, Object};
use super::report::{self, ReportKind};
use super::{Inbound, Outcome, ProviderReport, apply_provider};

/// One webhook record: what matters here of a bounce or spam complaint (other record types,
/// `Open`, `Delivery`, `Click`, …, say what they are in `RecordType` only).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Record {
    #[serde(deserialize_with = "json::text")]
    record_type: Option<String>,
    /// The bounce type: `HardBounce`, `SoftBounce`, `SpamComplaint`, …
    #[serde(rename = "Type", deserialize_with = "json::text")]
    kind: Option<String>,
    /// The address that bounced or complained.
    #[serde(deserialize_with = "json::text")]
    email: Option<String>,
    /// The receiving server's answer (`smtp;550 5.1.1 …`).
    #[serde(deserialize_with = "json::text")]
    details: Option<String>,
    /// Postmark's own words for the bounce type.
    #[serde(deserialize_with = "json::text")]
    description: Option<String>,
}

impl Record {
    /// What the record reports; `Err`: why it is ignored.
    fn report(self) -> Result<ProviderReport, &'static str> {
        let record = self.record_type.as_deref().unwrap_or_default();
        let kind = match (record, self.kind.as_deref()) {
            ("SpamComplaint", _) | ("Bounce", Some("SpamComplaint")) => ReportKind::Complaint,
            ("Bounce", Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated")) => {
                ReportKind::Hard
            }
            ("Bounce", Some("SoftBounce" | "Transient" | "DnsError")) => ReportKind::Soft,
            _ => return Err("not a bounce or complaint"),
        };
        let details = self.details.or(self.description);
        Ok(ProviderReport {
            kind,
            status: details.as_deref().and_then(report::status_code),
            diagnostic: details,
            recipient: self.email,
            envelope_sender: None,
            message_id: None,
        })
    }
}

/// Reads a webhook. None when the body is not such JSON (an object with a `RecordType`).
fn read(raw: &[u8]) -> Option<Result<ProviderReport, &'static str>> {
    let Object(record) = serde_json::from_slice::<Object<Record>>(raw).ok()?;
    record.record_type.as_ref()?;
    Some(record.report())
}

/// `POST /inbound/postmark`: a Postmark bounce or spam-complaint webhook. None when the
/// body is not such JSON.
pub async fn process(db: &PgPool, inbound: &Inbound, raw: &[u8]) -> sqlx::Result<Option<Outcome>> {
    Ok(Some(match read(raw) {
        None => return Ok(None),
        Some(Err(why)) => Outcome::Ignored(why),
        Some(Ok(report)) => apply_provider(db, inbound, "postmark", report, raw).await?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A bounce webhook as Postmark's documentation shows it.
    fn hard_bounce() -> serde_json::Value {
        json!({
            "RecordType": "Bounce",
            "MessageStream": "outbound",
            "ID": 4323372036854775807_i64,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Tag": "Test",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "Metadata": {"a_key": "a_value", "b_key": "b_value"},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": "gone@example.org",
            "From": "digest@news.example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z",
            "DumpAvailable": true,
            "Inactive": true,
            "CanActivate": true,
            "Subject": "paperboy",
            "Content": "Return-Path: <>\nReceived: …"
        })
    }

    fn read_json(v: &serde_json::Value) -> Option<Result<ProviderReport, &'static str>> {
        read(v.to_string().as_bytes())
    }

    #[test]
    fn a_hard_bounce_gives_the_status_from_its_details() {
        let r = read_json(&hard_bounce()).unwrap().unwrap();
        assert_eq!(
            r,
            ProviderReport {
                kind: ReportKind::Hard,
                status: Some("5.1.1".into()),
                diagnostic: Some(
                    "smtp;550 5.1.1 The email account that you tried to reach does not exist."
                        .into()
                ),
                recipient: Some("gone@example.org".into()),
                envelope_sender: None,
                message_id: None,
            }
        );
    }

    #[test]
    fn bounce_types_are_hard_soft_complaints_or_ignored() {
        let mut bounce = hard_bounce();
        for (kind, expected) in [
            ("BadEmailAddress", Ok(ReportKind::Hard)),
            ("ManuallyDeactivated", Ok(ReportKind::Hard)),
            ("SoftBounce", Ok(ReportKind::Soft)),
            ("Transient", Ok(ReportKind::Soft)),
            ("DnsError", Ok(ReportKind::Soft)),
            ("SpamComplaint", Ok(ReportKind::Complaint)),
            ("AutoResponder", Err("not a bounce or complaint")),
            ("Unknown", Err("not a bounce or complaint")),
        ] {
            bounce["Type"] = json!(kind);
            assert_eq!(read_json(&bounce).unwrap().map(|r| r.kind), expected, "{kind}");
        }
    }

    #[test]
    fn a_spam_complaint_is_a_complaint_and_other_records_are_ignored() {
        let complaint = json!({
            "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42,
            "Type": "SpamComplaint", "TypeCode": 512, "Name": "Spam complaint", "Tag": "",
            "MessageID": "00000000-0000-0000-0000-000000000000", "ServerID": 1234,
            "Description": "", "Details": "Test spam complaint details",
            "Email": "angry@example.org", "From": "digest@news.example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z", "Subject": "paperboy"
        });
        let r = read_json(&complaint).unwrap().unwrap();
        assert_eq!((r.kind, r.status), (ReportKind::Complaint, None));
        assert_eq!(r.diagnostic.as_deref(), Some("Test spam complaint details"));
        assert_eq!(r.recipient.as_deref(), Some("angry@example.org"));
        let open = json!({
            "RecordType": "Open", "MessageStream": "outbound", "FirstOpen": true,
            "Client": {"Name": "Chrome 35.0.1916.153"}, "OS": {"Name": "OS X 10.7 Lion"},
            "Platform": "WebMail", "ReadSeconds": 5, "Recipient": "someone@example.org",
            "Geo": {"Country": "Russia"}, "MessageID": "00000000-0000-0000-0000-000000000000"
        });
        assert_eq!(read_json(&open), Some(Err("not a bounce or complaint")));
    }

    #[test]
    fn without_details_the_description_is_the_diagnostic() {
        let mut bounce = hard_bounce();
        bounce["Details"] = json!(null);
        bounce["Description"] = json!("550 5.1.2 no such domain");
        let r = read_json(&bounce).unwrap().unwrap();
        assert_eq!(r.status.as_deref(), Some("5.1.2"));
        bounce["Details"] = json!("");
        let r = read_json(&bounce).unwrap().unwrap();
        assert_eq!((r.status, r.diagnostic.as_deref()), (None, Some("")), "empty details count");
        bounce.as_object_mut().unwrap().remove("Email");
        assert_eq!(read_json(&bounce).unwrap().unwrap().recipient, None);
    }

    #[test]
    fn malformed_json_or_no_record_type_is_not_a_webhook() {
        let no_type = json!({"Type": "HardBounce", "Email": "a@b.example"}).to_string();
        let odd_type = json!({"RecordType": 1, "Type": "HardBounce"}).to_string();
        for body in [&b"{"[..], b"", b"[]", b"null", b"[\"Bounce\", \"HardBounce\"]"] {
            assert_eq!(read(body), None, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(read(no_type.as_bytes()), None);
        assert_eq!(read(odd_type.as_bytes()), None);
    }
}
