//! The transactional emails, each with an HTML and a plain-text template built on
//! `templates/email/base.*` (transactional ones on `notice.html`).
//!
//! A queued email is a [`Notice`]: what it says (its kind, the link's token, the choices
//! it shows), not its rendered text. The mail worker renders it when it sends it, so the
//! queue holds a few hundred bytes per email instead of kilobytes of HTML that every
//! claim and status change would copy again.

use askama::Template;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Draft;
use crate::domain::{Links, Token};

/// A transactional email waiting to be rendered and sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// "Please confirm": the `/confirm/{token}` link and, when the sign-up form's choices
    /// are known, what confirming sets up. The queue keeps the link's `seed`, from which
    /// only the secret makes the token (`Signer::confirmation_token`); `token` is a raw
    /// token queued by an older version.
    Confirmation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        choices: Option<SignupSummary>,
    },
    /// Sent instead of a second confirmation to a subscriber who is already confirmed: their
    /// preferences and unsubscribe links.
    AlreadySubscribed { subscriber: Uuid },
}

impl Notice {
    pub fn confirmation(seed: &Token, choices: Option<SignupSummary>) -> Self {
        Notice::Confirmation { seed: Some(seed.as_str().to_string()), token: None, choices }
    }

    /// The message as the queue keeps it.
    pub fn queued(&self) -> crate::store::mail_queue::Outgoing {
        use crate::store::mail_queue::MailKind;
        let kind = match self {
            Notice::Confirmation { .. } => MailKind::Confirmation,
            Notice::AlreadySubscribed { .. } => MailKind::AlreadySubscribed,
        };
        let notice = serde_json::to_value(self).expect("a notice serialises");
        crate::store::mail_queue::Outgoing { kind, subject: self.subject(), notice }
    }

    pub fn subject(&self) -> String {
        match self {
            Notice::Confirmation { .. } => Subject::Confirmation,
            Notice::AlreadySubscribed { .. } => Subject::AlreadySubscribed,
        }
        .line()
    }

    /// The email as it goes out, with links under `links` and the confirmation lifetime
    /// the service runs with.
    pub fn render(&self, links: &Links, confirm_ttl_hours: u64) -> askama::Result<Draft> {
        let subject = self.subject();
        match self {
            Notice::Confirmation { seed, token, choices } => {
                let token = match (seed.as_deref().and_then(Token::parse), token) {
                    (Some(seed), _) => {
                        links.signer().confirmation_token(&seed).as_str().to_string()
                    }
                    (None, Some(token)) => token.clone(),
                    (None, None) => {
                        return Err(askama::Error::custom("a confirmation without its link"));
                    }
                };
                let confirm_url = &links.confirm(&token);
                let choices = choices.as_ref();
                let ttl_hours = confirm_ttl_hours;
                Ok(Draft {
                    subject,
                    text: ConfirmText { confirm_url, ttl_hours, choices }.render()?,
                    html: ConfirmHtml { confirm_url, ttl_hours, choices }.render()?,
                })
            }
            Notice::AlreadySubscribed { subscriber } => {
                let preferences_url = &links.preferences(subscriber);
                let unsubscribe_url = &links.unsubscribe(subscriber);
                Ok(Draft {
                    subject,
                    text: AlreadyText { preferences_url, unsubscribe_url }.render()?,
                    html: AlreadyHtml { preferences_url, unsubscribe_url }.render()?,
                })
            }
        }
    }
}

/// An email's subject line, as `templates/email/subjects.txt` words it.
pub enum Subject<'a> {
    Confirmation,
    AlreadySubscribed,
    /// `paperboy · Wed, Nov 26: <the top paper> (+6 more)`; `kind` is
    /// "paperboy" or "paperboy weekly".
    Digest {
        kind: &'a str,
        edition: &'a str,
        top: &'a str,
        more: usize,
    },
}

#[derive(Template)]
#[template(path = "email/subjects.txt")]
struct SubjectLine<'a> {
    subject: &'a Subject<'a>,
}

impl Subject<'_> {
    pub fn line(&self) -> String {
        SubjectLine { subject: self }.to_string()
    }
}

/// What confirming will set up, as the form was sent (so the email says what the link does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupSummary {
    pub topics: Vec<String>,
    pub frequency: String,
}

impl SignupSummary {
    fn topics_text(&self) -> String {
        if self.topics.is_empty() { "none yet".into() } else { self.topics.join(", ") }
    }
}

#[derive(Template)]
#[template(path = "email/confirm.html")]
struct ConfirmHtml<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
    choices: Option<&'a SignupSummary>,
}

#[derive(Template)]
#[template(path = "email/confirm.txt")]
struct ConfirmText<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
    choices: Option<&'a SignupSummary>,
}

#[derive(Template)]
#[template(path = "email/already_subscribed.html")]
struct AlreadyHtml<'a> {
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/already_subscribed.txt")]
struct AlreadyText<'a> {
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_carries_the_link_in_both_parts() {
        let topics = vec!["diffusion models".to_string(), "<b>".to_string()];
        let choices = SignupSummary { topics, frequency: "weekly".into() };
        let notice =
            Notice::Confirmation { seed: None, token: Some("abc".into()), choices: Some(choices) };
        let d = notice.render(&Links::new("http://x.test/", b"secret"), 48).unwrap();
        assert!(d.text.contains("diffusion models, <b>") && d.text.contains("weekly"));
        assert!(d.html.contains("diffusion models, &#60;b&#62;"), "{}", d.html);
        assert!(d.subject.to_lowercase().contains("confirm"));
        assert!(d.text.contains("http://x.test/confirm/abc"));
        assert!(d.html.contains("href=\"http://x.test/confirm/abc\""));
        assert!(d.text.contains("48 hours"));
        assert_eq!(d.subject, "Confirm your paperboy subscription");
    }

    #[test]
    fn subjects_come_from_one_template_unescaped() {
        let digest =
            |more| Subject::Digest { kind: "paperboy", edition: "Nov 26", top: "A & <B>", more };
        assert_eq!(digest(0).line(), "paperboy · Nov 26: A & <B>");
        assert_eq!(digest(4).line(), "paperboy · Nov 26: A & <B> (+4 more)");
        assert_eq!(Subject::AlreadySubscribed.line(), "You're already subscribed to paperboy");
    }

    #[test]
    fn a_queued_confirmation_holds_a_seed_that_only_the_secret_turns_into_the_link() {
        let seed = Token::generate();
        let notice = Notice::confirmation(&seed, None);
        let stored = serde_json::to_string(&notice).unwrap();
        let links = Links::new("http://x.test/", b"secret");
        let token = links.signer().confirmation_token(&seed);
        assert!(!stored.contains(token.as_str()), "{stored}");
        let d = notice.render(&links, 48).unwrap();
        assert!(d.text.contains(&format!("http://x.test/confirm/{}", token.as_str())));
        let other = Links::new("http://x.test/", b"another secret");
        assert_ne!(other.signer().confirmation_token(&seed), token);
    }

    #[test]
    fn a_queued_notice_survives_its_round_trip_through_the_queue() {
        let notice = Notice::AlreadySubscribed { subscriber: Uuid::nil() };
        let stored = serde_json::to_value(&notice).unwrap();
        assert_eq!(stored["kind"], "already_subscribed");
        assert_eq!(serde_json::from_value::<Notice>(stored).unwrap(), notice);
    }
}
