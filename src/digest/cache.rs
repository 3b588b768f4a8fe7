//! The indexed candidates of recent editions, shared by the delivery workers, `paperboy
//! send`, the preferences page's live preview and the admin preview. The one part of
//! `digest/` that reads the store: an edition is loaded once and kept for a few minutes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::OnceCell;

use super::lexicon::read_paper;
use super::{CandidateSet, Edition};
use crate::store::{editions, lexicon};

/// Editions kept indexed in memory; older ones are rebuilt on demand.
const CACHED_EDITIONS: usize = 8;
/// Papers keep arriving and upvotes keep growing: an index is rebuilt after this long.
const EDITION_TTL: Duration = Duration::from_secs(600);

/// An edition's candidates, indexed for ranking.
pub struct EditionData {
    pub edition: Edition,
    pub set: CandidateSet,
    /// The candidates' arXiv ids, in the set's order.
    pub ids: Vec<String>,
}

struct Slot {
    created: Instant,
    data: OnceCell<Arc<EditionData>>,
}

pub struct EditionCache {
    db: PgPool,
    slots: std::sync::Mutex<HashMap<Edition, Arc<Slot>>>,
}

impl EditionCache {
    pub fn new(db: PgPool) -> Arc<Self> {
        Arc::new(Self { db, slots: Default::default() })
    }

    /// The edition's candidates, indexed. The map's lock is held only to find the edition's
    /// slot: a load (a few hundred milliseconds for a week's edition) makes only the callers
    /// of that same edition wait, once.
    pub async fn get(&self, edition: Edition) -> sqlx::Result<Arc<EditionData>> {
        let slot = {
            let mut slots = self.slots.lock().expect("the edition cache lock");
            match slots.get(&edition) {
                Some(slot) if slot.created.elapsed() < EDITION_TTL => slot.clone(),
                _ => {
                    if slots.len() >= CACHED_EDITIONS {
                        slots.retain(|_, s| s.created.elapsed() < EDITION_TTL);
                        if slots.len() >= CACHED_EDITIONS {
                            slots.clear();
                        }
                    }
                    let slot = Arc::new(Slot { created: Instant::now(), data: OnceCell::new() });
                    slots.insert(edition, slot.clone());
                    slot
                }
            }
        };
        slot.data.get_or_try_init(|| load(&self.db, edition)).await.cloned()
    }
}

async fn load(db: &PgPool, edition: Edition) -> sqlx::Result<Arc<EditionData>> {
    let candidates = editions::candidates(db, &edition).await?;
    let ids = candidates.iter().map(|c| c.arxiv_id.clone()).collect();
    let stems: HashSet<String> = candidates
        .iter()
        .flat_map(|c| read_paper(&c.title, &c.abstract_text, &c.ai_keywords).terms)
        .collect();
    let lexicon = lexicon::load(db, &stems.into_iter().collect::<Vec<_>>()).await?;
    Ok(Arc::new(EditionData { edition, set: CandidateSet::new(candidates, &lexicon), ids }))
}
