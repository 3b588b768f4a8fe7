//! Library vectors: the entries of readers' BibTeX libraries that have no arXiv id are
//! liked by their title and abstract, embedded a batch at a time by `serve`'s worker.

use sqlx::PgPool;

use super::papers::{BATCH, EmbedPapersError};
use super::{Embedder, paper_text};
use crate::store::library;

/// Claims, embeds and stores one batch of entries. Returns how many it embedded.
pub async fn embed_batch(db: &PgPool, embedder: &Embedder) -> Result<usize, EmbedPapersError> {
    let model = embedder.ready_model().ok_or(EmbedPapersError::NotReady)?;
    let mut tx = db.begin().await?;
    let entries = library::claim_unembedded(&mut tx, BATCH).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let texts = entries.iter().map(|(_, _, title, abs)| paper_text(title, abs)).collect();
    let Some(computed) = embedder.embed(texts).await? else {
        return Err(EmbedPapersError::NotReady);
    };
    let rows: Vec<_> =
        entries.into_iter().zip(computed).map(|((s, p, _, _), v)| (s, p, v)).collect();
    library::save_vectors(&mut tx, &model, &rows).await?;
    tx.commit().await?;
    Ok(rows.len())
}
