//! Ingest runs: fetch a source, store a day atomically, record the run.

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::PgPool;
use url::Url;

use crate::config::Settings;
use crate::domain::FetchedPaper;
use crate::domain::lexicon::{PaperTerms, read_paper};
use crate::papers::sources::{self, Fetcher, SourceError, Throttle};
use crate::store::ingest_runs::{self, Counts};
use crate::store::lexicon;
use crate::store::papers::{self, Upserted};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Huggingface,
    Arxiv,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Huggingface => "huggingface",
            Self::Arxiv => "arxiv",
        }
    }
}

/// Who started a run.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    Cli,
    Scheduler,
    Admin,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Scheduler => "scheduler",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{source_name}: {error}")]
    Source { source_name: &'static str, error: SourceError },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The outcome of one successful run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub source: Source,
    pub day: NaiveDate,
    pub counts: Counts,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: fetched {}, new {}, updated {}",
            self.source.as_str(),
            self.day,
            self.counts.fetched,
            self.counts.inserted,
            self.counts.updated
        )
    }
}

/// The upstreams, with one shared client and arXiv's per-process throttle.
pub struct Sources {
    fetcher: Fetcher,
    arxiv_throttle: Throttle,
    hf_url: Url,
    arxiv_url: Url,
    arxiv_api_url: Url,
    arxiv_categories: Vec<String>,
}

impl Sources {
    pub fn from_settings(settings: &Settings) -> Arc<Self> {
        Arc::new(Self {
            fetcher: Fetcher::new(settings.sources.fetch),
            arxiv_throttle: Throttle::new(sources::arxiv::REQUEST_INTERVAL),
            hf_url: settings.sources.hf_url.clone(),
            arxiv_url: settings.sources.arxiv_url.clone(),
            arxiv_api_url: settings.sources.arxiv_api_url.clone(),
            arxiv_categories: settings.sources.arxiv_categories.clone(),
        })
    }
}

impl Sources {
    /// These papers from arXiv's query API, in one request (the "papers like these" queue uses it).
    pub async fn arxiv_papers(&self, ids: &[String]) -> Result<Vec<FetchedPaper>, SourceError> {
        sources::arxiv::fetch_by_ids(&self.fetcher, &self.arxiv_api_url, ids).await
    }
}

fn tally(counts: &mut Counts, outcome: Upserted) {
    match outcome {
        Upserted::Inserted => counts.inserted += 1,
        Upserted::Updated => counts.updated += 1,
        Upserted::Unchanged => {}
    }
}

/// Reads papers for the lexicon (stemming is CPU work) on the blocking pool while they
/// are being stored.
fn read_in_background(
    papers: impl Iterator<Item = (String, String, Vec<String>)>,
) -> tokio::task::JoinHandle<Vec<PaperTerms>> {
    let papers: Vec<_> = papers.collect();
    tokio::task::spawn_blocking(move || {
        papers.iter().map(|(title, abs, keywords)| read_paper(title, abs, keywords)).collect()
    })
}

/// The lexicon counts a paper once, when it is first stored.
fn only_inserted(
    read: Result<Vec<PaperTerms>, tokio::task::JoinError>,
    inserted: &[bool],
) -> Vec<PaperTerms> {
    let read = read.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    read.into_iter().zip(inserted).filter(|(_, new)| **new).map(|(t, _)| t).collect()
}

async fn finish(
    db: &PgPool,
    run: i64,
    source: Source,
    result: Result<(NaiveDate, Counts), IngestError>,
) -> Result<Summary, IngestError> {
    match result {
        Ok((day, counts)) => {
            ingest_runs::succeed(db, run, day, counts).await?;
            // The new papers teach the lexicon their words and acronyms. A failure here
            // loses nothing: the next run reads whatever is still unread.
            match lexicon::index_new(db).await {
                Ok(0) => {}
                Ok(read) => tracing::info!(papers = read, "lexicon updated"),
                Err(e) => {
                    tracing::warn!(error = %e, "lexicon not updated; the next ingest retries")
                }
            }
            metrics::counter!("paperboy_ingest_runs_total", "source" => source.as_str(), "status" => "succeeded")
                .increment(1);
            let summary = Summary { source, day, counts };
            tracing::info!(%summary, "ingest succeeded");
            Ok(summary)
        }
        Err(e) => {
            tracing::warn!(source = source.as_str(), error = ?e.to_string(), "ingest failed");
            ingest_runs::fail(db, run, &e.to_string()).await?;
            metrics::counter!("paperboy_ingest_runs_total", "source" => source.as_str(), "status" => "failed")
                .increment(1);
            Err(e)
        }
    }
}

/// Ingests every paper Hugging Face featured on `day`, all pages in one transaction.
#[tracing::instrument(skip(db, sources), fields(%day))]
pub async fn huggingface(
    db: &PgPool,
    sources: &Sources,
    day: NaiveDate,
    trigger: Trigger,
) -> Result<Summary, IngestError> {
    let run =
        ingest_runs::start(db, Source::Huggingface.as_str(), Some(day), trigger.as_str()).await?;
    let result = async {
        let papers = sources::huggingface::fetch_day(&sources.fetcher, &sources.hf_url, day)
            .await
            .map_err(|error| IngestError::Source { source_name: "huggingface", error })?;
        let mut counts = Counts { fetched: papers.len() as i32, ..Counts::default() };
        let read = read_in_background(
            papers
                .iter()
                .map(|p| (p.title.clone(), p.abstract_text.clone(), p.ai_keywords.clone())),
        );
        let mut tx = db.begin().await?;
        let mut inserted = Vec::new();
        for p in &papers {
            let outcome = papers::upsert_featured(&mut tx, p).await?;
            inserted.push(outcome == Upserted::Inserted);
            tally(&mut counts, outcome);
        }
        lexicon::count(&mut tx, &only_inserted(read.await, &inserted)).await?;
        tx.commit().await?;
        Ok((day, counts))
    }
    .await;
    finish(db, run, Source::Huggingface, result).await
}

/// Ingests the current arXiv announcement for the configured categories. The feed only
/// ever holds the latest announcement; its own date is the day recorded.
#[tracing::instrument(skip(db, sources))]
pub async fn arxiv(
    db: &PgPool,
    sources: &Sources,
    trigger: Trigger,
) -> Result<Summary, IngestError> {
    let run = ingest_runs::start(db, Source::Arxiv.as_str(), None, trigger.as_str()).await?;
    let result = async {
        let feed = sources::arxiv::fetch_feed(
            &sources.fetcher,
            &sources.arxiv_throttle,
            &sources.arxiv_url,
            &sources.arxiv_categories,
        )
        .await
        .map_err(|error| IngestError::Source { source_name: "arxiv", error })?;
        let mut counts = Counts { fetched: feed.papers.len() as i32, ..Counts::default() };
        let read = read_in_background(
            feed.papers.iter().map(|p| (p.title.clone(), p.abstract_text.clone(), Vec::new())),
        );
        let mut tx = db.begin().await?;
        let mut inserted = Vec::new();
        for p in &feed.papers {
            let outcome = papers::upsert_announced(&mut tx, p).await?;
            inserted.push(outcome == Upserted::Inserted);
            tally(&mut counts, outcome);
        }
        lexicon::count(&mut tx, &only_inserted(read.await, &inserted)).await?;
        tx.commit().await?;
        Ok((feed.day, counts))
    }
    .await;
    finish(db, run, Source::Arxiv, result).await
}

/// Which sources one ingest covers (`paperboy ingest --source`, the dashboard's form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Selection {
    Huggingface,
    Arxiv,
    All,
}

impl Selection {
    /// `huggingface`, `arxiv`, or `all` (also empty): as the CLI and the dashboard name them.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "huggingface" => Some(Self::Huggingface),
            "arxiv" => Some(Self::Arxiv),
            "" | "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// Ingests Hugging Face's featured `day`, then arXiv's latest announcement, as `selection`
/// says. Each source's outcome, in that order: one failing does not stop the other.
pub async fn selected(
    db: &PgPool,
    sources: &Sources,
    selection: Selection,
    day: NaiveDate,
    trigger: Trigger,
) -> Vec<Result<Summary, IngestError>> {
    let mut outcomes = Vec::new();
    if selection != Selection::Arxiv {
        outcomes.push(huggingface(db, sources, day, trigger).await);
    }
    if selection != Selection::Huggingface {
        outcomes.push(arxiv(db, sources, trigger).await);
    }
    outcomes
}
