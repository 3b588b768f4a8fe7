//! Ratings: a subscriber's 👍/👎 on papers, and the taste trained from them.

use std::collections::HashSet;

use sqlx::PgPool;
use uuid::Uuid;

use crate::digest::Taste;
use crate::digest::lexicon::{read_paper, stems};
use crate::store::{lexicon, ratings};

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
    subscriber: Uuid,
    topics: &[String],
    arxiv_id: &str,
    rating: Rating,
) -> sqlx::Result<Option<Taste>> {
    if !ratings::set(db, subscriber, arxiv_id, rating.up()).await? {
        return Ok(None);
    }
    retrain(db, subscriber, topics).await.map(Some)
}

/// Trains and stores the subscriber's taste from all their ratings and their topics.
pub async fn retrain(db: &PgPool, subscriber: Uuid, topics: &[String]) -> sqlx::Result<Taste> {
    let rated = ratings::for_training(db, subscriber).await?;
    let taste = if rated.is_empty() {
        Taste::default()
    } else {
        let mut needed: HashSet<String> = topics.iter().flat_map(|t| stems(t)).collect();
        for r in &rated {
            needed.extend(read_paper(&r.title, &r.abstract_text, &r.keywords).terms);
        }
        let lexicon = lexicon::load(db, &needed.into_iter().collect::<Vec<_>>()).await?;
        Taste::train(&rated, topics, &lexicon)
    };
    ratings::save_taste(db, subscriber, &taste).await?;
    Ok(taste)
}
