//! Ratings: a subscriber's 👍/👎 on papers, and the taste trained from them; "papers like
//! these" (`examples`) and a reference library (`library`) teach it too.

pub mod examples;
pub mod library;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::digests::ranking::training::{KEPT_RATINGS, StemmedPaper, TRAINED_RATINGS};
use crate::digests::ranking::{Lexicon, MeaningTaste, Taste};
use crate::domain::RatedPaper;
use crate::domain::lexicon::stems;
use crate::embeddings::{Embedder, topics};
use crate::store::{self, lexicon, ratings, vectors};

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

/// What retraining a taste needs: the database, the model, and this process's memory of
/// the lexicon's document frequencies.
#[derive(Clone)]
pub struct Trainer {
    pub db: PgPool,
    pub embedder: Arc<Embedder>,
    frequencies: Arc<Frequencies>,
    cpu: Arc<tokio::sync::Semaphore>,
}

impl Trainer {
    pub fn new(db: PgPool, embedder: Arc<Embedder>) -> Self {
        let (frequencies, cpu) = (Default::default(), Arc::new(tokio::sync::Semaphore::new(1)));
        Self { db, embedder, frequencies, cpu }
    }

    /// Records a rating and retrains the subscriber's taste, so the next digest and the
    /// preview reflect it. Returns the new taste; None when there is no such paper.
    pub async fn rate(
        &self,
        subscriber: Uuid,
        topics: &[String],
        arxiv_id: &str,
        rating: Rating,
    ) -> sqlx::Result<Option<Taste>> {
        if !ratings::set(&self.db, subscriber, arxiv_id, rating.up()).await? {
            return Ok(None);
        }
        self.retrain(subscriber, topics).await.map(Some)
    }

    /// Trains and stores the subscriber's taste from their latest ratings and their topics.
    pub async fn retrain(&self, subscriber: Uuid, topics: &[String]) -> sqlx::Result<Taste> {
        let db = &self.db;
        let rated = ratings::for_training(db, subscriber, KEPT_RATINGS, TRAINED_RATINGS).await?;
        let taste = if rated.is_empty() {
            Taste::default()
        } else {
            // Stemming and training are CPU work: off the async runtime, where they would
            // hold up every request on this worker thread.
            let (rated, topic_list) = (Arc::new(rated), topics.to_vec());
            let (r, t) = (rated.clone(), topic_list.clone());
            let (stemmed, needed) = self
                .blocking(move || {
                    let stemmed = StemmedPaper::of_training(&r);
                    let mut needed: HashSet<&String> =
                        stemmed.iter().flat_map(|p| p.all()).collect();
                    let topic_stems: Vec<String> = t.iter().flat_map(|t| stems(t)).collect();
                    needed.extend(&topic_stems);
                    let needed: Vec<String> = needed.into_iter().cloned().collect();
                    (stemmed, needed)
                })
                .await?;
            let lexicon = self.frequencies.lexicon(db, needed, topics).await?;
            let (r, t) = (rated.clone(), topic_list.clone());
            let mut taste =
                self.blocking(move || Taste::train_stemmed(&r, &stemmed, &t, &lexicon)).await?;
            taste.meaning = train_meaning(db, &self.embedder, subscriber, &rated, topics).await?;
            taste
        };
        ratings::save_taste(db, subscriber, (!taste.is_empty()).then_some(&taste)).await?;
        Ok(taste)
    }
}

impl Trainer {
    /// Retrains the tastes that predate the vectors of what their readers liked (see
    /// [`ratings::stale_tastes`]). Returns how many it retrained.
    pub async fn retrain_stale(&self, model: &str) -> sqlx::Result<usize> {
        let stale = ratings::stale_tastes(&self.db, model, 100).await?;
        for (subscriber, topics) in &stale {
            self.retrain(*subscriber, topics).await?;
        }
        Ok(stale.len())
    }
}

/// The lexicon as training reads it, remembered for a while: a subscriber who rates one
/// paper after another retrains on mostly the same words, and the frequencies and acronyms
/// of thousands of papers hardly move between two ingests.
#[derive(Default)]
struct Frequencies {
    memory: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    since: Option<Instant>,
    docs: u32,
    /// Stem → papers with it (0: looked up, never seen).
    df: HashMap<String, u32>,
    /// Short form → long forms, as `Lexicon::acronyms`.
    acronyms: Arc<HashMap<String, Vec<Vec<String>>>>,
}

/// How long the lexicon is remembered before it is read again.
const FREQUENCIES_KEPT: Duration = Duration::from_secs(600);
/// Stems remembered at most; beyond it the memory starts afresh.
const FREQUENCIES_MAX: usize = 200_000;

impl Frequencies {
    /// The lexicon as far as training on `stems` with these topics needs it: the stems'
    /// frequencies, and the acronyms of the topics (topic trust matches them both ways).
    async fn lexicon(
        &self,
        db: &PgPool,
        stems: Vec<String>,
        topics: &[String],
    ) -> sqlx::Result<Lexicon> {
        let (mut df, missing, known) = {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = memory.since.is_some_and(|t| t.elapsed() < FREQUENCIES_KEPT);
            if !fresh || memory.df.len() > FREQUENCIES_MAX {
                *memory = Remembered::default();
            }
            let (mut df, mut missing) = (HashMap::new(), Vec::new());
            for s in stems {
                match memory.df.get(&s) {
                    Some(&n) => _ = df.insert(s, n),
                    None => missing.push(s),
                }
            }
            let known = memory.since.map(|_| (memory.docs, memory.acronyms.clone()));
            (df, missing, known)
        };
        let (docs, acronyms) = match known {
            Some(known) => known,
            None => {
                let mut read = Lexicon::default();
                read.add_acronyms(lexicon::acronyms(db).await?);
                (lexicon::documents(db).await?, Arc::new(read.acronyms))
            }
        };
        let found = match missing.is_empty() {
            true => Vec::new(),
            false => lexicon::frequencies(db, &missing).await?,
        };
        {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            if memory.since.is_none() {
                let since = Some(Instant::now());
                *memory =
                    Remembered { since, docs, df: HashMap::new(), acronyms: acronyms.clone() };
            }
            memory.df.extend(missing.iter().map(|s| (s.clone(), 0)));
            memory.df.extend(found.iter().cloned());
        }
        df.extend(found);
        df.retain(|_, n| *n > 0);
        Ok(Lexicon { docs, df, acronyms: topic_acronyms(&acronyms, topics) })
    }
}

/// The acronyms a subscriber's topics can use: those whose short form is a word of a topic,
/// or whose long form's stems all occur in one.
fn topic_acronyms(
    all: &HashMap<String, Vec<Vec<String>>>,
    topics: &[String],
) -> HashMap<String, Vec<Vec<String>>> {
    let topic_stems: Vec<HashSet<String>> =
        topics.iter().map(|t| stems(t).into_iter().collect()).collect();
    let words: HashSet<String> = topics
        .iter()
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase))
        .collect();
    all.iter()
        .filter(|(short, longs)| {
            words.contains(*short)
                || longs.iter().any(|l| topic_stems.iter().any(|t| l.iter().all(|w| t.contains(w))))
        })
        .map(|(short, longs)| (short.clone(), longs.clone()))
        .collect()
}

impl Trainer {
    /// Runs CPU-bound training work on the blocking pool, one piece at a time per process:
    /// however many ratings arrive at once, training takes one core and leaves the others
    /// to the requests.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> sqlx::Result<T> {
        let _turn = self.cpu.acquire().await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("training stopped: {e}")))
    }
}

/// The taste in the embedding space, from the rated papers that have vectors of the ready
/// model (none before it is ready).
async fn train_meaning(
    db: &PgPool,
    embedder: &Embedder,
    subscriber: Uuid,
    rated: &[RatedPaper],
    topic_list: &[String],
) -> sqlx::Result<Option<MeaningTaste>> {
    let Some(model) = embedder.ready_model() else { return Ok(None) };
    // Only the papers training reads need their vectors.
    let ids: Vec<String> = rated.iter().take(TRAINED_RATINGS).map(|r| r.arxiv_id.clone()).collect();
    let mut found = vectors::of_papers(db, &model, &ids).await?;
    let positions: Vec<i32> = ids.iter().filter_map(|k| ratings::library_position(k)).collect();
    if !positions.is_empty() {
        let entries = store::library::vectors(db, subscriber, &model, &positions).await?;
        found.extend(entries.into_iter().map(|(at, v)| (ratings::library_key(at), v)));
    }
    if let Err(e) = topics::ensure(db, embedder, topic_list).await {
        tracing::warn!(error = %e, "could not embed the subscriber's topics");
    }
    let topic_vectors = topics::stored(db, embedder, topic_list).await?;
    let topic_vectors: Vec<&[f32]> = topic_vectors.values().map(|v| &v[..]).collect();
    Ok(MeaningTaste::from_ratings(&model, rated, &found, &topic_vectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_gets_the_acronyms_of_the_subscribers_topics_both_ways() {
        let mut lexicon = Lexicon::default();
        lexicon.add_acronyms([
            ("llm".to_string(), "larg languag model".to_string(), 9),
            ("rl".to_string(), "reinforc learn".to_string(), 9),
        ]);
        let keys = |topics: &[&str]| {
            let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
            let mut keys: Vec<String> =
                topic_acronyms(&lexicon.acronyms, &topics).into_keys().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&["LLM agents"]), ["llm"]);
        assert_eq!(keys(&["large language models"]), ["llm"]);
        assert_eq!(keys(&["diffusion"]), Vec::<String>::new());
        assert_eq!(keys(&["RL", "large language models"]), ["llm", "rl"]);
    }
}
