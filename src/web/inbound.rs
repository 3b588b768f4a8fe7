//! `POST /inbound/*`: bounces and complaints arriving over HTTP, for relays and providers
//! that forward them. Behind `PAPERBOY_INBOUND_TOKEN` (unset: 404).

use anyhow::Context;
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
    bearer_is(headers, token)
        || basic.is_some_and(|p| crate::operators::admins::same_secret(&p, token))
}

/// The refusal, if any: 404 when inbound is not configured, 401 without the token.
fn refusal(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &app.settings.web.inbound_token else {
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

/// Every `/inbound/*` route sits behind this: the token is checked before the body is read.
pub async fn require_token(
    State(app): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match refusal(&app, req.headers()) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
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
pub async fn mime(State(app): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let outcome = bounces::process_mime(&app.db, &app.inbound, &body)
        .await
        .context("processing the bounce message")?;
    tracing::info!(?outcome, bytes = body.len(), "inbound message processed");
    Ok(answer(&outcome))
}

/// `POST /inbound/ses`: Amazon SES notifications through SNS. A subscription
/// confirmation is confirmed by visiting its `SubscribeURL`, only when that is Amazon's.
#[tracing::instrument(name = "inbound_ses", skip_all)]
pub async fn ses(State(app): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    match bounces::ses::process(&app.db, &app.inbound, &body)
        .await
        .context("processing the SES notification")?
    {
        None => Ok(answer(&Outcome::NotAMessage)),
        Some(bounces::ses::Handled::Processed(outcome)) => {
            tracing::info!(?outcome, "SES notification processed");
            Ok(answer(&outcome))
        }
        Some(bounces::ses::Handled::Subscribe(url)) => Ok(confirm_sns(&url).await),
    }
}

async fn confirm_sns(url: &str) -> Response {
    use bounces::ses::Confirmation;
    let (status, text) = match bounces::ses::confirm(url).await {
        Confirmation::Confirmed => (StatusCode::OK, "subscription confirmed\n"),
        Confirmation::NotAmazon => {
            (StatusCode::BAD_REQUEST, "SubscribeURL is not an SNS endpoint\n")
        }
        Confirmation::Refused => (StatusCode::BAD_GATEWAY, "SNS refused the confirmation\n"),
        Confirmation::Unreachable => {
            (StatusCode::BAD_GATEWAY, "cannot reach SNS; it will send the confirmation again\n")
        }
        Confirmation::NoClient => (StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
    };
    (status, text).into_response()
}

/// `POST /inbound/postmark`: Postmark's bounce and spam-complaint webhooks.
#[tracing::instrument(name = "inbound_postmark", skip_all)]
pub async fn postmark(State(app): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let outcome = bounces::postmark::process(&app.db, &app.inbound, &body)
        .await
        .context("processing the Postmark webhook")?
        .unwrap_or(Outcome::NotAMessage);
    tracing::info!(?outcome, "Postmark webhook processed");
    Ok(answer(&outcome))
}
