//! The paper sources: fetch over HTTP with limits and retries, parse into domain papers.

pub mod arxiv;
pub mod huggingface;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use url::Url;

/// Responses larger than this are refused, whatever the upstream claims.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
const MAX_ATTEMPTS: u32 = 4;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer in time")]
    Timeout { url: String },
    #[error("cannot reach {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("{url} sent more than {} MB", MAX_BODY_BYTES / 1024 / 1024)]
    TooLarge { url: String },
    #[error("{url} sent an unusable response: {reason}")]
    Malformed { url: String, reason: String },
}

pub use crate::config::FetchPolicy;

/// An HTTP client for upstreams: bounded bodies, bounded retries.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
}

/// Spaces requests to one upstream and lets only one run at a time (arXiv's terms:
/// one request every 3 s, one connection at a time).
pub struct Throttle {
    interval: Duration,
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: tokio::sync::Mutex::new(None) }
    }
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.total_timeout)
            .user_agent(concat!("paperboy/", env!("CARGO_PKG_VERSION"), " (paper digest service)"))
            .build()
            .expect("the HTTP client builds with static settings");
        Self { client, policy }
    }

    /// GETs a URL; 429, 5xx and connection failures are retried with backoff.
    pub async fn get(
        &self,
        url: &Url,
        throttle: Option<&Throttle>,
    ) -> Result<Vec<u8>, SourceError> {
        let mut attempt = 1;
        loop {
            let (result, retry_after) = match throttle {
                Some(t) => {
                    let mut last = t.last.lock().await;
                    if let Some(at) = *last {
                        tokio::time::sleep(t.interval.saturating_sub(at.elapsed())).await;
                    }
                    let r = self.get_once(url).await;
                    *last = Some(Instant::now());
                    r
                }
                None => self.get_once(url).await,
            };
            match result {
                Err(e) if retry_after.is_some() && attempt < MAX_ATTEMPTS => {
                    let backoff = self.policy.retry_base.saturating_mul(1 << (attempt - 1));
                    let wait = retry_after.flatten().unwrap_or(backoff).min(MAX_RETRY_AFTER);
                    tracing::warn!(%url, error = ?e.to_string(), attempt, retry_in = ?wait, "upstream failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One request, not retried (the caller keeps its own schedule, as arXiv's query API
    /// queue does).
    pub async fn get_one(&self, url: &Url) -> Result<Vec<u8>, SourceError> {
        self.get_once(url).await.0
    }

    /// One request. The second value is `Some` when the failure is worth retrying,
    /// holding the delay the server asked for, if any.
    async fn get_once(
        &self,
        url: &Url,
    ) -> (Result<Vec<u8>, SourceError>, Option<Option<Duration>>) {
        let u = url.to_string();
        let mut response = match self.client.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return (Err(SourceError::Timeout { url: u }), None),
            Err(e) => {
                let retry = e.is_connect().then_some(None);
                return (Err(SourceError::Network { url: u, reason: root_cause(&e) }), retry);
            }
        };
        let status = response.status();
        if !status.is_success() {
            let retry = (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                .then(|| retry_after(&response));
            return (Err(SourceError::Status { url: u, status: status.as_u16() }), retry);
        }
        if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return (Err(SourceError::TooLarge { url: u }), None);
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return (Err(SourceError::TooLarge { url: u }), None);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return (Ok(body), None),
                Err(e) if e.is_timeout() => return (Err(SourceError::Timeout { url: u }), None),
                Err(e) => {
                    return (Err(SourceError::Network { url: u, reason: root_cause(&e) }), None);
                }
            }
        }
    }
}

/// The delay a 429/503 asks for, in seconds or as an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A file from the fixtures (`tests/fixtures`, copied from the shared fixtures, or
/// `PAPERBOY_FIXTURES`).
#[cfg(test)]
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let dir = std::env::var("PAPERBOY_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").into());
    let path = std::path::Path::new(&dir).join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_the_parsers(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let day = chrono::NaiveDate::from_ymd_opt(2025, 11, 6).unwrap();
            let _ = super::huggingface::parse_page(&body, day);
            let _ = super::arxiv::parse_feed(&body);
        }

        #[test]
        fn json_and_xml_lookalikes_never_panic_the_parsers(inner in ".{0,300}") {
            let day = chrono::NaiveDate::from_ymd_opt(2025, 11, 6).unwrap();
            let json = format!(r#"[{{"paper": {{"id": "2511.00001", "title": {inner:?}, "authors": [{{"name": {inner:?}}}]}}}}, {inner}]"#);
            let _ = super::huggingface::parse_page(json.as_bytes(), day);
            let xml = format!(
                "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><link>l</link><description>d</description><pubDate>{inner}</pubDate><item><title>{inner}</title><guid>oai:arXiv.org:{inner}</guid><description>Announce Type: {inner}</description></item></channel></rss>"
            );
            let _ = super::arxiv::parse_feed(xml.as_bytes());
        }
    }
}
