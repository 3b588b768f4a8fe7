//! Digests: editions, ranking (pure), what subscribers' ratings teach (pure), rendering
//! (pure), and composing one subscriber's email.

pub mod cache;
pub mod edition;
pub mod lexicon;
pub mod meaning;
mod memo;
pub mod rank;
pub mod render;
pub mod taste;

pub use cache::{EditionCache, EditionData};
pub use edition::Edition;
pub use lexicon::Lexicon;
pub use meaning::{MeaningTaste, Vectors, topic_key};
pub use rank::{Candidate, CandidateSet, Interests, Pick, Reason};
pub use render::{DigestItem, DigestLinks};
pub use taste::Taste;

use crate::domain::{FeaturedPaper, Preferences};

impl From<&FeaturedPaper> for Candidate {
    fn from(p: &FeaturedPaper) -> Self {
        Self {
            arxiv_id: p.arxiv_id.to_string(),
            title: p.title.clone(),
            abstract_text: p.abstract_text.clone(),
            authors: p.authors.clone(),
            categories: Vec::new(),
            ai_keywords: p.ai_keywords.clone(),
            ai_summary: p.ai_summary.clone(),
            upvotes: p.upvotes,
            github_repo: p.github_repo.clone(),
            github_stars: p.github_stars,
            project_page: p.project_page.clone(),
            on_huggingface: true,
        }
    }
}

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
