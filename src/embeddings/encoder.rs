//! A sentence-embedding model in the sentence-transformers layout, run by candle: BERT,
//! then the model's pooling (mean or CLS), then L2 normalisation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::Foreground;

/// Why a model folder cannot be used; every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {reason}")]
    File { file: PathBuf, reason: String },
}

impl LoadError {
    fn file(file: &Path, reason: impl ToString) -> Self {
        Self::File { file: file.to_path_buf(), reason: reason.to_string() }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("embedding failed: {0}")]
pub struct EmbedError(String);

impl EmbedError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct Module {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    max_tokens: usize,
    dim: usize,
    /// Batches embedded side by side.
    workers: usize,
    /// In `serve`: the web server, which each batch waits for.
    foreground: Option<Arc<Foreground>>,
}

/// Texts per forward pass: enough to amortise the per-call cost, few enough that padding
/// to the longest text of a batch stays cheap (texts are sorted by length first).
const BATCH: usize = 4;

/// Vectors with the index of their text.
type Indexed = Vec<(usize, Vec<f32>)>;

/// Batches run side by side, one per core, each on one thread: candle's elementwise work
/// (softmax, GELU, layer norm) is single-threaded, so one batch at a time left a core idle
/// for much of a forward pass (`examples/embed_throughput.rs`: 15-16 papers/s against 10.8
/// with one batch on two threads). See `single_threaded_kernels`.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Makes candle run each matrix product on the calling thread (it reads `RAYON_NUM_THREADS`),
/// as `Encoder::embed` wants: it runs one batch per core itself. A value already set is kept.
///
/// # Safety
/// It sets an environment variable: call it first thing in `main`, while the process has a
/// single thread.
pub unsafe fn single_threaded_kernels() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: the caller promises there is no other thread yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// Embedding is background work: its threads yield to the web server and the senders.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (tid from gettid), no pointers involved.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

fn read_json<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, LoadError> {
    let raw = std::fs::read(file).map_err(|e| LoadError::file(file, e))?;
    serde_json::from_slice(&raw).map_err(|e| LoadError::file(file, e))
}

impl Encoder {
    /// Loads the model in `dir`. The pooling mode comes from the folder named by
    /// `modules.json` (mean pooling when the folder has none), the maximum length from
    /// `sentence_bert_config.json` (else the model's position embeddings).
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let config_file = dir.join("config.json");
        let config: Config = read_json(&config_file)?;
        let pooling = pooling_of(dir)?;
        let sbert = dir.join("sentence_bert_config.json");
        let max_tokens = if sbert.exists() {
            read_json::<SentenceBertConfig>(&sbert)?.max_seq_length
        } else {
            None
        }
        .unwrap_or(config.max_position_embeddings)
        .min(config.max_position_embeddings);
        let tokenizer_file = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_file)
            .map_err(|e| LoadError::file(&tokenizer_file, e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| LoadError::file(&tokenizer_file, e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let weights = dir.join("model.safetensors");
        if !weights.exists() {
            return Err(LoadError::file(&weights, "missing"));
        }
        // SAFETY: the file is memory-mapped read-only; nothing in paperboy writes model files
        // while they are in use (a new download goes to a new blob).
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
                .map_err(|e| LoadError::file(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| LoadError::file(&weights, e))?;
        let encoder = Self {
            model,
            tokenizer,
            pooling,
            max_tokens,
            dim: config.hidden_size,
            workers: cores(),
            foreground: None,
        };
        // Shapes that load may still not fit together: one tiny pass proves the model runs.
        encoder.embed(&["paperboy"]).map_err(|e| LoadError::file(&weights, e))?;
        Ok(encoder)
    }

    /// Leaves a core to the rest of the process (`serve`'s web server and senders): one
    /// batch fewer side by side than there are cores, at least one, and each batch waits
    /// while `foreground` is answering requests.
    pub fn in_background(mut self, foreground: Arc<Foreground>) -> Self {
        self.workers = cores().saturating_sub(1).max(1);
        self.foreground = Some(foreground);
        self
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Unit vectors of `texts`, in order. CPU-bound: call it on the blocking pool.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(texts, None)
    }

    /// `embed` as background work: in `serve`, each batch first waits while the web server
    /// is answering requests. Not for work a request waits on.
    pub fn embed_in_background(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(texts, self.foreground.as_deref())
    }

    fn run(
        &self,
        texts: &[&str],
        yield_to: Option<&Foreground>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Similar lengths together, so a batch pads little.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let batches = texts.len().div_ceil(BATCH);
        let workers = self.workers.min(batches).max(1);
        let next = AtomicUsize::new(0);
        let work = || -> Result<Indexed, EmbedError> {
            let mut done = Vec::new();
            loop {
                // Background work waits for the requests in flight, then embeds one text at
                // a time until the web has been quiet for a while: a request that comes in
                // meanwhile waits for one text's forward pass, not a batch's.
                let size = match yield_to {
                    Some(web) => {
                        web.wait_until_quiet();
                        if web.settled() { BATCH } else { 1 }
                    }
                    None => BATCH,
                };
                let start = next.fetch_add(size, Ordering::Relaxed);
                if start >= order.len() {
                    break;
                }
                let chunk = &order[start..(start + size).min(order.len())];
                let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
                done.extend(chunk.iter().copied().zip(self.embed_batch(&batch)?));
            }
            Ok(done)
        };
        // One batch (a few topics, a request's worth) runs on the caller; more (the papers)
        // on threads of their own at low priority, also when there is one worker.
        let parts: Vec<Result<Indexed, EmbedError>> = if batches == 1 {
            vec![work()]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        scope.spawn(|| {
                            lower_priority();
                            work()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(EmbedError::new("a worker panicked"))))
                    .collect()
            })
        };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for part in parts {
            for (i, v) in part? {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let fail = |e: &dyn std::fmt::Display| EmbedError(e.to_string());
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| fail(&e))?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let device = &Device::Cpu;
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, width), device)
            .map_err(|e| fail(&e))?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, width), device)
            .map_err(|e| fail(&e))?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, width), device)
            .map_err(|e| fail(&e))?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(|e| fail(&e))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1).and_then(|t| t.squeeze(1)),
            Pooling::Mean => (|| {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1.0, f64::MAX)?;
                summed.broadcast_div(&counts)
            })(),
        }
        .map_err(|e| fail(&e))?;
        let vectors: Vec<Vec<f32>> = pooled.to_vec2().map_err(|e| fail(&e))?;
        Ok(vectors.into_iter().map(unit).collect())
    }
}

/// The pooling mode the model's `modules.json` points to.
fn pooling_of(dir: &Path) -> Result<Pooling, LoadError> {
    let modules_file = dir.join("modules.json");
    let folder = if modules_file.exists() {
        let modules: Vec<Module> = read_json(&modules_file)?;
        modules.into_iter().find(|m| m.kind.ends_with("Pooling")).map(|m| m.path)
    } else {
        None
    };
    let file = dir.join(folder.as_deref().unwrap_or("1_Pooling")).join("config.json");
    if !file.exists() {
        return Ok(Pooling::Mean);
    }
    let config: PoolingConfig = read_json(&file)?;
    match (config.pooling_mode_cls_token, config.pooling_mode_mean_tokens) {
        (true, _) => Ok(Pooling::Cls),
        (false, true) => Ok(Pooling::Mean),
        (false, false) => Err(LoadError::file(&file, "neither mean nor CLS pooling")),
    }
}

/// `v` scaled to length 1 (a zero vector stays zero).
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
