//! Paper vectors: computing the ones the configured model lacks, a batch at a time. A batch
//! is claimed, embedded and stored in one transaction, so a kill loses at most the batch in
//! flight and no paper is embedded twice, however many embedders run (`serve`'s worker on
//! several instances, `paperboy embed`, `paperboy send`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{EmbedError, Embedder, paper_text};
use crate::store::vectors;

/// Papers per transaction: a few seconds of work on two cores.
pub const BATCH: i64 = 16;
/// How long a run waits for papers another embedder is working on (a few batches).
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EmbedPapersError {
    #[error("the embedding model is not ready")]
    NotReady,
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("storing vectors: {0}")]
    Database(#[from] sqlx::Error),
}

/// Which papers a run covers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// Only these (an edition's papers); None: every paper.
    pub only: Option<&'a [String]>,
    /// Also papers whose vector is older than this (`paperboy embed --all`).
    pub since: Option<DateTime<Utc>>,
}

impl Scope<'_> {
    /// Papers that have no vector of the model.
    pub fn missing() -> Self {
        Self::default()
    }
}

/// Claims, embeds and stores one batch. Returns how many papers it embedded (0: none left
/// that another embedder is not already working on).
pub async fn embed_batch(
    db: &PgPool,
    embedder: &Embedder,
    scope: Scope<'_>,
) -> Result<usize, EmbedPapersError> {
    let model = embedder.ready_model().ok_or(EmbedPapersError::NotReady)?;
    let mut tx = db.begin().await?;
    let mut papers =
        vectors::claim_unembedded(&mut tx, &model, scope.since, scope.only, BATCH).await?;
    // The claim's snapshot predates its locks: a paper another embedder stored (and let go
    // of) meanwhile looks missing to it. A new statement sees that paper's vector.
    let ids: Vec<String> = papers.iter().map(|p| p.arxiv_id.clone()).collect();
    let done = vectors::embedded_among(&mut tx, &model, scope.since, &ids).await?;
    papers.retain(|p| !done.contains(&p.arxiv_id));
    if papers.is_empty() {
        return Ok(0);
    }
    let texts = papers.iter().map(|p| paper_text(&p.title, &p.abstract_text)).collect();
    let computed = embedder.embed_in_background(texts).await?.ok_or(EmbedPapersError::NotReady)?;
    let rows: Vec<(String, Vec<f32>)> =
        papers.into_iter().map(|p| p.arxiv_id).zip(computed).collect();
    vectors::save_papers(&mut tx, &model, &rows).await?;
    tx.commit().await?;
    embedder.vectors_changed();
    metrics::counter!("paperboy_papers_embedded_total").increment(rows.len() as u64);
    Ok(rows.len())
}

/// Embeds every paper of `scope` that lacks a vector, reporting each batch to `progress`;
/// papers another embedder holds are waited for. Returns how many this run embedded.
pub async fn embed_all(
    db: &PgPool,
    embedder: &Embedder,
    scope: Scope<'_>,
    shutdown: &CancellationToken,
    mut progress: impl FnMut(usize),
) -> Result<u64, EmbedPapersError> {
    let model = embedder.ready_model().ok_or(EmbedPapersError::NotReady)?;
    let mut done = 0u64;
    let mut waiting_since: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let n = embed_batch(db, embedder, scope).await?;
        if n > 0 {
            done += n as u64;
            waiting_since = None;
            progress(n);
            continue;
        }
        if vectors::count_unembedded(db, &model, scope.since, scope.only).await? == 0 {
            break;
        }
        // Another embedder holds the rest: its batches land within seconds.
        let waited = waiting_since.get_or_insert_with(Instant::now);
        if waited.elapsed() > WAIT_FOR_OTHERS {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    Ok(done)
}
