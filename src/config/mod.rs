//! Settings read from the environment (and an optional `.env` file), one file per concern:
//! `web`, `mail`, `sources`, `jobs`, `embedding`.

pub mod embedding;
pub mod jobs;
pub mod mail;
pub mod sources;
pub mod web;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

pub use crate::store::is_loopback_host;
pub use embedding::EmbeddingSettings;
pub use jobs::{JobSettings, parse_cron};
pub use mail::{DkimSettings, MailSettings};
pub use sources::{FetchPolicy, SourceSettings};
pub use web::WebSettings;

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

/// Everything paperboy can be told by its operator, grouped by what it configures.
/// Secrets are `SecretString`, so a stray `{:?}` never prints them.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub web: WebSettings,
    pub mail: MailSettings,
    pub sources: SourceSettings,
    pub jobs: JobSettings,
    pub embeddings: EmbeddingSettings,
    /// Signs links and bounce addresses; unset, one is generated and kept in `secret_file`.
    pub secret: Option<SecretString>,
    /// Where the generated secret lives when `secret` is unset.
    pub secret_file: PathBuf,
    pub log_format: LogFormat,
}

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// `postgres://` or `postgresql://`.
    pub url: SecretString,
}

impl Settings {
    /// Reads the process environment, loading `.env` first when there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds settings from any key lookup (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let database_url = env.or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paperboy");
        database_url_is_valid(&database_url)
            .map_err(|reason| ConfigError { var: "DATABASE_URL", reason })?;
        Ok(Settings {
            database: DatabaseSettings { url: database_url.into() },
            web: WebSettings::read(&env)?,
            mail: MailSettings::read(&env)?,
            sources: SourceSettings::read(&env)?,
            jobs: JobSettings::read(&env)?,
            embeddings: EmbeddingSettings::read(&env),
            secret: env.get("PAPERBOY_SECRET").map(Into::into),
            secret_file: env.or("PAPERBOY_SECRET_FILE", "./.paperboy-secret").into(),
            log_format: log_format(&env)?,
        })
    }
}

fn log_format(env: &Env) -> Result<LogFormat, ConfigError> {
    match env.or("PAPERBOY_LOG_FORMAT", "pretty").to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "pretty" | "text" => Ok(LogFormat::Pretty),
        other => Err(ConfigError {
            var: "PAPERBOY_LOG_FORMAT",
            reason: format!("expected pretty or json, got {other:?}"),
        }),
    }
}

/// A key lookup with the readers every concern shares: each names its variable in errors.
pub(crate) struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
    }

    pub fn or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    /// An http(s) URL with a host, without a trailing slash.
    pub fn url(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        let raw = self.or(var, default);
        let url = Url::parse(raw.trim_end_matches('/'))
            .map_err(|e| ConfigError { var, reason: format!("not a URL ({e})") })?;
        web_url(&url).map_err(|reason| ConfigError { var, reason })?;
        Ok(url)
    }

    pub fn number(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var,
                reason: format!("expected a whole number, got {v:?}"),
            }),
        }
    }

    /// A number of seconds, at least 1.
    pub fn seconds(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        match self.number(var, default)? {
            0 => Err(ConfigError { var, reason: "expected at least 1 second".into() }),
            n => Ok(Duration::from_secs(n)),
        }
    }

    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "on", "yes"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "off", "no"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError { var, reason: format!("expected on/off, got {v:?}") }),
        }
    }

    pub fn cron(&self, var: &'static str, default: &str) -> Result<croner::Cron, ConfigError> {
        parse_cron(&self.or(var, default))
            .map_err(|e| ConfigError { var, reason: format!("not a cron expression ({e})") })
    }
}

/// `postgres://` or `postgresql://` (an empty host means the local default, as libpq
/// reads it). The reason never echoes the URL, which may hold a password.
fn database_url_is_valid(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "postgres" | "postgresql" => Ok(()),
        other => Err(format!("expected a postgres:// URL, got {other}:")),
    }
}

/// Base URLs we fetch from or link to: http or https, with a host (a `mailto:` or
/// `data:` URL cannot have paths joined onto it).
fn web_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("expected an http:// or https:// URL, got {}:", url.scheme()));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("the URL has no host".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.web.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.url.expose_secret(), "postgres://postgres@127.0.0.1:5432/paperboy");
        let links = crate::domain::Links::new(s.web.base_url.as_str(), b"key");
        assert_eq!(links.absolute("/confirm/x"), "http://localhost:8080/confirm/x");
        assert_eq!(s.sources.arxiv_categories, ["cs.AI", "cs.CL", "cs.CV", "cs.LG"]);
        assert_eq!(s.web.subscribe_rate, 20);
        assert!(s.jobs.scheduler && !s.web.trust_proxy && s.mail.smtp_url.is_none());
        assert_eq!(s.mail.mail_from.email.to_string(), "digest@localhost");
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

    fn with(var: &str, value: &str) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|k| (k == var).then(|| value.to_string()))
    }

    #[test]
    fn front_door_defaults() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert!(s.web.metrics_token.is_none());
        assert_eq!(s.web.header_timeout, Duration::from_secs(10));
        assert_eq!(s.web.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.web.max_connections, 1024);
        let s = with("PAPERBOY_METRICS_TOKEN", "scrape-me").unwrap();
        assert_eq!(s.web.metrics_token.unwrap().expose_secret(), "scrape-me");
    }

    #[test]
    fn timeouts_and_the_connection_cap_must_be_positive() {
        for var in [
            "PAPERBOY_HEADER_TIMEOUT_SECS",
            "PAPERBOY_IDLE_TIMEOUT_SECS",
            "PAPERBOY_MAX_CONNECTIONS",
        ] {
            assert_eq!(with(var, "0").unwrap_err().var, var);
            assert_eq!(with(var, "soon").unwrap_err().var, var);
        }
        assert_eq!(with("PAPERBOY_MAX_CONNECTIONS", "2").unwrap().web.max_connections, 2);
        let s = with("PAPERBOY_HEADER_TIMEOUT_SECS", "3").unwrap();
        assert_eq!(s.web.header_timeout, Duration::from_secs(3));
    }

    #[test]
    fn url_settings_must_be_http_or_https_with_a_host() {
        for var in
            ["PAPERBOY_BASE_URL", "PAPERBOY_HF_URL", "PAPERBOY_ARXIV_URL", "PAPERBOY_ARXIV_API_URL"]
        {
            // A cannot-be-a-base URL (mailto:, data:) once panicked the ingest jobs.
            for bad in [
                "mailto:ops@example.com",
                "data:text/plain,hello",
                "ftp://example.com/pub",
                "file:///tmp/feed",
                "example.com",
                "http://",
            ] {
                let err = with(var, bad).expect_err(bad);
                assert_eq!(err.var, var, "{bad}");
            }
            for good in ["http://127.0.0.1:9000", "https://example.com/base/"] {
                with(var, good).unwrap_or_else(|e| panic!("{good}: {e}"));
            }
        }
        let err = with("PAPERBOY_BASE_URL", "https://example.com/?utm=x").unwrap_err();
        assert_eq!(err.var, "PAPERBOY_BASE_URL");
    }

    #[test]
    fn the_database_url_must_be_postgres_and_is_never_echoed() {
        for bad in ["mysql://u:hunter2@db/paperboy", "hunter2", "http://db/x"] {
            let err = with("DATABASE_URL", bad).expect_err(bad);
            assert_eq!(err.var, "DATABASE_URL", "{bad}");
            assert!(!err.reason.contains("hunter2"), "{}", err.reason);
        }
        for good in [
            "postgres://postgres@127.0.0.1:5432/paperboy",
            "postgresql://u:p@db.internal/paperboy?sslmode=require",
            "postgres:///paperboy?host=/var/run/postgresql",
            "postgres:///paperboy",
        ] {
            with("DATABASE_URL", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn smtp_url_must_be_smtp_or_smtps_with_a_host_and_a_known_tls() {
        for bad in [
            "http://mail.example",
            "mailto:ops@example.com",
            "smtp://",
            "smtp:mail.example",
            "mail.example:25",
            "smtp://mail.example?tls=maybe",
        ] {
            let err = with("PAPERBOY_SMTP_URL", bad).expect_err(bad);
            assert_eq!(err.var, "PAPERBOY_SMTP_URL", "{bad}");
        }
        for good in [
            "smtp://mail.example",
            "smtp://mail.example:2525?tls=opportunistic",
            "smtps://mail.example",
            "smtp://127.0.0.1:1025",
        ] {
            with("PAPERBOY_SMTP_URL", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn a_password_never_goes_out_in_clear_unless_asked() {
        let err = with("PAPERBOY_SMTP_URL", "smtp://ann:hunter2@mail.example:587").unwrap_err();
        assert_eq!(err.var, "PAPERBOY_SMTP_URL");
        assert!(err.reason.contains("tls=required"), "{}", err.reason);
        assert!(!err.to_string().contains("hunter2"), "the password is never echoed");
        let err = with("PAPERBOY_SMTP_URL", "smtp://ann@mail.example").unwrap_err();
        assert_eq!(err.var, "PAPERBOY_SMTP_URL");
        for fine in [
            "smtp://ann:hunter2@mail.example:587?tls=required",
            "smtp://ann:hunter2@mail.example:587?tls=opportunistic",
            "smtp://ann:hunter2@mail.example:25?tls=none",
            "smtps://ann:hunter2@mail.example",
            // Loopback: nothing crosses the network.
            "smtp://ann:hunter2@127.0.0.1:1025",
            "smtp://ann:hunter2@127.8.0.1:1025",
            "smtp://ann:hunter2@[::1]:1025",
            "smtp://ann:hunter2@localhost:1025",
            "smtp://ann:hunter2@LocalHost:1025",
        ] {
            with("PAPERBOY_SMTP_URL", fine).unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }
}
