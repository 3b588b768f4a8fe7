//! A subscriber's email address, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// An address that passed RFC 5322 checks, has a dotted domain and fits SMTP's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const INVALID: &str = "Please enter a valid email address.";
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 254 {
            return Err(INVALID);
        }
        let parsed = email_address::EmailAddress::from_str(raw).map_err(|_| INVALID)?;
        // Display names ("Ann <a@b.c>") and quoted or bracketed forms are legal but not
        // what a sign-up form should accept.
        if parsed.as_str() != raw || raw.contains(['<', '>', '"', '[', ' ']) {
            return Err(INVALID);
        }
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(INVALID);
        }
        Ok(Self(format!("{}@{}", parsed.local_part(), domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key two spellings of one mailbox share (case-insensitive).
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// For logs: the domain only, never the whole address.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// `ann@example.com` → `…@example.com`.
pub fn redact(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("…@{domain}"),
        None => "…".into(),
    }
}

/// Every address in a free text (an SMTP reply quotes the recipient) reduced to its
/// domain, for logs and records that must not keep an address: `550 <ann@x.org> unknown`
/// → `550 <…@x.org> unknown`.
pub fn redact_addresses(text: &str) -> String {
    fn local(c: char) -> bool {
        c.is_alphanumeric() || "._%+-!#$&'*/=?^`{|}~".contains(c)
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let start = before
            .rfind(|c: char| !local(c))
            .map(|i| i + before[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
        if start == at {
            // No local part: not an address.
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push('…');
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        let e = SubscriberEmail::parse("  Ada.Lovelace+ml@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace+ml@example.org");
        assert_eq!(e.normalized(), "ada.lovelace+ml@example.org");
        assert_eq!(e.redacted(), "…@example.org");
    }

    #[test]
    fn addresses_in_free_text_keep_only_their_domain() {
        assert_eq!(
            redact_addresses(
                "550 5.1.1 <ann.o'neil+x@example.org>: Recipient unknown (ann@example.org)"
            ),
            "550 5.1.1 <…@example.org>: Recipient unknown (…@example.org)"
        );
        assert_eq!(redact_addresses("no address @ here"), "no address @ here");
        assert_eq!(redact_addresses("émile@exämple.org"), "…@exämple.org");
    }

    #[test]
    fn rejects_what_a_form_should_not_take() {
        for bad in [
            "",
            "plainaddress",
            "@example.com",
            "ann@",
            "ann@localhost",
            "Ann <ann@example.com>",
            "ann@example..com",
            "ann example@example.com",
            "ann@.example.com",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
