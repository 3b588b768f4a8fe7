//! Delivering editions (`plan.rs` plans them: who gets which edition). Workers claim
//! batches of deliveries (`FOR UPDATE SKIP LOCKED`, marked with their connection's backend
//! pid), compose each subscriber's digest, send it, and record the outcome row by row (by
//! the rules of `mail::queue`), so a crash loses nothing and repeats at most the message in
//! flight. `drain` works through a scope and returns (`paperboy send`, the admin's send);
//! `digests::workers` runs the long-lived workers of `serve`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bounces::{self, Inbound};
use crate::digests::ranking::{EditionCache, EditionData, Interests, Taste};
use crate::digests::{DigestLinks, render};
use crate::domain::{Links, Preferences, Sent};
use crate::embeddings::{Embedder, topics};
use crate::mail::queue::{self, Batch, Digests, Settled};
use crate::mail::{Draft, Mailer, RetryPolicy};
use crate::store::deliveries::{self, Claimed, DeliveryStatus, Scope};
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
        let queue = Digests(scope.clone());
        let Some(mut batch) =
            Batch::claim(&queue, conn, &self.db, self.lease, BATCH, self.policy).await?
        else {
            return Ok(0);
        };
        let claimed = batch.len();
        let mut data = self.batch_data(conn, batch.iter().collect()).await?;
        while let Some(delivery) = batch.next(&queue, conn, shutdown).await? {
            let edition = data.editions.get(&delivery.edition_id).cloned().flatten();
            let subscriber = data.recipient(&delivery);
            self.deliver(conn, &queue, &delivery, subscriber, edition.as_deref(), tally).await?;
        }
        for _ in 0..batch.gave_up() {
            count_failed(tally);
        }
        Ok(claimed)
    }

    /// Loads what the batch's digests need, once for the batch.
    async fn batch_data(
        &self,
        conn: &mut PgConnection,
        batch: Vec<&Claimed>,
    ) -> anyhow::Result<BatchData> {
        let ids: Vec<Uuid> = batch.iter().filter_map(|c| c.subscriber_id).collect();
        let rows: HashMap<Uuid, SubscriberRow> =
            subscribers::find_many(conn, &ids).await?.into_iter().map(|r| (r.id, r)).collect();
        let tastes = ratings::tastes(conn, &ids).await?;
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
        Ok(BatchData { rows, tastes, sent, topic_vectors, editions })
    }

    /// Delivers one claimed digest in a transaction that holds its queue row (`hold`), and
    /// then acts on a refusal that says the address is dead.
    #[tracing::instrument(name = "deliver_digest", skip_all, fields(delivery = claimed.id, attempt = claimed.attempts))]
    async fn deliver(
        &self,
        conn: &mut PgConnection,
        queue: &Digests,
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
        let refused = match (status, subscriber, edition) {
            // An unsubscribe takes effect at once, also for digests already queued.
            (Some(Status::Confirmed), Some(subscriber), Some(edition)) => {
                self.deliver_held(&mut tx, queue, claimed, subscriber, edition, tally).await?
            }
            (Some(_), Some(_), Some(_)) => {
                cancel(&mut tx, claimed.id, "subscriber is no longer subscribed", tally).await?;
                None
            }
            _ => {
                let why = "subscriber or edition no longer exists";
                cancel(&mut tx, claimed.id, why, tally).await?;
                None
            }
        };
        tx.commit().await?;
        if let Some(reply) = refused {
            bounces::refused_at_send(&self.db, &self.inbound, Sent::Delivery(claimed.id), &reply)
                .await?;
        }
        Ok(())
    }

    /// Ranks and renders one digest for a subscriber still subscribed, then posts it to
    /// their feed or sends it; returns the reply of a permanent refusal.
    async fn deliver_held(
        &self,
        conn: &mut PgConnection,
        queue: &Digests,
        claimed: &Claimed,
        subscriber: Recipient<'_>,
        edition: &EditionData,
        tally: &Tally,
    ) -> anyhow::Result<Option<String>> {
        let row = subscriber.row;
        let prefs = row.preferences();
        let Some(digest) = self.compose(claimed.id, subscriber, &prefs, edition)? else {
            let why = Some("nothing matched");
            deliveries::mark_closed(conn, claimed.id, DeliveryStatus::Skipped, why).await?;
            Tally::add(&tally.skipped);
            return Ok(None);
        };
        if !prefs.frequency.mailed() {
            deliveries::mark_delivered(conn, claimed.id, None, &digest.record).await?;
            Tally::add(&tally.posted);
            tracing::info!(papers = digest.papers(), "digest posted to the subscriber's feed");
            return Ok(None);
        }
        let headers = [
            ("List-Unsubscribe", format!("<{}>", digest.unsubscribe)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()),
            ("List-Id", self.mailer.list_id()),
            ("X-Paperboy-Edition", edition.edition.label()),
        ];
        let (papers, sent) = (digest.papers(), Sent::Delivery(claimed.id));
        let receipt = (self.mailer.new_message_id(sent), digest.record);
        let outcome = self
            .mailer
            .send(&row.email, &digest.draft, &receipt.0, &headers, sent)
            .await
            .map(|()| &receipt);
        let settled = queue::settle(queue, conn, claimed, outcome, &self.policy).await?;
        Ok(count(tally, settled, papers))
    }

    /// Ranks the edition for a subscriber and renders their digest; `None` when nothing
    /// matched.
    fn compose(
        &self,
        id: i64,
        subscriber: Recipient<'_>,
        prefs: &Preferences,
        edition: &EditionData,
    ) -> anyhow::Result<Option<Composed>> {
        let Recipient { row, taste, sent, topic_vectors } = subscriber;
        let exclude: HashSet<&str> = sent.iter().map(String::as_str).collect();
        let interests = Interests::for_subscriber(prefs, taste).with_topic_vectors(topic_vectors);
        let picks = edition.set.rank(&interests, &exclude);
        if picks.is_empty() {
            return Ok(None);
        }
        let items = render::items(&edition.set, &picks);
        let links = DigestLinks::for_delivery(&self.links, &row.id, id);
        let draft = render::render(&edition.edition, &items, &links)?;
        let record = deliveries::Delivered {
            subject: draft.subject.clone(),
            paper_ids: items.iter().map(|i| i.arxiv_id.clone()).collect(),
            why: items.iter().map(|i| i.why.clone()).collect(),
        };
        Ok(Some(Composed { draft, unsubscribe: links.unsubscribe, record }))
    }
}

/// What a batch's digests need, loaded once for the batch.
struct BatchData {
    rows: HashMap<Uuid, SubscriberRow>,
    tastes: HashMap<Uuid, Taste>,
    /// The papers of the batch's editions each subscriber already had.
    sent: HashMap<Uuid, HashSet<String>>,
    /// The vectors of the batch's topics.
    topic_vectors: HashMap<String, Arc<[f32]>>,
    editions: HashMap<i64, Option<Arc<EditionData>>>,
}

impl BatchData {
    /// The delivery's subscriber, when they still exist.
    fn recipient(&mut self, delivery: &Claimed) -> Option<Recipient<'_>> {
        let row = self.rows.get(&delivery.subscriber_id?)?;
        let taste = self.tastes.remove(&row.id).unwrap_or_default();
        let sent = self.sent.remove(&row.id).unwrap_or_default();
        Some(Recipient { row, taste, sent, topic_vectors: &self.topic_vectors })
    }
}

/// A digest ready to go: the message, its unsubscribe link, and its record (the papers,
/// each with its why-line).
struct Composed {
    draft: Draft,
    unsubscribe: String,
    record: deliveries::Delivered,
}

impl Composed {
    fn papers(&self) -> usize {
        self.record.paper_ids.len()
    }
}

/// Counts a send's outcome; returns the reply of a permanent refusal.
fn count(tally: &Tally, settled: Settled, papers: usize) -> Option<String> {
    match settled {
        Settled::Sent => {
            Tally::add(&tally.sent);
            metrics::counter!("paperboy_digests_sent_total").increment(1);
            tracing::info!(papers, "digest sent");
            None
        }
        Settled::Retrying(_) => {
            Tally::add(&tally.retrying);
            metrics::counter!("paperboy_digest_retries_total").increment(1);
            None
        }
        Settled::GaveUp(refusal) => {
            count_failed(tally);
            refusal
        }
    }
}

fn count_failed(tally: &Tally) {
    Tally::add(&tally.failed);
    metrics::counter!("paperboy_digests_failed_total").increment(1);
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
