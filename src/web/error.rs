//! One error type for handlers: the right status and a friendly page, the cause logged.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub heading: &'static str,
    pub message: &'static str,
}

#[derive(Debug)]
pub enum AppError {
    NotFound,
    Forbidden,
    RateLimited,
    BadRequest(&'static str),
    Internal(anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (heading, message) = match &self {
            Self::NotFound => (
                "Page not found",
                "This link is not valid. It may have been mistyped, or it belongs to a subscription that no longer exists.",
            ),
            Self::Forbidden => (
                "Not allowed",
                "This request was refused: its form was missing or expired. Reload the page and try again.",
            ),
            Self::RateLimited => (
                "Slow down a little",
                "We have received too many requests from your network in a short time. Please try again later.",
            ),
            Self::BadRequest(why) => ("That did not work", *why),
            Self::Internal(e) => {
                // One line: the step that failed and its causes, escaped.
                tracing::error!(error = ?crate::telemetry::error_chain(e), "request failed");
                (
                    "Something went wrong",
                    "Sorry, we could not do that just now. Please try again in a minute.",
                )
            }
        };
        (self.status(), ErrorPage { heading, message }).into_response()
    }
}

/// The fallback for every route we do not have.
pub async fn not_found() -> AppError {
    AppError::NotFound
}
