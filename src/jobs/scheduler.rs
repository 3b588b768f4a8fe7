//! Runs jobs on cron schedules. With several processes on one database, each slot of a
//! job runs in one process: a transaction-scoped advisory lock excludes concurrent runs
//! and the `scheduled_jobs` row remembers the last slot that ran.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

type JobFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Job {
    pub name: &'static str,
    pub cron: croner::Cron,
    pub run: Arc<dyn Fn() -> JobFuture + Send + Sync>,
    /// Also run once right away (for example to fill an empty database on first start).
    pub run_at_start: bool,
}

impl Job {
    pub fn new<F, Fut>(name: &'static str, cron: croner::Cron, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name,
            cron,
            run: Arc::new(move || Box::pin(run()) as JobFuture),
            run_at_start: false,
        }
    }

    pub fn run_at_start(mut self, yes: bool) -> Self {
        self.run_at_start = yes;
        self
    }
}

/// Runs each job at its times until `shutdown`; a job in progress finishes first.
pub async fn run(db: PgPool, jobs: Vec<Job>, shutdown: CancellationToken) {
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| tokio::spawn(run_job(db.clone(), job, shutdown.clone())))
        .collect();
    for h in handles {
        let _ = h.await;
    }
}

async fn run_job(db: PgPool, job: Job, shutdown: CancellationToken) {
    if job.run_at_start {
        let started = tokio::select! {
            r = run_exclusive(&db, job.name, Utc::now(), (job.run)()) => r,
            _ = shutdown.cancelled() => return,
        };
        if let Err(e) = started {
            tracing::warn!(job = job.name, error = %e, "could not take the job lock");
        }
    }
    loop {
        let now = Utc::now();
        let Ok(slot) = job.cron.find_next_occurrence(&now, false) else {
            tracing::error!(job = job.name, "schedule has no next time; job stopped");
            return;
        };
        let wait = (slot - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        match run_exclusive(&db, job.name, slot, (job.run)()).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!(job = job.name, "another process has this slot"),
            Err(e) => tracing::warn!(job = job.name, error = %e, "could not take the job lock"),
        }
    }
}

/// Runs `work` if no other process is running this job and nobody ran this slot yet.
/// Returns whether it ran.
pub async fn run_exclusive(
    db: &PgPool,
    name: &str,
    slot: DateTime<Utc>,
    work: impl Future<Output = ()>,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    if !crate::store::scheduled_jobs::claim_slot(&mut tx, name, slot).await? {
        return Ok(false);
    }
    let span = tracing::info_span!("job", job = name, %slot);
    tracing::Instrument::instrument(work, span).await;
    tx.commit().await?;
    Ok(true)
}
