//! The landing page and its sign-up form.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use crate::domain::{ARXIV_CATEGORIES, PreferenceErrors};
use crate::subscriptions::{self, NewSignup, SignupForm};

#[derive(Template, WebTemplate)]
#[template(path = "pages/index.html")]
pub struct IndexPage {
    form: SignupForm,
    errors: PreferenceErrors,
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

pub async fn index() -> IndexPage {
    IndexPage { form: SignupForm::default(), errors: PreferenceErrors::default() }
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
            Ok((StatusCode::UNPROCESSABLE_ENTITY, IndexPage { form, errors }).into_response())
        }
        Ok(signup) => {
            subscriptions::subscribe(&app.db, &app.settings, &signup).await?;
            Ok(CheckInboxPage.into_response())
        }
    }
}
