//! The embedding model's settings: which model (`PAPERBOY_EMBEDDING_MODEL`) and where the
//! Hugging Face hub and its cache are (`HF_ENDPOINT`, `HF_HOME`).

use std::path::{Path, PathBuf};

/// The default model: small (22M parameters, 384 dimensions) and good at short texts.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where the model comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// Literal matching only.
    Off,
    /// A folder on this machine.
    Folder(PathBuf),
    /// A Hugging Face model id, downloaded once into the Hugging Face cache.
    Hub(String),
}

impl ModelSource {
    /// `off`, a path (absolute, `./…`, `../…`, `~/…` or an existing folder), else a hub id.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.is_empty() || raw.eq_ignore_ascii_case("off") {
            return Self::Off;
        }
        let looks_like_path = raw.starts_with('/')
            || raw.starts_with("./")
            || raw.starts_with("../")
            || raw.starts_with("~/")
            || Path::new(raw).is_dir();
        if looks_like_path {
            let path = match raw.strip_prefix("~/") {
                Some(rest) => {
                    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest)
                }
                None => PathBuf::from(raw),
            };
            Self::Folder(path)
        } else {
            Self::Hub(raw.to_string())
        }
    }

    /// The id vectors are stored under: the hub id, or the folder's path.
    pub fn id(&self) -> String {
        match self {
            Self::Off => "off".into(),
            Self::Folder(p) => p.display().to_string(),
            Self::Hub(id) => id.clone(),
        }
    }
}

/// Where hub models come from and are kept, by hf-hub's conventions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hub {
    /// `HF_ENDPOINT`; unset: huggingface.co.
    pub endpoint: Option<String>,
    /// `HF_HOME`; the cache is its `hub/` folder. Unset: `~/.cache/huggingface`.
    pub home: Option<PathBuf>,
}

/// The sentence-embedding model that ranks by meaning.
#[derive(Clone, Debug)]
pub struct EmbeddingSettings {
    /// `PAPERBOY_EMBEDDING_MODEL`: a hub id, a folder, or off.
    pub model: ModelSource,
    /// `HF_ENDPOINT` and `HF_HOME`, as the Hugging Face tools read them.
    pub hub: Hub,
}

impl EmbeddingSettings {
    pub(crate) fn read(env: &super::Env) -> Self {
        EmbeddingSettings {
            model: ModelSource::parse(&env.or("PAPERBOY_EMBEDDING_MODEL", DEFAULT_MODEL)),
            hub: Hub { endpoint: env.get("HF_ENDPOINT"), home: env.get("HF_HOME").map(Into::into) },
        }
    }
}
