//! Reads what comes back by mail (DSNs, ARF complaints, prose bounces, auto-replies).

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// A permanent failure (5.x.x): the address is dead.
    Hard,
    /// A temporary failure (4.x.x, mailbox full …).
    Soft,
    /// The subscriber marked our mail as spam.
    Complaint,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Complaint => "complaint",
        }
    }
}

/// What a message says, as far as paperboy cares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// None: not a bounce or complaint (an auto-reply, a delay notice, anything else).
    pub kind: Option<ReportKind>,
    /// An "out of office" or other automatic answer.
    pub auto_reply: bool,
    /// The enhanced status code, `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// Every address the report says failed or complained, lower-cased: a prose bounce may
    /// name several.
    pub named: Vec<String>,
    /// The addresses this report was sent to (`To`, `Delivered-To`, `X-Original-To`, …):
    /// where a VERP tag is found.
    pub addressed_to: Vec<String>,
    /// The `Message-ID` of our message, from the returned original.
    pub original_message_id: Option<String>,
}

impl Report {
    /// The address that failed or complained (the first the report names).
    pub fn recipient(&self) -> Option<&str> {
        self.named.first().map(String::as_str)
    }
}

/// Longest diagnostic kept.
const MAX_DIAGNOSTIC: usize = 500;

/// Reads a raw RFC 5322 message: a delivery status notification (RFC 3464
/// `report-type=delivery-status`), a complaint report (ARF, RFC 5965
/// `report-type=feedback-report`), a non-standard bounce or an auto-reply. Pure, and any
/// bytes are safe to give it: None when they are not a message at all (no header).
pub fn read(raw: &[u8]) -> Option<Report> {
    // A message starts with a header field: `Name:` in printable ASCII.
    let name_len = raw.iter().take_while(|&&b| b.is_ascii_graphic() && b != b':').count();
    if name_len == 0 || raw.get(name_len) != Some(&b':') {
        return None;
    }
    let message = MessageParser::default().parse(raw)?;
    if message.headers().is_empty() || message.parts.is_empty() {
        return None;
    }
    let mut report = Report { addressed_to: addressed_to(&message), ..Default::default() };
    let mut texts = Vec::new();
    for part in &message.parts {
        let (ctype, subtype) = content_type(part);
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status") => {
                delivery_status(&part_text(&message, part), &mut report)
            }
            ("message", "feedback-report") => feedback(&part_text(&message, part), &mut report),
            ("message", "rfc822") | ("message", "rfc822-headers") | ("text", "rfc822-headers") => {
                if let PartType::Message(original) = &part.body {
                    report.original_message_id =
                        report.original_message_id.take().or(original.message_id().map(angle));
                } else {
                    let text = part_text(&message, part);
                    report.original_message_id =
                        report
                            .original_message_id
                            .take()
                            .or(header_in(&text, "message-id").map(|v| angle(&v)));
                }
            }
            ("text", _) if !part.is_message() => texts.push(part_text(&message, part)),
            _ => {}
        }
    }
    let report_type = message
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let is_report = report_type.is_some() || report.kind.is_some();
    if !is_report {
        if looks_like_bounce(&message) {
            non_standard(&texts.join("\n"), &mut report);
        } else if is_auto_reply(&message) {
            report.auto_reply = true;
            return Some(report);
        }
    }
    if report.original_message_id.is_none() {
        // Bounces that quote the original inline, in the text.
        report.original_message_id =
            texts.iter().find_map(|t| header_in(t, "message-id")).map(|v| angle(&v));
    }
    Some(report)
}

fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => {
            (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or_default().to_ascii_lowercase())
        }
        None => ("text".into(), "plain".into()),
    }
}

/// A part's text, decoded where the parser decoded it, else its raw bytes.
fn part_text(message: &Message<'_>, part: &MessagePart<'_>) -> String {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => {
            let raw = message.raw_message();
            let (start, end) = (part.offset_body as usize, part.offset_end as usize);
            raw.get(start..end.min(raw.len()))
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned()
        }
    }
}

/// `<id>` whatever the header had.
fn angle(id: &str) -> String {
    format!("<{}>", id.trim().trim_start_matches('<').trim_end_matches('>'))
}

fn addressed_to(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in message.headers_raw() {
        let name = name.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "to" | "delivered-to" | "x-original-to" | "envelope-to" | "x-envelope-to" | "x-rcpt-to"
        ) {
            out.extend(addresses(value));
        }
    }
    out.dedup();
    out
}

/// The email addresses in a header value, lower-cased.
fn addresses(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c == '<' || c == '>' || c == ';' || c.is_whitespace())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .filter(|w| w.contains('@') && !w.starts_with('@') && !w.ends_with('@'))
        .map(|w| w.trim_start_matches("rfc822:").to_ascii_lowercase())
        .collect()
}

/// `Name: value` fields of a report part (folded lines joined); each blank-line-separated
/// group is one block (per message, then per recipient).
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if !groups.last().is_some_and(Vec::is_empty) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut().expect("one group at least");
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The value after `type;` in `rfc822; someone@example.com`.
fn typed_address(value: &str) -> Option<String> {
    let value = value.split_once(';').map_or(value, |(_, v)| v);
    addresses(value).into_iter().next()
}

fn delivery_status(text: &str, report: &mut Report) {
    for group in field_groups(text) {
        let Some(action) = field(&group, "action") else { continue };
        let action = action.to_ascii_lowercase();
        let status = field(&group, "status").and_then(status_code);
        if action != "failed" {
            // "delayed": the server is still trying; "delivered", "relayed", "expanded": fine.
            continue;
        }
        report.kind = match status.as_deref() {
            Some(s) => classify(s),
            None => Some(ReportKind::Hard),
        };
        report.status = status;
        report.diagnostic = field(&group, "diagnostic-code").map(clip);
        report.named = field(&group, "final-recipient")
            .or(field(&group, "original-recipient"))
            .and_then(typed_address)
            .into_iter()
            .collect();
        return;
    }
}

fn feedback(text: &str, report: &mut Report) {
    let fields: Vec<(String, String)> = field_groups(text).into_iter().flatten().collect();
    let kind = field(&fields, "feedback-type").unwrap_or("abuse").to_ascii_lowercase();
    // abuse (spam), fraud and virus reports say "stop"; others (not-spam, other) do not.
    if matches!(kind.as_str(), "abuse" | "fraud" | "virus") {
        report.kind = Some(ReportKind::Complaint);
        report.diagnostic = Some(format!("Feedback-Type: {kind}"));
        report.named = field(&fields, "original-rcpt-to")
            .and_then(|v| addresses(v).into_iter().next())
            .into_iter()
            .collect();
    }
}

/// What an enhanced status code says about the address (RFC 3463): 4.x.x and a full
/// mailbox (5.2.2) are soft; 5.x.x is hard, except refusals about our message or our side —
/// policy and security (5.7.x, e.g. DMARC), our sender address (5.1.7, 5.1.8), size
/// (5.3.4), content (5.6.x) — which say nothing about the subscriber's address (None).
pub fn classify(status: &str) -> Option<ReportKind> {
    let ours = ["5.7.", "5.6.", "5.3.4", "5.1.7", "5.1.8"];
    if status.starts_with('4') || status == "5.2.2" {
        Some(ReportKind::Soft)
    } else if ours.iter().any(|p| status.starts_with(p)) {
        None
    } else if status.starts_with('5') {
        Some(ReportKind::Hard)
    } else {
        None
    }
}

/// `5.1.1` from a Status field or a diagnostic (first `[245].d{1,3}.d{1,3}` token).
pub fn status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|token| {
        let parts: Vec<&str> = token.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..].iter().all(|p| (1..=3).contains(&p.len()));
        ok.then(|| token.to_string())
    })
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DIAGNOSTIC) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The value of a `Name:` line in a block of header text.
fn header_in(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

fn header_lower(message: &Message<'_>, name: &str) -> Option<String> {
    message
        .headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
}

/// An automatic answer (for a message that does not look like a bounce: bounces carry
/// `Auto-Submitted` too).
fn is_auto_reply(message: &Message<'_>) -> bool {
    let auto_submitted = header_lower(message, "auto-submitted").is_some_and(|v| v != "no");
    let flagged = ["x-autoreply", "x-autorespond", "x-auto-response-suppress"]
        .iter()
        .any(|h| header_lower(message, h).is_some());
    let precedence =
        header_lower(message, "precedence").is_some_and(|v| v == "auto_reply" || v == "auto-reply");
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let subject_says =
        ["out of office", "automatic reply", "auto:", "autoreply", "auto-reply", "away from"]
            .iter()
            .any(|s| subject.starts_with(s) || subject.contains(&format!(" {s}")));
    auto_submitted || flagged || precedence || subject_says
}

fn looks_like_bounce(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let from = header_lower(message, "from").unwrap_or_default();
    [
        "undeliver",
        "delivery status notification",
        "returned mail",
        "mail delivery failed",
        "delivery failure",
        "failure notice",
        "could not be delivered",
        "delivery has failed",
    ]
    .iter()
    .any(|s| subject.contains(s))
        || from.contains("mailer-daemon")
        || from.contains("postmaster@")
}

/// A bounce in prose: the first status code or SMTP reply code in the text decides, else
/// a few common phrases.
fn non_standard(text: &str, report: &mut Report) {
    let lower = text.to_ascii_lowercase();
    let status = status_code(text);
    let reply = lower.split(|c: char| !c.is_ascii_digit()).find(|t| {
        t.len() == 3 && (t.starts_with('5') || t.starts_with('4')) && t.as_bytes()[1] <= b'5'
    });
    let soft_words =
        ["mailbox full", "over quota", "quota exceeded", "mailbox is full", "try again later"];
    let hard_words =
        ["user unknown", "no such user", "does not exist", "address rejected", "unknown user"];
    let kind = match (status.as_deref(), reply) {
        (Some(s), _) => classify(s),
        // 552: storage exceeded; 554 (transaction failed) is most often a policy refusal.
        (_, Some("552")) => Some(ReportKind::Soft),
        (_, Some("550" | "551" | "553")) => Some(ReportKind::Hard),
        (_, Some(r)) if r.starts_with('4') => Some(ReportKind::Soft),
        (_, Some(_)) => None,
        _ if soft_words.iter().any(|w| lower.contains(w)) => Some(ReportKind::Soft),
        _ if hard_words.iter().any(|w| lower.contains(w)) => Some(ReportKind::Hard),
        _ => None,
    };
    if let Some(kind) = kind {
        report.kind = Some(kind);
        report.named = named_in_prose(text, &report.addressed_to);
        report.status = status;
        report.diagnostic = lower
            .lines()
            .find(|l| {
                l.contains("550") || l.contains("552") || l.contains("4.") || l.contains("5.")
            })
            .map(clip);
    }
}

/// The addresses a prose bounce says failed: those in its text before the copy of the
/// returned message (whose headers name our sender and the original recipient), other
/// than the addresses the bounce itself was sent to.
fn named_in_prose(text: &str, addressed_to: &[String]) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for line in text.lines() {
        let lower = line.trim().to_ascii_lowercase();
        let copy_begins = lower.contains("copy of the message")
            || lower.contains("original message")
            || ["return-path:", "received:", "message-id:", "from:", "to:"]
                .iter()
                .any(|h| lower.starts_with(h));
        if copy_begins {
            break;
        }
        for a in addresses(&lower.replace(['(', ')', '[', ']', ':'], " ")) {
            let a = a.trim_end_matches('.').to_string();
            if !addressed_to.contains(&a) && !named.contains(&a) {
                named.push(a);
            }
        }
    }
    named
}

/// Whether an SMTP refusal at send time says the address does not exist (5.1.x), which
/// counts as a hard bounce; other permanent refusals (policy, content) do not.
pub fn refusal_is_hard_bounce(reply: &str) -> bool {
    match status_code(reply) {
        // The address itself: bad mailbox (5.1.1), bad domain (5.1.2), bad syntax (5.1.3),
        // moved (5.1.6), not found (5.1.10), disabled (5.2.1).
        Some(s) => ["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"].contains(&s.as_str()),
        None => {
            reply.trim_start().starts_with("550")
                && ["user unknown", "no such user", "unknown user", "does not exist"]
                    .iter()
                    .any(|w| reply.to_ascii_lowercase().contains(w))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.org\r
To: bounces+d7-abc@news.example.com\r
Subject: Undelivered Mail Returned to Sender\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r
\r
--B\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.org\r
\r
Final-Recipient: rfc822; Gone@Example.org\r
Original-Recipient: rfc822;gone@example.org\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: Recipient address rejected:\r
 User unknown in virtual mailbox table\r
\r
--B\r
Content-Type: text/rfc822-headers\r
\r
From: paperboy <digest@news.example.com>\r
Message-ID: <abc-123@news.example.com>\r
X-Paperboy-Edition: 2025-11-06\r
\r
--B--\r
";

    #[test]
    fn a_dsn_names_the_recipient_the_status_and_the_original() {
        let r = read(DSN.as_bytes()).unwrap();
        assert_eq!(r.kind, Some(ReportKind::Hard));
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.recipient(), Some("gone@example.org"));
        assert!(r.diagnostic.unwrap().contains("User unknown in virtual mailbox table"));
        assert_eq!(r.addressed_to, ["bounces+d7-abc@news.example.com"]);
        assert_eq!(r.original_message_id.as_deref(), Some("<abc-123@news.example.com>"));
        assert!(!r.auto_reply, "a DSN says auto-replied too, and is still a bounce");

        let soft = DSN.replace("Status: 5.1.1", "Status: 4.2.2");
        assert_eq!(read(soft.as_bytes()).unwrap().kind, Some(ReportKind::Soft));
        let delayed = DSN.replace("Action: failed", "Action: delayed");
        assert_eq!(read(delayed.as_bytes()).unwrap().kind, None);
    }

    #[test]
    fn an_arf_report_is_a_complaint_and_other_feedback_is_not() {
        let arf = "From: fbl@isp.example\r\nTo: bounces@news.example.com\r\nSubject: FW: digest\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"X\"\r\n\r\n--X\r\n\
Content-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--X\r\nContent-Type: message/feedback-report\r\n\r\n\
Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: <Subscriber@Example.com>\r\n\r\n\
--X\r\nContent-Type: message/rfc822\r\n\r\nFrom: digest@news.example.com\r\nMessage-ID: <m-1@news.example.com>\r\n\
Subject: paperboy\r\n\r\nbody\r\n--X--\r\n";
        let r = read(arf.as_bytes()).unwrap();
        assert_eq!(r.kind, Some(ReportKind::Complaint));
        assert_eq!(r.recipient(), Some("subscriber@example.com"));
        assert_eq!(r.original_message_id.as_deref(), Some("<m-1@news.example.com>"));
        let not_spam = arf.replace("Feedback-Type: abuse", "Feedback-Type: not-spam");
        assert_eq!(read(not_spam.as_bytes()).unwrap().kind, None);
    }

    #[test]
    fn out_of_office_replies_are_recognised_and_prose_bounces_read() {
        let ooo = "From: subscriber@example.com\r\nTo: digest@news.example.com\r\nSubject: Automatic reply: paperboy\r\n\
Auto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n";
        let r = read(ooo.as_bytes()).unwrap();
        assert!(r.auto_reply && r.kind.is_none());
        let prose = "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: bounces+m3-x@news.example.com\r\n\
Subject: Mail delivery failed: returning message to sender\r\n\r\n\
This message was created automatically by mail delivery software.\r\n\
  subscriber@example.com\r\n    SMTP error from remote mail server after RCPT TO:<subscriber@example.com>:\r\n\
    552 5.2.2 Mailbox full\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\n\
Message-ID: <orig-9@news.example.com>\r\n";
        let r = read(prose.as_bytes()).unwrap();
        assert_eq!(r.kind, Some(ReportKind::Soft), "5.2.2: a full mailbox is soft");
        assert_eq!(r.original_message_id.as_deref(), Some("<orig-9@news.example.com>"));
        let policy = prose.replace("552 5.2.2 Mailbox full", "550 5.7.1 rejected by policy");
        assert_eq!(read(policy.as_bytes()).unwrap().kind, None, "about us, not the address");
        let unknown = prose.replace("552 5.2.2 Mailbox full", "550 5.1.1 no such user");
        assert_eq!(read(unknown.as_bytes()).unwrap().kind, Some(ReportKind::Hard));
        assert_eq!(r.named, ["subscriber@example.com"], "the failed address, not the copy's");
    }

    #[test]
    fn a_qmail_bounce_names_the_failed_address_and_not_the_quoted_headers() {
        let qmail = "From: MAILER-DAEMON@mx.example\r\nTo: bounces+d4-x@news.example.com\r\n\
Subject: failure notice\r\n\r\nHi. This is the qmail-send program at mx.example.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n\
<forward@elsewhere.example>:\r\n192.0.2.1 does not like recipient.\r\n\
Remote host said: 550 5.1.1 <forward@elsewhere.example>: user unknown\r\n\r\n\
--- Below this line is a copy of the message.\r\n\r\n\
Return-Path: <bounces+d4-x@news.example.com>\r\nTo: subscriber@example.com\r\n\
Message-ID: <orig-4@news.example.com>\r\n";
        let r = read(qmail.as_bytes()).unwrap();
        assert_eq!(r.kind, Some(ReportKind::Hard));
        assert_eq!(r.named, ["forward@elsewhere.example"]);
        assert_eq!(r.recipient(), Some("forward@elsewhere.example"));
    }

    #[test]
    fn garbage_is_not_a_message_and_send_time_refusals_are_classified() {
        assert_eq!(read(b""), None);
        assert_eq!(read(b"\x00\x01\x02 no headers here"), None);
        assert!(refusal_is_hard_bounce(
            "550 5.1.1 <x@y>: Recipient address rejected: User unknown"
        ));
        assert!(refusal_is_hard_bounce("550 user unknown"));
        assert!(!refusal_is_hard_bounce("554 5.7.1 Message rejected as spam"));
        assert!(!refusal_is_hard_bounce("550 5.7.1 mailbox unavailable: DMARC policy"));
        assert!(!refusal_is_hard_bounce("550 5.1.8 bad sender domain"));
        assert_eq!(classify("5.7.26"), None, "our DMARC, not their address");
        assert_eq!(classify("5.2.2"), Some(ReportKind::Soft), "mailbox full");
        assert_eq!(classify("5.4.4"), Some(ReportKind::Hard), "no such domain");
        assert_eq!(
            status_code("smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
            Some("5.1.10".into())
        );
    }

    #[test]
    fn a_wrong_or_unknown_charset_still_reads() {
        let latin1 = DSN
            .replace(
                "Content-Type: message/delivery-status",
                "Content-Type: message/delivery-status; charset=x-klingon",
            )
            .into_bytes()
            .into_iter()
            .chain(b"\r\n\xe9\xe8\xff".iter().copied())
            .collect::<Vec<u8>>();
        let r = read(&latin1).unwrap();
        assert_eq!(r.kind, Some(ReportKind::Hard));
        assert_eq!(r.recipient(), Some("gone@example.org"));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = read(&raw);
        }

        #[test]
        fn a_dsn_cut_or_corrupted_anywhere_is_read_without_panicking(
            cut in 0usize..2000,
            at in 0usize..2000,
            byte in proptest::num::u8::ANY,
        ) {
            let mut raw = DSN.as_bytes().to_vec();
            raw.truncate(cut.min(raw.len()));
            if let Some(b) = raw.get_mut(at) {
                *b = byte;
            }
            let _ = read(&raw);
        }
    }
}
