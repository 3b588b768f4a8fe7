//! The landing page and its sign-up form.

use anyhow::Context;
use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use chrono::NaiveDate;

use crate::domain::{ARXIV_CATEGORIES, PreferenceErrors, huggingface_url, short_authors};
use crate::store::papers::{self, PaperCard};
use crate::subscribers::journey::{self, NewSignup, SignupForm};

#[derive(Template, WebTemplate)]
#[template(path = "pages/index.html")]
pub struct IndexPage {
    form: SignupForm,
    errors: PreferenceErrors,
    day: Option<NaiveDate>,
    papers: Vec<PaperCard>,
}

impl PaperCard {
    /// "A, B, C et al." — the first few authors.
    pub fn authors_short(&self) -> String {
        short_authors(&self.authors, 3)
    }

    pub fn page_url(&self) -> String {
        huggingface_url(&self.arxiv_id)
    }
}

impl IndexPage {
    fn categories(&self) -> &'static [(&'static str, &'static str)] {
        ARXIV_CATEGORIES
    }

    fn chose_category(&self, code: &str) -> bool {
        self.form.categories.iter().any(|c| c == code)
    }

    fn weekly(&self) -> bool {
        self.form.frequency == "weekly"
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/check_inbox.html")]
pub struct CheckInboxPage {
    /// What the "papers like these" field held that is not a paper, with the reason.
    rejected: Vec<(String, &'static str)>,
}

impl IndexPage {
    async fn new(
        app: &AppState,
        form: SignupForm,
        errors: PreferenceErrors,
    ) -> Result<Self, AppError> {
        let day = papers::latest_featured_day(&app.db).await.context("finding the latest day")?;
        let papers = match day {
            Some(d) => papers::featured_on(&app.db, d).await.context("loading the day's papers")?,
            None => Vec::new(),
        };
        Ok(Self { form, errors, day, papers })
    }
}

/// How long a rendered public page is served before it is rendered again (papers and
/// upvotes change every half hour at most; an ingest in this process refreshes them at once).
const FRESH_FOR: Duration = Duration::from_secs(30);
/// Public pages kept rendered at most (the landing page, the archive's list and days).
const CACHED_PAGES: usize = 64;

/// Public pages as served to everyone, by path: rendered once, then shared as bytes.
#[derive(Default)]
pub struct Cache {
    pages: RwLock<HashMap<String, (Instant, Bytes)>>,
    rendering: tokio::sync::Mutex<()>,
}

impl Cache {
    /// The page at `key` if it was rendered lately.
    pub fn fresh(&self, key: &str) -> Option<Bytes> {
        let pages = self.pages.read().expect("page cache lock");
        pages.get(key).filter(|(at, _)| at.elapsed() < FRESH_FOR).map(|(_, b)| b.clone())
    }

    fn any(&self, key: &str) -> Option<Bytes> {
        self.pages.read().expect("page cache lock").get(key).map(|(_, b)| b.clone())
    }

    /// Forgets every page (new papers were stored).
    pub fn invalidate(&self) {
        self.pages.write().expect("page cache lock").clear();
    }

    /// The page at `key`, rendered by `render` when it is missing or stale. One request
    /// renders; the others keep serving the previous page meanwhile.
    pub async fn get<F, Fut>(&self, key: &str, render: F) -> Result<Bytes, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, AppError>>,
    {
        if let Some(page) = self.fresh(key) {
            return Ok(page);
        }
        let _rendering = match self.rendering.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.any(key) {
                Some(stale) => return Ok(stale),
                None => self.rendering.lock().await,
            },
        };
        if let Some(page) = self.fresh(key) {
            return Ok(page);
        }
        let bytes = Bytes::from(render().await?);
        let mut pages = self.pages.write().expect("page cache lock");
        if pages.len() >= CACHED_PAGES && !pages.contains_key(key) {
            pages.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
            // Still full: the oldest page goes (the landing page is rendered often enough
            // never to be it for long).
            if pages.len() >= CACHED_PAGES
                && let Some(oldest) =
                    pages.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
            {
                pages.remove(&oldest);
            }
        }
        pages.insert(key.to_string(), (Instant::now(), bytes.clone()));
        Ok(bytes)
    }
}

/// A cached public page as a response.
pub fn public_page(page: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60")),
        ],
        page,
    )
        .into_response()
}

pub async fn index(State(app): State<AppState>) -> Result<Response, AppError> {
    let page = app
        .home
        .get("/", || async {
            let page =
                IndexPage::new(&app, SignupForm::default(), PreferenceErrors::default()).await?;
            Ok(page.render().context("rendering the landing page")?)
        })
        .await?;
    Ok(public_page(page))
}

#[tracing::instrument(name = "subscribe", skip_all)]
pub async fn subscribe(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    PageForm(form): PageForm<SignupForm>,
) -> Result<Response, AppError> {
    if let Some(limiter) = &app.subscribe_limiter
        && limiter.check_key(&ip).is_err()
    {
        tracing::warn!("sign-up rate limit reached for a client");
        return Err(AppError::RateLimited);
    }
    if !form.website.is_empty() {
        tracing::info!("honeypot filled; answering as if subscribed");
        return Ok(CheckInboxPage { rejected: Vec::new() }.into_response());
    }
    match NewSignup::try_from(&form) {
        Err(errors) => {
            let page = IndexPage::new(&app, form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Ok(signup) => {
            if journey::subscribe(&app.db, &app.signups, &app.settings, &app.links, &signup)
                .await
                .context("recording the sign-up")?
            {
                app.mail_wake.notify_waiters();
            }
            Ok(CheckInboxPage { rejected: signup.rejected }.into_response())
        }
    }
}
