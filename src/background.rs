//! Everything `serve` runs besides answering requests, one function per job: the senders
//! of transactional mail and of digests, the embedding worker and the model loader, the
//! "papers like these" lookups, the archive and its search index, housekeeping, and the
//! scheduled jobs (ingests, queueing due digests).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::jobs::scheduler::{self, Job};
use crate::mail::{Mailer, RetryPolicy, outbox};
use crate::papers::ingest::{self, Trigger};
use crate::store;
use crate::web::AppState;

/// The running jobs; `wait` returns once every one has stopped.
pub struct Background {
    handles: Vec<JoinHandle<()>>,
}

/// Starts every job; they stop when `shutdown` is cancelled.
pub async fn start(
    state: &AppState,
    mailer: &Arc<Mailer>,
    digest_worker: bool,
    shutdown: &CancellationToken,
) -> anyhow::Result<Background> {
    let mut handles = vec![
        mail_senders(state, mailer, shutdown.clone()),
        tokio::spawn(upkeep(state.clone(), shutdown.clone())),
        model_loader(state, shutdown.clone()),
        embedding(state, shutdown.clone()),
        paper_lookups(state, shutdown.clone()),
        tokio::spawn(keep_archive(state.clone(), shutdown.clone())),
        tokio::spawn(keep_index(state.clone(), shutdown.clone())),
    ];
    if digest_worker {
        handles.push(digest_senders(state, shutdown.clone()));
    }
    let jobs = if state.settings.jobs.scheduler { scheduled(state).await? } else { Vec::new() };
    handles.push(tokio::spawn(scheduler::run(state.db.clone(), jobs, shutdown.clone())));
    Ok(Background { handles })
}

impl Background {
    pub async fn wait(self) {
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// Transactional mail takes half the senders: a burst of sign-ups queues mail as fast as it
/// answers, and senders competing with the requests for CPU cost the requests their tail
/// latency.
fn mail_senders(
    state: &AppState,
    mailer: &Arc<Mailer>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let settings = &state.settings;
    let sender = outbox::MailSender {
        links: state.links.clone(),
        confirm_ttl_hours: settings.mail.confirm_ttl.as_secs() / 3600,
        mailer: mailer.clone(),
        policy: RetryPolicy::from_settings(settings),
        inbound: state.inbound.clone(),
        lease: settings.mail.claim_lease,
    };
    outbox::spawn(
        state.db.clone(),
        Arc::new(sender),
        settings.mail.send_concurrency.div_ceil(2),
        state.mail_wake.clone(),
        state.health.clone(),
        shutdown,
    )
}

/// The digest senders: deliveries that are due, as many at once as `send_concurrency`.
fn digest_senders(state: &AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    crate::digests::workers::spawn(
        state.deliverer.clone(),
        state.settings.mail.send_concurrency,
        state.health.clone(),
        shutdown,
    )
}

/// The model downloads and loads in the background: the service answers meanwhile and
/// ranks literally until it is ready.
fn model_loader(state: &AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(state.embedder.clone().load_in_background(shutdown))
}

/// Embeds what lacks vectors; readers who liked what it embedded have their tastes
/// retrained.
fn embedding(state: &AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    let trainer = state.trainer.clone();
    crate::embeddings::worker::spawn(
        state.db.clone(),
        state.embedder.clone(),
        move |model| {
            let trainer = trainer.clone();
            async move { trainer.retrain_stale(&model).await.map(drop) }
        },
        state.health.clone(),
        shutdown,
    )
}

/// Fetches from arXiv the "papers like these" we do not have.
fn paper_lookups(state: &AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    crate::ratings::examples::spawn(
        Arc::new(crate::ratings::examples::Lookups {
            db: state.db.clone(),
            sources: state.sources.clone(),
            trainer: state.trainer.clone(),
        }),
        state.examples.wake.clone(),
        state.health.clone(),
        shutdown,
    )
}

/// The jobs on the configured schedules. On a first start there is nothing to show or
/// send: Hugging Face is ingested at once.
async fn scheduled(state: &AppState) -> anyhow::Result<Vec<Job>> {
    let empty = store::papers::latest_featured_day(&state.db).await?.is_none();
    Ok(vec![
        ingest_huggingface(state).run_at_start(empty),
        ingest_arxiv(state),
        queue_digests(state),
    ])
}

/// Ingests today's Hugging Face Daily Papers, and yesterday's again: upvotes keep growing
/// after a day ends.
fn ingest_huggingface(state: &AppState) -> Job {
    let app = state.clone();
    Job::new("ingest-huggingface", state.settings.jobs.ingest_hf_cron.clone(), move || {
        let app = app.clone();
        async move {
            let today = chrono::Utc::now().date_naive();
            for day in [today, today - chrono::Days::new(1)] {
                let _ = ingest::huggingface(&app.db, &app.sources, day, Trigger::Scheduler).await;
            }
            app.home.invalidate();
        }
    })
}

/// Ingests arXiv's new announcements in the configured categories.
fn ingest_arxiv(state: &AppState) -> Job {
    let app = state.clone();
    Job::new("ingest-arxiv", state.settings.jobs.ingest_arxiv_cron.clone(), move || {
        let app = app.clone();
        async move {
            let _ = ingest::arxiv(&app.db, &app.sources, Trigger::Scheduler).await;
            app.home.invalidate();
        }
    })
}

/// Queues the editions that are due, for every subscriber whose schedule says so.
fn queue_digests(state: &AppState) -> Job {
    let db = state.db.clone();
    Job::new("queue-digests", state.settings.jobs.digest_cron.clone(), move || {
        let db = db.clone();
        async move {
            if let Err(e) = crate::digests::plan::queue_due(&db).await {
                tracing::warn!(error = %e, "could not queue digests");
            }
        }
    })
}

/// Housekeeping: let the lexicon read papers it has not read (at start, after an upgrade,
/// and every minute, for papers stored by other processes), fold the subscriber count rows
/// every minute, forget quiet clients' rate-limit state every ten.
async fn upkeep(state: AppState, shutdown: CancellationToken) {
    let mut minutes = 0u64;
    loop {
        if let Err(e) = store::lexicon::index_new(&state.db).await {
            tracing::warn!(error = %e, "could not update the lexicon");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.cancelled() => return,
        }
        minutes += 1;
        if let Err(e) = store::subscribers::fold_counts(&state.db).await {
            tracing::warn!(error = %e, "could not fold subscriber counts");
        }
        if minutes.is_multiple_of(10) {
            state.prune_rate_limits();
        }
    }
}

/// How often a process reads the vectors other processes embedded.
const ARCHIVE_REFRESH: Duration = Duration::from_secs(15);

/// Keeps this process's copy of the archive's vectors current (similar papers, search):
/// loads it once the model is ready, then reads what was embedded since, at once when this
/// process embedded something and every 15 seconds for the other processes' work.
async fn keep_archive(state: AppState, shutdown: CancellationToken) {
    let mut seen = None;
    let mut last = std::time::Instant::now();
    loop {
        if let Some(model) = state.embedder.ready_model() {
            let generation = state.embedder.generation();
            if seen != Some(generation) || last.elapsed() >= ARCHIVE_REFRESH {
                match state.archive.refresh(&state.db, &model).await {
                    Ok(0) => {}
                    Ok(read) => tracing::debug!(read, "read the archive's new vectors"),
                    Err(e) => tracing::warn!(error = %e, "could not read the archive's vectors"),
                }
                (seen, last) = (Some(generation), std::time::Instant::now());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Keeps the approximate search index up with the archive in memory: builds it in the
/// background once vectors are there (queries are exact meanwhile), then takes in what the
/// archive reads, every two seconds.
async fn keep_index(state: AppState, shutdown: CancellationToken) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    loop {
        let archive = state.archive.clone();
        // Building yields: its threads run at low priority, and a stop waits for it no
        // longer than the chunk in progress matters (the process is exiting anyway).
        let work = tokio::task::spawn_blocking(move || archive.catch_up_index(threads));
        tokio::select! {
            _ = work => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
