//! Ratings: a subscriber's 👍/👎 on papers, and the taste trained from them.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use crate::digest::lexicon::{read_paper, stems};
use crate::digest::taste::{KEPT_RATINGS, RatedPaper, TRAINED_RATINGS};
use crate::digest::{MeaningTaste, Taste};
use crate::embeddings::{Embedder, topics};
use crate::store::{lexicon, ratings, vectors};

/// What a subscriber can say about a paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rating {
    Up,
    Down,
    /// Undo: forget the rating.
    Clear,
}

impl Rating {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            "clear" => Some(Self::Clear),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Clear => "clear",
        }
    }

    fn up(self) -> Option<bool> {
        match self {
            Self::Up => Some(true),
            Self::Down => Some(false),
            Self::Clear => None,
        }
    }
}

/// Records a rating and retrains the subscriber's taste, so the next digest and the preview
/// reflect it. Returns the new taste; None when there is no such paper.
pub async fn rate(
    db: &PgPool,
    embedder: &Embedder,
    subscriber: Uuid,
    topics: &[String],
    arxiv_id: &str,
    rating: Rating,
) -> sqlx::Result<Option<Taste>> {
    if !ratings::set(db, subscriber, arxiv_id, rating.up()).await? {
        return Ok(None);
    }
    retrain(db, embedder, subscriber, topics).await.map(Some)
}

/// Trains and stores the subscriber's taste from all their ratings and their topics.
pub async fn retrain(
    db: &PgPool,
    embedder: &Embedder,
    subscriber: Uuid,
    topics: &[String],
) -> sqlx::Result<Taste> {
    let rated = ratings::for_training(db, subscriber, KEPT_RATINGS, TRAINED_RATINGS).await?;
    let taste = if rated.is_empty() {
        Taste::default()
    } else {
        // Stemming and training are CPU work: off the async runtime, where they would hold
        // up every request on this worker thread.
        let (rated, topic_list) = (Arc::new(rated), topics.to_vec());
        let (r, t) = (rated.clone(), topic_list.clone());
        let needed = blocking(move || {
            let mut needed: HashSet<String> = t.iter().flat_map(|t| stems(t)).collect();
            for r in r.iter().take(TRAINED_RATINGS) {
                needed.extend(read_paper(&r.title, &r.abstract_text, &r.keywords).terms);
            }
            needed.into_iter().collect::<Vec<_>>()
        })
        .await?;
        let lexicon = lexicon::load(db, &needed).await?;
        let (r, t) = (rated.clone(), topic_list.clone());
        let mut taste = blocking(move || Taste::train(&r, &t, &lexicon)).await?;
        taste.meaning = train_meaning(db, embedder, &rated, topics).await?;
        taste
    };
    ratings::save_taste(db, subscriber, &taste).await?;
    Ok(taste)
}

/// Runs CPU-bound work on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> sqlx::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("training stopped: {e}")))
}

/// The taste in the embedding space, from the rated papers that have vectors of the ready
/// model (none before it is ready).
async fn train_meaning(
    db: &PgPool,
    embedder: &Embedder,
    rated: &[RatedPaper],
    topic_list: &[String],
) -> sqlx::Result<Option<MeaningTaste>> {
    let Some(model) = embedder.ready_model() else { return Ok(None) };
    // Only the papers training reads need their vectors.
    let ids: Vec<String> = rated.iter().take(TRAINED_RATINGS).map(|r| r.arxiv_id.clone()).collect();
    let found = vectors::of_papers(db, &model, &ids).await?;
    if let Err(e) = topics::ensure(db, embedder, topic_list).await {
        tracing::warn!(error = %e, "could not embed the subscriber's topics");
    }
    let topic_vectors = topics::stored(db, embedder, topic_list).await?;
    let topic_vectors: Vec<&[f32]> = topic_vectors.values().map(|v| &v[..]).collect();
    Ok(MeaningTaste::from_ratings(&model, rated, &found, &topic_vectors))
}
