//! "Papers like these": a reader names papers they like (pasted ids or links, a paper from
//! a web copy, the arXiv entries of their library) and each counts as a 👍. A paper we do
//! not have is fetched from arXiv's query API by a queue that keeps arXiv's terms (one
//! request at a time, one every 3 s, across all instances), a batch of ids per request.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::ArxivId;
use crate::jobs::worker::{self, Health, Step};
use crate::papers::ingest::Sources;
use crate::ratings::Trainer;
use crate::store::examples::{self as stored, Added, Source};
use crate::store::{papers, subscribers};

/// Papers one paste may name.
pub const MAX_PASTED: usize = 50;
/// Ids asked of arXiv in one request.
const LOOKUP_BATCH: i64 = 50;
/// arXiv's terms: this long between requests, whichever instance makes them.
pub const ARXIV_GAP: Duration = Duration::from_secs(3);
/// A request's turn frees itself after this if its process died during it.
const TURN_HOLD: Duration = Duration::from_secs(90);
/// Claimed lookups fall due again after this if their request never settled them.
const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// A pasted list, read: the papers it names, in order, and what it holds that is not a
/// paper, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pasted {
    pub ids: Vec<String>,
    pub rejected: Vec<(String, &'static str)>,
}

/// Reads a pasted list: ids or links separated by spaces, commas or lines. More than
/// [`MAX_PASTED`] papers is an error; entries that are not arXiv papers are listed back.
pub fn parse_pasted(raw: &str) -> Result<Pasted, String> {
    let too_many = || format!("Please paste at most {MAX_PASTED} papers at a time.");
    if raw.len() > MAX_PASTED * 200 {
        return Err(too_many());
    }
    let mut pasted = Pasted::default();
    for entry in raw.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';')) {
        let entry = entry.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\''));
        if entry.is_empty() {
            continue;
        }
        match ArxivId::from_reference(entry) {
            Some(id) if pasted.ids.iter().any(|i| i == id.as_str()) => {}
            Some(id) => pasted.ids.push(id.as_str().to_string()),
            None => {
                let shown: String = entry.chars().take(80).collect();
                pasted.rejected.push((shown, "not an arXiv id or link"));
            }
        }
    }
    if pasted.ids.len() > MAX_PASTED {
        return Err(too_many());
    }
    Ok(pasted)
}

/// What the service needs to add examples: the database, the trainer (a 👍 retrains the
/// taste at once) and the lookup queue's wake-up.
#[derive(Clone)]
pub struct Examples {
    pub trainer: Trainer,
    pub wake: Arc<Notify>,
}

impl Examples {
    /// Adds papers as the subscriber's examples and retrains their taste when any was
    /// stored; papers we do not have are queued for arXiv.
    pub async fn add(
        &self,
        subscriber: Uuid,
        topics: &[String],
        ids: &[String],
        source: Source,
    ) -> sqlx::Result<Added> {
        if ids.is_empty() {
            return Ok(Added::default());
        }
        let mut tx = self.trainer.db.begin().await?;
        let added = stored::add(&mut tx, subscriber, ids, source).await?;
        tx.commit().await?;
        self.settled(subscriber, topics, &added).await?;
        Ok(added)
    }

    /// After examples were added: retrain for the stored ones, wake the queue for the others.
    pub async fn settled(
        &self,
        subscriber: Uuid,
        topics: &[String],
        added: &Added,
    ) -> sqlx::Result<()> {
        if !added.rated.is_empty() {
            self.trainer.retrain(subscriber, topics).await?;
        }
        if !added.waiting.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// The lookup queue: the database, arXiv, and the trainer for the readers it serves.
pub struct Lookups {
    pub db: PgPool,
    pub sources: Arc<Sources>,
    pub trainer: Trainer,
}

/// Runs the lookup queue in `serve`.
pub fn spawn(
    lookups: Arc<Lookups>,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    worker::spawn("arxiv-lookups", 1, wake, health, shutdown, move || {
        let lookups = lookups.clone();
        async move { lookups.step().await }
    })
}

impl Lookups {
    /// One request's worth: takes arXiv's turn when lookups are due, asks for a batch,
    /// stores what came and settles the batch.
    pub async fn step(&self) -> anyhow::Result<Step> {
        let Some(due) = stored::next_lookup_due(&self.db).await? else {
            return Ok(Step::Idle(None));
        };
        if due > chrono::Utc::now() {
            return Ok(Step::Idle(Some(due)));
        }
        if let Err(at) = stored::take_turn(&self.db, TURN_HOLD).await? {
            return Ok(Step::Idle(Some(at)));
        }
        let ids = stored::claim_lookups(&self.db, LOOKUP_BATCH, CLAIM_LEASE).await?;
        if ids.is_empty() {
            stored::end_turn(&self.db, Duration::ZERO).await?;
            return Ok(Step::Worked);
        }
        let answer = self.sources.arxiv_papers(&ids).await;
        stored::end_turn(&self.db, ARXIV_GAP).await?;
        match answer {
            Ok(found) => self.store(&ids, found).await?,
            Err(e) => {
                tracing::warn!(error = %e, papers = ids.len(), "arXiv's query API failed; trying again later");
                stored::lookups_failed(&self.db, &ids, &e.to_string()).await?;
            }
        }
        Ok(Step::Worked)
    }

    /// Stores the papers arXiv sent, settles the batch and retrains the readers waiting
    /// for them (their vectors follow from the embedding worker).
    async fn store(
        &self,
        asked: &[String],
        found: Vec<crate::domain::FetchedPaper>,
    ) -> anyhow::Result<()> {
        let found: Vec<_> =
            found.into_iter().filter(|p| asked.iter().any(|a| a == p.arxiv_id.as_str())).collect();
        let found_ids: Vec<String> =
            found.iter().map(|p| p.arxiv_id.as_str().to_string()).collect();
        let missing: Vec<String> =
            asked.iter().filter(|a| !found_ids.contains(a)).cloned().collect();
        let mut tx = self.db.begin().await?;
        for paper in &found {
            papers::insert_fetched(&mut tx, paper).await?;
        }
        let readers = stored::settle_lookups(&mut tx, &found_ids, &missing).await?;
        tx.commit().await?;
        tracing::info!(
            found = found_ids.len(),
            missing = missing.len(),
            "looked papers up on arXiv"
        );
        for reader in readers {
            let Some(row) = subscribers::find_by_id(&self.db, reader).await? else { continue };
            self.trainer.retrain(reader, row.preferences().topics.items()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_list_keeps_the_papers_and_lists_the_rest() {
        let pasted = parse_pasted(
            "2511.04570, https://arxiv.org/abs/2511.04460v2\nhuggingface.co/papers/2511.03773\n\
             attention; 2511.04570 <https://arxiv.org/pdf/2511.04670.pdf>",
        )
        .unwrap();
        assert_eq!(pasted.ids, ["2511.04570", "2511.04460", "2511.03773", "2511.04670"]);
        assert_eq!(pasted.rejected, [("attention".to_string(), "not an arXiv id or link")]);
        let many: Vec<String> = (0..=MAX_PASTED).map(|i| format!("2511.{:05}", i)).collect();
        assert!(parse_pasted(&many.join(" ")).is_err());
        assert!(parse_pasted(&"x".repeat(20_000)).is_err());
        assert_eq!(parse_pasted(" \n ").unwrap(), Pasted::default());
    }
}
