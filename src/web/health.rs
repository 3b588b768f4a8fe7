//! Liveness and readiness for orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and no background worker is down.
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, String) {
    // A probe wants an answer within a second or two, not the pool's 10 s acquire timeout.
    let ping = tokio::time::timeout(Duration::from_secs(2), crate::store::ping(&app.db));
    match ping.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable".into());
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer within 2 s");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable".into());
        }
    }
    let down = app.health.down();
    if !down.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("worker down: {}", down.join(", ")));
    }
    (StatusCode::OK, "ready".into())
}
