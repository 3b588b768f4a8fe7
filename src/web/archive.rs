//! The public archive: the days with papers, and each day's featured papers.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::NaiveDate;

use super::home::public_page;
use super::{AppError, AppState};
use crate::store::papers::{self, PaperCard};

#[derive(Template)]
#[template(path = "pages/days.html")]
struct DaysPage {
    days: Vec<(NaiveDate, i64)>,
}

#[derive(Template)]
#[template(path = "pages/day.html")]
struct DayPage {
    day: NaiveDate,
    prev: Option<NaiveDate>,
    next: Option<NaiveDate>,
    papers: Vec<PaperCard>,
}

/// `GET /days`
pub async fn days(State(app): State<AppState>) -> Result<Response, AppError> {
    let page = app
        .home
        .get("/days", || async {
            let days = papers::featured_days(&app.db).await?;
            Ok(DaysPage { days }.render().map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(public_page(page))
}

/// `GET /days/{YYYY-MM-DD}`: 404 for a malformed date or a day without papers.
pub async fn day(
    State(app): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let day = match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        // Only the canonical spelling: one URL per day.
        Ok(day) if day.format("%Y-%m-%d").to_string() == raw => day,
        _ => return Err(AppError::NotFound),
    };
    let page = app
        .home
        .get(&format!("/days/{day}"), || async {
            let papers = papers::featured_on(&app.db, day).await?;
            if papers.is_empty() {
                return Err(AppError::NotFound);
            }
            let (prev, next) = papers::days_around(&app.db, day).await?;
            Ok(DayPage { day, prev, next, papers }.render().map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(public_page(page))
}
