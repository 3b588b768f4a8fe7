//! The HTTP server, its public pages and the dashboard.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

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

impl WebSettings {
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        let bind = env.or("PAPERBOY_BIND", "127.0.0.1:8080");
        let bind = bind.parse().map_err(|_| ConfigError {
            var: "PAPERBOY_BIND",
            reason: format!("expected host:port, got {bind:?}"),
        })?;
        let base_url = env.url("PAPERBOY_BASE_URL", "http://localhost:8080")?;
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(ConfigError {
                var: "PAPERBOY_BASE_URL",
                reason: "links are appended to it: no query (?) or fragment (#) allowed".into(),
            });
        }
        let max_connections = match env.number("PAPERBOY_MAX_CONNECTIONS", 1024)? {
            0 => {
                let reason = "expected at least 1".into();
                return Err(ConfigError { var: "PAPERBOY_MAX_CONNECTIONS", reason });
            }
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Ok(WebSettings {
            bind,
            base_url,
            subscribe_rate: env.number("PAPERBOY_SUBSCRIBE_RATE", 20)? as u32,
            search_rate: env.number("PAPERBOY_SEARCH_RATE", 30)? as u32,
            trust_proxy: env.flag("PAPERBOY_TRUST_PROXY", false)?,
            header_timeout: env.seconds("PAPERBOY_HEADER_TIMEOUT_SECS", 10)?,
            idle_timeout: env.seconds("PAPERBOY_IDLE_TIMEOUT_SECS", 60)?,
            max_connections,
            metrics_token: env.get("PAPERBOY_METRICS_TOKEN").map(Into::into),
            inbound_token: env.get("PAPERBOY_INBOUND_TOKEN").map(Into::into),
            admin_email: env.get("PAPERBOY_ADMIN_EMAIL"),
            admin_password: env.get("PAPERBOY_ADMIN_PASSWORD").map(Into::into),
        })
    }
}
