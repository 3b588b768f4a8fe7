//! Prometheus metrics: HTTP requests by matched route, digests, deliveries, ingests.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Label, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;

use super::AppState;

/// How often histogram samples are folded into their buckets. `install_recorder` leaves
/// this to us; without it, samples pile up between scrapes (or forever, unscraped).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide recorder (installed on first use, with its upkeep thread).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("http_request_duration_seconds".into()),
                &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            )
            .expect("static buckets")
            .install_recorder()
            .expect("one metrics recorder per process");
        // A thread rather than a task: the recorder outlives any one runtime (tests start
        // one per test), and the upkeep must run for as long as the process does.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("the metrics upkeep thread starts");
        handle
    })
}

/// The method as a label from a fixed set: a client can invent methods, and each new
/// label value would be a series kept forever.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// The status as a label, without an allocation for the usual ones.
fn status_label(status: StatusCode) -> SharedString {
    let common = match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        410 => "410",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return SharedString::from_owned(other.to_string()),
    };
    SharedString::const_str(common)
}

/// Counts each request and its latency under its route pattern (never the raw path).
pub async fn track(req: Request, next: Next) -> Response {
    // Shared, so the two label sets below clone it by reference count.
    let route: SharedString = match req.extensions().get::<MatchedPath>() {
        Some(p) => SharedString::from_shared(Arc::from(p.as_str())),
        None => SharedString::const_str("unmatched"),
    };
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    let labels = vec![
        Label::from_static_parts("method", method),
        Label::new("route", route.clone()),
        Label::new("status", status_label(response.status())),
    ];
    metrics::counter!("http_requests_total", labels).increment(1);
    let labels = vec![Label::from_static_parts("method", method), Label::new("route", route)];
    metrics::histogram!("http_request_duration_seconds", labels).record(elapsed);
    response
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
pub(super) fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, given)| {
            scheme.eq_ignore_ascii_case("bearer")
                && crate::operators::admins::same_secret(given.trim(), token)
        })
}

/// `GET /metrics`: the counters, plus gauges read from the database at scrape time.
/// With `PAPERBOY_METRICS_TOKEN` set, only a scraper that presents it gets an answer.
pub async fn render(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &app.settings.web.metrics_token
        && !bearer_is(&headers, token.expose_secret())
    {
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")];
        return (StatusCode::UNAUTHORIZED, challenge, "a bearer token is required\n")
            .into_response();
    }
    if let Ok(n) = crate::store::deliveries::queue_depth(&app.db).await {
        metrics::gauge!("paperboy_deliveries_pending").set(n as f64);
    }
    let by_status = crate::store::subscribers::counts(&app.db).await.unwrap_or_default();
    for (status, n) in by_status {
        metrics::gauge!("paperboy_subscribers", "status" => status).set(n as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render()).into_response()
}
