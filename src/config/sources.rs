//! Where papers come from, and how upstream requests time out and retry.

use std::time::Duration;

use url::Url;

use super::{ConfigError, Env};

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

impl SourceSettings {
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        let fetch = FetchPolicy {
            total_timeout: Duration::from_secs(
                env.number("PAPERBOY_FETCH_TIMEOUT_SECS", 60)?.max(1),
            ),
            retry_base: Duration::from_millis(env.number("PAPERBOY_FETCH_RETRY_BASE_MS", 1000)?),
            ..FetchPolicy::default()
        };
        Ok(SourceSettings {
            hf_url: env.url("PAPERBOY_HF_URL", "https://huggingface.co")?,
            arxiv_url: env.url("PAPERBOY_ARXIV_URL", "https://rss.arxiv.org/rss")?,
            arxiv_api_url: env
                .url("PAPERBOY_ARXIV_API_URL", "http://export.arxiv.org/api/query")?,
            arxiv_categories: env
                .or("PAPERBOY_ARXIV_CATEGORIES", "cs.AI,cs.CL,cs.CV,cs.LG")
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            fetch,
        })
    }
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
