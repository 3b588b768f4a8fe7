//! Deliveries: one row per (subscriber, edition), claimed by workers, never lost.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::Edition;
use crate::domain::Frequency;
use crate::store::subscribers::Status;

text_enum! {
    /// What became of a delivery, as the `status` column stores it (`ALL` in the order the
    /// admin's tabs show them).
    pub enum DeliveryStatus {
        Failed = "failed",
        /// Queued, not delivered yet.
        Pending = "pending",
        /// Mailed.
        Sent = "sent",
        /// Put in a feed-only subscriber's feed.
        Posted = "posted",
        /// Mailed, and the address bounced.
        Bounced = "bounced",
        /// Nothing matched the subscriber.
        Skipped = "skipped",
        /// The subscriber left before it went.
        Cancelled = "cancelled",
    }
}

/// The channel a `NOTIFY` on new deliveries wakes the delivery workers through.
pub const CHANNEL: &str = "paperboy_deliveries";

/// For `paperboy send`: every confirmed subscriber of the edition's frequency (weekly: whose
/// weekday is the edition's) who has not had it. Returns how many rows were new.
pub async fn create_for_edition(
    db: &PgPool,
    edition_id: i64,
    edition: &Edition,
) -> sqlx::Result<u64> {
    let weekday = match edition.frequency {
        Frequency::Daily | Frequency::Feed => None,
        Frequency::Weekly => {
            Some(chrono::Datelike::weekday(&edition.day).number_from_monday() as i16)
        }
    };
    let insert = sqlx::query!(
        "WITH new AS (
             INSERT INTO deliveries (edition_id, subscriber_id, edition_label)
             SELECT $1, id, $2 FROM subscribers
             WHERE status = 'confirmed' AND frequency = ANY($3) AND ($4::smallint IS NULL OR weekday = $4)
             ON CONFLICT (subscriber_id, edition_label) DO NOTHING
             RETURNING id, edition_id
         )
         INSERT INTO delivery_queue (delivery_id, edition_id) SELECT id, edition_id FROM new",
        edition_id,
        edition.label(),
        &edition.frequencies() as &[&str],
        weekday,
    );
    queue_and_wake(db, insert).await
}

/// For the scheduler: subscribers whose delivery hour has come today in their time zone (on
/// their weekday, for weekly subscribers) and who got no digest of this frequency yet today.
pub async fn create_due(db: &PgPool, edition_id: i64, edition: &Edition) -> sqlx::Result<u64> {
    let insert = sqlx::query!(
        "WITH due AS (
             SELECT s.id, s.delivery_hour, s.weekday,
                    now() AT TIME ZONE coalesce(z.name, 'UTC') AS local_now,
                    coalesce(z.name, 'UTC') AS tz
             FROM subscribers s
             LEFT JOIN pg_timezone_names z ON z.name = s.time_zone
             WHERE s.status = 'confirmed' AND s.frequency = ANY($4)
         )
         , new AS (
             INSERT INTO deliveries (edition_id, subscriber_id, edition_label)
             SELECT $1, r.id, $2 FROM due r
             WHERE extract(hour FROM r.local_now) >= r.delivery_hour
               AND ($3 = 'daily' OR extract(isodow FROM r.local_now) = r.weekday)
               AND NOT EXISTS (
                   SELECT 1 FROM deliveries d JOIN editions e ON e.id = d.edition_id
                   WHERE d.subscriber_id = r.id AND e.frequency = $3
                     AND d.created_at >= (date_trunc('day', r.local_now) AT TIME ZONE r.tz))
             ON CONFLICT (subscriber_id, edition_label) DO NOTHING
             RETURNING id, edition_id
         )
         INSERT INTO delivery_queue (delivery_id, edition_id) SELECT id, edition_id FROM new",
        edition_id,
        edition.label(),
        edition.frequency.as_str(),
        &edition.frequencies() as &[&str],
    );
    queue_and_wake(db, insert).await
}

/// Runs a statement that puts deliveries in the queue and, when it queued any, wakes the
/// delivery workers (the NOTIFY is delivered on commit). Returns how many it queued.
pub(crate) async fn queue_and_wake(
    db: &PgPool,
    insert: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let n = insert.execute(&mut *tx).await?.rows_affected();
    if n > 0 {
        sqlx::query!("SELECT pg_notify($1, '')", CHANNEL,).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Which deliveries a worker may claim.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Everything pending whose time has come (the long-running worker in `serve`).
    Due,
    /// `paperboy send`: these editions' pending rows, each tried once in this run even if
    /// waiting for a retry.
    Editions { ids: Vec<i64>, run_started: DateTime<Utc> },
}

#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    pub edition_id: i64,
    pub subscriber_id: Option<Uuid>,
    pub attempts: i32,
}

/// Claims up to `limit` deliveries for the worker on this connection (its backend pid
/// marks them), counting an attempt on each, including rows left claimed by a worker that
/// died: a claim whose worker connection is gone, or that was not renewed for `lease`, is
/// free again (`mail::queue`).
pub async fn claim(
    conn: &mut PgConnection,
    scope: &Scope,
    limit: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<Claimed>> {
    let (ids, run_started) = match scope {
        Scope::Due => (None, None),
        Scope::Editions { ids, run_started } => (Some(ids.as_slice()), Some(*run_started)),
    };
    sqlx::query_as!(
        Claimed,
        "WITH picked AS (
             SELECT q.delivery_id FROM delivery_queue q
             WHERE ($2::bigint[] IS NULL OR q.edition_id = ANY($2))
               AND ((q.claimed_by IS NULL
                     AND (CASE WHEN $3::timestamptz IS NULL THEN q.next_attempt_at <= now()
                               ELSE q.last_attempt_at IS NULL OR q.last_attempt_at < $3 END))
                    OR (q.claimed_by IS NOT NULL
                        AND (q.claimed_at < now() - make_interval(secs => $4)
                             OR q.claimed_by NOT IN (SELECT pid FROM pg_stat_activity
                                                     WHERE pid IS NOT NULL))))
             ORDER BY q.delivery_id LIMIT $1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE delivery_queue q
         SET claimed_by = pg_backend_pid(), claimed_at = now(), last_attempt_at = now(),
             attempts = q.attempts + 1
         FROM picked, deliveries d
         WHERE q.delivery_id = picked.delivery_id AND d.id = q.delivery_id
         RETURNING d.id, d.edition_id, d.subscriber_id, q.attempts",
        limit,
        ids,
        run_started,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await
}

/// Whether a claimed delivery may go out now, asked in the transaction it is sent in:
/// `None` when this worker no longer owns the claim (its lease ran out and another worker
/// took it: that one sends it), else the subscriber's status (`None` when they were
/// erased). The queue row stays locked, and the subscriber row cannot be deleted, until
/// that transaction ends, so a GDPR erase waits for the message in flight and its outcome.
pub async fn hold(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Option<Status>>> {
    let row = sqlx::query!(
        r#"SELECT (SELECT s.status FROM subscribers s WHERE s.id = d.subscriber_id FOR KEY SHARE)
                AS "status: Status"
         FROM delivery_queue q JOIN deliveries d ON d.id = q.delivery_id
         WHERE q.delivery_id = $1 AND q.claimed_by = pg_backend_pid()
         FOR UPDATE OF q"#,
        id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.status))
}

/// A delivered digest as its record keeps it: the papers in order, each with its why-line.
pub struct Delivered {
    pub subject: String,
    pub paper_ids: Vec<String>,
    pub why: Vec<String>,
}

/// Sent by email (`message_id`), or posted to a feed-only subscriber's feed (`None`): records
/// the papers in it; the delivery leaves the queue.
pub async fn mark_delivered(
    conn: &mut PgConnection,
    id: i64,
    message_id: Option<&str>,
    digest: &Delivered,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH done AS (
             DELETE FROM delivery_queue WHERE delivery_id = $1 AND claimed_by = pg_backend_pid()
             RETURNING attempts
         )
         UPDATE deliveries
         SET status = CASE WHEN $2::text IS NULL THEN 'posted' ELSE 'sent' END,
             message_id = $2, subject = $3, paper_ids = $4, why = $5, sent_at = now(),
             last_error = NULL, attempts = (SELECT attempts FROM done)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM done)",
        id,
        message_id,
        digest.subject.as_str(),
        digest.paper_ids.as_slice(),
        digest.why.as_slice(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A final state without sending — 'skipped' (nothing matched), 'cancelled' (subscriber gone)
/// or 'failed' — with the reason; the delivery leaves the queue.
pub async fn mark_closed(
    conn: &mut PgConnection,
    id: i64,
    status: DeliveryStatus,
    why: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH done AS (
             DELETE FROM delivery_queue WHERE delivery_id = $1 AND claimed_by = pg_backend_pid()
             RETURNING attempts
         )
         UPDATE deliveries SET status = $2, last_error = $3, attempts = (SELECT attempts FROM done)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM done)",
        id,
        status as DeliveryStatus,
        why,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A transient failure: back in the queue until `next`, the error kept.
pub async fn mark_retry(
    conn: &mut PgConnection,
    id: i64,
    next: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH q AS (
             UPDATE delivery_queue SET claimed_by = NULL, next_attempt_at = $2
             WHERE delivery_id = $1 AND claimed_by = pg_backend_pid() RETURNING attempts
         )
         UPDATE deliveries SET last_error = $3, attempts = (SELECT attempts FROM q)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM q)",
        id,
        next,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
    mark_closed(conn, id, DeliveryStatus::Failed, Some(error)).await
}

/// Hands claimed deliveries back with the attempts their claims counted (a graceful stop
/// mid-batch: not the deliveries' fault).
pub async fn release(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE delivery_queue SET claimed_by = NULL, attempts = attempts - 1
         WHERE delivery_id = ANY($1) AND claimed_by = pg_backend_pid()",
        ids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews the claims of the worker whose connection has backend pid `owner` on `ids`.
pub async fn renew(db: &PgPool, owner: i32, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE delivery_queue SET claimed_at = now()
         WHERE delivery_id = ANY($1) AND claimed_by = $2",
        ids,
        owner,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Which of these papers each of these subscribers has already been sent.
pub async fn already_sent(
    conn: &mut PgConnection,
    subscribers: &[Uuid],
    papers: &[String],
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT d.subscriber_id AS "subscriber_id!", p AS "paper!"
           FROM deliveries d, unnest(d.paper_ids) AS p
           WHERE d.subscriber_id = ANY($1) AND d.status IN ('sent', 'posted')
             AND d.paper_ids && $2 AND p = ANY($2)"#,
        subscribers,
        papers,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.subscriber_id, r.paper)).collect())
}

/// One delivery to a subscriber as their web copy, feed, history and data export show it.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: i64,
    pub subscriber_id: Uuid,
    pub edition_label: String,
    /// The edition's frequency and day.
    pub frequency: String,
    pub day: chrono::NaiveDate,
    pub status: DeliveryStatus,
    pub subject: Option<String>,
    pub paper_ids: Vec<String>,
    pub why: Vec<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Record {
    /// Sent by email or posted to the subscriber's feed: it has papers and a web copy.
    pub fn delivered(&self) -> bool {
        matches!(self.status, DeliveryStatus::Sent | DeliveryStatus::Posted)
    }

    /// When it was sent or posted (when it was created, for the others).
    pub fn delivered_at(&self) -> DateTime<Utc> {
        self.sent_at.unwrap_or(self.created_at)
    }

    /// Posted to a feed-only subscriber's feed rather than mailed.
    pub fn posted(&self) -> bool {
        self.status == DeliveryStatus::Posted
    }

    /// The why-line of the paper at `i`, as the email gave it (empty for digests sent
    /// before why-lines were kept).
    pub fn why(&self, i: usize) -> &str {
        self.why.get(i).map_or("", String::as_str)
    }
}

/// `SELECT`s deliveries with their editions as `Record`s; the rest of the query (`WHERE …`)
/// and its arguments follow.
macro_rules! select_records {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Record,
            r#"SELECT d.id, d.subscriber_id AS "subscriber_id!", d.edition_label, e.frequency, e.day,
                      d.status AS "status: DeliveryStatus", d.subject, d.paper_ids, d.why,
                      d.last_error, d.created_at, d.sent_at
               FROM deliveries d JOIN editions e ON e.id = d.edition_id "# + $rest,
            $($arg),*
        )
    };
}

/// A delivered digest (sent or posted) of a subscriber who still exists.
pub async fn delivered(db: &PgPool, id: i64) -> sqlx::Result<Option<Record>> {
    select_records!(
        "WHERE d.id = $1 AND d.subscriber_id IS NOT NULL AND d.status IN ('sent', 'posted')",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Which of a subscriber's deliveries `of_subscriber` returns.
pub struct Filter {
    /// Delivered (or created, for the others) since then.
    pub since: Option<DateTime<Utc>>,
    /// Only those sent or posted.
    pub delivered_only: bool,
    pub limit: Option<i64>,
}

/// A subscriber's deliveries, newest first.
pub async fn of_subscriber(
    db: &PgPool,
    subscriber: Uuid,
    filter: Filter,
) -> sqlx::Result<Vec<Record>> {
    select_records!(
        "WHERE d.subscriber_id = $1
           AND ($2::timestamptz IS NULL OR coalesce(d.sent_at, d.created_at) >= $2)
           AND (NOT $3 OR d.status IN ('sent', 'posted'))
         ORDER BY coalesce(d.sent_at, d.created_at) DESC, d.id DESC
         LIMIT $4",
        subscriber,
        filter.since,
        filter.delivered_only,
        filter.limit,
    )
    .fetch_all(db)
    .await
}

/// When the earliest pending delivery falls due, if any.
pub async fn next_due(db: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!("SELECT min(next_attempt_at) FROM delivery_queue WHERE claimed_by IS NULL",)
        .fetch_one(db)
        .await
}

/// Digests waiting to be delivered.
pub async fn queue_depth(db: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM delivery_queue"#).fetch_one(db).await
}

// What the admin pages list.

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

/// `SELECT`s deliveries as `DeliveryRow`s with their subscribers' addresses; the rest of the
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

pub async fn listed_for_subscriber(
    db: &PgPool,
    subscriber: Uuid,
) -> sqlx::Result<Vec<DeliveryRow>> {
    select_delivery_rows!("WHERE d.subscriber_id = $1 ORDER BY d.id DESC LIMIT 50", subscriber)
        .fetch_all(db)
        .await
}

pub async fn listed(
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
    queue_and_wake(db, requeue).await
}
