//! The dashboard's pages: read-only, everything escaped by the templates.

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::chart::{Chart, line_chart};
use super::{Admin, AppError, AppState};
use crate::digests::DigestItem;
use crate::operators::stats::{self, METRICS};
use crate::store::deliveries::{self, DeliveryRow, DeliveryStatus};
use crate::store::editions::{self, EditionBrief, EditionRow};
use crate::store::ingest_runs::{self, RunRow};
use crate::store::papers::{self, PaperRow};
use crate::store::subscribers::{self, EventRow, Status, SubscriberDetail, SubscriberListRow};

/// What every admin page shows in its header.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
    pub section: &'static str,
}

impl Chrome {
    fn new(admin: &Admin, section: &'static str) -> Self {
        Self { email: admin.0.email.clone(), csrf: admin.0.csrf.clone(), section }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    totals: stats::Totals,
    sent_today: i64,
    failed_today: i64,
    sent_week: i64,
    failed_week: i64,
    charts: Vec<Chart>,
    runs: Vec<RunRow>,
    recent: Vec<EditionBrief>,
    /// Bounce and complaint rates per digest sent, over 7 and 30 days.
    deliverability: Vec<Deliverability>,
    model: ModelStatus,
}

/// The embedding model, as the overview shows it.
struct ModelStatus {
    id: String,
    state: crate::embeddings::ModelState,
    /// Papers with a vector of this model.
    embedded: i64,
    /// The vectors this process holds for similar papers and search, and their memory.
    in_memory: crate::papers::nearest::Stats,
}

impl ModelStatus {
    fn memory_mib(&self) -> String {
        mib(self.in_memory.bytes)
    }

    fn index_mib(&self) -> String {
        mib(self.in_memory.index_bytes)
    }
}

fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Gmail's and Yahoo's bulk-sender rules want complaints well under 0.3 %; warn early.
const COMPLAINT_WARNING: f64 = 0.001;
const HARD_BOUNCE_WARNING: f64 = 0.02;

struct Deliverability {
    days: i64,
    sent: i64,
    hard: i64,
    soft: i64,
    complaints: i64,
}

impl Deliverability {
    fn rate(&self, n: i64) -> f64 {
        if self.sent > 0 { n as f64 / self.sent as f64 } else { 0.0 }
    }

    fn percent(&self, n: &i64) -> String {
        format!("{:.2} %", 100.0 * self.rate(*n))
    }

    fn complaints_high(&self) -> bool {
        self.rate(self.complaints) > COMPLAINT_WARNING
    }

    fn hard_high(&self) -> bool {
        self.rate(self.hard) > HARD_BOUNCE_WARNING
    }
}

pub async fn overview(
    State(app): State<AppState>,
    admin: Admin,
) -> Result<impl IntoResponse, AppError> {
    let series90 =
        stats::daily(&app.db, &app.today_stats, 90).await.context("loading the daily stats")?;
    let n = series90.days.len();
    let last = |metric: &str, days: usize| -> i64 {
        series90.values.get(metric).map(|v| v[n.saturating_sub(days)..].iter().sum()).unwrap_or(0)
    };
    let (sent_today, failed_today, sent_week, failed_week) =
        (last("sent", 1), last("failed", 1), last("sent", 7), last("failed", 7));
    let series30 = stats::Series {
        days: series90.days[n.saturating_sub(30)..].to_vec(),
        values: series90
            .values
            .iter()
            .map(|(k, v)| (*k, v[v.len().saturating_sub(30)..].to_vec()))
            .collect(),
    };
    let charts = vec![
        line_chart("Subscribers, last 30 days", &series30, &METRICS[..3]),
        line_chart("Digests, last 30 days", &series30, &METRICS[3..]),
        line_chart("Subscribers, last 90 days", &series90, &METRICS[..3]),
        line_chart("Digests, last 90 days", &series90, &METRICS[3..]),
    ];
    Ok(OverviewPage {
        chrome: Chrome::new(&admin, "overview"),
        model: ModelStatus {
            id: app.embedder.model_id(),
            state: app.embedder.state(),
            embedded: crate::store::vectors::count_papers(&app.db, &app.embedder.model_id())
                .await
                .context("counting the papers with vectors")?,
            in_memory: app.archive.stats(),
        },
        totals: stats::totals(&app.db).await.context("loading the totals")?,
        sent_today,
        failed_today,
        sent_week,
        failed_week,
        charts,
        runs: ingest_runs::latest(&app.db, 5).await.context("loading the latest runs")?,
        recent: editions::recent_with_queue(&app.db, 5)
            .await
            .context("loading the recent editions")?,
        deliverability: {
            let mut rows = Vec::new();
            for days in [7, 30] {
                let (hard, soft, complaints) =
                    crate::store::bounces::counts_since(&app.db, days as i32)
                        .await
                        .context("counting bounces")?;
                rows.push(Deliverability {
                    days,
                    sent: last("sent", days as usize),
                    hard,
                    soft,
                    complaints,
                });
            }
            rows
        },
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SubscriberFilter {
    q: String,
    status: String,
    topic: String,
    after: String,
}

const PAGE: i64 = 50;

#[derive(Template, WebTemplate)]
#[template(path = "admin/subscribers.html")]
struct SubscribersPage {
    chrome: Chrome,
    filter: SubscriberFilter,
    rows: Vec<SubscriberListRow>,
    next: Option<String>,
}

impl SubscribersPage {
    fn next_query(&self, after: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.filter.q)
            .append_pair("status", &self.filter.status)
            .append_pair("topic", &self.filter.topic)
            .append_pair("after", after)
            .finish()
    }
}

pub async fn subscribers(
    State(app): State<AppState>,
    admin: Admin,
    Query(filter): Query<SubscriberFilter>,
) -> Result<impl IntoResponse, AppError> {
    let status = match filter.status.as_str() {
        "" => None,
        s => Some(Status::parse(s).ok_or(AppError::BadRequest("Unknown subscriber status."))?),
    };
    let mut rows =
        subscribers::search(&app.db, &filter.q, status, &filter.topic, &filter.after, PAGE + 1)
            .await
            .context("searching subscribers")?;
    let next = (rows.len() as i64 > PAGE).then(|| {
        rows.truncate(PAGE as usize);
        rows.last().map(|r| r.email_key.clone()).unwrap_or_default()
    });
    Ok(SubscribersPage { chrome: Chrome::new(&admin, "subscribers"), filter, rows, next })
}

/// The subscriber a path names; a malformed or unknown id is a 404.
async fn subscriber_or_404(app: &AppState, raw: &str) -> Result<SubscriberDetail, AppError> {
    let id = Uuid::parse_str(raw).map_err(|_| AppError::NotFound)?;
    subscribers::detail(&app.db, id)
        .await
        .context("loading the subscriber")?
        .ok_or(AppError::NotFound)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/subscriber.html")]
struct SubscriberPage {
    chrome: Chrome,
    s: SubscriberDetail,
    rows: Vec<DeliveryRow>,
    events: Vec<EventRow>,
    bounces: Vec<crate::store::bounces::BounceRow>,
}

pub async fn subscriber(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let s = subscriber_or_404(&app, &id).await?;
    let id = s.id;
    Ok(SubscriberPage {
        chrome: Chrome::new(&admin, "subscribers"),
        rows: deliveries::listed_for_subscriber(&app.db, id)
            .await
            .context("loading the subscriber's deliveries")?,
        events: subscribers::events(&app.db, id, Some(50)).await.context("loading the events")?,
        bounces: crate::store::bounces::of_subscriber(&app.db, id)
            .await
            .context("loading the subscriber's bounces")?,
        s,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/preview.html")]
struct PreviewPage {
    chrome: Chrome,
    id: Uuid,
    email: String,
    edition: Option<String>,
    items: Vec<DigestItem>,
}

pub async fn preview(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let s = subscriber_or_404(&app, &id).await?;
    let id = s.id;
    let next = crate::digests::plan::next_digest(&app.db, &app.editions, id)
        .await
        .context("ranking the preview")?;
    let (edition, items) = match next {
        Some((edition, items)) => (Some(edition.title()), items),
        None => (None, Vec::new()),
    };
    Ok(PreviewPage {
        chrome: Chrome::new(&admin, "subscribers"),
        id,
        email: s.email,
        edition,
        items,
    })
}

/// Streams every subscriber as CSV; memory stays flat whatever the count.
pub async fn subscribers_csv(State(app): State<AppState>, _admin: Admin) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        let header = csv_line(&[
            "email",
            "status",
            "frequency",
            "topics",
            "categories",
            "authors",
            "created_at",
            "confirmed_at",
            "unsubscribed_at",
        ]);
        if tx.send(Ok(header)).await.is_err() {
            return;
        }
        let mut rows = crate::store::subscribers::export(&app.db);
        while let Some(row) = rows.next().await {
            let chunk = match row {
                Ok(r) => Ok(csv_line(&[
                    &r.email,
                    &r.status,
                    &r.frequency,
                    &r.topics.join("; "),
                    &r.categories.join("; "),
                    &r.authors.join("; "),
                    &r.created_at.to_rfc3339(),
                    &r.confirmed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    &r.unsubscribed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ])),
                Err(e) => Err(std::io::Error::other(e)),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"subscribers.csv\""),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// One CSV record. Cells that a spreadsheet would run as a formula are prefixed with `'`.
fn csv_line(cells: &[&str]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let safe: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{c}")
            } else {
                (*c).to_string()
            }
        })
        .collect();
    let _ = w.write_record(&safe);
    w.into_inner().unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PaperFilter {
    q: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/papers.html")]
struct PapersPage {
    chrome: Chrome,
    q: String,
    rows: Vec<PaperRow>,
}

pub async fn papers(
    State(app): State<AppState>,
    admin: Admin,
    Query(f): Query<PaperFilter>,
) -> Result<impl IntoResponse, AppError> {
    let rows = papers::search(&app.db, &f.q).await.context("searching papers")?;
    Ok(PapersPage { chrome: Chrome::new(&admin, "papers"), q: f.q, rows })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/runs.html")]
struct RunsPage {
    chrome: Chrome,
    runs: Vec<RunRow>,
    editions: Vec<EditionRow>,
}

pub async fn runs(
    State(app): State<AppState>,
    admin: Admin,
) -> Result<impl IntoResponse, AppError> {
    Ok(RunsPage {
        chrome: Chrome::new(&admin, "runs"),
        runs: ingest_runs::latest(&app.db, 100).await.context("loading the runs")?,
        editions: editions::latest_with_outcomes(&app.db, 20)
            .await
            .context("loading the editions")?,
    })
}

#[derive(Deserialize)]
#[serde(default)]
pub struct DeliveryFilter {
    status: String,
}

impl Default for DeliveryFilter {
    fn default() -> Self {
        Self { status: "failed".into() }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    /// The tab shown: one status, or all.
    status: Option<DeliveryStatus>,
    rows: Vec<DeliveryRow>,
}

pub async fn deliveries(
    State(app): State<AppState>,
    admin: Admin,
    Query(f): Query<DeliveryFilter>,
) -> Result<impl IntoResponse, AppError> {
    let status = match f.status.as_str() {
        "" | "all" => None,
        s => {
            Some(DeliveryStatus::parse(s).ok_or(AppError::BadRequest("Unknown delivery status."))?)
        }
    };
    let rows = deliveries::listed(&app.db, status, 200).await.context("listing deliveries")?;
    Ok(DeliveriesPage { chrome: Chrome::new(&admin, "deliveries"), status, rows })
}
