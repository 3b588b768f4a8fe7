//! Digests: editions, ranking (pure), what readers' ratings teach (pure), rendering
//! (pure), and composing one reader's email.

pub mod edition;
pub mod lexicon;
pub mod rank;
pub mod render;
pub mod taste;

pub use edition::Edition;
pub use lexicon::Lexicon;
pub use rank::{Candidate, CandidateSet, Interests, Pick, Reason};
pub use render::{DigestItem, DigestLinks};
pub use taste::Taste;

use crate::domain::Preferences;

impl Interests {
    /// What ranking needs from the reader's preferences and the taste their ratings trained.
    pub fn for_reader(p: &Preferences, taste: Taste) -> Self {
        Self {
            topics: p.topics.items().to_vec(),
            categories: p.categories.items().to_vec(),
            authors: p.authors.items().to_vec(),
            min_upvotes: p.min_upvotes,
            limit: p.papers_per_email.clamp(1, 50) as usize,
            trend: f64::from(p.trend_weight.clamp(0, 100)) / 100.0,
            taste,
        }
    }
}
