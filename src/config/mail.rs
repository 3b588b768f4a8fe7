//! Sending mail: the SMTP server or outbox folder, the sender, DKIM, retries, bounces.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;
use url::Host;

use super::{ConfigError, Env, is_loopback_host};

/// Sending mail, retrying it, and acting on bounces.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `smtp://` or `smtps://`; unset, mail goes to `outbox_dir` as `.eml` files.
    pub smtp_url: Option<SecretString>,
    pub outbox_dir: PathBuf,
    pub mail_from: Mailbox,
    /// Messages per second across the process; 0 = unlimited.
    pub send_rate: u32,
    /// Messages sent at once by the delivery worker.
    pub send_concurrency: usize,
    pub dkim: Option<DkimSettings>,
    /// First retry delay of a failed email; doubles each attempt.
    pub retry_base: Duration,
    /// Attempts before a transiently failing email is given up.
    pub max_attempts: i32,
    /// How long a worker's claim on queued mail lasts unless renewed (a worker renews its
    /// claim while it works through the batch).
    pub claim_lease: Duration,
    /// How long a confirmation link works.
    pub confirm_ttl: Duration,
    /// `bounces@news.example.com`: every message goes out with the envelope sender
    /// `bounces+<tag>@news.example.com` (VERP), the tag naming the message under a MAC.
    pub bounce_address: Option<lettre::Address>,
    /// This many soft bounces in a row, spread over at least `soft_bounce_days`, make a
    /// subscriber `bounced`.
    pub soft_bounce_limit: i64,
    pub soft_bounce_days: i64,
}

#[derive(Clone, Debug)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub key_file: PathBuf,
}

impl MailSettings {
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        let mail_from = env.or("PAPERBOY_MAIL_FROM", "paperboy <digest@localhost>");
        let mail_from = mail_from.parse().map_err(|e| ConfigError {
            var: "PAPERBOY_MAIL_FROM",
            reason: format!("not a mailbox ({e})"),
        })?;
        let smtp_url = env.get("PAPERBOY_SMTP_URL");
        if let Some(raw) = &smtp_url {
            smtp_url_is_safe(raw)
                .map_err(|reason| ConfigError { var: "PAPERBOY_SMTP_URL", reason })?;
        }
        Ok(MailSettings {
            smtp_url: smtp_url.map(Into::into),
            outbox_dir: env.or("PAPERBOY_OUTBOX_DIR", "./outbox").into(),
            mail_from,
            send_rate: env.number("PAPERBOY_SEND_RATE", 0)? as u32,
            send_concurrency: env.number("PAPERBOY_SEND_CONCURRENCY", 4)?.clamp(1, 64) as usize,
            dkim: dkim(env),
            retry_base: Duration::from_millis(env.number("PAPERBOY_RETRY_BASE_MS", 30_000)?),
            max_attempts: env.number("PAPERBOY_MAX_ATTEMPTS", 8)?.clamp(1, 100) as i32,
            claim_lease: Duration::from_secs(env.number("PAPERBOY_CLAIM_LEASE_SECS", 600)?.max(1)),
            confirm_ttl: Duration::from_secs(48 * 3600),
            bounce_address: bounce_address(env)?,
            soft_bounce_limit: env.number("PAPERBOY_SOFT_BOUNCE_LIMIT", 5)?.max(1) as i64,
            soft_bounce_days: env.number("PAPERBOY_SOFT_BOUNCE_DAYS", 7)? as i64,
        })
    }
}

/// DKIM signing, when all three of its variables are set.
fn dkim(env: &Env) -> Option<DkimSettings> {
    match (
        env.get("PAPERBOY_DKIM_DOMAIN"),
        env.get("PAPERBOY_DKIM_SELECTOR"),
        env.get("PAPERBOY_DKIM_KEY_FILE"),
    ) {
        (Some(domain), Some(selector), Some(key)) => {
            Some(DkimSettings { domain, selector, key_file: key.into() })
        }
        _ => None,
    }
}

/// `bounces@news.example.com`: VERP adds `+<tag>` to it, so it cannot hold a '+' itself.
fn bounce_address(env: &Env) -> Result<Option<lettre::Address>, ConfigError> {
    let Some(raw) = env.get("PAPERBOY_BOUNCE_ADDRESS") else { return Ok(None) };
    let address = raw.trim().parse::<lettre::Address>().ok().filter(|a| !a.user().contains('+'));
    address.map(Some).ok_or_else(|| ConfigError {
        var: "PAPERBOY_BOUNCE_ADDRESS",
        reason: format!("{raw:?} is not an address like bounces@news.example.com (without a '+')"),
    })
}

/// `smtp://` or `smtps://` with a host and a known `tls=`; and no password sent in clear:
/// `smtp://user:pass@host` needs `tls=required` or `tls=opportunistic` (STARTTLS), or an
/// explicit `tls=none`, unless the server is on this machine. Reasons never echo the URL,
/// which may hold a password.
pub(super) fn smtp_url_is_safe(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => return Err(format!("expected smtp:// or smtps://, got {other}:")),
    };
    let host = match url.host() {
        Some(Host::Domain("")) | None => return Err("the URL has no host".into()),
        Some(host) => host,
    };
    let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
    match tls.as_deref() {
        None | Some("none" | "opportunistic" | "required") => {}
        Some(other) => {
            return Err(format!("unknown tls={other} (none, opportunistic or required)"));
        }
    }
    // `smtp:` is not a special scheme to the URL standard: IPv4 hosts stay domains, which
    // the host's text covers as well.
    let loopback = is_loopback_host(&host.to_string());
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    if has_credentials && !implicit_tls && tls.is_none() && !loopback {
        return Err(format!(
            "the password would cross the network unencrypted to {}: add ?tls=required \
             (or tls=opportunistic), use smtps://, or say ?tls=none if you mean it",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(())
}
