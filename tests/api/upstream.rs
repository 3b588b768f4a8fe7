//! Local stand-ins for Hugging Face and arXiv, serving the files of `tests/fixtures/`, with
//! switches for the faults a real upstream has.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn fixtures_dir() -> PathBuf {
    std::env::var("PAPERBOY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

pub fn fixture(path: &str) -> Vec<u8> {
    let p = fixtures_dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub fn hf_day(date: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(&format!("huggingface/daily_papers/{date}.json"))).unwrap()
}

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and optional Retry-After seconds) for the next `times` requests.
    Status { code: u16, times: usize, retry_after: Option<u64> },
    /// Answer 200 with this body, always.
    Body(Vec<u8>),
    /// Never answer.
    Hang,
    /// Stream a body of this many bytes without a Content-Length.
    Huge(usize),
    /// Fail only page `p` of Hugging Face with 500, always.
    FailPage(usize),
}

#[derive(Default)]
struct Shared {
    fault: Mutex<Option<Fault>>,
    /// Hugging Face days served instead of the fixture file.
    days: Mutex<HashMap<String, serde_json::Value>>,
    arxiv_file: Mutex<String>,
    delay: Mutex<Duration>,
    requests: Mutex<Vec<(Instant, String)>>,
}

#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    /// arXiv's announcement feeds and query API, as paperboy's settings name them.
    rss_url: String,
    api_url: String,
    shared: Arc<Shared>,
}

impl Upstream {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        *shared.arxiv_file.lock().unwrap() = "arxiv/rss_2025-11-06.xml".into();
        let app = Router::new()
            .route("/api/daily_papers", get(daily_papers))
            .route("/rss/{categories}", get(rss))
            .route("/api/query", get(api_query))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let (rss_url, api_url) = (format!("{url}/rss"), format!("{url}/api/query"));
        Self { url, rss_url, api_url, shared }
    }

    /// Settings that point paperboy at this server.
    pub fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("PAPERBOY_HF_URL", &self.url),
            ("PAPERBOY_ARXIV_URL", &self.rss_url),
            ("PAPERBOY_ARXIV_API_URL", &self.api_url),
        ]
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    pub fn set_day(&self, date: &str, items: serde_json::Value) {
        self.shared.days.lock().unwrap().insert(date.into(), items);
    }

    pub fn set_arxiv_file(&self, path: &str) {
        *self.shared.arxiv_file.lock().unwrap() = path.into();
    }

    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }

    pub fn requests(&self) -> Vec<(Instant, String)> {
        self.shared.requests.lock().unwrap().clone()
    }
}

/// Applies the configured fault, if it decides the answer.
async fn faulted(shared: &Shared, page: Option<usize>) -> Option<Response> {
    let delay = *shared.delay.lock().unwrap();
    // A slow upstream is the scenario (set_delay), not a wait for anything.
    tokio::time::sleep(delay).await;
    let fault = shared.fault.lock().unwrap().clone();
    match fault? {
        Fault::Status { code, times, retry_after } if times > 0 => {
            *shared.fault.lock().unwrap() =
                Some(Fault::Status { code, times: times - 1, retry_after });
            let mut headers = HeaderMap::new();
            if let Some(s) = retry_after {
                headers.insert("retry-after", s.to_string().parse().unwrap());
            }
            Some(
                (
                    StatusCode::from_u16(code).unwrap(),
                    headers,
                    "<html><body>upstream trouble</body></html>",
                )
                    .into_response(),
            )
        }
        Fault::Status { .. } => None,
        Fault::Body(b) => Some((StatusCode::OK, b).into_response()),
        Fault::Hang => {
            // The scenario: an upstream that never answers.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        Fault::Huge(n) => {
            let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
            let stream = futures_util::stream::iter(
                (0..n.div_ceil(1 << 20)).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            Some((StatusCode::OK, axum::body::Body::from_stream(stream)).into_response())
        }
        Fault::FailPage(p) if page == Some(p) => {
            Some(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Fault::FailPage(_) => None,
    }
}

async fn daily_papers(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let date = q.get("date").cloned().unwrap_or_default();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let page: usize = q.get("p").and_then(|l| l.parse().ok()).unwrap_or(0);
    shared
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), format!("/api/daily_papers?date={date}&limit={limit}&p={page}")));
    if let Some(r) = faulted(&shared, Some(page)).await {
        return r;
    }
    if chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_err() {
        return (StatusCode::BAD_REQUEST, r#"{"error":"Invalid date"}"#).into_response();
    }
    let items = match shared.days.lock().unwrap().get(&date) {
        Some(v) => v.clone(),
        None => {
            let path = fixtures_dir().join(format!("huggingface/daily_papers/{date}.json"));
            match std::fs::read(path) {
                Ok(b) => serde_json::from_slice(&b).unwrap(),
                Err(_) => serde_json::json!([]),
            }
        }
    };
    let items = items.as_array().cloned().unwrap_or_default();
    let slice: Vec<_> = items.into_iter().skip(page * limit).take(limit).collect();
    axum::Json(slice).into_response()
}

async fn rss(State(shared): State<Arc<Shared>>, Path(categories): Path<String>) -> Response {
    shared.requests.lock().unwrap().push((Instant::now(), format!("/rss/{categories}")));
    if let Some(r) = faulted(&shared, None).await {
        return r;
    }
    let file = shared.arxiv_file.lock().unwrap().clone();
    ([("content-type", "application/rss+xml")], fixture(&file)).into_response()
}

/// arXiv's query API: `?id_list=a,b` answers the fixture's entries for those ids (an id
/// arXiv does not have is simply absent, as arXiv does it).
async fn api_query(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ids = q.get("id_list").cloned().unwrap_or_default();
    shared.requests.lock().unwrap().push((Instant::now(), format!("/api/query?id_list={ids}")));
    if let Some(r) = faulted(&shared, None).await {
        return r;
    }
    let file = String::from_utf8(fixture("arxiv/api_query_id_list.xml")).unwrap();
    let head = &file[..file.find("<entry>").unwrap()];
    let entries: Vec<&str> = file
        .split("<entry>")
        .skip(1)
        .map(|e| &e[..e.find("</entry>").unwrap()])
        .filter(|e| ids.split(',').any(|id| !id.is_empty() && e.contains(&format!("/abs/{id}v"))))
        .collect();
    let body: String = entries.iter().map(|e| format!("<entry>{e}</entry>\n")).collect();
    ([("content-type", "application/atom+xml")], format!("{head}{body}</feed>\n")).into_response()
}
