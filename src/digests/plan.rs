//! Editions from start to finish: which subscribers get which edition, then delivery.

use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::digests::deliver::{Deliverer, Tally};
use crate::digests::ranking::Edition;
use crate::digests::ranking::EditionCache;
use crate::embeddings::{Embedder, papers, topics};
use crate::store::deliveries::{self, Scope};
use crate::store::editions;

/// Why editions could not be planned (who gets what): sending one message fails with
/// `mail::SendError` instead.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("there are no papers yet; run `paperboy ingest` first")]
    NoPapers,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `paperboy send` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSummary {
    pub editions: Vec<String>,
    pub composed: u64,
    pub sent: u64,
    pub posted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub retrying: u64,
    pub cancelled: u64,
}

impl fmt::Display for SendSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "send {}: composed {}, sent {}, skipped empty {}, failed {}, retrying later {}, cancelled {}",
            self.editions.join(" + "),
            self.composed,
            self.sent,
            self.skipped,
            self.failed,
            self.retrying,
            self.cancelled
        )?;
        if self.posted > 0 {
            write!(f, ", posted to feeds {}", self.posted)?;
        }
        Ok(())
    }
}

/// Delivers edition `day` (default: the latest day with papers) to every confirmed daily
/// subscriber who has not had it, and the week ending `day` to weekly subscribers whose weekday it
/// is, ignoring delivery hours. Pending deliveries of these editions, also those waiting
/// for a retry, are attempted once now.
#[tracing::instrument(name = "send", skip_all)]
pub async fn send(
    db: &PgPool,
    deliverer: &Arc<Deliverer>,
    day: Option<NaiveDate>,
    concurrency: usize,
    shutdown: CancellationToken,
) -> Result<SendSummary, PlanError> {
    let day = match day {
        Some(d) => d,
        None => editions::latest_paper_day(db, None).await?.ok_or(PlanError::NoPapers)?,
    };
    let run_started = Utc::now();
    let mut ids = Vec::new();
    let mut labels = Vec::new();
    for edition in [Edition::daily(day), Edition::weekly(day)] {
        let id = editions::ensure(db, &edition).await?;
        let queued = deliveries::create_for_edition(db, id, &edition).await?;
        // A week's papers are embedded only when weekly subscribers get it now.
        if (edition.frequency != crate::domain::Frequency::Weekly || queued > 0)
            && let Err(e) =
                embed_edition(db, deliverer.editions().embedder(), &edition, &shutdown).await
        {
            // Vectors only sharpen the ranking: without them the edition goes out literally.
            tracing::warn!(error = %e, edition = %edition, "could not embed the edition's papers; ranking them literally");
        }
        ids.push(id);
        labels.push(edition.label());
    }
    let tally =
        deliverer.drain(Scope::Editions { ids, run_started }, concurrency, shutdown).await?;
    Ok(summarize(labels, &tally))
}

/// Computes the vectors the edition's papers and the subscribers' topics lack, when the
/// model is ready, so that a send without `serve` running ranks by meaning too.
async fn embed_edition(
    db: &PgPool,
    embedder: &Embedder,
    edition: &Edition,
    shutdown: &CancellationToken,
) -> Result<(), PlanError> {
    if embedder.ready_model().is_none() {
        return Ok(());
    }
    let papers: Vec<String> =
        editions::candidates(db, edition).await?.into_iter().map(|c| c.arxiv_id).collect();
    let scope = papers::Scope { only: Some(&papers), since: None };
    let embedded = papers::embed_all(db, embedder, scope, shutdown, |_| {})
        .await
        .map_err(|e| PlanError::Other(e.into()))?;
    while !shutdown.is_cancelled()
        && topics::embed_missing(db, embedder, 256).await.map_err(|e| PlanError::Other(e.into()))?
            > 0
    {}
    if embedded > 0 {
        tracing::info!(papers = embedded, edition = %edition, "embedded the edition's papers");
    }
    Ok(())
}

fn summarize(editions: Vec<String>, t: &Tally) -> SendSummary {
    let [sent, posted, skipped, failed, retrying, cancelled] =
        [&t.sent, &t.posted, &t.skipped, &t.failed, &t.retrying, &t.cancelled].map(Tally::get);
    SendSummary {
        editions,
        composed: sent + posted + skipped + failed + retrying + cancelled,
        sent,
        posted,
        skipped,
        failed,
        retrying,
        cancelled,
    }
}

/// For the scheduler: queues the latest complete paper day (before today, UTC) for every
/// subscriber whose delivery hour has come. The running delivery worker sends them.
#[tracing::instrument(name = "queue_due_digests", skip_all)]
pub async fn queue_due(db: &PgPool) -> Result<u64, PlanError> {
    let today = Utc::now().date_naive();
    let Some(day) = editions::latest_paper_day(db, Some(today)).await? else { return Ok(0) };
    let mut queued = 0;
    for edition in [Edition::daily(day), Edition::weekly(day)] {
        let id = editions::ensure(db, &edition).await?;
        queued += deliveries::create_due(db, id, &edition).await?;
    }
    if queued > 0 {
        tracing::info!(queued, day = %day, weekday = day.weekday().number_from_monday(), "digests queued");
    }
    Ok(queued)
}

/// What these preferences and this taste would give from the latest paper day (nothing
/// excluded but the papers rated down): the live preview on the preferences page.
pub async fn preview(
    db: &PgPool,
    editions_cache: &EditionCache,
    prefs: &crate::domain::Preferences,
    taste: crate::digests::ranking::Taste,
) -> Result<Option<(Edition, Vec<crate::digests::DigestItem>)>, PlanError> {
    let Some(day) = editions::latest_paper_day(db, None).await? else { return Ok(None) };
    let edition = Edition::of(prefs.frequency, day);
    let data = editions_cache.get(edition).await?;
    let vectors = topics::stored(db, editions_cache.embedder(), prefs.topics.items()).await?;
    let interests = crate::digests::ranking::Interests::for_subscriber(prefs, taste)
        .with_topic_vectors(&vectors);
    let picks = data.set.rank(&interests, &Default::default());
    Ok(Some((edition, crate::digests::render::items(&data.set, &picks))))
}

/// The digest a subscriber would get next: their kind of edition for the latest paper
/// day, without the papers they were already sent (the admin preview).
pub async fn next_digest(
    db: &PgPool,
    editions_cache: &EditionCache,
    subscriber: uuid::Uuid,
) -> Result<Option<(Edition, Vec<crate::digests::DigestItem>)>, PlanError> {
    let mut conn = db.acquire().await?;
    let Some(row) = crate::store::subscribers::find_many(&mut conn, &[subscriber]).await?.pop()
    else {
        return Ok(None);
    };
    let Some(day) = editions::latest_paper_day(db, None).await? else { return Ok(None) };
    let prefs = row.preferences();
    let edition = Edition::of(prefs.frequency, day);
    let data = editions_cache.get(edition).await?;
    let ids: Vec<String> = data.set.candidates().iter().map(|c| c.arxiv_id.clone()).collect();
    let sent: Vec<String> = deliveries::already_sent(&mut conn, &[subscriber], &ids)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let exclude = sent.iter().map(String::as_str).collect();
    let taste = crate::store::ratings::tastes(&mut conn, &[subscriber]).await?.remove(&subscriber);
    let vectors = topics::stored(db, editions_cache.embedder(), prefs.topics.items()).await?;
    let interests =
        crate::digests::ranking::Interests::for_subscriber(&prefs, taste.unwrap_or_default())
            .with_topic_vectors(&vectors);
    let picks = data.set.rank(&interests, &exclude);
    Ok(Some((edition, crate::digests::render::items(&data.set, &picks))))
}
