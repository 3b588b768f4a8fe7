//! Sentence embeddings: which model (`PAPERBOY_EMBEDDING_MODEL`), fetching it into the
//! Hugging Face cache, and running it in process (`encoder.rs`).

pub mod encoder;
pub mod foreground;
pub mod library;
pub mod model;
pub mod papers;
pub mod topics;
pub mod worker;

use std::path::{Path, PathBuf};

pub use crate::config::embedding::{DEFAULT_MODEL, Hub, ModelSource};
pub use encoder::{EmbedError, Encoder, LoadError, Pooling, cosine, single_threaded_kernels, unit};
pub use foreground::Foreground;
pub use model::{Embedder, ModelError, ModelState};

/// What a paper's vector is computed from (the model truncates it at its maximum length).
pub fn paper_text(title: &str, abstract_text: &str) -> String {
    format!("{title}. {abstract_text}")
}

/// The files a model in the sentence-transformers layout is read from; the last three are
/// optional (mean pooling and the model's own maximum length are the defaults).
pub const MODEL_FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
];
const REQUIRED_FILES: usize = 3;

/// Why a hub model could not be had (the caller retries with backoff).
#[derive(Debug, thiserror::Error)]
#[error("downloading {file} of {model}: {reason}")]
pub struct FetchError {
    pub model: String,
    pub file: String,
    pub reason: String,
}

/// The local folder of `source`: a folder as given, or a hub model's snapshot in the Hugging
/// Face cache, downloaded when missing (a file already in the cache is not fetched again).
/// Optional files the hub does not have are skipped.
pub async fn fetch(source: &ModelSource, hub: &Hub) -> Result<Option<PathBuf>, FetchError> {
    let model = match source {
        ModelSource::Off => return Ok(None),
        ModelSource::Folder(p) => return Ok(Some(p.clone())),
        ModelSource::Hub(model) => model,
    };
    let fail = |file: &str, reason: String| FetchError {
        model: model.clone(),
        file: file.to_string(),
        reason,
    };
    let cache = match &hub.home {
        Some(home) => hf_hub::Cache::new(home.join("hub")),
        None => hf_hub::Cache::default(),
    };
    let mut builder = hf_hub::api::tokio::ApiBuilder::from_cache(cache).with_progress(false);
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| fail("-", e.to_string()))?;
    let repo = api.model(model.clone());
    let mut folder = None;
    for (i, file) in MODEL_FILES.iter().enumerate() {
        match repo.get(file).await {
            Ok(path) => {
                if i == 0 {
                    folder = path.parent().map(Path::to_path_buf);
                }
            }
            Err(hf_hub::api::tokio::ApiError::RequestError(e))
                if i >= REQUIRED_FILES && e.status().is_some_and(|s| s.as_u16() == 404) => {}
            Err(e) => return Err(fail(file, e.to_string())),
        }
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_names_off_a_folder_or_a_hub_model() {
        assert_eq!(ModelSource::parse("off"), ModelSource::Off);
        assert_eq!(ModelSource::parse(" OFF "), ModelSource::Off);
        assert_eq!(
            ModelSource::parse("/models/minilm"),
            ModelSource::Folder("/models/minilm".into())
        );
        assert_eq!(ModelSource::parse("./minilm"), ModelSource::Folder("./minilm".into()));
        assert_eq!(ModelSource::parse(DEFAULT_MODEL), ModelSource::Hub(DEFAULT_MODEL.into()));
        assert_eq!(ModelSource::parse("BAAI/bge-small-en-v1.5").id(), "BAAI/bge-small-en-v1.5");
    }

    #[test]
    fn unit_vectors_have_length_one_and_cosine_is_their_dot_product() {
        let a = unit(vec![3.0, 4.0]);
        assert!((a[0] - 0.6).abs() < 1e-6 && (a[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(unit(vec![0.0, 0.0]), [0.0, 0.0]);
    }
}
