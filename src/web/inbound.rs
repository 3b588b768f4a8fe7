//! `POST /inbound/*`: bounces and complaints arriving over HTTP, for relays and providers
//! that forward them. Behind `PAPERBOY_INBOUND_TOKEN` (unset: 404).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::ExposeSecret;

use super::metrics::bearer_is;
use super::{AppError, AppState};
use crate::bounces::{self, Outcome};

/// The token as a bearer token, or as the password of basic auth (what providers that
/// cannot set headers put in the webhook URL: `https://any:<token>@host/inbound/…`).
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, password)| password.to_string()));
    bearer_is(headers, token) || basic.is_some_and(|p| crate::admins::same_secret(&p, token))
}

/// The refusal, if any: 404 when inbound is not configured, 401 without the token.
fn refusal(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &app.settings.inbound_token else {
        return Some(AppError::NotFound.into_response());
    };
    if !authorized(headers, token.expose_secret()) {
        tracing::warn!("inbound report without a valid token");
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"inbound\"")];
        return Some(
            (StatusCode::UNAUTHORIZED, challenge, "a token is required\n").into_response(),
        );
    }
    None
}

fn answer(outcome: &Outcome) -> Response {
    let status = match outcome {
        Outcome::NotAMessage => StatusCode::BAD_REQUEST,
        _ => StatusCode::ACCEPTED,
    };
    (status, format!("{}\n", bounces::describe(outcome))).into_response()
}

/// `POST /inbound/mime`: the raw RFC 5322 message as the body.
#[tracing::instrument(name = "inbound_mime", skip_all)]
pub async fn mime(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if let Some(refused) = refusal(&app, &headers) {
        return Ok(refused);
    }
    let outcome = bounces::process_mime(&app.db, &app.inbound, &body).await?;
    tracing::info!(?outcome, bytes = body.len(), "inbound message processed");
    Ok(answer(&outcome))
}
