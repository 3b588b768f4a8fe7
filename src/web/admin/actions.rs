//! What an operator can do from the dashboard. Each is a POST with the CSRF token.

use anyhow::Context;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use super::{Admin, AppError, AppState, CsrfForm};
use crate::papers::ingest::{self, Trigger};
use crate::store::{deliveries, subscribers};
use crate::web::form::PageForm;

#[tracing::instrument(name = "admin_delete_subscriber", skip_all)]
pub async fn delete_subscriber(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<impl IntoResponse, AppError> {
    admin.check(&form.csrf)?;
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    if !subscribers::erase(&app.db, id).await.context("erasing the subscriber")? {
        return Err(AppError::NotFound);
    }
    tracing::info!(admin_id = admin.0.admin_id, "subscriber erased");
    Ok(Redirect::to("/admin/subscribers"))
}

pub async fn retry_one(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<impl IntoResponse, AppError> {
    admin.check(&form.csrf)?;
    let n = deliveries::retry_failed(&app.db, Some(id)).await.context("requeueing the delivery")?;
    tracing::info!(admin_id = admin.0.admin_id, delivery = id, requeued = n, "retry requested");
    Ok(Redirect::to("/admin/deliveries?status=pending"))
}

pub async fn retry_all(
    State(app): State<AppState>,
    admin: Admin,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<impl IntoResponse, AppError> {
    admin.check(&form.csrf)?;
    let n =
        deliveries::retry_failed(&app.db, None).await.context("requeueing failed deliveries")?;
    tracing::info!(
        admin_id = admin.0.admin_id,
        requeued = n,
        "retry of all failed deliveries requested"
    );
    Ok(Redirect::to("/admin/deliveries?status=pending"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RunForm {
    csrf: String,
    source: String,
    date: String,
}

fn parse_date(raw: &str) -> Result<Option<NaiveDate>, AppError> {
    match raw.trim() {
        "" => Ok(None),
        d => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::BadRequest("Dates are YYYY-MM-DD.")),
    }
}

/// Starts an ingest in the background; its run appears on the runs page.
pub async fn ingest(
    State(app): State<AppState>,
    admin: Admin,
    PageForm(form): PageForm<RunForm>,
) -> Result<impl IntoResponse, AppError> {
    admin.check(&form.csrf)?;
    let day = parse_date(&form.date)?.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let selection =
        ingest::Selection::parse(&form.source).ok_or(AppError::BadRequest("Unknown source."))?;
    tracing::info!(admin_id = admin.0.admin_id, %day, "ingest requested");
    let state = app.clone();
    // Tracked: a graceful stop waits for it (an ingest is one transaction per day, so
    // being cut would only lose the run).
    app.spawn_tracked(async move {
        // Each run records its own outcome on the runs page.
        ingest::selected(&state.db, &state.sources, selection, day, Trigger::Admin).await;
        state.home.invalidate();
    });
    Ok(Redirect::to("/admin/runs"))
}

/// Starts `send` for a paper day in the background; progress shows on the runs page.
pub async fn send(
    State(app): State<AppState>,
    admin: Admin,
    PageForm(form): PageForm<RunForm>,
) -> Result<impl IntoResponse, AppError> {
    admin.check(&form.csrf)?;
    let day = parse_date(&form.date)?;
    tracing::info!(admin_id = admin.0.admin_id, ?day, "send requested");
    let (db, deliverer, concurrency) =
        (app.db.clone(), app.deliverer.clone(), app.settings.mail.send_concurrency);
    // Tracked, and stopped with the process: the message in flight finishes, the rest
    // stays queued for the next run.
    let stop = app.shutdown.child_token();
    app.spawn_tracked(async move {
        match crate::digests::plan::send(&db, &deliverer, day, concurrency, stop).await {
            Ok(summary) => tracing::info!(%summary, "send from the dashboard finished"),
            Err(e) => tracing::warn!(error = ?e.to_string(), "send from the dashboard failed"),
        }
    });
    Ok(Redirect::to("/admin/runs"))
}
