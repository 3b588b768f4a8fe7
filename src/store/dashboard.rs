//! Read-mostly queries behind the admin pages.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::deliveries::DeliveryStatus;
use super::subscribers::{EventKind, Status};

#[derive(Debug)]
pub struct SubscriberListRow {
    pub id: Uuid,
    pub email: String,
    pub email_key: String,
    pub status: Status,
    pub frequency: String,
    pub topics: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// `%` and `_` typed by the operator are literal.
fn like_fragment(s: &str) -> String {
    s.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One page (keyset: after `after`, by address) of subscribers matching the filters.
pub async fn subscribers(
    db: &PgPool,
    email: &str,
    status: Option<Status>,
    topic: &str,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<SubscriberListRow>> {
    sqlx::query_as!(
        SubscriberListRow,
        r#"SELECT id, email, email_key, status AS "status: Status", frequency, topics, created_at
         FROM subscribers
         WHERE ($1 = '' OR email_key LIKE '%' || $1 || '%')
           AND ($2 = '' OR status = $2)
           AND ($3 = '' OR EXISTS (SELECT 1 FROM unnest(topics) t WHERE lower(t) LIKE '%' || $3 || '%'))
           AND ($4 = '' OR email_key > $4)
         ORDER BY email_key
         LIMIT $5"#,
        like_fragment(email),
        status.map_or("", Status::as_str),
        like_fragment(topic),
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct SubscriberDetail {
    pub id: Uuid,
    pub email: String,
    pub status: Status,
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub frequency: String,
    pub weekday: i16,
    pub delivery_hour: i16,
    pub time_zone: String,
    pub papers_per_email: i32,
    pub min_upvotes: i32,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

pub async fn subscriber(db: &PgPool, id: Uuid) -> sqlx::Result<Option<SubscriberDetail>> {
    sqlx::query_as!(
        SubscriberDetail,
        r#"SELECT id, email, status AS "status: Status", topics, categories, authors, frequency,
                weekday, delivery_hour,
                time_zone, papers_per_email, min_upvotes, created_at, confirmed_at, unsubscribed_at
         FROM subscribers WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

#[derive(Debug)]
pub struct DeliveryRow {
    pub id: i64,
    pub email: Option<String>,
    pub subscriber_id: Option<Uuid>,
    pub edition_label: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub subject: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// `SELECT`s deliveries as `DeliveryRow`s with their readers' addresses; the rest of the
/// query (`WHERE …`) and its arguments follow.
macro_rules! select_delivery_rows {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            DeliveryRow,
            r#"SELECT d.id, s.email AS "email?", d.subscriber_id, d.edition_label,
                      d.status AS "status: DeliveryStatus", d.attempts,
                      d.subject, d.last_error, d.created_at, d.sent_at
               FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id "# + $rest,
            $($arg),*
        )
    };
}

pub async fn deliveries_of(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<DeliveryRow>> {
    select_delivery_rows!("WHERE d.subscriber_id = $1 ORDER BY d.id DESC LIMIT 50", subscriber)
        .fetch_all(db)
        .await
}

pub async fn deliveries(
    db: &PgPool,
    status: Option<DeliveryStatus>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    select_delivery_rows!(
        "WHERE ($1 = '' OR d.status = $1) ORDER BY d.id DESC LIMIT $2",
        status.map_or("", DeliveryStatus::as_str),
        limit,
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct EventRow {
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// A reader's events, newest first, at most `limit` (all without one).
pub async fn events_of(
    db: &PgPool,
    subscriber: Uuid,
    limit: Option<i64>,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as!(
        EventRow,
        "SELECT kind, at FROM subscriber_events WHERE subscriber_id = $1 ORDER BY id DESC LIMIT $2",
        subscriber,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Puts failed deliveries (one, or all with `None`) back in the queue. Returns how many.
pub async fn retry_failed(db: &PgPool, id: Option<i64>) -> sqlx::Result<u64> {
    let requeue = sqlx::query!(
        "WITH again AS (
             UPDATE deliveries SET status = 'pending', last_error = NULL
             WHERE status = 'failed' AND ($1::bigint IS NULL OR id = $1)
             RETURNING id, edition_id
         )
         INSERT INTO delivery_queue (delivery_id, edition_id) SELECT id, edition_id FROM again
         ON CONFLICT (delivery_id) DO NOTHING",
        id,
    );
    super::deliveries::queue_and_wake(db, requeue).await
}

/// Erases a subscriber (GDPR): the row and their mail go; anonymous counts stay. Their
/// deliveries are kept for the counts, with any address in an SMTP reply cut to its domain
/// and the why-lines (which quote their topics) gone; web copies and feeds answer 404.
pub async fn erase_subscriber(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        r#"UPDATE deliveries
         SET last_error = regexp_replace(last_error, '[^\s<>()\[\]"'',;:]+@', '…@', 'g'),
             why = '{}'
         WHERE subscriber_id = $1"#,
        id,
    )
    .execute(&mut *tx)
    .await?;
    let gone = sqlx::query!("DELETE FROM subscribers WHERE id = $1", id,)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if gone {
        sqlx::query!(
            "INSERT INTO subscriber_events (subscriber_id, kind) VALUES (NULL, $1)",
            EventKind::Deleted as EventKind,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(gone)
}

#[derive(Debug)]
pub struct PaperRow {
    pub arxiv_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub upvotes: i32,
    pub featured_on: Option<NaiveDate>,
    pub announced_on: Option<NaiveDate>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub on_huggingface: bool,
    pub digests: i64,
}

/// The latest papers, or those matching `q` (full text), with how many digests carried each.
pub async fn papers(db: &PgPool, q: &str) -> sqlx::Result<Vec<PaperRow>> {
    sqlx::query_as!(
        PaperRow,
        r#"WITH picked AS (
             SELECT arxiv_id, title, authors, upvotes, featured_on, announced_on, withdrawn_at, on_huggingface,
                    coalesce(featured_on, announced_on) AS day
             FROM papers
             WHERE $1 = '' OR search @@ websearch_to_tsquery('english', $1)
             ORDER BY CASE WHEN $1 = '' THEN 0 ELSE ts_rank(search, websearch_to_tsquery('english', $1)) END DESC,
                      coalesce(featured_on, announced_on) DESC NULLS LAST, upvotes DESC
             LIMIT 50
         ),
         counts AS (
             SELECT p, count(*) AS n
             FROM editions e
             JOIN deliveries d ON d.edition_id = e.id AND d.status IN ('sent', 'posted')
             CROSS JOIN LATERAL unnest(d.paper_ids) AS p
             WHERE e.day BETWEEN (SELECT min(day) FROM picked) AND (SELECT max(day) FROM picked) + 6
               AND p IN (SELECT arxiv_id FROM picked)
             GROUP BY p
         )
         SELECT picked.arxiv_id, title, authors, upvotes, featured_on, announced_on, withdrawn_at, on_huggingface,
                coalesce(counts.n, 0) AS "digests!"
         FROM picked LEFT JOIN counts ON counts.p = picked.arxiv_id"#,
        q.trim(),
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct RunRow {
    pub id: i64,
    pub source: String,
    pub day: Option<NaiveDate>,
    pub trigger: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub fetched: i32,
    pub inserted: i32,
    pub updated: i32,
    pub error: Option<String>,
}

pub async fn runs(db: &PgPool, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as!(
        RunRow,
        "SELECT id, source, day, trigger, status, started_at, finished_at, fetched, inserted, updated, error
         FROM ingest_runs ORDER BY id DESC LIMIT $1",
        limit,
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct EditionRow {
    pub label: String,
    pub frequency: String,
    pub created_at: DateTime<Utc>,
    pub total: i64,
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
    pub queued: i64,
}

/// The latest editions (digest runs) with their deliveries by outcome.
pub async fn editions(db: &PgPool, limit: i64) -> sqlx::Result<Vec<EditionRow>> {
    sqlx::query_as!(
        EditionRow,
        r#"SELECT e.label, e.frequency, e.created_at,
                count(d.id) AS "total!",
                count(*) FILTER (WHERE d.status = 'sent') AS "sent!",
                count(*) FILTER (WHERE d.status = 'skipped') AS "skipped!",
                count(*) FILTER (WHERE d.status = 'failed') AS "failed!",
                count(*) FILTER (WHERE d.status = 'pending') AS "queued!"
         FROM (SELECT * FROM editions ORDER BY id DESC LIMIT $1) e
         LEFT JOIN deliveries d ON d.edition_id = e.id
         GROUP BY e.id, e.label, e.frequency, e.created_at
         ORDER BY e.id DESC"#,
        limit,
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct EditionBrief {
    pub label: String,
    pub frequency: String,
    pub created_at: DateTime<Utc>,
    pub queued: i64,
}

/// The latest editions with what is still queued of each (cheap: the queue is small).
pub async fn recent_editions(db: &PgPool, limit: i64) -> sqlx::Result<Vec<EditionBrief>> {
    sqlx::query_as!(
        EditionBrief,
        r#"SELECT e.label, e.frequency, e.created_at,
                (SELECT count(*) FROM delivery_queue q WHERE q.edition_id = e.id) AS "queued!"
         FROM editions e ORDER BY e.id DESC LIMIT $1"#,
        limit,
    )
    .fetch_all(db)
    .await
}
