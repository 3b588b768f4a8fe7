//! Bounces and complaints: the reports kept, and what they do to subscribers and deliveries.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::subscribers::{EventKind, Status, record_event};
use crate::domain::Sent;

/// The subscriber (and message) a report is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub subscriber: Uuid,
    /// Their address, lower-cased.
    pub email: String,
    pub delivery: Option<i64>,
    pub mail: Option<i64>,
}

struct Subscriber {
    id: Uuid,
    email_key: String,
}

/// The subscriber a message we sent went to (None: no such message, or the subscriber was erased).
pub async fn target_of(db: &PgPool, sent: Sent) -> sqlx::Result<Option<Target>> {
    let (id, delivery) = match sent {
        Sent::Delivery(id) => (id, true),
        Sent::Mail(id) => (id, false),
    };
    let row = sqlx::query_as!(
        Subscriber,
        "SELECT s.id, s.email_key FROM subscribers s
         WHERE s.id = CASE WHEN $2 THEN (SELECT subscriber_id FROM deliveries WHERE id = $1)
                           ELSE (SELECT subscriber_id FROM outgoing_mail WHERE id = $1) END",
        id,
        delivery,
    )
    .fetch_optional(db)
    .await?;
    let row = row.map(|r| (r.id, r.email_key));
    Ok(row.map(|(subscriber, email)| match sent {
        Sent::Delivery(id) => Target { subscriber, email, delivery: Some(id), mail: None },
        Sent::Mail(id) => Target { subscriber, email, delivery: None, mail: Some(id) },
    }))
}

/// The message with this `Message-ID`: ours name their message (`<d42.{uuid}@…>`), found
/// by primary key; the whole id must match what was stored (its random part is the proof).
pub async fn target_by_message_id(db: &PgPool, message_id: &str) -> sqlx::Result<Option<Target>> {
    let named = message_id.strip_prefix('<').and_then(|rest| {
        let (head, _) = rest.split_once('.')?;
        let (kind, id) = head.split_at_checked(1)?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "d" => Some(Sent::Delivery(id)),
            "m" => Some(Sent::Mail(id)),
            _ => None,
        }
    });
    let Some(sent) = named else { return Ok(None) };
    let stored: Option<Option<String>> = match sent {
        Sent::Delivery(id) => {
            sqlx::query_scalar!("SELECT message_id FROM deliveries WHERE id = $1", id,)
                .fetch_optional(db)
                .await?
        }
        Sent::Mail(id) => {
            sqlx::query_scalar!("SELECT message_id FROM outgoing_mail WHERE id = $1", id,)
                .fetch_optional(db)
                .await?
        }
    };
    if stored
        .flatten()
        .is_some_and(|s| crate::domain::same_secret(s.as_bytes(), message_id.as_bytes()))
    {
        target_of(db, sent).await
    } else {
        Ok(None)
    }
}

/// The subscriber with this address, if any (reports that prove nothing are kept against them).
pub async fn subscriber_by_address(db: &PgPool, address: &str) -> sqlx::Result<Option<Target>> {
    let key = address.trim().to_lowercase();
    let id: Option<Uuid> =
        sqlx::query_scalar!("SELECT id FROM subscribers WHERE email_key = $1", &key,)
            .fetch_optional(db)
            .await?;
    Ok(id.map(|subscriber| Target { subscriber, email: key, delivery: None, mail: None }))
}

/// One report as kept.
pub struct NewBounce<'a> {
    pub subscriber: Option<Uuid>,
    pub delivery: Option<i64>,
    pub mail: Option<i64>,
    pub kind: &'a str,
    pub source: &'a str,
    pub status_code: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    pub raw_size: i32,
    /// SHA-256 of the raw report: the same report twice is recorded once.
    pub raw_digest: Option<&'a [u8]>,
    pub proven: bool,
}

/// Keeps a report. False when the same report was already recorded (a replay).
pub async fn record(conn: &mut PgConnection, b: &NewBounce<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO bounces (subscriber_id, delivery_id, mail_id, kind, source, status_code,
                              diagnostic, raw_size, raw_digest, proven)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (raw_digest) DO NOTHING",
        b.subscriber,
        b.delivery,
        b.mail,
        b.kind,
        b.source,
        b.status_code,
        b.diagnostic,
        b.raw_size,
        b.raw_digest,
        b.proven,
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// pending/confirmed → bounced: nothing more is sent; queued digests are cancelled and a
/// bounced delivery says so. Returns whether the subscriber changed.
pub async fn mark_bounced(
    conn: &mut PgConnection,
    subscriber: Uuid,
    delivery: Option<i64>,
) -> sqlx::Result<bool> {
    if let Some(id) = delivery {
        sqlx::query!(
            "UPDATE deliveries SET status = 'bounced' WHERE id = $1 AND status = 'sent'",
            id,
        )
        .execute(&mut *conn)
        .await?;
    }
    let changed = leave(conn, subscriber, Status::Bounced, "the address bounced").await?;
    if changed {
        record_event(conn, subscriber, EventKind::Bounced).await?;
    }
    Ok(changed)
}

/// A complaint: unsubscribed at once, like one-click unsubscribe, with the reason kept.
pub async fn mark_complained(conn: &mut PgConnection, subscriber: Uuid) -> sqlx::Result<bool> {
    let changed =
        leave(conn, subscriber, Status::Unsubscribed, "the subscriber reported our mail as spam")
            .await?;
    if changed {
        record_event(conn, subscriber, EventKind::Unsubscribed).await?;
    }
    record_event(conn, subscriber, EventKind::Complained).await?;
    Ok(changed)
}

/// A pending or confirmed subscriber → `status` (bounced or unsubscribed): their confirmation
/// link stops working and their queued digests are cancelled with `why`.
async fn leave(
    conn: &mut PgConnection,
    subscriber: Uuid,
    status: Status,
    why: &str,
) -> sqlx::Result<bool> {
    let changed = sqlx::query!(
        "UPDATE subscribers
         SET status = $2, confirm_token_hash = NULL, confirm_expires_at = NULL, updated_at = now(),
             bounced_at = CASE WHEN $2 = 'bounced' THEN now() ELSE bounced_at END,
             unsubscribed_at = CASE WHEN $2 = 'unsubscribed' THEN now() ELSE unsubscribed_at END
         WHERE id = $1 AND status IN ('pending', 'confirmed')
           -- A feed-only subscriber reads on the web: a dead address stops their email only.
           AND NOT ($2 = 'bounced' AND frequency = 'feed')",
        subscriber,
        status as Status,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        super::subscribers::forget_earlier_links(conn, subscriber).await?;
        cancel_queued(conn, subscriber, why).await?;
    }
    Ok(changed)
}

async fn cancel_queued(conn: &mut PgConnection, subscriber: Uuid, why: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (
             DELETE FROM delivery_queue q USING deliveries d
             WHERE d.id = q.delivery_id AND d.subscriber_id = $1
             RETURNING q.delivery_id
         )
         UPDATE deliveries SET status = 'cancelled', last_error = $2
         WHERE id IN (SELECT delivery_id FROM gone)",
        subscriber,
        why,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The proven soft bounces of a subscriber since they last confirmed: how many messages
/// bounced (several reports about one message count once), first, last.
pub async fn soft_run(
    conn: &mut PgConnection,
    subscriber: Uuid,
) -> sqlx::Result<(i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
    let row = sqlx::query!(
        r#"SELECT count(DISTINCT coalesce('d' || b.delivery_id, 'm' || b.mail_id, 'b' || b.id))
                      AS "messages!",
                  min(b.received_at) AS first, max(b.received_at) AS last
           FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id
           WHERE b.subscriber_id = $1 AND b.kind = 'soft' AND b.proven
             AND b.received_at >= coalesce(s.confirmed_at, s.created_at)"#,
        subscriber,
    )
    .fetch_one(conn)
    .await?;
    Ok((row.messages, row.first, row.last))
}

/// A subscriber's reports, newest first (their admin page).
#[derive(Debug)]
pub struct BounceRow {
    pub kind: String,
    pub source: String,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
    pub proven: bool,
    pub received_at: DateTime<Utc>,
}

pub async fn of_subscriber(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<BounceRow>> {
    sqlx::query_as!(
        BounceRow,
        "SELECT kind, source, status_code, diagnostic, proven, received_at FROM bounces
         WHERE subscriber_id = $1 ORDER BY proven DESC, id DESC LIMIT 50",
        subscriber,
    )
    .fetch_all(db)
    .await
}

/// Proven reports received in the last `days` days: (hard, soft, complaints).
pub async fn counts_since(db: &PgPool, days: i32) -> sqlx::Result<(i64, i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE kind = 'hard') AS "hard!",
                  count(*) FILTER (WHERE kind = 'soft') AS "soft!",
                  count(*) FILTER (WHERE kind = 'complaint') AS "complaints!"
           FROM bounces WHERE proven AND received_at > now() - make_interval(days => $1)"#,
        days,
    )
    .fetch_one(db)
    .await?;
    Ok((row.hard, row.soft, row.complaints))
}
