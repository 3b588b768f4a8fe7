//! The indexed candidates of recent editions, shared by the delivery workers, `paperboy
//! send`, the preferences page's live preview and the admin preview. The one part of
//! `ranking/` that reads the store: an edition is loaded once and kept for a few minutes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::OnceCell;

use super::{CandidateSet, Edition, Vectors};
use crate::domain::lexicon::read_paper;
use crate::embeddings::Embedder;
use crate::store::{editions, lexicon, vectors};

/// Editions kept indexed in memory; older ones are rebuilt on demand.
const CACHED_EDITIONS: usize = 8;
/// Papers keep arriving and upvotes keep growing: an index is rebuilt after this long.
const EDITION_TTL: Duration = Duration::from_secs(600);
/// New vectors (the model became ready, papers were embedded) are read at most this often.
const VECTORS_TTL: Duration = Duration::from_secs(20);

/// An edition's candidates, indexed for ranking.
pub struct EditionData {
    pub edition: Edition,
    pub set: CandidateSet,
    /// The candidates' arXiv ids, in the set's order.
    pub ids: Vec<String>,
}

struct Slot {
    created: Instant,
    /// The embedder's generation when it was loaded.
    generation: u64,
    data: OnceCell<Arc<EditionData>>,
}

impl Slot {
    fn fresh(&self, generation: u64) -> bool {
        let age = self.created.elapsed();
        age < EDITION_TTL && (self.generation == generation || age < VECTORS_TTL)
    }
}

pub struct EditionCache {
    db: PgPool,
    embedder: Arc<Embedder>,
    slots: std::sync::Mutex<HashMap<Edition, Arc<Slot>>>,
}

impl EditionCache {
    pub fn new(db: PgPool, embedder: Arc<Embedder>) -> Arc<Self> {
        Arc::new(Self { db, embedder, slots: Default::default() })
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// The edition's candidates, indexed. The map's lock is held only to find the edition's
    /// slot: a load (a few hundred milliseconds for a week's edition) makes only the callers
    /// of that same edition wait, once.
    pub async fn get(&self, edition: Edition) -> sqlx::Result<Arc<EditionData>> {
        let generation = self.embedder.generation();
        let slot = {
            let mut slots = self.slots.lock().expect("the edition cache lock");
            match slots.get(&edition) {
                Some(slot) if slot.fresh(generation) => slot.clone(),
                _ => {
                    if slots.len() >= CACHED_EDITIONS {
                        slots.retain(|_, s| s.fresh(generation));
                        if slots.len() >= CACHED_EDITIONS {
                            slots.clear();
                        }
                    }
                    let slot = Arc::new(Slot {
                        created: Instant::now(),
                        generation,
                        data: OnceCell::new(),
                    });
                    slots.insert(edition, slot.clone());
                    slot
                }
            }
        };
        slot.data.get_or_try_init(|| load(&self.db, &self.embedder, edition)).await.cloned()
    }
}

async fn load(
    db: &PgPool,
    embedder: &Embedder,
    edition: Edition,
) -> sqlx::Result<Arc<EditionData>> {
    let candidates = editions::candidates(db, &edition).await?;
    let ids: Vec<String> = candidates.iter().map(|c| c.arxiv_id.clone()).collect();
    let stems: HashSet<String> = candidates
        .iter()
        .flat_map(|c| read_paper(&c.title, &c.abstract_text, &c.ai_keywords).terms)
        .collect();
    let lexicon = lexicon::load(db, &stems.into_iter().collect::<Vec<_>>()).await?;
    let mut set = CandidateSet::new(candidates, &lexicon);
    // Until the model is ready, and for a model that cannot be had, ranking stays literal.
    if let (Some(model), Some(encoder)) = (embedder.ready_model(), embedder.encoder()) {
        let mut found = vectors::of_papers(db, &model, &ids).await?;
        let rows = ids.iter().map(|id| found.remove(id)).collect();
        set = set.with_vectors(Vectors::new(model, encoder.dim(), rows));
    }
    Ok(Arc::new(EditionData { edition, set, ids }))
}
