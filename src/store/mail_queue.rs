//! The queue of transactional mail (confirmations, preference links).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::mail::Draft;

/// The channel a `NOTIFY` on enqueue wakes the mail worker through.
pub const CHANNEL: &str = "paperboy_mail";

#[derive(Debug, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

/// Queues a message inside the caller's transaction: it exists exactly when the change
/// that caused it commits.
pub async fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    subscriber_id: Uuid,
    recipient: &str,
    draft: &Draft,
) -> sqlx::Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO outgoing_mail (kind, subscriber_id, recipient, subject, body_text, body_html)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(kind)
    .bind(subscriber_id)
    .bind(recipient)
    .bind(&draft.subject)
    .bind(&draft.text)
    .bind(&draft.html)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut *conn).await?;
    Ok(id)
}

/// How many messages of these kinds went to a subscriber since `since` (abuse guard).
pub async fn count_since(
    conn: &mut PgConnection,
    subscriber_id: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM outgoing_mail WHERE subscriber_id = $1 AND created_at >= $2",
    )
    .bind(subscriber_id)
    .bind(since)
    .fetch_one(conn)
    .await
}

/// Locks the next due message for the caller's transaction; other workers skip it.
pub async fn claim_next(conn: &mut PgConnection) -> sqlx::Result<Option<QueuedMail>> {
    sqlx::query_as(
        "SELECT id, kind, recipient, subject, body_text, body_html, attempts
         FROM outgoing_mail
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(conn)
    .await
}

pub async fn mark_sent(conn: &mut PgConnection, id: i64, message_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outgoing_mail
         SET status = 'sent', attempts = attempts + 1, message_id = $2, sent_at = now(), last_error = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_retry(
    conn: &mut PgConnection,
    id: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outgoing_mail SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
         WHERE id = $1",
    )
    .bind(id)
    .bind(next_attempt_at)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outgoing_mail SET status = 'failed', attempts = attempts + 1, last_error = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the earliest pending message falls due, if any.
pub async fn next_due(db: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT min(next_attempt_at) FROM outgoing_mail WHERE status = 'pending'")
        .fetch_one(db)
        .await
}
