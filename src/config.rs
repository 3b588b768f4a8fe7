//! Settings read from the environment (and an optional `.env` file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;
use url::Url;

use crate::sources::FetchPolicy;

/// Parses a cron expression: five fields (minute … weekday), or six with seconds first.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr.trim())
        .map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Everything paperboy can be told by its operator. Secrets are `SecretString`, so a
/// stray `{:?}` never prints them.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: SecretString,
    pub bind: SocketAddr,
    pub base_url: Url,
    pub smtp_url: Option<SecretString>,
    pub outbox_dir: PathBuf,
    pub mail_from: Mailbox,
    pub hf_url: Url,
    pub arxiv_url: Url,
    pub arxiv_categories: Vec<String>,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub secret: Option<SecretString>,
    /// Messages per second across the process; 0 = unlimited.
    pub send_rate: u32,
    /// Messages sent at once by the delivery worker.
    pub send_concurrency: usize,
    pub dkim: Option<DkimSettings>,
    /// Sign-ups per client IP per hour; 0 = no limit.
    pub subscribe_rate: u32,
    pub trust_proxy: bool,
    pub scheduler: bool,
    pub log_format: LogFormat,
    /// First retry delay of a failed email; doubles each attempt.
    pub retry_base: Duration,
    /// Attempts before a transiently failing email is given up.
    pub max_attempts: i32,
    pub confirm_ttl: Duration,
    /// Timeouts and retries for Hugging Face and arXiv requests.
    pub fetch: FetchPolicy,
    /// When `serve` ingests Hugging Face (today and yesterday, UTC).
    pub ingest_hf_cron: croner::Cron,
    /// When `serve` ingests the arXiv announcement.
    pub ingest_arxiv_cron: croner::Cron,
    /// How often `serve` looks for readers whose delivery hour has come.
    pub digest_cron: croner::Cron,
}

#[derive(Clone, Debug)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub key_file: PathBuf,
}

impl Settings {
    /// Reads the process environment, loading `.env` first when there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds settings from any key lookup (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let url = |var: &'static str, d: &str| -> Result<Url, ConfigError> {
            let raw = or(var, d);
            let raw = raw.trim_end_matches('/');
            Url::parse(raw).map_err(|e| ConfigError { var, reason: format!("not a URL ({e})") })
        };
        let number = |var: &'static str, d: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(d),
                Some(v) => v.trim().parse().map_err(|_| ConfigError {
                    var,
                    reason: format!("expected a whole number, got {v:?}"),
                }),
            }
        };
        let flag = |var: &'static str, d: bool| -> Result<bool, ConfigError> {
            match get(var).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(d),
                Some(v) if ["1", "true", "on", "yes"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "off", "no"].contains(&v.as_str()) => Ok(false),
                Some(v) => Err(ConfigError { var, reason: format!("expected on/off, got {v:?}") }),
            }
        };

        let bind = or("PAPERBOY_BIND", "127.0.0.1:8080");
        let bind = bind.parse().map_err(|_| ConfigError {
            var: "PAPERBOY_BIND",
            reason: format!("expected host:port, got {bind:?}"),
        })?;
        let mail_from = or("PAPERBOY_MAIL_FROM", "paperboy <digest@localhost>");
        let mail_from = mail_from.parse().map_err(|e| ConfigError {
            var: "PAPERBOY_MAIL_FROM",
            reason: format!("not a mailbox ({e})"),
        })?;
        let dkim = match (
            get("PAPERBOY_DKIM_DOMAIN"),
            get("PAPERBOY_DKIM_SELECTOR"),
            get("PAPERBOY_DKIM_KEY_FILE"),
        ) {
            (Some(domain), Some(selector), Some(key)) => {
                Some(DkimSettings { domain, selector, key_file: key.into() })
            }
            _ => None,
        };
        let log_format = match or("PAPERBOY_LOG_FORMAT", "pretty").to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            other => {
                return Err(ConfigError {
                    var: "PAPERBOY_LOG_FORMAT",
                    reason: format!("expected pretty or json, got {other:?}"),
                });
            }
        };

        let cron = |var: &'static str, d: &str| -> Result<croner::Cron, ConfigError> {
            parse_cron(&or(var, d))
                .map_err(|e| ConfigError { var, reason: format!("not a cron expression ({e})") })
        };
        let fetch = FetchPolicy {
            total_timeout: Duration::from_secs(number("PAPERBOY_FETCH_TIMEOUT_SECS", 60)?.max(1)),
            retry_base: Duration::from_millis(number("PAPERBOY_FETCH_RETRY_BASE_MS", 1000)?),
            ..FetchPolicy::default()
        };

        Ok(Settings {
            database_url: or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paperboy").into(),
            bind,
            base_url: url("PAPERBOY_BASE_URL", "http://localhost:8080")?,
            smtp_url: get("PAPERBOY_SMTP_URL").map(Into::into),
            outbox_dir: or("PAPERBOY_OUTBOX_DIR", "./outbox").into(),
            mail_from,
            hf_url: url("PAPERBOY_HF_URL", "https://huggingface.co")?,
            arxiv_url: url("PAPERBOY_ARXIV_URL", "https://rss.arxiv.org/rss")?,
            arxiv_categories: or("PAPERBOY_ARXIV_CATEGORIES", "cs.AI,cs.CL,cs.CV,cs.LG")
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            admin_email: get("PAPERBOY_ADMIN_EMAIL"),
            admin_password: get("PAPERBOY_ADMIN_PASSWORD").map(Into::into),
            secret: get("PAPERBOY_SECRET").map(Into::into),
            send_rate: number("PAPERBOY_SEND_RATE", 0)? as u32,
            send_concurrency: number("PAPERBOY_SEND_CONCURRENCY", 4)?.clamp(1, 64) as usize,
            dkim,
            subscribe_rate: number("PAPERBOY_SUBSCRIBE_RATE", 20)? as u32,
            trust_proxy: flag("PAPERBOY_TRUST_PROXY", false)?,
            scheduler: flag("PAPERBOY_SCHEDULER", true)?,
            log_format,
            retry_base: Duration::from_millis(number("PAPERBOY_RETRY_BASE_MS", 30_000)?),
            max_attempts: number("PAPERBOY_MAX_ATTEMPTS", 8)?.clamp(1, 100) as i32,
            confirm_ttl: Duration::from_secs(48 * 3600),
            fetch,
            ingest_hf_cron: cron("PAPERBOY_INGEST_HF_CRON", "*/30 * * * *")?,
            // arXiv announces Sunday–Thursday at 20:00 US Eastern: 01:30 UTC Monday–Friday.
            ingest_arxiv_cron: cron("PAPERBOY_INGEST_ARXIV_CRON", "30 1 * * 1-5")?,
            digest_cron: cron("PAPERBOY_DIGEST_CRON", "*/5 * * * *")?,
        })
    }

    /// An absolute link into the web app, for emails.
    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.base_url.as_str().trim_end_matches('/'), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.expose_secret(), "postgres://postgres@127.0.0.1:5432/paperboy");
        assert_eq!(s.link("/confirm/x"), "http://localhost:8080/confirm/x");
        assert_eq!(s.arxiv_categories, ["cs.AI", "cs.CL", "cs.CV", "cs.LG"]);
        assert_eq!(s.subscribe_rate, 20);
        assert!(s.scheduler && !s.trust_proxy && s.smtp_url.is_none());
        assert_eq!(s.mail_from.email.to_string(), "digest@localhost");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err =
            Settings::from_lookup(|k| (k == "PAPERBOY_BIND").then(|| "nope".into())).unwrap_err();
        assert_eq!(err.var, "PAPERBOY_BIND");
        let err = Settings::from_lookup(|k| (k == "PAPERBOY_SCHEDULER").then(|| "maybe".into()))
            .unwrap_err();
        assert_eq!(err.var, "PAPERBOY_SCHEDULER");
        let err = Settings::from_lookup(|k| {
            (k == "PAPERBOY_INGEST_HF_CRON").then(|| "every hour".into())
        })
        .unwrap_err();
        assert_eq!(err.var, "PAPERBOY_INGEST_HF_CRON");
    }
}
