//! The public archive: the days with papers, and each day's featured papers.

use anyhow::Context;
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
            let days = papers::featured_days(&app.db).await.context("listing the featured days")?;
            Ok(DaysPage { days }.render().context("rendering the archive")?)
        })
        .await?;
    Ok(public_page(page))
}

/// `GET /days/{YYYY-MM-DD}`: 404 for a malformed date or a day without papers.
pub async fn day(
    State(app): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    // Only the canonical spelling (four-digit year): one URL per day.
    let canonical = raw.len() == 10
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let day = match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        Ok(day) if canonical => day,
        _ => return Err(AppError::NotFound),
    };
    let key = format!("/days/{day}");
    if let Some(page) = app.home.fresh(&key) {
        return Ok(public_page(page));
    }
    // A day without papers is a 404 before the page cache is involved: days nobody
    // featured cannot fill it or queue behind its one renderer.
    if !papers::featured_any(&app.db, day).await.context("looking the day up")? {
        return Err(AppError::NotFound);
    }
    let page = app
        .home
        .get(&key, || async {
            let papers =
                papers::featured_on(&app.db, day).await.context("loading the day's papers")?;
            let (prev, next) =
                papers::days_around(&app.db, day).await.context("finding the days around")?;
            Ok(DayPage { day, prev, next, papers }.render().context("rendering the day")?)
        })
        .await?;
    Ok(public_page(page))
}
