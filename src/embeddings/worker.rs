//! The embedding worker of `serve`: once the model is ready, it drops the vectors of any
//! other model, then embeds the topics, papers and library entries that lack vectors, a
//! batch at a time, so ingest never waits for the model. Readers who liked what it embedded
//! have their tastes retrained, so that the vectors count at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Embedder;
use crate::embeddings::{library, papers, topics};
use crate::jobs::worker::{self, Health, Step};
use crate::store::{self, vectors};

/// Topics embedded in one step (short texts: one forward pass).
const TOPICS_PER_STEP: i64 = 64;

/// Runs the worker; `embedded(model)` follows every batch embedded (`serve` retrains the
/// tastes of the readers who liked those papers).
pub fn spawn<F, Fut>(
    db: sqlx::PgPool,
    embedder: Arc<Embedder>,
    embedded: F,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = sqlx::Result<()>> + Send,
{
    let tidied = Arc::new(AtomicBool::new(false));
    worker::spawn("embedding", 1, Arc::new(Notify::new()), health, shutdown, move || {
        let (db, embedder, embedded, tidied) =
            (db.clone(), embedder.clone(), embedded.clone(), tidied.clone());
        async move {
            let (db, embedder) = (&db, &*embedder);
            let Some(model) = embedder.ready_model() else { return Ok(Step::Idle(None)) };
            if !tidied.load(Ordering::Relaxed) {
                let gone = vectors::switch_to_model(db, &model).await?
                    + store::library::forget_other_models(db, &model).await?;
                if gone > 0 {
                    tracing::info!(vectors = gone, %model, "deleted the vectors of an earlier model");
                }
                tidied.store(true, Ordering::Relaxed);
            }
            if topics::embed_missing(db, embedder, TOPICS_PER_STEP).await? > 0 {
                return Ok(Step::Worked);
            }
            let batch = match papers::embed_batch(db, embedder, papers::Scope::missing()).await {
                Ok(0) => library::embed_batch(db, embedder).await,
                other => other,
            };
            match batch {
                Ok(0) => Ok(Step::Idle(None)),
                Ok(_) => {
                    embedded(model).await?;
                    Ok(Step::Worked)
                }
                // Not every second on both cores: the next try waits for the next poll.
                Err(e) => {
                    tracing::warn!(error = %e, "embedding a batch of papers failed; trying again later");
                    Ok(Step::Idle(None))
                }
            }
        }
    })
}
