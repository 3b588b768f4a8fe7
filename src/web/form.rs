//! Form extraction that answers with a page instead of a bare text rejection.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::AppError;

/// Like `axum_extra`'s `Form` (repeated keys become a `Vec`), but a malformed body gets
/// our 400 page; an oversized one keeps its 413.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum_extra::extract::Form::<T>::from_request(req, state).await {
            Ok(axum_extra::extract::Form(value)) => Ok(Self(value)),
            Err(rejection) => {
                let response = rejection.into_response();
                if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(response);
                }
                Err(AppError::BadRequest(
                    "We could not read that form. Please go back and try again.",
                )
                .into_response())
            }
        }
    }
}
