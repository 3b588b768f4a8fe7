//! Confirmation links: a GET shows a button, only the POST confirms.

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::client_ip::ClientIp;
use super::{AppError, AppState};
use crate::store::examples::Added;
use crate::store::subscribers;
use crate::subscribers::journey::{self, ConfirmLink};

#[derive(Template, WebTemplate)]
#[template(path = "pages/confirm.html")]
pub struct ConfirmPage {
    token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/confirmed.html")]
pub struct ConfirmedPage {
    preferences_path: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/confirm_expired.html")]
pub struct ExpiredPage {
    token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/already_confirmed.html")]
pub struct AlreadyConfirmedPage;

#[derive(Template, WebTemplate)]
#[template(path = "pages/check_inbox.html")]
pub struct NewLinkSentPage {
    /// Always empty here (the page is shared with the sign-up's answer).
    rejected: Vec<(String, &'static str)>,
}

fn expired(token: String) -> Response {
    (StatusCode::GONE, ExpiredPage { token }).into_response()
}

pub async fn show(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    match journey::find_confirmation(&app.db, &token)
        .await
        .context("looking the confirmation link up")?
    {
        None => Err(AppError::NotFound),
        Some(ConfirmLink::Expired(_)) => Ok(expired(token)),
        Some(ConfirmLink::AlreadyConfirmed) => Ok(AlreadyConfirmedPage.into_response()),
        Some(ConfirmLink::Valid(_)) => Ok(ConfirmPage { token }.into_response()),
    }
}

pub async fn confirm(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    match journey::confirm(&app.db, &token).await.context("confirming")? {
        None => Err(AppError::NotFound),
        Some((ConfirmLink::Expired(_), _)) => Ok(expired(token)),
        Some((ConfirmLink::AlreadyConfirmed, _)) => Ok(AlreadyConfirmedPage.into_response()),
        Some((ConfirmLink::Valid(row), examples)) => {
            // The sign-up's "papers like these": the taste learns them now, the papers we
            // do not have are fetched.
            if examples != Added::default() {
                let confirmed =
                    subscribers::find_by_id(&app.db, row.id).await.context("reloading")?;
                let topics = confirmed.map(|r| r.preferences().topics.items().to_vec());
                app.examples
                    .settled(row.id, &topics.unwrap_or_default(), &examples)
                    .await
                    .context("learning the sign-up's examples")?;
            }
            Ok(ConfirmedPage { preferences_path: app.links.preferences_path(&row.id) }
                .into_response())
        }
    }
}

pub async fn renew(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    match journey::renew_confirmation(&app.db, &app.settings, &app.links, &token)
        .await
        .context("sending a new confirmation link")?
    {
        None => Err(AppError::NotFound),
        Some(queued) => {
            if queued {
                app.mail_wake.notify_waiters();
            }
            Ok(NewLinkSentPage { rejected: Vec::new() }.into_response())
        }
    }
}
