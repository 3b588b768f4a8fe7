//! The operator's dashboard: sign-in, pages, actions. Every page needs a session; every
//! state change is a POST carrying the session's CSRF token.

mod actions;
mod chart;
mod pages;

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use crate::domain::Token;
use crate::operators::admins::{self, Session};

pub const SESSION_COOKIE: &str = "pb_admin";
const LOGIN_CSRF_COOKIE: &str = "pb_login_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin", get(pages::overview))
        .route("/admin/subscribers", get(pages::subscribers))
        .route("/admin/subscribers.csv", get(pages::subscribers_csv))
        .route("/admin/subscribers/{id}", get(pages::subscriber))
        .route("/admin/subscribers/{id}/preview", get(pages::preview))
        .route("/admin/subscribers/{id}/delete", post(actions::delete_subscriber))
        .route("/admin/papers", get(pages::papers))
        .route("/admin/runs", get(pages::runs))
        .route("/admin/deliveries", get(pages::deliveries))
        .route("/admin/deliveries/retry-failed", post(actions::retry_all))
        .route("/admin/deliveries/{id}/retry", post(actions::retry_one))
        .route("/admin/ingest", post(actions::ingest))
        .route("/admin/send", post(actions::send))
}

/// A signed-in admin. Pages without a session redirect to the sign-in; POSTs get 403.
pub struct Admin(pub Session);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match jar.get(SESSION_COOKIE) {
            Some(c) => admins::session(&state.db, &state.secret, c.value())
                .await
                .context("checking the session")
                .map_err(|e| AppError::from(e).into_response())?,
            None => None,
        };
        match session {
            Some(s) => Ok(Admin(s)),
            None if parts.method == Method::GET => {
                Err(Redirect::to("/admin/login").into_response())
            }
            None => Err(AppError::Forbidden.into_response()),
        }
    }
}

impl Admin {
    /// The CSRF check every admin POST makes.
    pub fn check(&self, csrf: &str) -> Result<(), AppError> {
        if admins::same_secret(&self.0.csrf, csrf) { Ok(()) } else { Err(AppError::Forbidden) }
    }
}

fn secure(app: &AppState) -> bool {
    app.settings.web.base_url.scheme() == "https"
}

fn cookie(
    app: &AppState,
    name: &'static str,
    value: String,
    max_age_hours: i64,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(app))
        .max_age(time::Duration::hours(max_age_hours))
        .build()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<&'static str>,
    email: String,
}

async fn login_page(State(app): State<AppState>, jar: CookieJar) -> (CookieJar, LoginPage) {
    let csrf = Token::generate().as_str().to_string();
    let jar = jar.add(cookie(&app, LOGIN_CSRF_COOKIE, csrf.clone(), 1));
    (jar, LoginPage { csrf, error: None, email: String::new() })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

#[tracing::instrument(name = "admin_login", skip_all)]
async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, AppError> {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string()).unwrap_or_default();
    if expected.is_empty() || !admins::same_secret(&expected, &form.csrf) {
        return Err(AppError::Forbidden);
    }
    if app.login_limiter.check_key(&ip).is_err() {
        tracing::warn!("admin sign-in rate limit reached for a client");
        return Err(AppError::RateLimited);
    }
    let checked = match admins::authenticate(&app.db, &form.email, &form.password).await {
        Err(admins::AdminError::Busy) => {
            tracing::warn!("admin sign-in refused: too many password checks waiting");
            return Err(AppError::RateLimited);
        }
        other => other?,
    };
    match checked {
        Some(admin_id) => {
            let token = admins::start_session(&app.db, &app.secret, admin_id)
                .await
                .context("starting the session")?;
            tracing::info!(admin_id, "admin signed in");
            let jar = jar.remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/admin")).add(cookie(
                &app,
                SESSION_COOKIE,
                token.as_str().to_string(),
                admins::SESSION_HOURS,
            ));
            Ok((jar, Redirect::to("/admin")).into_response())
        }
        None => {
            // Never the password; the address only by its domain.
            tracing::warn!(email = ?crate::domain::redact(&form.email), "admin sign-in failed");
            let page = LoginPage {
                csrf: form.csrf,
                error: Some("Wrong email or password."),
                email: form.email,
            };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    admin: Admin,
    jar: CookieJar,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin.check(&form.csrf)?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        admins::revoke(&app.db, &app.secret, c.value()).await.context("ending the session")?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/admin"));
    Ok((jar, Redirect::to("/admin/login")).into_response())
}
