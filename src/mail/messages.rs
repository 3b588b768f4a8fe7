//! The transactional emails, each with an HTML and a plain-text template built on
//! `templates/email/base.*` (transactional ones on `notice.html`).

use askama::Template;

use super::Draft;

/// What confirming will set up, as the form was sent (so the email says what the link does).
pub struct SignupSummary<'a> {
    pub topics: &'a [String],
    pub frequency: &'a str,
}

impl SignupSummary<'_> {
    fn topics_text(&self) -> String {
        if self.topics.is_empty() { "none yet".into() } else { self.topics.join(", ") }
    }
}

#[derive(Template)]
#[template(path = "email/confirm.html")]
struct ConfirmHtml<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
    choices: Option<&'a SignupSummary<'a>>,
}

#[derive(Template)]
#[template(path = "email/confirm.txt")]
struct ConfirmText<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
    choices: Option<&'a SignupSummary<'a>>,
}

/// "Please confirm your subscription", with the `/confirm/{token}` link and, when known,
/// the choices that confirming applies.
pub fn confirmation(
    confirm_url: &str,
    ttl_hours: u64,
    choices: Option<&SignupSummary<'_>>,
) -> askama::Result<Draft> {
    Ok(Draft {
        subject: "Confirm your paperboy subscription".into(),
        text: ConfirmText { confirm_url, ttl_hours, choices }.render()?,
        html: ConfirmHtml { confirm_url, ttl_hours, choices }.render()?,
    })
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

/// Sent instead of a second confirmation to a reader who is already confirmed.
pub fn already_subscribed(preferences_url: &str, unsubscribe_url: &str) -> askama::Result<Draft> {
    Ok(Draft {
        subject: "You're already subscribed to paperboy".into(),
        text: AlreadyText { preferences_url, unsubscribe_url }.render()?,
        html: AlreadyHtml { preferences_url, unsubscribe_url }.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_carries_the_link_in_both_parts() {
        let topics = ["diffusion models".to_string(), "<b>".to_string()];
        let choices = SignupSummary { topics: &topics, frequency: "weekly" };
        let d = confirmation("http://x.test/confirm/abc", 48, Some(&choices)).unwrap();
        assert!(d.text.contains("diffusion models, <b>") && d.text.contains("weekly"));
        assert!(d.html.contains("diffusion models, &#60;b&#62;"), "{}", d.html);
        assert!(d.subject.to_lowercase().contains("confirm"));
        assert!(d.text.contains("http://x.test/confirm/abc"));
        assert!(d.html.contains("href=\"http://x.test/confirm/abc\""));
        assert!(d.text.contains("48 hours"));
    }
}
