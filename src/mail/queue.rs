//! The durable queues of outgoing mail (digests, transactional mail) behind one trait, and
//! the rules both follow, written once: what an attempt is, retry or give up, the lease.
//!
//! A worker claims a batch, marking the rows with its connection's backend pid, and keeps
//! the claim's lease while it works through the batch: a claim not renewed for a lease
//! (`PAPERBOY_CLAIM_LEASE_SECS`), or whose connection is gone, is free again. An outcome is
//! written only by the claim's owner (a digest is also sent holding its row locked), so a
//! stolen claim never sends twice. An attempt counts when it is claimed: a worker killed
//! mid-send used one, so a message that kills its sender is given up after
//! `PAPERBOY_MAX_ATTEMPTS` claims instead of looping; a release (a stop, not the message's
//! fault) gives it back.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::domain::redact_addresses;
use crate::mail::{RetryPolicy, SendError};
use crate::store::deliveries::{self, Scope};
use crate::store::{self, mail_queue};

/// A claimed message.
pub trait Claim {
    fn id(&self) -> i64;
    /// Its attempts, this one included.
    fn attempts(&self) -> i32;
}

/// A table of messages claimed in batches. Every call but `claim` changes only what this
/// connection still holds a claim on.
pub trait DurableQueue: Send + Sync + 'static {
    type Item: Claim + Send + Sync;
    /// What the record of a sent message keeps.
    type Receipt: ?Sized + Sync;
    /// Names the queue in logs.
    const NAME: &'static str;

    /// Claims up to `limit` due messages (and those whose claim ran out), counting an
    /// attempt on each.
    fn claim(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Item>>> + Send;

    /// Sent: done.
    fn succeed(
        &self,
        conn: &mut PgConnection,
        id: i64,
        receipt: &Self::Receipt,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Back in the queue until `at`, the error kept.
    fn retry(
        &self,
        conn: &mut PgConnection,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Failed for good.
    fn give_up(
        &self,
        conn: &mut PgConnection,
        id: i64,
        error: &str,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Unclaimed again, the attempt given back.
    fn release(
        &self,
        conn: &mut PgConnection,
        ids: &[i64],
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Renews the claims of the connection with backend pid `owner` on `ids`.
    fn renew(db: &PgPool, owner: i32, ids: &[i64])
    -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// What became of a claimed message's send.
#[derive(Debug)]
pub enum Settled {
    Sent,
    /// Back in the queue for this long.
    Retrying(Duration),
    /// Failed for good; with the server's reply when it refused the message (maybe a bounce).
    GaveUp(Option<String>),
}

/// Records the outcome of a claimed message's send by the one rule both queues follow: a
/// transient failure goes back with backoff while its attempts (this one included) are
/// under the limit; any other failure is given up.
pub async fn settle<Q: DurableQueue>(
    queue: &Q,
    conn: &mut PgConnection,
    item: &Q::Item,
    outcome: Result<&Q::Receipt, SendError>,
    policy: &RetryPolicy,
) -> sqlx::Result<Settled> {
    let (id, attempts) = (item.id(), item.attempts());
    match outcome {
        Ok(receipt) => {
            queue.succeed(conn, id, receipt).await?;
            Ok(Settled::Sent)
        }
        Err(SendError::Transient(e)) if attempts < policy.max_attempts => {
            let delay = policy.delay(attempts);
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            queue.retry(conn, id, at, &e).await?;
            tracing::warn!(queue = Q::NAME, error = ?redact_addresses(&e), retry_in = ?delay, "not sent; will retry");
            Ok(Settled::Retrying(delay))
        }
        Err(e) => {
            let error = e.to_string();
            queue.give_up(conn, id, &error).await?;
            tracing::error!(queue = Q::NAME, error = ?redact_addresses(&error), "not sent; given up");
            Ok(Settled::GaveUp(match e {
                SendError::Permanent(reply) => Some(reply),
                SendError::Transient(_) => None,
            }))
        }
    }
}

/// A claimed batch, handed out a message at a time while its lease is kept.
pub struct Batch<Q: DurableQueue> {
    rest: VecDeque<Q::Item>,
    policy: RetryPolicy,
    gave_up: usize,
    _lease: Lease,
}

impl<Q: DurableQueue> Batch<Q> {
    /// Claims up to `limit` messages on `conn` and keeps their lease until the batch is
    /// dropped; `None` when nothing is due.
    pub async fn claim(
        queue: &Q,
        conn: &mut PgConnection,
        db: &PgPool,
        lease: Duration,
        limit: i64,
        policy: RetryPolicy,
    ) -> sqlx::Result<Option<Self>> {
        let items = queue.claim(conn, lease, limit).await?;
        if items.is_empty() {
            return Ok(None);
        }
        let ids = items.iter().map(Claim::id).collect();
        let lease = Lease::keep::<Q>(conn, db, ids, lease).await?;
        Ok(Some(Self { rest: items.into(), policy, gave_up: 0, _lease: lease }))
    }

    /// The messages not handed out yet.
    pub fn iter(&self) -> impl Iterator<Item = &Q::Item> {
        self.rest.iter()
    }

    pub fn len(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// How many messages `next` gave up unsent: their earlier claims had used up the
    /// attempts, each ending without an outcome (the sender died or hung).
    pub fn gave_up(&self) -> usize {
        self.gave_up
    }

    /// The next message to send. Once `shutdown` is asked, hands the rest back instead.
    pub async fn next(
        &mut self,
        queue: &Q,
        conn: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> sqlx::Result<Option<Q::Item>> {
        if shutdown.is_cancelled() && !self.rest.is_empty() {
            let ids: Vec<i64> = self.rest.drain(..).map(|i| i.id()).collect();
            queue.release(conn, &ids).await?;
        }
        while let Some(item) = self.rest.pop_front() {
            if item.attempts() <= self.policy.max_attempts {
                return Ok(Some(item));
            }
            let error = format!(
                "{} attempts, the last without an outcome (its sender stopped mid-send)",
                item.attempts() - 1
            );
            queue.give_up(conn, item.id(), &error).await?;
            tracing::error!(queue = Q::NAME, id = item.id(), "{error}; given up");
            self.gave_up += 1;
        }
        Ok(None)
    }
}

/// Keeps a batch's claim: renews it every third of the lease until dropped. The renewals
/// go through the pool: the worker's own connection is busy sending.
struct Lease(tokio::task::JoinHandle<()>);

impl Lease {
    async fn keep<Q: DurableQueue>(
        conn: &mut PgConnection,
        db: &PgPool,
        ids: Vec<i64>,
        lease: Duration,
    ) -> sqlx::Result<Self> {
        let owner = store::backend_pid(conn).await?;
        let db = db.clone();
        Ok(Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = Q::renew(&db, owner, &ids).await {
                    tracing::warn!(error = %e, queue = Q::NAME, "could not renew a claim");
                }
            }
        })))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Digests in `delivery_queue`, those `Scope` covers.
pub struct Digests(pub Scope);

impl Claim for deliveries::Claimed {
    fn id(&self) -> i64 {
        self.id
    }

    fn attempts(&self) -> i32 {
        self.attempts
    }
}

impl DurableQueue for Digests {
    type Item = deliveries::Claimed;
    /// The Message-ID and the digest's record.
    type Receipt = (String, deliveries::Delivered);
    const NAME: &'static str = "digests";

    async fn claim(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> sqlx::Result<Vec<Self::Item>> {
        deliveries::claim(conn, &self.0, limit, lease).await
    }

    async fn succeed(
        &self,
        conn: &mut PgConnection,
        id: i64,
        (message_id, digest): &Self::Receipt,
    ) -> sqlx::Result<()> {
        deliveries::mark_delivered(conn, id, Some(message_id), digest).await
    }

    async fn retry(
        &self,
        conn: &mut PgConnection,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> sqlx::Result<()> {
        deliveries::mark_retry(conn, id, at, error).await
    }

    async fn give_up(&self, conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
        deliveries::mark_failed(conn, id, error).await
    }

    async fn release(&self, conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
        deliveries::release(conn, ids).await
    }

    async fn renew(db: &PgPool, owner: i32, ids: &[i64]) -> sqlx::Result<()> {
        deliveries::renew(db, owner, ids).await
    }
}

/// Transactional mail in `outgoing_mail`.
pub struct Outbox;

impl Claim for mail_queue::QueuedMail {
    fn id(&self) -> i64 {
        self.id
    }

    fn attempts(&self) -> i32 {
        self.attempts
    }
}

impl DurableQueue for Outbox {
    type Item = mail_queue::QueuedMail;
    /// The Message-ID.
    type Receipt = str;
    const NAME: &'static str = "mail";

    async fn claim(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> sqlx::Result<Vec<Self::Item>> {
        mail_queue::claim(conn, limit, lease).await
    }

    async fn succeed(
        &self,
        conn: &mut PgConnection,
        id: i64,
        message_id: &str,
    ) -> sqlx::Result<()> {
        mail_queue::mark_sent(conn, id, message_id).await
    }

    async fn retry(
        &self,
        conn: &mut PgConnection,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> sqlx::Result<()> {
        mail_queue::mark_retry(conn, id, at, error).await
    }

    async fn give_up(&self, conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
        mail_queue::mark_failed(conn, id, error).await
    }

    async fn release(&self, conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
        mail_queue::release(conn, ids).await
    }

    async fn renew(db: &PgPool, owner: i32, ids: &[i64]) -> sqlx::Result<()> {
        mail_queue::renew(db, owner, ids).await
    }
}
