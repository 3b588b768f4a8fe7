//! Prometheus metrics: HTTP requests by matched route, digests, deliveries, ingests.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// The process-wide recorder (installed on first use).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("http_request_duration_seconds".into()),
                &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            )
            .expect("static buckets")
            .install_recorder()
            .expect("one metrics recorder per process")
    })
}

/// Counts each request and its latency under its route pattern (never the raw path).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let labels =
        [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the counters, plus gauges read from the database at scrape time.
pub async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let queued: Option<i64> =
        sqlx::query_scalar("SELECT count(*) FROM delivery_queue").fetch_one(&app.db).await.ok();
    if let Some(n) = queued {
        metrics::gauge!("paperboy_deliveries_pending").set(n as f64);
    }
    let by_status: Vec<(String, i64)> = sqlx::query_as("SELECT status, n FROM subscriber_counts")
        .fetch_all(&app.db)
        .await
        .unwrap_or_default();
    for (status, n) in by_status {
        metrics::gauge!("paperboy_subscribers", "status" => status).set(n as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render())
}
