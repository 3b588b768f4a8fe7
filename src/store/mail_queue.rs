//! The queue of transactional mail (confirmations, preference links).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

text_enum! {
    /// What a transactional message is for, as `outgoing_mail.kind` stores it.
    pub enum MailKind {
        /// The double opt-in link.
        Confirmation = "confirmation",
        /// A confirmed subscriber signed up again: their preferences link.
        AlreadySubscribed = "already_subscribed",
    }
}

/// A message as the queue keeps it: what it is for, its subject, and what to render (a
/// `mail::Notice` as JSON).
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub kind: MailKind,
    pub subject: String,
    pub notice: serde_json::Value,
}

#[derive(Debug)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    /// What to render (a `Notice` as JSON, read per message so that one this version
    /// cannot read fails alone); `None` for a message queued before notices were rendered
    /// at send time, which carries its rendered body instead.
    pub notice: Option<serde_json::Value>,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

/// Queues a message inside the caller's transaction: it exists exactly when the change
/// that caused it commits. (The caller wakes this process's mail workers after the
/// commit; other processes' workers find it when they poll.)
pub async fn enqueue(
    conn: &mut PgConnection,
    subscriber_id: Uuid,
    recipient: &str,
    mail: &Outgoing,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO outgoing_mail (kind, subscriber_id, recipient, subject, notice)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        mail.kind as MailKind,
        subscriber_id,
        recipient,
        &mail.subject,
        Json(&mail.notice) as _,
    )
    .fetch_one(conn)
    .await
}

/// How many messages of these kinds went to a subscriber since `since` (abuse guard).
pub async fn count_since(
    conn: &mut PgConnection,
    subscriber_id: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM outgoing_mail WHERE subscriber_id = $1 AND created_at >= $2"#,
        subscriber_id,
        since,
    )
    .fetch_one(conn)
    .await
}

/// Claims up to `limit` due messages for the worker on this connection (its backend pid
/// marks them; other workers skip them), counting an attempt on each, including messages
/// whose worker died: a claim whose worker connection is gone, or that was not renewed for
/// `lease`, is free again (`mail::queue`).
pub async fn claim(
    conn: &mut PgConnection,
    limit: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<QueuedMail>> {
    sqlx::query_as!(
        QueuedMail,
        r#"WITH picked AS (
             SELECT id FROM outgoing_mail
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND (claimed_by IS NULL
                    OR claimed_at < now() - make_interval(secs => $2)
                    OR claimed_by NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))
             ORDER BY next_attempt_at, id
             LIMIT $1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE outgoing_mail m
         SET claimed_by = pg_backend_pid(), claimed_at = now(), attempts = m.attempts + 1
         FROM picked WHERE m.id = picked.id
         RETURNING m.id, m.kind AS "kind: MailKind", m.recipient, m.subject,
                   m.notice, m.body_text, m.body_html, m.attempts"#,
        limit,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await
}

/// Whether this worker still owns its claim on a message that is still to be sent (not
/// erased since the claim), asked just before sending it. Unlike a digest, a short
/// transactional email is not sent holding its row locked: two more round trips per
/// message would cost a large share of the confirmations sent per second. The claim's
/// renewal keeps other workers off it.
pub async fn still_ours(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM outgoing_mail
                          WHERE id = $1 AND claimed_by = pg_backend_pid() AND status = 'pending')
                  AS "ours!""#,
        id,
    )
    .fetch_one(conn)
    .await
}

/// Sent: what carried the link goes (kind, subject and times stay for the record).
pub async fn mark_sent(conn: &mut PgConnection, id: i64, message_id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outgoing_mail
         SET status = 'sent', message_id = $2, sent_at = now(),
             last_error = NULL, notice = NULL, body_text = '', body_html = '', claimed_by = NULL
         WHERE id = $1 AND claimed_by = pg_backend_pid()",
        id,
        message_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A transient failure: pending again from `next_attempt_at`, the error kept.
pub async fn mark_retry(
    conn: &mut PgConnection,
    id: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outgoing_mail
         SET next_attempt_at = $2, last_error = $3, claimed_by = NULL
         WHERE id = $1 AND claimed_by = pg_backend_pid()",
        id,
        next_attempt_at,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Given up: the notice goes too (it carries a link that will never be used).
pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outgoing_mail
         SET status = 'failed', last_error = $2, notice = NULL,
             body_text = '', body_html = '', claimed_by = NULL
         WHERE id = $1 AND claimed_by = pg_backend_pid()",
        id,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Hands claimed messages back with the attempts their claims counted (a worker stopping
/// mid-batch: not the messages' fault).
pub async fn release(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outgoing_mail SET claimed_by = NULL, attempts = attempts - 1
         WHERE id = ANY($1) AND claimed_by = pg_backend_pid()",
        ids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews the claims of the worker whose connection has backend pid `owner` on `ids`.
pub async fn renew(db: &PgPool, owner: i32, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outgoing_mail SET claimed_at = now()
         WHERE id = ANY($1) AND claimed_by = $2 AND status = 'pending'",
        ids,
        owner,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A subscriber's transactional mail (confirmations, preference links) as their data export
/// lists it: (kind, subject, status, created, sent), newest first. Bodies are not kept
/// once sent.
pub async fn of_subscriber(
    db: &PgPool,
    subscriber: uuid::Uuid,
) -> sqlx::Result<Vec<(String, String, String, DateTime<Utc>, Option<DateTime<Utc>>)>> {
    let rows = sqlx::query!(
        "SELECT kind, subject, status, created_at, sent_at FROM outgoing_mail
         WHERE subscriber_id = $1 ORDER BY id DESC",
        subscriber,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.subject, r.status, r.created_at, r.sent_at)).collect())
}

/// When the earliest pending message falls due, if any.
pub async fn next_due(db: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!("SELECT min(next_attempt_at) FROM outgoing_mail WHERE status = 'pending'",)
        .fetch_one(db)
        .await
}
