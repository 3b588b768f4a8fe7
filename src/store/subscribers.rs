//! Subscribers: sign-up, confirmation, preferences, unsubscribe.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Categories, Frequency, PhraseList, Preferences};

text_enum! {
    /// What happened to a subscriber, as `subscriber_events` records it (anonymous counts stay
    /// after an erase).
    pub enum EventKind {
        Subscribed = "subscribed",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
        Resubscribed = "resubscribed",
        Bounced = "bounced",
        Complained = "complained",
        /// Erased (GDPR): the event keeps no subscriber.
        Deleted = "deleted",
    }
}

text_enum! {
    /// A subscriber's state, as the `status` column stores it.
    pub enum Status {
        Pending = "pending",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
        /// The address bounced hard (or softly, again and again): nothing is sent until a
        /// new sign-up is confirmed.
        Bounced = "bounced",
    }
}

#[derive(Clone, Debug)]
pub struct SubscriberRow {
    pub id: Uuid,
    pub email: String,
    status: Status,
    topics: Vec<String>,
    categories: Vec<String>,
    authors: Vec<String>,
    frequency: String,
    weekday: i16,
    delivery_hour: i16,
    time_zone: String,
    papers_per_email: i32,
    min_upvotes: i32,
    trend_weight: i16,
    pub confirm_expires_at: Option<DateTime<Utc>>,
    /// The SHA-256 of the outstanding confirmation token.
    confirm_token_hash: Option<Vec<u8>>,
    /// Bumped by resetting the feed: the feed link is signed for this generation.
    pub feed_generation: i32,
}

impl SubscriberRow {
    pub fn status(&self) -> Status {
        self.status
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
            trend_weight: self.trend_weight,
        }
    }
}

/// `SELECT`s subscribers as `SubscriberRow`s from the subscribers table; the rest of the query
/// (`WHERE …`) and its arguments follow.
macro_rules! select_subscribers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            SubscriberRow,
            r#"SELECT id, email, status AS "status: Status", topics, categories, authors, frequency, weekday,
                    delivery_hour, time_zone, papers_per_email, min_upvotes, trend_weight,
                    confirm_expires_at, confirm_token_hash, feed_generation
             FROM subscribers "# + $rest,
            $($arg),*
        )
    };
}

/// What the sign-up form may set; the rest keeps its defaults until the preferences page.
pub struct SignupChoices<'a> {
    pub topics: &'a PhraseList,
    pub categories: &'a Categories,
    pub frequency: Frequency,
    /// "Papers like these" (arXiv ids), applied when the link is confirmed.
    pub examples: &'a [String],
}

/// The row for this address, locked for the rest of the transaction.
pub async fn lock_by_email(
    conn: &mut PgConnection,
    email_key: &str,
) -> sqlx::Result<Option<SubscriberRow>> {
    select_subscribers!("WHERE email_key = $1 FOR UPDATE", email_key).fetch_optional(conn).await
}

/// A new sign-up as it is written: the subscriber, and the confirmation email it causes.
#[derive(Debug)]
pub struct NewPending {
    pub email: String,
    pub email_key: String,
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub frequency: &'static str,
    /// "Papers like these" (arXiv ids), applied when the address is confirmed.
    pub examples: Vec<String>,
    /// The SHA-256 of the confirmation token.
    pub confirm_hash: Vec<u8>,
    pub confirm_expires_at: DateTime<Utc>,
    pub confirmation: super::mail_queue::Outgoing,
}

/// New pending subscribers, their "subscribed" events and their confirmation emails, in
/// one statement (one transaction, one round trip, one commit for the whole batch). The
/// batch's addresses must be distinct. Returns the address keys that were new; the
/// others are known already.
pub async fn insert_pending(db: &PgPool, batch: &[&NewPending]) -> sqlx::Result<Vec<String>> {
    // Rows are taken in one order, by address: two batches holding the same addresses
    // in opposite orders would otherwise each wait for the other's row locks, and Postgres
    // would abort one of them as a deadlock.
    let mut batch = batch.to_vec();
    batch.sort_unstable_by(|a, b| a.email_key.cmp(&b.email_key));
    let batch = batch.as_slice();
    fn column<'a, T>(batch: &[&'a NewPending], f: impl Fn(&'a NewPending) -> T) -> Vec<T> {
        batch.iter().map(|r| f(r)).collect()
    }
    // Lists go as JSON, one document per row (Postgres has no arrays of arrays).
    let list = |items: &[String]| serde_json::Value::from(items.to_vec());
    sqlx::query_scalar!(
        "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::text[],
                                  $6::bytea[], $7::timestamptz[], $8::text[], $9::jsonb[],
                                  $10::jsonb[])
                 AS i(email, email_key, topics, categories, frequency, confirm_hash,
                      confirm_expires_at, subject, notice, examples)
         ), s AS (
             INSERT INTO subscribers
                 (email, email_key, topics, categories, frequency, confirm_token_hash,
                  confirm_expires_at, pending_examples)
             SELECT email, email_key,
                    ARRAY(SELECT jsonb_array_elements_text(topics)),
                    ARRAY(SELECT jsonb_array_elements_text(categories)),
                    frequency, confirm_hash, confirm_expires_at,
                    nullif(ARRAY(SELECT jsonb_array_elements_text(examples)), '{}')
             FROM input
             ON CONFLICT (email_key) DO NOTHING
             RETURNING id, email_key
         ), event AS (
             INSERT INTO subscriber_events (subscriber_id, kind) SELECT id, 'subscribed' FROM s
         ), mail AS (
             INSERT INTO outgoing_mail (kind, subscriber_id, recipient, subject, notice)
             SELECT 'confirmation', s.id, i.email, i.subject, i.notice
             FROM s JOIN input i ON i.email_key = s.email_key
         )
         SELECT email_key FROM s",
        &column(batch, |r| r.email.as_str()) as &[&str],
        &column(batch, |r| r.email_key.as_str()) as &[&str],
        &column(batch, |r| list(&r.topics)) as &[serde_json::Value],
        &column(batch, |r| list(&r.categories)) as &[serde_json::Value],
        &column(batch, |r| r.frequency) as &[&str],
        &column(batch, |r| r.confirm_hash.as_slice()) as &[&[u8]],
        &column(batch, |r| r.confirm_expires_at) as &[DateTime<Utc>],
        &column(batch, |r| r.confirmation.subject.clone()) as &[String],
        &column(batch, |r| sqlx::types::Json(&r.confirmation.notice)) as &[sqlx::types::Json<&_>],
        &column(batch, |r| list(&r.examples)) as &[serde_json::Value],
    )
    .fetch_all(db)
    .await
}

/// Puts a pending or unsubscribed subscriber (back) into pending with a new confirmation
/// token. The choices from the form wait with the link: only confirming applies them, so
/// whoever posts the form cannot change a subscriber's topics. A pending subscriber's
/// earlier link keeps working with its own choices (someone else may have posted the form).
pub async fn restart_confirmation(
    conn: &mut PgConnection,
    id: Uuid,
    choices: &SignupChoices<'_>,
    confirm_hash: &[u8],
    confirm_expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH stale AS (
             -- An expired link is kept a week, so that it still offers a fresh one.
             DELETE FROM pending_links WHERE subscriber_id = $1 AND expires_at < now() - interval '7 days'
         )
         INSERT INTO pending_links
             (hash, subscriber_id, topics, categories, frequency, examples, expires_at)
         SELECT confirm_token_hash, id, pending_topics, pending_categories, pending_frequency,
                pending_examples, confirm_expires_at
         FROM subscribers
         WHERE id = $1 AND status = 'pending' AND confirm_token_hash IS NOT NULL
           AND confirm_expires_at IS NOT NULL",
        id,
    )
    .execute(&mut *conn)
    .await?;
    let previous = sqlx::query_scalar!(
        r#"UPDATE subscribers AS s
         SET status = 'pending', pending_topics = $2, pending_categories = $3,
             pending_frequency = $4, confirm_token_hash = $5, confirm_expires_at = $6,
             pending_examples = nullif($7::text[], '{}'), updated_at = now()
         FROM (SELECT status FROM subscribers WHERE id = $1) AS old
         WHERE s.id = $1
         RETURNING old.status AS "status: Status""#,
        id,
        choices.topics.items(),
        choices.categories.items(),
        choices.frequency.as_str(),
        confirm_hash,
        confirm_expires_at,
        choices.examples,
    )
    .fetch_one(&mut *conn)
    .await?;
    if matches!(previous, Status::Unsubscribed | Status::Bounced) {
        record_event(conn, id, EventKind::Subscribed).await?;
    }
    Ok(())
}

/// A new confirmation token in place of the expired link `old` of a pending subscriber;
/// an earlier link keeps its choices.
pub async fn renew_confirmation(
    conn: &mut PgConnection,
    id: Uuid,
    old: &[u8],
    confirm_hash: &[u8],
    confirm_expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscribers SET confirm_token_hash = $3, confirm_expires_at = $4, updated_at = now()
         WHERE id = $1 AND status = 'pending' AND confirm_token_hash = $2",
        id,
        old,
        confirm_hash,
        confirm_expires_at,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE pending_links SET hash = $3, expires_at = $4 WHERE subscriber_id = $1 AND hash = $2",
        id,
        old,
        confirm_hash,
        confirm_expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of a subscriber's confirmation links a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The latest link sent, still unused.
    Latest { expires_at: Option<DateTime<Utc>> },
    /// An earlier link of a pending subscriber, sent with its own choices.
    Earlier { expires_at: DateTime<Utc> },
    /// The link that confirmed the subscriber.
    Used,
}

/// A subscriber found through a confirmation link, and which of their links it is.
#[derive(Debug)]
pub struct ConfirmRow {
    pub row: SubscriberRow,
    pub link: LinkKind,
}

/// The subscriber a confirmation link belongs to (its latest, an earlier or the used link),
/// locked for the rest of the transaction when `lock` is set.
async fn by_confirm_hash(
    conn: &mut PgConnection,
    hash: &[u8],
    lock: bool,
) -> sqlx::Result<Option<ConfirmRow>> {
    let row = match lock {
        false => {
            select_subscribers!("WHERE confirm_token_hash = $1 OR used_confirm_hash = $1", hash)
                .fetch_optional(&mut *conn)
                .await?
        }
        true => {
            select_subscribers!(
                "WHERE confirm_token_hash = $1 OR used_confirm_hash = $1 FOR UPDATE",
                hash
            )
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    if let Some(row) = row {
        let link = match row.confirm_token_hash.as_deref() == Some(hash) {
            true => LinkKind::Latest { expires_at: row.confirm_expires_at },
            false => LinkKind::Used,
        };
        return Ok(Some(ConfirmRow { row, link }));
    }
    let Some(found @ (id, _)) = earlier_link(conn, hash).await? else {
        return Ok(None);
    };
    let row = match lock {
        false => select_subscribers!("WHERE id = $1", id).fetch_optional(&mut *conn).await?,
        true => {
            select_subscribers!("WHERE id = $1 FOR UPDATE", id).fetch_optional(&mut *conn).await?
        }
    };
    // Links change only under the subscriber's lock: read the link again once it is held.
    let link = match lock {
        true => earlier_link(conn, hash).await?.filter(|(owner, _)| *owner == id),
        false => Some(found),
    };
    Ok(row
        .zip(link)
        .map(|(row, (_, expires_at))| ConfirmRow { row, link: LinkKind::Earlier { expires_at } }))
}

/// The subscriber and expiry of an earlier link.
async fn earlier_link(
    conn: &mut PgConnection,
    hash: &[u8],
) -> sqlx::Result<Option<(Uuid, DateTime<Utc>)>> {
    let link =
        sqlx::query!("SELECT subscriber_id, expires_at FROM pending_links WHERE hash = $1", hash)
            .fetch_optional(conn)
            .await?;
    Ok(link.map(|l| (l.subscriber_id, l.expires_at)))
}

pub async fn find_by_confirm_hash(db: &PgPool, hash: &[u8]) -> sqlx::Result<Option<ConfirmRow>> {
    by_confirm_hash(&mut *db.acquire().await?, hash, false).await
}

/// As [`find_by_confirm_hash`], with the subscriber locked for the rest of the transaction.
pub async fn lock_by_confirm_hash(
    conn: &mut PgConnection,
    hash: &[u8],
) -> sqlx::Result<Option<ConfirmRow>> {
    by_confirm_hash(conn, hash, true).await
}

/// The choices an earlier confirmation link still waits with (for the data export).
#[derive(Debug)]
pub struct EarlierLink {
    pub topics: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub frequency: Option<String>,
    pub examples: Option<Vec<String>>,
    pub expires_at: DateTime<Utc>,
}

pub async fn earlier_links(db: &PgPool, id: Uuid) -> sqlx::Result<Vec<EarlierLink>> {
    sqlx::query_as!(
        EarlierLink,
        "SELECT topics, categories, frequency, examples, expires_at FROM pending_links
         WHERE subscriber_id = $1 ORDER BY created_at",
        id,
    )
    .fetch_all(db)
    .await
}

/// Voids every earlier confirmation link of a subscriber (they confirmed or left).
pub(crate) async fn forget_earlier_links(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM pending_links WHERE subscriber_id = $1", id).execute(conn).await?;
    Ok(())
}

/// What a subscriber's data export adds to their row: when they signed up, confirmed and
/// left, and the choices waiting for a confirmation link.
#[derive(Debug)]
pub struct Record {
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub pending_topics: Option<Vec<String>>,
    pub pending_categories: Option<Vec<String>>,
    pub pending_frequency: Option<String>,
    pub pending_examples: Option<Vec<String>>,
}

pub async fn record(db: &PgPool, id: Uuid) -> sqlx::Result<Record> {
    sqlx::query_as!(
        Record,
        "SELECT created_at, confirmed_at, unsubscribed_at, pending_topics, pending_categories,
                pending_frequency, pending_examples
         FROM subscribers WHERE id = $1",
        id,
    )
    .fetch_one(db)
    .await
}

/// A new feed link for the subscriber: the old one stops working. Returns the new generation.
pub async fn reset_feed(db: &PgPool, id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE subscribers SET feed_generation = feed_generation + 1, updated_at = now()
         WHERE id = $1 RETURNING feed_generation",
        id,
    )
    .fetch_one(db)
    .await
}

pub async fn find_by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<SubscriberRow>> {
    select_subscribers!("WHERE id = $1", id).fetch_optional(db).await
}

/// A subscriber by the SHA-256 of a manage token from before links were derived (old emails).
pub async fn find_by_legacy_manage_hash(
    db: &PgPool,
    hash: &[u8],
) -> sqlx::Result<Option<SubscriberRow>> {
    select_subscribers!("WHERE legacy_manage_hash = $1", hash).fetch_optional(db).await
}

/// pending → confirmed through the link `hash`, with the choices that waited for that link;
/// the link is used up and every other one voided. Returns false when the subscriber was
/// not pending.
pub async fn confirm(conn: &mut PgConnection, id: Uuid, hash: &[u8]) -> sqlx::Result<bool> {
    // An earlier link first becomes the latest one, with its own choices.
    sqlx::query!(
        "WITH links AS (DELETE FROM pending_links WHERE subscriber_id = $1 RETURNING *)
         UPDATE subscribers AS s
         SET pending_topics = l.topics, pending_categories = l.categories,
             pending_frequency = l.frequency, pending_examples = l.examples,
             confirm_token_hash = l.hash
         FROM links AS l
         WHERE s.id = $1 AND s.status = 'pending' AND l.hash = $2",
        id,
        hash,
    )
    .execute(&mut *conn)
    .await?;
    let change = sqlx::query!(
        "UPDATE subscribers
         SET status = 'confirmed', confirmed_at = now(), unsubscribed_at = NULL,
             topics = coalesce(pending_topics, topics),
             categories = coalesce(pending_categories, categories),
             frequency = coalesce(pending_frequency, frequency),
             pending_topics = NULL, pending_categories = NULL, pending_frequency = NULL,
             used_confirm_hash = confirm_token_hash, confirm_token_hash = NULL,
             confirm_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'pending'",
        id,
    );
    change_status(conn, id, change, EventKind::Confirmed).await
}

/// The "papers like these" a confirmed link brought, taken (they are applied once).
pub async fn take_pending_examples(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<String>> {
    let taken = sqlx::query_scalar!(
        "WITH old AS (SELECT pending_examples FROM subscribers WHERE id = $1 FOR UPDATE)
         UPDATE subscribers SET pending_examples = NULL FROM old
         WHERE id = $1 RETURNING old.pending_examples",
        id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(taken.flatten().unwrap_or_default())
}

pub async fn update_preferences(db: &PgPool, id: Uuid, p: &Preferences) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscribers
         SET topics = $2, categories = $3, authors = $4, frequency = $5, weekday = $6,
             delivery_hour = $7, time_zone = $8, papers_per_email = $9, min_upvotes = $10,
             trend_weight = $11, updated_at = now()
         WHERE id = $1",
        id,
        p.topics.items(),
        p.categories.items(),
        p.authors.items(),
        p.frequency.as_str(),
        p.weekday,
        p.delivery_hour,
        p.time_zone.name(),
        p.papers_per_email,
        p.min_upvotes,
        p.trend_weight,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Any status → unsubscribed; an outstanding confirmation link stops working.
/// Returns false when the subscriber was already unsubscribed.
pub async fn unsubscribe(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let change = sqlx::query!(
        "UPDATE subscribers
         SET status = 'unsubscribed', unsubscribed_at = now(), confirm_token_hash = NULL,
             confirm_expires_at = NULL, pending_topics = NULL, pending_categories = NULL,
             pending_frequency = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'confirmed')",
        id,
    );
    let mut tx = db.begin().await?;
    let done = change_status(&mut tx, id, change, EventKind::Unsubscribed).await?;
    forget_earlier_links(&mut tx, id).await?;
    tx.commit().await?;
    Ok(done)
}

/// Undo of an unsubscribe from the subscriber's own manage link. Only an unsubscribe is
/// undone: an address that never completed the double opt-in, or that bounced or
/// complained since it last did, comes back only through a new confirmation (a sign-up
/// after a bounce leaves it pending, and unsubscribing from there is no way round).
/// Returns false when nothing changed.
pub async fn resubscribe(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let change = sqlx::query!(
        "UPDATE subscribers AS s
         SET status = 'confirmed', unsubscribed_at = NULL, updated_at = now()
         WHERE s.id = $1 AND s.status = 'unsubscribed' AND s.confirmed_at IS NOT NULL
           AND (s.bounced_at IS NULL OR s.bounced_at < s.confirmed_at)
           AND NOT EXISTS (SELECT 1 FROM subscriber_events e
                           WHERE e.subscriber_id = s.id AND e.kind = 'complained'
                             AND e.at >= s.confirmed_at)",
        id,
    );
    let mut tx = db.begin().await?;
    let done = change_status(&mut tx, id, change, EventKind::Resubscribed).await?;
    tx.commit().await?;
    Ok(done)
}

/// Runs `change` (an update of subscriber `id` that matches only when the change applies)
/// and, when it changed the row, records `event` on the same connection (the caller's
/// transaction). Returns whether it changed.
async fn change_status(
    conn: &mut PgConnection,
    id: Uuid,
    change: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    event: EventKind,
) -> sqlx::Result<bool> {
    let done = change.execute(&mut *conn).await?.rows_affected() == 1;
    if done {
        record_event(conn, id, event).await?;
    }
    Ok(done)
}

pub(crate) async fn record_event(
    conn: &mut PgConnection,
    id: Uuid,
    kind: EventKind,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO subscriber_events (subscriber_id, kind) VALUES ($1, $2)",
        id,
        kind as EventKind
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Several subscribers at once (a delivery batch).
pub async fn find_many(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<SubscriberRow>> {
    select_subscribers!("WHERE id = ANY($1)", ids).fetch_all(conn).await
}

/// Subscribers by status, from the trigger-kept count rows (never a scan of the table).
pub async fn counts(db: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, sum(n)::bigint AS "n!" FROM subscriber_counts GROUP BY status ORDER BY status"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// Folds the count rows that sign-ups and status changes append into one row per status,
/// so reading the counts stays cheap. Safe to run anywhere, any time, concurrently.
pub async fn fold_counts(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM subscriber_counts RETURNING status, n)
         INSERT INTO subscriber_counts (status, n)
         SELECT status, sum(n) FROM gone GROUP BY status",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A subscriber as the operator's CSV export lists them.
pub struct ExportRow {
    pub email: String,
    pub status: String,
    pub frequency: String,
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// Every subscriber by address, streamed (memory stays flat whatever the count).
pub fn export(db: &PgPool) -> futures_util::stream::BoxStream<'_, sqlx::Result<ExportRow>> {
    sqlx::query_as!(
        ExportRow,
        "SELECT email, status, frequency, topics, categories, authors, created_at, confirmed_at,
                unsubscribed_at
         FROM subscribers ORDER BY email_key"
    )
    .fetch(db)
}

// What the admin pages list.

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
pub async fn search(
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

pub async fn detail(db: &PgPool, id: Uuid) -> sqlx::Result<Option<SubscriberDetail>> {
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
pub struct EventRow {
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// A subscriber's events, newest first, at most `limit` (all without one).
pub async fn events(
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

/// Erases a subscriber (GDPR): the row and their mail go; anonymous counts stay. Their
/// deliveries are kept for the counts, with any address in an SMTP reply cut to its domain
/// and the why-lines (which quote their topics) gone; web copies and feeds answer 404.
///
/// A digest being sent to them holds their row (`deliveries::hold`): the erase waits for
/// it and its record, then removes both, and no digest goes to them after it commits. A
/// queued email of theirs is deleted with them; the mail worker checks just before sending
/// (`mail_queue::still_ours`).
pub async fn erase(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT id FROM subscribers WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?;
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
