//! Builds the running service: database, mailer, web server and background workers.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::background;
use crate::config::Settings;
use crate::digests::deliver::Deliverer;
use crate::mail::Mailer;
use crate::papers::ingest::Sources;
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
        crate::operators::admins::ensure_first(
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
        let background =
            background::start(&self.state, &self.mailer, self.digest_worker, &shutdown).await?;
        let app = web::router(self.state.clone());
        let limits = web::server::ServerLimits::from_settings(settings);
        web::server::serve(self.listener, app, limits, shutdown.clone())
            .await
            .context("web server failed")?;
        tracing::info!("web server stopped; finishing background work");
        self.state.tasks.close();
        self.state.tasks.wait().await;
        background.wait().await;
        tracing::info!("bye");
        Ok(())
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
