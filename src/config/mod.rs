//! Settings read from the environment (and an optional `.env` file).

pub mod embedding;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;
use url::{Host, Url};

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

/// The HTTP server, its public pages and the dashboard.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub bind: SocketAddr,
    /// Where links in emails and feeds point: http(s), no query or fragment.
    pub base_url: Url,
    /// Sign-ups per client IP per hour; 0 = no limit.
    pub subscribe_rate: u32,
    /// Searches per client IP per minute; 0 = no limit.
    pub search_rate: u32,
    pub trust_proxy: bool,
    /// Time a client has to send a request head once its first byte arrived.
    pub header_timeout: Duration,
    /// Time a connection may sit with nothing moving: before a request's first byte
    /// (keep-alive) or while the client does not read its response.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// When set, `GET /metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// Bearer token for `POST /inbound/*`; unset, those routes answer 404.
    pub inbound_token: Option<SecretString>,
    /// The first dashboard admin, created at start when both are set.
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
}

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

/// Where papers come from.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub hf_url: Url,
    pub arxiv_url: Url,
    /// arXiv's query API (`?id_list=…`), for papers readers name that we do not have.
    pub arxiv_api_url: Url,
    pub arxiv_categories: Vec<String>,
    /// Timeouts and retries for Hugging Face and arXiv requests.
    pub fetch: FetchPolicy,
}

/// What `serve` runs on a schedule.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Off: no scheduled ingests or digest runs (the workers still send what is queued).
    pub scheduler: bool,
    /// When `serve` ingests Hugging Face (today and yesterday, UTC).
    pub ingest_hf_cron: croner::Cron,
    /// When `serve` ingests the arXiv announcement.
    pub ingest_arxiv_cron: croner::Cron,
    /// How often `serve` looks for subscribers whose delivery hour has come.
    pub digest_cron: croner::Cron,
}

/// The sentence-embedding model that ranks by meaning.
#[derive(Clone, Debug)]
pub struct EmbeddingSettings {
    /// `PAPERBOY_EMBEDDING_MODEL`: a hub id, a folder, or off.
    pub model: embedding::ModelSource,
    /// `HF_ENDPOINT` and `HF_HOME`, as the Hugging Face tools read them.
    pub hub: embedding::Hub,
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
            let url = Url::parse(raw)
                .map_err(|e| ConfigError { var, reason: format!("not a URL ({e})") })?;
            web_url(&url).map_err(|reason| ConfigError { var, reason })?;
            Ok(url)
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
        let seconds = |var: &'static str, d: u64| -> Result<Duration, ConfigError> {
            match number(var, d)? {
                0 => Err(ConfigError { var, reason: "expected at least 1 second".into() }),
                n => Ok(Duration::from_secs(n)),
            }
        };
        let max_connections = match number("PAPERBOY_MAX_CONNECTIONS", 1024)? {
            0 => {
                return Err(ConfigError {
                    var: "PAPERBOY_MAX_CONNECTIONS",
                    reason: "expected at least 1".into(),
                });
            }
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let smtp_url = get("PAPERBOY_SMTP_URL");
        if let Some(raw) = &smtp_url {
            smtp_url_is_safe(raw)
                .map_err(|reason| ConfigError { var: "PAPERBOY_SMTP_URL", reason })?;
        }
        let base_url = url("PAPERBOY_BASE_URL", "http://localhost:8080")?;
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(ConfigError {
                var: "PAPERBOY_BASE_URL",
                reason: "links are appended to it: no query (?) or fragment (#) allowed".into(),
            });
        }
        let fetch = FetchPolicy {
            total_timeout: Duration::from_secs(number("PAPERBOY_FETCH_TIMEOUT_SECS", 60)?.max(1)),
            retry_base: Duration::from_millis(number("PAPERBOY_FETCH_RETRY_BASE_MS", 1000)?),
            ..FetchPolicy::default()
        };

        let database_url = or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paperboy");
        database_url_is_valid(&database_url)
            .map_err(|reason| ConfigError { var: "DATABASE_URL", reason })?;
        let bounce_address = match get("PAPERBOY_BOUNCE_ADDRESS") {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<lettre::Address>()
                    .ok()
                    .filter(|a| !a.user().contains('+'))
                    .ok_or_else(|| ConfigError {
                        var: "PAPERBOY_BOUNCE_ADDRESS",
                        reason: format!(
                            "{raw:?} is not an address like bounces@news.example.com (without a '+')"
                        ),
                    })?,
            ),
        };

        Ok(Settings {
            database: DatabaseSettings { url: database_url.into() },
            web: WebSettings {
                bind,
                base_url,
                subscribe_rate: number("PAPERBOY_SUBSCRIBE_RATE", 20)? as u32,
                search_rate: number("PAPERBOY_SEARCH_RATE", 30)? as u32,
                trust_proxy: flag("PAPERBOY_TRUST_PROXY", false)?,
                header_timeout: seconds("PAPERBOY_HEADER_TIMEOUT_SECS", 10)?,
                idle_timeout: seconds("PAPERBOY_IDLE_TIMEOUT_SECS", 60)?,
                max_connections,
                metrics_token: get("PAPERBOY_METRICS_TOKEN").map(Into::into),
                inbound_token: get("PAPERBOY_INBOUND_TOKEN").map(Into::into),
                admin_email: get("PAPERBOY_ADMIN_EMAIL"),
                admin_password: get("PAPERBOY_ADMIN_PASSWORD").map(Into::into),
            },
            mail: MailSettings {
                smtp_url: smtp_url.map(Into::into),
                outbox_dir: or("PAPERBOY_OUTBOX_DIR", "./outbox").into(),
                mail_from,
                send_rate: number("PAPERBOY_SEND_RATE", 0)? as u32,
                send_concurrency: number("PAPERBOY_SEND_CONCURRENCY", 4)?.clamp(1, 64) as usize,
                dkim,
                retry_base: Duration::from_millis(number("PAPERBOY_RETRY_BASE_MS", 30_000)?),
                max_attempts: number("PAPERBOY_MAX_ATTEMPTS", 8)?.clamp(1, 100) as i32,
                claim_lease: Duration::from_secs(number("PAPERBOY_CLAIM_LEASE_SECS", 600)?.max(1)),
                confirm_ttl: Duration::from_secs(48 * 3600),
                bounce_address,
                soft_bounce_limit: number("PAPERBOY_SOFT_BOUNCE_LIMIT", 5)?.max(1) as i64,
                soft_bounce_days: number("PAPERBOY_SOFT_BOUNCE_DAYS", 7)? as i64,
            },
            sources: SourceSettings {
                hf_url: url("PAPERBOY_HF_URL", "https://huggingface.co")?,
                arxiv_url: url("PAPERBOY_ARXIV_URL", "https://rss.arxiv.org/rss")?,
                arxiv_api_url: url("PAPERBOY_ARXIV_API_URL", "http://export.arxiv.org/api/query")?,
                arxiv_categories: or("PAPERBOY_ARXIV_CATEGORIES", "cs.AI,cs.CL,cs.CV,cs.LG")
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                fetch,
            },
            jobs: JobSettings {
                scheduler: flag("PAPERBOY_SCHEDULER", true)?,
                ingest_hf_cron: cron("PAPERBOY_INGEST_HF_CRON", "*/30 * * * *")?,
                // arXiv announces Sunday–Thursday at 20:00 US Eastern: 01:30 UTC Monday–Friday.
                ingest_arxiv_cron: cron("PAPERBOY_INGEST_ARXIV_CRON", "30 1 * * 1-5")?,
                digest_cron: cron("PAPERBOY_DIGEST_CRON", "*/5 * * * *")?,
            },
            embeddings: EmbeddingSettings {
                model: embedding::ModelSource::parse(&or(
                    "PAPERBOY_EMBEDDING_MODEL",
                    embedding::DEFAULT_MODEL,
                )),
                hub: embedding::Hub {
                    endpoint: get("HF_ENDPOINT"),
                    home: get("HF_HOME").map(Into::into),
                },
            },
            secret: get("PAPERBOY_SECRET").map(Into::into),
            secret_file: or("PAPERBOY_SECRET_FILE", "./.paperboy-secret").into(),
            log_format,
        })
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

pub use crate::store::is_loopback_host;

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

/// `smtp://` or `smtps://` with a host and a known `tls=`; and no password sent in clear:
/// `smtp://user:pass@host` needs `tls=required` or `tls=opportunistic` (STARTTLS), or an
/// explicit `tls=none`, unless the server is on this machine. Reasons never echo the URL,
/// which may hold a password.
fn smtp_url_is_safe(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
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

/// Timeouts and retry timing for upstream requests.
#[derive(Clone, Copy, Debug)]
pub struct FetchPolicy {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// First retry delay after a 429 or 5xx (doubles per attempt) unless Retry-After says otherwise.
    pub retry_base: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
        }
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
