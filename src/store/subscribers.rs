//! Subscribers: sign-up, confirmation, preferences, unsubscribe.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Categories, Frequency, PhraseList, Preferences};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    Unsubscribed,
}

impl Status {
    fn from_db(s: &str) -> Self {
        match s {
            "confirmed" => Self::Confirmed,
            "unsubscribed" => Self::Unsubscribed,
            _ => Self::Pending,
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: Uuid,
    pub email: String,
    status: String,
    topics: Vec<String>,
    categories: Vec<String>,
    authors: Vec<String>,
    frequency: String,
    weekday: i16,
    delivery_hour: i16,
    time_zone: String,
    papers_per_email: i32,
    min_upvotes: i32,
    pub manage_token: String,
    pub confirm_expires_at: Option<DateTime<Utc>>,
}

impl SubscriberRow {
    pub fn status(&self) -> Status {
        Status::from_db(&self.status)
    }

    pub fn preferences(&self) -> Preferences {
        Preferences {
            topics: PhraseList::from_stored(self.topics.clone()),
            categories: Categories::from_stored(self.categories.clone()),
            authors: PhraseList::from_stored(self.authors.clone()),
            frequency: Frequency::parse(&self.frequency).unwrap_or_default(),
            weekday: self.weekday,
            delivery_hour: self.delivery_hour,
            time_zone: self.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC),
            papers_per_email: self.papers_per_email,
            min_upvotes: self.min_upvotes,
        }
    }
}

const COLUMNS: &str = "id, email, status, topics, categories, authors, frequency, weekday, \
     delivery_hour, time_zone, papers_per_email, min_upvotes, manage_token, confirm_expires_at";

/// What the sign-up form may set; the rest keeps its defaults until the preferences page.
pub struct SignupChoices<'a> {
    pub topics: &'a PhraseList,
    pub categories: &'a Categories,
    pub frequency: Frequency,
}

/// The row for this address, locked for the rest of the transaction.
pub async fn lock_by_email(
    conn: &mut PgConnection,
    email_key: &str,
) -> sqlx::Result<Option<SubscriberRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE email_key = $1 FOR UPDATE"))
        .bind(email_key)
        .fetch_optional(conn)
        .await
}

/// Inserts a pending subscriber; `None` when the address arrived concurrently.
pub async fn insert_pending(
    conn: &mut PgConnection,
    email: &str,
    email_key: &str,
    choices: &SignupChoices<'_>,
    manage_token: &str,
    confirm_hash: &[u8],
    confirm_expires_at: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO subscribers
            (email, email_key, topics, categories, frequency, manage_token, confirm_token_hash, confirm_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (email_key) DO NOTHING
         RETURNING id",
    )
    .bind(email)
    .bind(email_key)
    .bind(choices.topics.items())
    .bind(choices.categories.items())
    .bind(choices.frequency.as_str())
    .bind(manage_token)
    .bind(confirm_hash)
    .bind(confirm_expires_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = id {
        record_event(conn, id, "subscribed").await?;
    }
    Ok(id)
}

/// Puts a pending or unsubscribed reader (back) into pending with a new confirmation
/// token and the choices from the form they just sent.
pub async fn restart_confirmation(
    conn: &mut PgConnection,
    id: Uuid,
    choices: &SignupChoices<'_>,
    confirm_hash: &[u8],
    confirm_expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let previous: String = sqlx::query_scalar(
        "UPDATE subscribers AS s
         SET status = 'pending', topics = $2, categories = $3, frequency = $4,
             confirm_token_hash = $5, confirm_expires_at = $6, updated_at = now()
         FROM (SELECT status FROM subscribers WHERE id = $1) AS old
         WHERE s.id = $1
         RETURNING old.status",
    )
    .bind(id)
    .bind(choices.topics.items())
    .bind(choices.categories.items())
    .bind(choices.frequency.as_str())
    .bind(confirm_hash)
    .bind(confirm_expires_at)
    .fetch_one(&mut *conn)
    .await?;
    if previous == "unsubscribed" {
        record_event(conn, id, "subscribed").await?;
    }
    Ok(())
}

/// A new confirmation token for a pending reader whose link expired.
pub async fn renew_confirmation(
    conn: &mut PgConnection,
    id: Uuid,
    confirm_hash: &[u8],
    confirm_expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE subscribers SET confirm_token_hash = $2, confirm_expires_at = $3, updated_at = now()
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(confirm_hash)
    .bind(confirm_expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_by_confirm_hash(db: &PgPool, hash: &[u8]) -> sqlx::Result<Option<SubscriberRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE confirm_token_hash = $1"))
        .bind(hash)
        .fetch_optional(db)
        .await
}

pub async fn lock_by_confirm_hash(
    conn: &mut PgConnection,
    hash: &[u8],
) -> sqlx::Result<Option<SubscriberRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscribers WHERE confirm_token_hash = $1 FOR UPDATE"
    ))
    .bind(hash)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_manage_token(db: &PgPool, token: &str) -> sqlx::Result<Option<SubscriberRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE manage_token = $1"))
        .bind(token)
        .fetch_optional(db)
        .await
}

/// pending → confirmed. Returns false when the reader was not pending.
pub async fn confirm(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE subscribers SET status = 'confirmed', confirmed_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        record_event(conn, id, "confirmed").await?;
    }
    Ok(done)
}

pub async fn update_preferences(db: &PgPool, id: Uuid, p: &Preferences) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE subscribers
         SET topics = $2, categories = $3, authors = $4, frequency = $5, weekday = $6,
             delivery_hour = $7, time_zone = $8, papers_per_email = $9, min_upvotes = $10,
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(p.topics.items())
    .bind(p.categories.items())
    .bind(p.authors.items())
    .bind(p.frequency.as_str())
    .bind(p.weekday)
    .bind(p.delivery_hour)
    .bind(p.time_zone.name())
    .bind(p.papers_per_email)
    .bind(p.min_upvotes)
    .execute(db)
    .await?;
    Ok(())
}

/// Any status → unsubscribed; an outstanding confirmation link stops working.
/// Returns false when the reader was already unsubscribed.
pub async fn unsubscribe(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE subscribers
         SET status = 'unsubscribed', unsubscribed_at = now(), confirm_token_hash = NULL,
             confirm_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND status <> 'unsubscribed'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        record_event(&mut tx, id, "unsubscribed").await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Undo of an unsubscribe from the reader's own manage link: they proved the address.
pub async fn resubscribe(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE subscribers
         SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()),
             unsubscribed_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'unsubscribed'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        record_event(&mut tx, id, "resubscribed").await?;
    }
    tx.commit().await?;
    Ok(done)
}

async fn record_event(conn: &mut PgConnection, id: Uuid, kind: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO subscriber_events (subscriber_id, kind) VALUES ($1, $2)")
        .bind(id)
        .bind(kind)
        .execute(conn)
        .await?;
    Ok(())
}

/// Several subscribers at once (a delivery batch).
pub async fn find_many(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<SubscriberRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_all(conn)
        .await
}
