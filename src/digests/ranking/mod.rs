//! Ranking: each reader's papers in order (pure), what their ratings teach (pure), by words
//! and by meaning, and the cache of recent editions' candidates.

pub mod cache;
pub mod meaning;
mod memo;
pub mod rank;
pub mod taste;
pub mod training;

pub use crate::domain::Candidate;
pub use crate::domain::Edition;
pub use crate::domain::lexicon::Lexicon;
pub use cache::{EditionCache, EditionData};
pub use meaning::{MeaningTaste, Vectors, topic_key};
pub use rank::{CandidateSet, Interests, Pick, Reason};
pub use taste::Taste;

use crate::domain::Preferences;

impl Interests {
    /// What ranking needs from the subscriber's preferences and the taste their ratings trained.
    pub fn for_subscriber(p: &Preferences, taste: Taste) -> Self {
        Self {
            topics: p.topics.items().to_vec(),
            categories: p.categories.items().to_vec(),
            authors: p.authors.items().to_vec(),
            min_upvotes: p.min_upvotes,
            limit: p.papers_per_email.clamp(1, 50) as usize,
            trend: f64::from(p.trend_weight.clamp(0, 100)) / 100.0,
            taste,
            topic_vectors: Default::default(),
        }
    }

    /// With the vectors of its topics, picked from `known` (by `topic_key`).
    pub fn with_topic_vectors(
        mut self,
        known: &std::collections::HashMap<String, std::sync::Arc<[f32]>>,
    ) -> Self {
        self.topic_vectors = self
            .topics
            .iter()
            .filter_map(|t| {
                let key = topic_key(t);
                known.get(&key).map(|v| (key, v.clone()))
            })
            .collect();
        self
    }
}
