//! The transactional emails, each with an HTML and a plain-text template.

use askama::Template;

use super::Draft;

#[derive(Template)]
#[template(path = "email/confirm.html")]
struct ConfirmHtml<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
}

#[derive(Template)]
#[template(path = "email/confirm.txt")]
struct ConfirmText<'a> {
    confirm_url: &'a str,
    ttl_hours: u64,
}

/// "Please confirm your subscription", with the `/confirm/{token}` link.
pub fn confirmation(confirm_url: &str, ttl_hours: u64) -> askama::Result<Draft> {
    Ok(Draft {
        subject: "Confirm your paperboy subscription".into(),
        text: ConfirmText { confirm_url, ttl_hours }.render()?,
        html: ConfirmHtml { confirm_url, ttl_hours }.render()?,
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
        let d = confirmation("http://x.test/confirm/abc", 48).unwrap();
        assert!(d.subject.to_lowercase().contains("confirm"));
        assert!(d.text.contains("http://x.test/confirm/abc"));
        assert!(d.html.contains("href=\"http://x.test/confirm/abc\""));
        assert!(d.text.contains("48 hours"));
    }
}
