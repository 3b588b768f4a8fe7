//! Digests: editions, ranking (pure), rendering (pure), and composing one reader's email.

pub mod edition;
pub mod rank;
pub mod render;

pub use edition::Edition;
pub use rank::{Candidate, CandidateSet, Interests, Pick, Reason};
pub use render::{DigestItem, DigestLinks};

use crate::domain::Preferences;

impl Interests {
    pub fn from_preferences(p: &Preferences) -> Self {
        Self {
            topics: p.topics.items().to_vec(),
            categories: p.categories.items().to_vec(),
            authors: p.authors.items().to_vec(),
            min_upvotes: p.min_upvotes,
            limit: p.papers_per_email.clamp(1, 50) as usize,
        }
    }
}
