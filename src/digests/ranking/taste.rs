//! A subscriber's taste, learned from their 👍/👎: a Rocchio profile over the TF-IDF stems of
//! the papers they rated, with their typed topics as one more paper they liked, and how far
//! to trust each typed topic. `training.rs` trains it; ranking reads it. Pure.

use serde::{Deserialize, Serialize};

use super::meaning::MeaningTaste;

/// The stored model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Taste {
    /// (stem, weight, index into `liked` of the rated paper that weighs most in it, or -1
    /// when it comes from the topics or weighs against). Unit length, strongest first.
    pub terms: Vec<(String, f32, i16)>,
    /// Papers rated up, (arXiv id, title), most recent first: the "why" names them.
    pub liked: Vec<(String, String)>,
    /// Papers rated down: never sent again.
    pub rejected: Vec<String>,
    /// Typed topics the ratings trust less than fully, with their trust (0–1): twice the
    /// share of the rated papers the topic matches that were rated up, smoothed, at most 1.
    #[serde(default)]
    pub topic_trust: Vec<(String, f32)>,
    /// The same ratings in the sentence-embedding space, when their papers had vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<MeaningTaste>,
}

impl Taste {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.rejected.is_empty() && self.meaning.is_none()
    }

    /// How much a typed topic's matches count (1: as typed).
    pub fn topic_trust(&self, topic: &str) -> f64 {
        self.topic_trust.iter().find(|(t, _)| t == topic).map_or(1.0, |(_, w)| f64::from(*w))
    }
}
