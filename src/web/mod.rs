//! The HTTP face of paperboy: routes per page, shared state, middleware.

mod admin;
mod archive;
mod assets;
mod client_ip;
mod confirm;
mod error;
mod examples;
mod form;
mod health;
mod home;
mod inbound;
mod manage;
mod metrics;
mod papers;
mod rate;
pub mod server;
mod subscriber;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::digests::deliver::Deliverer;
use crate::domain::Links;
use crate::jobs::worker::Health;
use crate::papers::ingest::Sources;
pub use error::AppError;
pub use home::Cache as HomeCache;

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Everything a handler may need, behind one cheap-to-clone handle.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub db: PgPool,
    pub settings: Settings,
    /// Key for signed cookies and tokens (the configured or the stored secret).
    pub secret: Vec<u8>,
    /// The bounce and complaint processor's configuration.
    pub inbound: crate::bounces::Inbound,
    pub subscribe_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Searches per client (each embeds the query: CPU).
    pub search_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// The archive's paper vectors, for similar papers and search.
    pub archive: Arc<crate::papers::nearest::Archive>,
    /// Admin sign-in attempts per client.
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Subscriber-page changes (saving preferences, asking for a new link) per client.
    pub subscriber_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub sources: Arc<Sources>,
    pub deliverer: Arc<Deliverer>,
    /// The sentence-embedding model (ranking by meaning once it is ready).
    pub embedder: Arc<crate::embeddings::Embedder>,
    /// Retrains a subscriber's taste after a rating or a change of topics.
    pub trainer: crate::ratings::Trainer,
    /// Adds "papers like these" and wakes the arXiv lookup queue.
    pub examples: crate::ratings::examples::Examples,
    /// The requests being answered, which `serve`'s embedding waits for.
    pub foreground: Arc<crate::embeddings::Foreground>,
    /// Recent editions' indexed candidates, shared with the delivery workers.
    pub editions: Arc<crate::digests::ranking::EditionCache>,
    pub today_stats: crate::operators::stats::TodayCache,
    /// Signed links to subscribers' pages.
    pub links: Links,
    /// Wakes this process's mail workers when a request queued mail.
    pub mail_wake: Arc<Notify>,
    /// Background workers that are down, for `/readyz`.
    pub health: Arc<Health>,
    /// Work started by requests that must finish (or stop cleanly) before the process exits.
    pub tasks: TaskTracker,
    /// Cancelled when the process is asked to stop.
    pub shutdown: CancellationToken,
    /// The landing page, rendered once per change of papers.
    pub home: HomeCache,
    /// Writes new sign-ups in batches.
    pub signups: crate::subscribers::journey::SignupWriter,
}

impl AppState {
    pub fn new(
        db: PgPool,
        settings: Settings,
        secret: Vec<u8>,
        sources: Arc<Sources>,
        deliverer: Arc<Deliverer>,
    ) -> Self {
        let links = Links::new(settings.web.base_url.as_str(), &secret);
        let inbound = crate::bounces::Inbound::from_settings(&settings, &secret);
        let subscribe_limiter = NonZeroU32::new(settings.web.subscribe_rate)
            .map(|n| RateLimiter::keyed(Quota::per_hour(n)));
        let search_limiter = NonZeroU32::new(settings.web.search_rate)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        let trainer =
            crate::ratings::Trainer::new(db.clone(), deliverer.editions().embedder().clone());
        Self(Arc::new(App {
            signups: crate::subscribers::journey::SignupWriter::start(db.clone()),
            examples: crate::ratings::examples::Examples {
                trainer: trainer.clone(),
                wake: Default::default(),
            },
            trainer,
            db,
            settings,
            secret,
            subscribe_limiter,
            search_limiter,
            archive: Default::default(),
            login_limiter: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(5).expect("non-zero"))
                    .allow_burst(NonZeroU32::new(10).expect("non-zero")),
            ),
            subscriber_limiter: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(30).expect("non-zero"))
                    .allow_burst(NonZeroU32::new(30).expect("non-zero")),
            ),
            sources,
            editions: deliverer.editions().clone(),
            embedder: deliverer.editions().embedder().clone(),
            deliverer,
            today_stats: Default::default(),
            inbound,
            links,
            mail_wake: Default::default(),
            health: Default::default(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            home: Default::default(),
            foreground: Default::default(),
        }))
    }

    /// Runs `work` as part of the service: tracked, so a graceful stop waits for it.
    pub fn spawn_tracked<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    /// Forgets rate-limit state of clients that have gone quiet, so memory stays flat.
    pub fn prune_rate_limits(&self) {
        for l in [&self.subscribe_limiter, &self.search_limiter].into_iter().flatten() {
            l.retain_recent();
        }
        self.login_limiter.retain_recent();
        self.subscriber_limiter.retain_recent();
    }

    /// `Err(429)` once this client has made too many subscriber-page changes.
    pub fn check_subscriber_rate(&self, client: &IpAddr) -> Result<(), AppError> {
        self.subscriber_limiter.check_key(client).map_err(|_| {
            tracing::warn!("subscriber-page rate limit reached for a client");
            AppError::RateLimited
        })
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Counts the request as foreground work while it is answered.
async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let _answering = state.foreground.begin();
    next.run(req).await
}

/// The whole application router with its middleware.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let app = pages(state.clone())
        .merge(inbound_routes(state.clone()))
        .merge(upload_routes(state.clone()))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    let app = with_security_headers(app);
    // The span names the route pattern, never the raw path: paths carry tokens.
    app.layer(axum::middleware::from_fn(no_store_personal_pages))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(state, count_request))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
        tracing::info_span!("request", method = %req.method(), route = route.as_deref().unwrap_or("unmatched"))
    }))
}

/// Every page and form, under the ordinary body limit.
fn pages(state: AppState) -> Router {
    Router::new()
        .route("/", get(home::index))
        .route("/subscribe", post(home::subscribe))
        .route("/confirm/{token}", get(confirm::show).post(confirm::confirm))
        .route("/confirm/{token}/renew", post(confirm::renew))
        .route("/preferences/{token}", get(manage::preferences).post(manage::save_preferences))
        .route("/unsubscribe/{token}", get(manage::unsubscribe_page).post(manage::unsubscribe))
        .route("/resubscribe/{token}", post(manage::resubscribe))
        .route("/rate/{token}/{arxiv_id}/{rating}", get(rate::show).post(rate::rate))
        .route("/preferences/{token}/feed", post(subscriber::reset_feed))
        .route("/preferences/{token}/export", get(subscriber::export))
        .route("/preferences/{token}/examples", post(examples::add))
        .route("/preferences/{token}/examples/forget", post(examples::forget))
        .route("/preferences/{token}/library/remove", post(examples::remove))
        .route("/examples/{token}", post(examples::like))
        .route("/d/{token}", get(subscriber::web_copy))
        .route("/feed/{token}", get(subscriber::feed))
        .route("/days", get(archive::days))
        .route("/days/{day}", get(archive::day))
        .route("/papers/{*arxiv_id}", get(papers::paper))
        .route("/search", get(papers::search))
        .route("/robots.txt", get(assets::robots))
        .route("/favicon.ico", get(assets::icon))
        .route("/favicon.svg", get(assets::icon))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/style.css", get(assets::stylesheet))
        .route("/metrics", get(metrics::render))
        .merge(admin::router())
        .fallback(error::not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
}

/// Bounce and complaint reports may carry the whole returned message: their own, larger
/// limit, behind the inbound token.
fn inbound_routes(state: AppState) -> Router {
    Router::new()
        .route("/inbound/mime", post(inbound::mime))
        .route("/inbound/ses", post(inbound::ses))
        .route("/inbound/postmark", post(inbound::postmark))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), inbound::require_token))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(crate::bounces::MAX_INBOUND_BYTES))
        .layer(RequestBodyLimitLayer::new(crate::bounces::MAX_INBOUND_BYTES))
}

/// A library upload may be up to 5 MB of BibTeX; a little more arrives to be refused with
/// a message rather than cut off.
fn upload_routes(state: AppState) -> Router {
    let upload_limit = crate::ratings::library::MAX_BYTES + 1024 * 1024;
    Router::new()
        .route("/preferences/{token}/library", post(examples::upload))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
        .layer(RequestBodyLimitLayer::new(upload_limit))
}

/// The headers every response carries unless its handler set them.
fn with_security_headers(mut app: Router) -> Router {
    // `connect-src 'self'`: no script runs here, but auditing tools fetch /robots.txt
    // from within the page.
    let csp = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
               connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let headers = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Links carry tokens: never leak them to other sites through Referer.
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("permissions-policy"), "interest-cohort=()"),
    ];
    for (name, value) in headers {
        app = app
            .layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    app
}

/// Pages reached through a subscriber's token or an admin session are personal: no cache
/// (shared or browser) may keep them, and no search engine may index them. A web copy and
/// a feed are the subscriber's own to keep (`private`), revalidated on every use.
async fn no_store_personal_pages(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    const PERSONAL: [&str; 6] =
        ["/confirm/", "/preferences/", "/unsubscribe/", "/resubscribe/", "/rate/", "/admin"];
    const KEPT: [&str; 2] = ["/d/", "/feed/"];
    let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let is = |list: &[&str]| path.as_deref().is_some_and(|p| list.iter().any(|x| p.starts_with(x)));
    let cache = if is(&PERSONAL) {
        Some("no-store")
    } else if is(&KEPT) {
        Some("private, no-cache")
    } else {
        None
    };
    let mut response = next.run(req).await;
    if let Some(cache) = cache {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex, nofollow"),
        );
    }
    response
}
