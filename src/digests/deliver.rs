//! Delivering editions (`sending.rs` plans them: who gets which edition). Workers claim
//! batches of deliveries (`FOR UPDATE SKIP LOCKED`, marked with their connection's backend
//! pid), compose each subscriber's digest, send it, and record the outcome row by row, so a
//! crash loses nothing and repeats at most the message in flight. `drain` works through a
//! scope and returns (`paperboy send`, the admin's send); `jobs::delivery` runs the
//! long-lived workers of `serve`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bounces::{self, Inbound};
use crate::digests::ranking::{EditionCache, EditionData, Interests, Taste};
use crate::digests::{DigestLinks, render};
use crate::domain::Sent;
use crate::domain::{Links, redact_addresses};
use crate::embeddings::{Embedder, topics};
use crate::mail::{Mailer, RetryPolicy, SendError};
use crate::store::deliveries::{self, Claimed, DeliveryStatus, Scope};
use crate::store::leases::{Queue, Renewal};
use crate::store::subscribers::{self, Status, SubscriberRow};
use crate::store::{self, editions, ratings};

const BATCH: i64 = 50;
/// What a run did.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: AtomicU64,
    /// Digests of feed-only subscribers, kept for their feed instead of mailed.
    pub posted: AtomicU64,
    pub skipped: AtomicU64,
    pub cancelled: AtomicU64,
    pub failed: AtomicU64,
    pub retrying: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub struct Deliverer {
    db: PgPool,
    mailer: Arc<Mailer>,
    links: Links,
    policy: RetryPolicy,
    /// For refusals that are hard bounces.
    inbound: Inbound,
    editions: Arc<EditionCache>,
    /// How long a claim lasts unless renewed.
    lease: std::time::Duration,
}

impl Deliverer {
    /// The deliverer `serve`, `send` and the admin pages share: links signed with `secret`,
    /// the configured retries and bounce handling, and a fresh edition cache.
    pub fn from_settings(
        db: &PgPool,
        mailer: &Arc<Mailer>,
        settings: &crate::config::Settings,
        secret: &[u8],
        embedder: &Arc<Embedder>,
    ) -> Arc<Self> {
        Arc::new(Self {
            db: db.clone(),
            mailer: mailer.clone(),
            links: Links::new(settings.web.base_url.as_str(), secret),
            policy: RetryPolicy::from_settings(settings),
            inbound: Inbound::from_settings(settings, secret),
            editions: EditionCache::new(db.clone(), embedder.clone()),
            lease: settings.mail.claim_lease,
        })
    }

    /// The edition cache the workers rank from (shared with the previews).
    pub fn editions(&self) -> &Arc<EditionCache> {
        &self.editions
    }

    pub(crate) fn db(&self) -> &PgPool {
        &self.db
    }

    async fn edition(&self, id: i64) -> sqlx::Result<Option<Arc<EditionData>>> {
        match editions::find(&self.db, id).await? {
            Some(edition) => Ok(Some(self.editions.get(edition).await?)),
            None => Ok(None),
        }
    }

    /// Works through everything `scope` covers with `concurrency` workers, then returns.
    pub async fn drain(
        self: &Arc<Self>,
        scope: Scope,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Tally>> {
        let tally = Arc::new(Tally::default());
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (me, scope, tally, shutdown) =
                    (self.clone(), scope.clone(), tally.clone(), shutdown.clone());
                tokio::spawn(async move {
                    let mut conn = me.db.acquire().await?;
                    while !shutdown.is_cancelled()
                        && me.pass(&mut conn, &scope, &tally, &shutdown).await? > 0
                    {
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for w in workers {
            w.await??;
        }
        Ok(tally)
    }

    /// Claims one batch on `conn` and delivers it. Returns how many rows it claimed.
    pub(crate) async fn pass(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        tally: &Tally,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<usize> {
        store::relax_commits(conn, true).await?;
        let result = self.deliver_batch(conn, scope, tally, shutdown).await;
        store::relax_commits(conn, false).await?;
        result
    }

    async fn deliver_batch(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        tally: &Tally,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let batch = deliveries::claim(conn, scope, BATCH, self.lease).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let claimed = batch.iter().map(|c| c.id).collect();
        let _renewal =
            Renewal::start(conn, &self.db, Queue::Deliveries, claimed, self.lease).await?;
        let ids: Vec<Uuid> = batch.iter().filter_map(|c| c.subscriber_id).collect();
        let rows: HashMap<Uuid, SubscriberRow> =
            subscribers::find_many(conn, &ids).await?.into_iter().map(|r| (r.id, r)).collect();
        let mut tastes = ratings::tastes(conn, &ids).await?;
        let batch_topics: Vec<String> =
            rows.values().flat_map(|r| r.preferences().topics.items().to_vec()).collect();
        let topic_vectors =
            topics::stored(&self.db, self.editions.embedder(), &batch_topics).await?;
        let mut editions = HashMap::new();
        for c in &batch {
            if let std::collections::hash_map::Entry::Vacant(slot) = editions.entry(c.edition_id) {
                slot.insert(self.edition(c.edition_id).await?);
            }
        }
        let papers: Vec<String> =
            editions.values().flatten().flat_map(|e| e.ids.iter().cloned()).collect();
        let mut sent: HashMap<Uuid, HashSet<String>> = HashMap::new();
        for (s, p) in deliveries::already_sent(conn, &ids, &papers).await? {
            sent.entry(s).or_default().insert(p);
        }
        let count = batch.len();
        for (i, claimed) in batch.iter().enumerate() {
            if shutdown.is_cancelled() {
                // Hand the rest back untouched for the next run.
                let rest: Vec<i64> = batch[i..].iter().map(|c| c.id).collect();
                deliveries::release(conn, &rest).await?;
                break;
            }
            let subscriber = claimed.subscriber_id.and_then(|id| rows.get(&id)).map(|row| {
                let taste = tastes.remove(&row.id).unwrap_or_default();
                let sent = sent.remove(&row.id).unwrap_or_default();
                Recipient { row, taste, sent, topic_vectors: &topic_vectors }
            });
            let edition = editions.get(&claimed.edition_id).cloned().flatten();
            self.deliver(conn, claimed, subscriber, edition.as_deref(), tally).await?;
        }
        Ok(count)
    }

    /// Delivers one claimed digest in a transaction that holds its queue row (`hold`), and
    /// then acts on a refusal that says the address is dead.
    #[tracing::instrument(name = "deliver_digest", skip_all, fields(delivery = claimed.id, attempt = claimed.attempts))]
    async fn deliver(
        &self,
        conn: &mut PgConnection,
        claimed: &Claimed,
        subscriber: Option<Recipient<'_>>,
        edition: Option<&EditionData>,
        tally: &Tally,
    ) -> anyhow::Result<()> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let Some(status) = deliveries::hold(&mut tx, claimed.id).await? else {
            tracing::warn!("the claim ran out and another worker took the delivery; leaving it");
            return Ok(());
        };
        let refused =
            self.deliver_held(&mut tx, claimed, status, subscriber, edition, tally).await?;
        tx.commit().await?;
        if let Some(reply) = refused {
            bounces::refused_at_send(&self.db, &self.inbound, Sent::Delivery(claimed.id), &reply)
                .await?;
        }
        Ok(())
    }

    /// Ranks, renders, sends and records one digest; returns the reply of a permanent
    /// refusal.
    async fn deliver_held(
        &self,
        conn: &mut PgConnection,
        claimed: &Claimed,
        status: Option<Status>,
        subscriber: Option<Recipient<'_>>,
        edition: Option<&EditionData>,
        tally: &Tally,
    ) -> anyhow::Result<Option<String>> {
        let (
            Some(status),
            Some(Recipient { row: subscriber, taste, sent, topic_vectors }),
            Some(edition),
        ) = (status, subscriber, edition)
        else {
            cancel(conn, claimed.id, "subscriber or edition no longer exists", tally).await?;
            return Ok(None);
        };
        // An unsubscribe takes effect at once, also for digests already queued.
        if status != Status::Confirmed {
            cancel(conn, claimed.id, "subscriber is no longer subscribed", tally).await?;
            return Ok(None);
        }
        let exclude: HashSet<&str> = sent.iter().map(String::as_str).collect();
        let prefs = subscriber.preferences();
        let interests = Interests::for_subscriber(&prefs, taste).with_topic_vectors(topic_vectors);
        let picks = edition.set.rank(&interests, &exclude);
        if picks.is_empty() {
            deliveries::mark_closed(
                conn,
                claimed.id,
                DeliveryStatus::Skipped,
                Some("nothing matched"),
            )
            .await?;
            Tally::add(&tally.skipped);
            return Ok(None);
        }
        let items = render::items(&edition.set, &picks);
        let links = DigestLinks::for_delivery(&self.links, &subscriber.id, claimed.id);
        let draft = render::render(&edition.edition, &items, &links)?;
        let papers: Vec<String> = items.iter().map(|i| i.arxiv_id.clone()).collect();
        let why: Vec<String> = items.iter().map(|i| i.why.clone()).collect();
        let digest =
            deliveries::Delivered { subject: &draft.subject, paper_ids: &papers, why: &why };
        if !prefs.frequency.mailed() {
            deliveries::mark_delivered(conn, claimed.id, None, &digest).await?;
            Tally::add(&tally.posted);
            tracing::info!(papers = papers.len(), "digest posted to the subscriber's feed");
            return Ok(None);
        }
        let headers = [
            ("List-Unsubscribe", format!("<{}>", links.unsubscribe)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()),
            ("List-Id", self.mailer.list_id()),
            ("X-Paperboy-Edition", edition.edition.label()),
        ];
        let message_id = self.mailer.new_message_id(Sent::Delivery(claimed.id));
        match self
            .mailer
            .send(&subscriber.email, &draft, &message_id, &headers, Sent::Delivery(claimed.id))
            .await
        {
            Ok(()) => {
                deliveries::mark_delivered(conn, claimed.id, Some(&message_id), &digest).await?;
                Tally::add(&tally.sent);
                metrics::counter!("paperboy_digests_sent_total").increment(1);
                tracing::info!(papers = papers.len(), "digest sent");
            }
            Err(SendError::Transient(e)) if claimed.attempts < self.policy.max_attempts => {
                let delay = self.policy.delay(claimed.attempts);
                let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                deliveries::mark_retry(conn, claimed.id, next, &e).await?;
                Tally::add(&tally.retrying);
                metrics::counter!("paperboy_digest_retries_total").increment(1);
                tracing::warn!(error = ?redact_addresses(&e), retry_in = ?delay, "digest not sent; will retry");
            }
            Err(e) => {
                deliveries::mark_failed(conn, claimed.id, &e.to_string()).await?;
                Tally::add(&tally.failed);
                metrics::counter!("paperboy_digests_failed_total").increment(1);
                tracing::error!(error = ?redact_addresses(&e.to_string()), "digest failed for good");
                if let SendError::Permanent(reply) = e {
                    return Ok(Some(reply));
                }
            }
        }
        Ok(None)
    }
}

/// A subscriber as one delivery needs them: their row, their taste and the papers of this
/// batch's editions they already had.
struct Recipient<'a> {
    row: &'a SubscriberRow,
    taste: Taste,
    sent: HashSet<String>,
    /// The vectors of the batch's topics.
    topic_vectors: &'a HashMap<String, Arc<[f32]>>,
}

async fn cancel(conn: &mut PgConnection, id: i64, why: &str, tally: &Tally) -> anyhow::Result<()> {
    deliveries::mark_closed(conn, id, DeliveryStatus::Cancelled, Some(why)).await?;
    Tally::add(&tally.cancelled);
    Ok(())
}
