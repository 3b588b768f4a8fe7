//! Rating papers: the 👍/👎 links in every digest. A GET (which mail scanners follow)
//! changes nothing and shows the paper with the chosen button; the POST records the
//! rating, retrains the subscriber's taste and says what will change.

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use crate::domain::{Purpose, short_authors};
use crate::ratings::Rating;
use crate::store::ratings::{self as stored, RatedRow};
use crate::store::subscribers::{self, SubscriberRow};

#[derive(Template, WebTemplate)]
#[template(path = "pages/rate.html")]
pub struct RatePage {
    paper: RatedRow,
    authors: String,
    /// The button offered first.
    up: bool,
    action_up: String,
    action_down: String,
}

/// A topic trusted less than this is named on the page after a rating (one paper rated
/// down moves a topic a little; two or more most of whose papers were rated down, visibly).
const DOUBTED_BELOW: f32 = 0.7;

#[derive(Template, WebTemplate)]
#[template(path = "pages/rated.html")]
pub struct RatedPage {
    paper: RatedRow,
    rating: Rating,
    undo: String,
    /// Typed topics the ratings now trust less (most of what they found was rated down).
    doubted: Vec<String>,
}

/// The hidden fields a rating form may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RateForm {
    /// From the preferences page: the subscriber's manage token, to go back there.
    back: String,
}

/// The subscriber behind a rating link and the paper it names; anything else is a 404.
async fn target(
    app: &AppState,
    token: &str,
    arxiv_id: &str,
) -> Result<(SubscriberRow, RatedRow), AppError> {
    let id = app.links.signer().verify(Purpose::Rate, token).ok_or(AppError::NotFound)?;
    if arxiv_id.len() > 64 {
        return Err(AppError::NotFound);
    }
    let subscriber = subscribers::find_by_id(&app.db, id)
        .await
        .context("loading the subscriber")?
        .ok_or(AppError::NotFound)?;
    let paper = stored::paper(&app.db, id, arxiv_id)
        .await
        .context("loading the paper")?
        .ok_or(AppError::NotFound)?;
    Ok((subscriber, paper))
}

pub async fn show(
    State(app): State<AppState>,
    Path((token, arxiv_id, rating)): Path<(String, String, String)>,
) -> Result<RatePage, AppError> {
    let up = match Rating::parse(&rating) {
        Some(Rating::Up) => true,
        Some(Rating::Down) => false,
        _ => return Err(AppError::NotFound),
    };
    let (subscriber, paper) = target(&app, &token, &arxiv_id).await?;
    let path = |r: &str| app.links.rate_path(&subscriber.id, &paper.arxiv_id, r);
    Ok(RatePage {
        authors: short_authors(&paper.authors, 6),
        up,
        action_up: path("up"),
        action_down: path("down"),
        paper,
    })
}

#[tracing::instrument(name = "rate", skip_all)]
pub async fn rate(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path((token, arxiv_id, rating)): Path<(String, String, String)>,
    PageForm(form): PageForm<RateForm>,
) -> Result<Response, AppError> {
    let rating = Rating::parse(&rating).ok_or(AppError::NotFound)?;
    let (subscriber, paper) = target(&app, &token, &arxiv_id).await?;
    app.check_subscriber_rate(&ip)?;
    let topics = subscriber.preferences().topics.items().to_vec();
    let Some(taste) = app
        .trainer
        .rate(subscriber.id, &topics, &paper.arxiv_id, rating)
        .await
        .context("recording the rating")?
    else {
        return Err(AppError::NotFound);
    };
    tracing::info!(rating = rating.as_str(), "paper rated");
    if back_to_preferences(&app, &form.back, subscriber.id) {
        let to = format!("{}#sent", app.links.preferences_path(&subscriber.id));
        return Ok(Redirect::to(&to).into_response());
    }
    let undo = app.links.rate_path(&subscriber.id, &paper.arxiv_id, "clear");
    let doubted = taste
        .topic_trust
        .into_iter()
        .filter(|(_, trust)| *trust < DOUBTED_BELOW)
        .map(|(topic, _)| topic)
        .collect();
    Ok(RatedPage { paper, rating, undo, doubted }.into_response())
}

/// Only a form that already holds this subscriber's manage token goes back to their
/// preferences: a rating link alone never leads to the manage pages.
fn back_to_preferences(app: &AppState, back: &str, subscriber: Uuid) -> bool {
    !back.is_empty() && app.links.signer().verify(Purpose::Manage, back) == Some(subscriber)
}
