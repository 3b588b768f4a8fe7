//! Topic vectors: a topic is embedded once per model, however many subscribers share it,
//! when preferences are saved (and by `serve`'s worker for topics saved before the model
//! was ready). An acronym the papers define is embedded with its long form.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;

use super::{EmbedError, Embedder};
use crate::domain::lexicon::Lexicon;
use crate::store::{lexicon, vectors};

/// Topics are embedded and looked up by their lower-cased text.
pub fn key(topic: &str) -> String {
    topic.to_lowercase()
}

/// What a topic is embedded as: "MoE" alone says little to a model, "MoE (mixtur of
/// expert)" says what the papers mean by it. Long forms are stems, which the model's word
/// pieces read well enough (the relevance benchmark scores the long forms a little
/// higher).
pub fn text(topic: &str, lexicon: &Lexicon) -> String {
    let folded = key(topic);
    match lexicon.acronyms.get(folded.trim()).and_then(|longs| longs.first()) {
        Some(long) => format!("{topic} ({})", long.join(" ")),
        None => topic.to_string(),
    }
}

/// Embeds and stores those of `topics` the ready model has no vector for. Returns how
/// many it embedded (0 also when the model is not ready: the worker catches up later).
pub async fn ensure(
    db: &PgPool,
    embedder: &Embedder,
    topics: &[String],
) -> Result<usize, EnsureError> {
    let Some(model) = embedder.ready_model() else { return Ok(0) };
    let keys: Vec<String> = topics.iter().map(|t| key(t)).collect();
    let known = vectors::of_topics(db, &model, &keys).await?;
    let mut missing: Vec<String> = keys.into_iter().filter(|k| !known.contains_key(k)).collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(0);
    }
    let lexicon = lexicon::load(db, &[]).await?;
    let texts = missing.iter().map(|t| text(t, &lexicon)).collect();
    let Some(computed) = embedder.embed(texts).await? else { return Ok(0) };
    let rows: Vec<(String, Vec<f32>)> = missing.into_iter().zip(computed).collect();
    // Editions keep no topic vectors (ranking reads them per subscriber): nothing to refresh.
    vectors::save_topics(db, &model, &rows).await?;
    Ok(rows.len())
}

/// Embeds up to `limit` of the topics subscribers use that the ready model has no vector
/// for. Returns how many it embedded (0: none left, or no model ready).
pub async fn embed_missing(
    db: &PgPool,
    embedder: &Embedder,
    limit: i64,
) -> Result<usize, EnsureError> {
    let Some(model) = embedder.ready_model() else { return Ok(0) };
    let missing = vectors::unembedded_topics(db, &model, limit).await?;
    if missing.is_empty() {
        return Ok(0);
    }
    ensure(db, embedder, &missing).await
}

#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("topic vectors: {0}")]
    Database(#[from] sqlx::Error),
}

/// The stored vectors of `topics` for the model ranking uses now (none before it is ready),
/// by topic key.
pub async fn stored(
    db: &PgPool,
    embedder: &Embedder,
    topics: &[String],
) -> sqlx::Result<HashMap<String, Arc<[f32]>>> {
    let Some(model) = embedder.ready_model() else { return Ok(HashMap::new()) };
    let keys: Vec<String> = topics.iter().map(|t| key(t)).collect();
    let found = vectors::of_topics(db, &model, &keys).await?;
    Ok(found.into_iter().map(|(k, v)| (k, Arc::from(v))).collect())
}
