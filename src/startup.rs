//! Builds the running service: database, mailer, web server and background workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::delivery::Deliverer;
use crate::ingest::{self, Sources, Trigger};
use crate::jobs::mail_worker;
use crate::jobs::scheduler::{self, Job};
use crate::mail::Mailer;
use crate::mail::RetryPolicy;
use crate::store;
use crate::web::{self, AppState};

/// Connections beyond the workers' share, for web requests and jobs.
const BASE_CONNECTIONS: u32 = 16;

/// Opens (creating and migrating if needed) the database named in the settings.
pub async fn database(settings: &Settings) -> anyhow::Result<PgPool> {
    // The mail and the digest workers each hold a connection while they work.
    let max = BASE_CONNECTIONS + 2 * settings.mail.send_concurrency as u32;
    store::connect_and_migrate(settings.database.url.expose_secret(), max).await
}

/// The key for signed links and cookies: `PAPERBOY_SECRET`, else the secret file's (`secret`).
pub async fn secret(db: &PgPool, settings: &Settings) -> anyhow::Result<Vec<u8>> {
    crate::secret::load(db, settings).await.context("cannot load the signing secret")
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    mailer: Arc<Mailer>,
    digest_worker: bool,
}

impl Application {
    /// Everything up to, but not including, serving: a bad setting or an unreachable
    /// database fails here with a readable reason.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = database(&settings).await?;
        let secret = secret(&db, &settings).await?;
        crate::admins::ensure_first(
            &db,
            settings.web.admin_email.as_deref(),
            settings.web.admin_password.as_ref().map(|p| p.expose_secret()),
        )
        .await
        .context("cannot create the first admin")?;
        let mailer = Arc::new(Mailer::from_settings(&settings, &secret)?);
        let listener = TcpListener::bind(settings.web.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.web.bind))?;
        let sources = Sources::from_settings(&settings);
        let embedder = crate::embeddings::Embedder::from_settings(&settings);
        let deliverer = Deliverer::from_settings(&db, &mailer, &settings, &secret, &embedder);
        let state = AppState::new(db, settings, secret, sources, deliverer);
        // Embedding is background work: it leaves a core to the requests and the senders,
        // and waits while requests are being answered.
        embedder.yield_to(state.foreground.clone());
        Ok(Self { listener, state, mailer, digest_worker: true })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Runs without the background digest worker, so that only explicit sends deliver
    /// digests (tests that count what one `send` did use this).
    pub fn without_digest_worker(mut self) -> Self {
        self.digest_worker = false;
        self
    }

    pub fn deliverer(&self) -> Arc<Deliverer> {
        self.state.deliverer.clone()
    }

    pub fn db(&self) -> PgPool {
        self.state.db.clone()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests and sends finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let settings = &self.state.settings;
        tracing::info!(address = %self.local_addr(), base_url = %settings.web.base_url, "paperboy is listening");
        // Work started by requests (admin ingests and sends) stops with the process.
        let state_shutdown = self.state.shutdown.clone();
        let linked = shutdown.clone();
        tokio::spawn(async move {
            linked.cancelled().await;
            state_shutdown.cancel();
        });
        let policy = RetryPolicy::from_settings(settings);
        // Transactional mail takes half the senders: a burst of sign-ups queues mail as fast
        // as it answers, and senders competing with the requests for CPU cost the requests
        // their tail latency (p99 24 → 17 ms at 8,000 sign-ups/s) while two still send
        // 1,700 confirmations a second.
        let sender = mail_worker::MailSender {
            links: self.state.links.clone(),
            confirm_ttl_hours: settings.mail.confirm_ttl.as_secs() / 3600,
            mailer: self.mailer.clone(),
            policy,
            inbound: self.state.inbound.clone(),
            lease: settings.mail.claim_lease,
        };
        let mail = mail_worker::spawn(
            self.state.db.clone(),
            Arc::new(sender),
            settings.mail.send_concurrency.div_ceil(2),
            self.state.mail_wake.clone(),
            self.state.health.clone(),
            shutdown.clone(),
        );
        let digests = self.digest_worker.then(|| {
            crate::jobs::delivery::spawn(
                self.state.deliverer.clone(),
                settings.mail.send_concurrency,
                self.state.health.clone(),
                shutdown.clone(),
            )
        });
        let upkeep = tokio::spawn(upkeep(self.state.clone(), shutdown.clone()));
        // The model downloads and loads in the background: the service answers meanwhile
        // and ranks literally until it is ready.
        let model = tokio::spawn(self.state.embedder.clone().load_in_background(shutdown.clone()));
        let embedding = crate::jobs::embedding::spawn(
            self.state.trainer.clone(),
            self.state.health.clone(),
            shutdown.clone(),
        );
        let lookups = crate::examples::spawn(
            Arc::new(crate::examples::Lookups {
                db: self.state.db.clone(),
                sources: self.state.sources.clone(),
                trainer: self.state.trainer.clone(),
            }),
            self.state.examples.wake.clone(),
            self.state.health.clone(),
            shutdown.clone(),
        );
        let archive = tokio::spawn(keep_archive(self.state.clone(), shutdown.clone()));
        let index = tokio::spawn(keep_index(self.state.clone(), shutdown.clone()));
        let jobs =
            if settings.jobs.scheduler { scheduled_jobs(&self.state).await? } else { Vec::new() };
        let scheduler = tokio::spawn(scheduler::run(self.state.db.clone(), jobs, shutdown.clone()));

        let app = web::router(self.state.clone());
        let limits = web::server::ServerLimits::from_settings(settings);
        web::server::serve(self.listener, app, limits, shutdown.clone())
            .await
            .context("web server failed")?;
        tracing::info!("web server stopped; finishing background work");
        self.state.tasks.close();
        self.state.tasks.wait().await;
        let _ = mail.await;
        let _ = upkeep.await;
        let _ = model.await;
        let _ = embedding.await;
        let _ = lookups.await;
        let _ = archive.await;
        let _ = index.await;
        if let Some(d) = digests {
            let _ = d.await;
        }
        let _ = scheduler.await;
        tracing::info!("bye");
        Ok(())
    }
}

/// The jobs `serve` runs on its own: ingests, on the configured schedules.
async fn scheduled_jobs(state: &AppState) -> anyhow::Result<Vec<Job>> {
    // On a first start there is nothing to show or send: ingest at once.
    let empty = store::papers::latest_featured_day(&state.db).await?.is_none();
    let hf_cron = state.settings.jobs.ingest_hf_cron.clone();
    let arxiv_cron = state.settings.jobs.ingest_arxiv_cron.clone();
    let app = state.clone();
    let hf = Job::new("ingest-huggingface", hf_cron, move || {
        let app = app.clone();
        async move {
            // Upvotes keep growing after a day ends: refresh yesterday too.
            let today = chrono::Utc::now().date_naive();
            for day in [today, today - chrono::Days::new(1)] {
                let _ = ingest::huggingface(&app.db, &app.sources, day, Trigger::Scheduler).await;
            }
            app.home.invalidate();
        }
    });
    let hf = hf.run_at_start(empty);
    let app = state.clone();
    let arxiv = Job::new("ingest-arxiv", arxiv_cron, move || {
        let app = app.clone();
        async move {
            let _ = ingest::arxiv(&app.db, &app.sources, Trigger::Scheduler).await;
            app.home.invalidate();
        }
    });
    let digest_cron = state.settings.jobs.digest_cron.clone();
    let db = state.db.clone();
    let digests = Job::new("queue-digests", digest_cron, move || {
        let db = db.clone();
        async move {
            if let Err(e) = crate::sending::queue_due(&db).await {
                tracing::warn!(error = %e, "could not queue digests");
            }
        }
    });
    Ok(vec![hf, arxiv, digests])
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

/// Cancels the token on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested");
        token.cancel();
    });
}
