//! The model as this process has it: fetched and loaded once (in the background for
//! `serve`, with backoff), its state for the dashboard, and inference on the blocking pool.
//! Until it is ready, and whenever it cannot be had, ranking stays literal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{EmbedError, Encoder, Foreground, Hub, ModelSource, fetch};

/// Where the model is, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelState {
    /// `PAPERBOY_EMBEDDING_MODEL=off`: literal matching only.
    Off,
    /// Not tried yet, or being downloaded (`attempt` counts from 1; the last failure, if any).
    Downloading {
        attempt: u32,
        last_error: Option<String>,
    },
    /// Downloaded, being loaded.
    Loading,
    Ready,
    /// It cannot be used, and why (a file that is missing or broken, named).
    Unavailable(String),
}

impl ModelState {
    /// One word for the dashboard and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Downloading { .. } => "downloading",
            Self::Loading => "loading",
            Self::Ready => "ready",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What went wrong, if anything.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Downloading { last_error, .. } => last_error.as_deref(),
            Self::Unavailable(why) => Some(why),
            _ => None,
        }
    }
}

/// Why the model could not be had (for `paperboy embed`, which stops on it).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no embedding model is configured (PAPERBOY_EMBEDDING_MODEL=off)")]
    Off,
    #[error("the embedding model {model} cannot be used: {reason}")]
    Unavailable { model: String, reason: String },
}

struct Inner {
    state: ModelState,
    encoder: Option<Arc<Encoder>>,
}

/// The configured sentence-embedding model, shared by the workers, the web pages and the
/// commands of one process.
pub struct Embedder {
    source: ModelSource,
    hub: Hub,
    inner: RwLock<Inner>,
    /// Bumped whenever the vectors that ranking reads may have changed (the model became
    /// ready, papers or topics were embedded): cached editions are re-read.
    generation: AtomicU64,
    /// In `serve`: embed on one core fewer than there are, so requests keep one, and
    /// wait for the requests in flight.
    background: OnceLock<Arc<Foreground>>,
}

/// Backoff between download attempts: 5 s, doubling, at most 10 minutes.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(600);

impl Embedder {
    pub fn new(source: ModelSource, hub: Hub) -> Arc<Self> {
        let state = match source {
            ModelSource::Off => ModelState::Off,
            _ => ModelState::Downloading { attempt: 0, last_error: None },
        };
        Arc::new(Self {
            source,
            hub,
            inner: RwLock::new(Inner { state, encoder: None }),
            generation: AtomicU64::new(0),
            background: OnceLock::new(),
        })
    }

    /// For `serve`: the model, once loaded, leaves a core to the web server and senders,
    /// and waits between batches while `web` answers requests.
    pub fn yield_to(&self, web: Arc<Foreground>) {
        let _ = self.background.set(web);
    }

    /// The model of the settings (`PAPERBOY_EMBEDDING_MODEL`, `HF_ENDPOINT`, `HF_HOME`).
    pub fn from_settings(settings: &crate::config::Settings) -> Arc<Self> {
        Self::new(settings.embeddings.model.clone(), settings.embeddings.hub.clone())
    }

    /// A process that ranks literally (tests, tools).
    pub fn off() -> Arc<Self> {
        Self::new(ModelSource::Off, Hub::default())
    }

    /// The id vectors are stored under.
    pub fn model_id(&self) -> String {
        self.source.id()
    }

    pub fn state(&self) -> ModelState {
        self.inner.read().expect("the model lock").state.clone()
    }

    fn set_state(&self, state: ModelState) {
        self.inner.write().expect("the model lock").state = state;
    }

    /// The loaded model, once it is ready.
    pub fn encoder(&self) -> Option<Arc<Encoder>> {
        self.inner.read().expect("the model lock").encoder.clone()
    }

    /// The model id ranking uses: `Some` only once the model is ready.
    pub fn ready_model(&self) -> Option<String> {
        self.encoder().map(|_| self.model_id())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Says that stored vectors changed, so that cached editions are read again.
    pub fn vectors_changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Fetches and loads the model once. A download that fails leaves the state
    /// "downloading" with its error (the caller may try again); a model that cannot be
    /// loaded makes it "unavailable", with the file at fault named.
    pub async fn load(&self) -> Result<Arc<Encoder>, ModelError> {
        if let Some(encoder) = self.encoder() {
            return Ok(encoder);
        }
        let attempt = match self.state() {
            ModelState::Off => return Err(ModelError::Off),
            ModelState::Downloading { attempt, .. } => attempt + 1,
            _ => 1,
        };
        let unavailable =
            |reason: String| ModelError::Unavailable { model: self.model_id(), reason };
        self.set_state(ModelState::Downloading { attempt, last_error: None });
        let folder = match fetch(&self.source, &self.hub).await {
            Ok(Some(folder)) => folder,
            Ok(None) => return Err(ModelError::Off),
            Err(e) => {
                let reason = e.to_string();
                self.set_state(ModelState::Downloading {
                    attempt,
                    last_error: Some(reason.clone()),
                });
                return Err(unavailable(reason));
            }
        };
        self.set_state(ModelState::Loading);
        let loaded = tokio::task::spawn_blocking(move || Encoder::load(&folder)).await;
        match loaded {
            Ok(Ok(encoder)) => {
                let encoder = Arc::new(match self.background.get() {
                    Some(web) => encoder.in_background(web.clone()),
                    None => encoder,
                });
                let mut inner = self.inner.write().expect("the model lock");
                inner.encoder = Some(encoder.clone());
                inner.state = ModelState::Ready;
                drop(inner);
                self.vectors_changed();
                Ok(encoder)
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                self.set_state(ModelState::Unavailable(reason.clone()));
                Err(unavailable(reason))
            }
            Err(e) => {
                let reason = format!("loading the model stopped: {e}");
                self.set_state(ModelState::Unavailable(reason.clone()));
                Err(unavailable(reason))
            }
        }
    }

    /// For `serve`: loads the model in the background, retrying a failed download with
    /// backoff until it works or the process stops. A model that downloads but cannot be
    /// loaded is logged once and left unavailable (trying again would read the same files).
    pub async fn load_in_background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut delay = RETRY_FIRST;
        loop {
            let attempt = tokio::select! {
                result = self.load() => result,
                // A download in progress stops with the process.
                _ = shutdown.cancelled() => return,
            };
            match attempt {
                Ok(encoder) => {
                    tracing::info!(
                        model = %self.model_id(),
                        dimensions = encoder.dim(),
                        max_tokens = encoder.max_tokens(),
                        "embedding model ready: ranking by meaning"
                    );
                    return;
                }
                Err(ModelError::Off) => return,
                Err(e) => {
                    if matches!(self.state(), ModelState::Unavailable(_)) {
                        tracing::error!(error = %e, "embedding model unavailable; ranking stays literal");
                        return;
                    }
                    tracing::warn!(error = %e, retry_in = ?delay, "embedding model not downloaded yet; ranking stays literal meanwhile");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return,
            }
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// Unit vectors of `texts`, computed on the blocking pool. None when the model is not ready.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Option<Vec<Vec<f32>>>, EmbedError> {
        self.run(texts, false).await
    }

    /// `embed` as background work, which waits while the web server answers requests
    /// (`yield_to`). For papers; not for what a request waits on.
    pub async fn embed_in_background(
        &self,
        texts: Vec<String>,
    ) -> Result<Option<Vec<Vec<f32>>>, EmbedError> {
        self.run(texts, true).await
    }

    async fn run(
        &self,
        texts: Vec<String>,
        background: bool,
    ) -> Result<Option<Vec<Vec<f32>>>, EmbedError> {
        let Some(encoder) = self.encoder() else { return Ok(None) };
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if background { encoder.embed_in_background(&refs) } else { encoder.embed(&refs) }
        })
        .await
        .map_err(|e| EmbedError::new(e.to_string()))?
        .map(Some)
    }
}
