//! The landing page and its sign-up form.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use chrono::NaiveDate;

use crate::domain::{ARXIV_CATEGORIES, PreferenceErrors};
use crate::store::papers::{self, PaperCard};
use crate::subscriptions::{self, NewSignup, SignupForm};

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
        const SHOWN: usize = 3;
        let mut s = self.authors.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
        if self.authors.len() > SHOWN {
            s.push_str(" et al.");
        }
        s
    }

    pub fn page_url(&self) -> String {
        format!("https://huggingface.co/papers/{}", self.arxiv_id)
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
pub struct CheckInboxPage;

impl IndexPage {
    async fn new(
        app: &AppState,
        form: SignupForm,
        errors: PreferenceErrors,
    ) -> Result<Self, AppError> {
        let day = papers::latest_featured_day(&app.db).await?;
        let papers = match day {
            Some(d) => papers::featured_on(&app.db, d).await?,
            None => Vec::new(),
        };
        Ok(Self { form, errors, day, papers })
    }
}

pub async fn index(State(app): State<AppState>) -> Result<IndexPage, AppError> {
    IndexPage::new(&app, SignupForm::default(), PreferenceErrors::default()).await
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
        return Ok(CheckInboxPage.into_response());
    }
    match NewSignup::try_from(&form) {
        Err(errors) => {
            let page = IndexPage::new(&app, form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Ok(signup) => {
            subscriptions::subscribe(&app.db, &app.settings, &signup).await?;
            Ok(CheckInboxPage.into_response())
        }
    }
}
