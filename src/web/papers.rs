//! Public pages over the archive by meaning: one paper with the papers nearest to it, and
//! search.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::client_ip::ClientIp;
use super::{AppError, AppState};
use crate::domain::{ArxivId, Purpose, arxiv_url, huggingface_url, short_authors};
use crate::papers::nearest::{Days, Near};
use crate::store::papers::{self, PaperPage};

/// Papers listed as similar to one paper.
const SIMILAR: usize = 10;
/// Papers a search lists.
const RESULTS: usize = 20;
/// The longest query searched, in characters.
const MAX_QUERY: usize = 300;
/// Characters of an abstract shown under a search result.
const SNIPPET: usize = 320;

/// A paper in a list, with its day and what to highlight.
pub struct Listed {
    pub arxiv_id: String,
    pub title: Vec<(String, bool)>,
    pub authors: String,
    pub day: Option<NaiveDate>,
    pub snippet: Vec<(String, bool)>,
    pub similarity: f32,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/paper.html")]
struct PaperView {
    paper: PaperPage,
    authors: String,
    arxiv: String,
    huggingface: String,
    /// None: the paper has no vector yet (the model is loading, or it was just stored).
    similar: Option<Vec<Listed>>,
    /// A reader who came from their web copy (their rating token): they may add the paper
    /// to their "papers like these".
    reader: Option<String>,
    /// They just did.
    added: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PaperQuery {
    reader: String,
    added: Option<String>,
}

/// `GET /papers/{arxiv_id}`: the paper and the papers of the archive nearest to it.
pub async fn paper(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    Query(query): Query<PaperQuery>,
) -> Result<Response, AppError> {
    let id = ArxivId::parse(&raw).ok_or(AppError::NotFound)?;
    if id.as_str() != raw {
        // One address per paper: `…v2` and `arXiv:…` lead to the plain id.
        return Ok(Redirect::permanent(&format!("/papers/{id}")).into_response());
    }
    let found = papers::pages(&app.db, &[id.to_string()]).await.context("loading the paper")?;
    let paper = found.into_iter().next().ok_or(AppError::NotFound)?;
    let similar = match app.archive.vector_of(id.as_str()) {
        Some(vector) => {
            let except = Some(id.to_string());
            let near = nearest(&app, vector, SIMILAR, Days::default(), except).await?;
            Some(listed(&app, near, &HashSet::new()).await?)
        }
        None => None,
    };
    let view = PaperView {
        authors: short_authors(&paper.card.authors, 12),
        arxiv: arxiv_url(&paper.card.arxiv_id),
        huggingface: huggingface_url(&paper.card.arxiv_id),
        paper,
        similar,
        reader: app
            .links
            .signer()
            .verify(Purpose::Rate, &query.reader)
            .is_some()
            .then_some(query.reader),
        added: query.added.is_some(),
    };
    Ok(view.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchForm {
    q: String,
    from: String,
    to: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/search.html")]
struct SearchView {
    form: SearchForm,
    /// Why there are no results to show (bad input, no model yet), if so.
    message: Option<&'static str>,
    listed: Vec<Listed>,
    searched: bool,
}

/// `GET /search?q=…[&from=YYYY-MM-DD&to=YYYY-MM-DD]`: the papers nearest in meaning to the
/// query, with its words highlighted where they appear.
pub async fn search(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(form): Query<SearchForm>,
) -> Result<Response, AppError> {
    let q = form.q.trim().to_string();
    let answer = |status, message, form| {
        let view = SearchView { form, message: Some(message), listed: Vec::new(), searched: false };
        Ok((status, view).into_response())
    };
    if q.is_empty() {
        let view = SearchView { form, message: None, listed: Vec::new(), searched: false };
        return Ok(view.into_response());
    }
    if q.chars().count() > MAX_QUERY {
        return answer(
            StatusCode::BAD_REQUEST,
            "That is too long to search for: use at most 300 characters.",
            form,
        );
    }
    let Some(days) = days(&form) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "Write dates as 2025-11-26, the first no later than the second.",
            form,
        );
    };
    if let Some(limiter) = &app.search_limiter
        && limiter.check_key(&ip).is_err()
    {
        return Err(AppError::RateLimited);
    }
    let query = match app.embedder.embed(vec![q.clone()]).await.context("embedding the query")? {
        Some(mut vectors) if !vectors.is_empty() => vectors.swap_remove(0),
        _ => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "Search by meaning starts once the model that reads the papers is ready. Please try again in a few minutes.",
                form,
            );
        }
    };
    let near = nearest(&app, query, RESULTS, days, None).await?;
    let results = listed(&app, near, &words(&q)).await?;
    Ok(SearchView { form, message: None, listed: results, searched: true }.into_response())
}

/// The archive's scan, which compares every vector, on the blocking pool: the requests on
/// this worker thread do not wait for it.
async fn nearest(
    app: &AppState,
    query: Vec<f32>,
    k: usize,
    within: Days,
    except: Option<String>,
) -> Result<Vec<Near>, AppError> {
    let archive = app.archive.clone();
    let scan = move || archive.nearest(&query, k, within, except.as_deref());
    Ok(tokio::task::spawn_blocking(scan).await.context("searching the archive")?)
}

/// The date range of the form; None when a date is malformed or the range is reversed.
fn days(form: &SearchForm) -> Option<Days> {
    let parse = |raw: &str| match raw.trim() {
        "" => Some(None),
        day => NaiveDate::parse_from_str(day, "%Y-%m-%d").ok().map(Some),
    };
    let (from, to) = (parse(&form.from)?, parse(&form.to)?);
    match (from, to) {
        (Some(f), Some(t)) if f > t => None,
        _ => Some(Days { from, to }),
    }
}

/// The found papers in their order, as lists show them (papers withdrawn since drop out).
async fn listed(
    app: &AppState,
    near: Vec<Near>,
    words: &HashSet<String>,
) -> Result<Vec<Listed>, AppError> {
    let ids: Vec<String> = near.iter().map(|n| n.arxiv_id.clone()).collect();
    let mut pages: HashMap<String, PaperPage> = papers::pages(&app.db, &ids)
        .await
        .context("loading the papers found")?
        .into_iter()
        .map(|p| (p.card.arxiv_id.clone(), p))
        .collect();
    Ok(near
        .into_iter()
        .filter_map(|n| {
            let p = pages.remove(&n.arxiv_id)?;
            Some(Listed {
                title: marked(&p.card.title, words),
                authors: short_authors(&p.card.authors, 3),
                day: p.day,
                snippet: marked(&snippet(&p.abstract_text, words), words),
                similarity: n.similarity,
                arxiv_id: n.arxiv_id,
            })
        })
        .collect())
}

/// Words too common to highlight.
const COMMON: [&str; 16] = [
    "a", "an", "and", "are", "as", "at", "by", "for", "from", "in", "is", "of", "on", "or", "the",
    "with",
];

/// The query's words, lower-cased, to highlight.
fn words(q: &str) -> HashSet<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !COMMON.contains(&w.as_str()))
        .collect()
}

/// About `SNIPPET` characters of an abstract: from its start, or around the first word of
/// the query it contains; cut at spaces.
fn snippet(text: &str, words: &HashSet<String>) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= SNIPPET {
        return text;
    }
    let tokens: Vec<&str> = text.split(' ').collect();
    let hit = tokens.iter().position(|t| {
        let t = t.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        words.contains(&t)
    });
    let start = hit.map_or(0, |i| i.saturating_sub(8));
    let mut out = String::new();
    for t in &tokens[start..] {
        if out.chars().count() + t.chars().count() > SNIPPET {
            break;
        }
        out.push_str(t);
        out.push(' ');
    }
    let out = out.trim_end();
    let lead = if start > 0 { "… " } else { "" };
    format!("{lead}{out} …")
}

/// `text` cut into runs, each marked when it is one of `words` (whole words, any case).
pub fn marked(text: &str, words: &HashSet<String>) -> Vec<(String, bool)> {
    let mut runs: Vec<(String, bool)> = Vec::new();
    let mut push = |s: &str, hit: bool| match runs.last_mut() {
        Some((last, h)) if *h == hit && !hit => last.push_str(s),
        _ => runs.push((s.to_string(), hit)),
    };
    let mut rest = text;
    while !rest.is_empty() {
        let alnum = rest.chars().next().is_some_and(char::is_alphanumeric);
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_alphanumeric() != alnum)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        push(run, alnum && words.contains(&run.to_lowercase()));
        rest = tail;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_are_marked_whole_and_in_any_case() {
        let w = words("Diffusion models for VIDEO");
        let runs = marked("Video diffusion: a diffusion-model survey", &w);
        let hits: Vec<&str> = runs.iter().filter(|(_, h)| *h).map(|(s, _)| s.as_str()).collect();
        assert_eq!(hits, ["Video", "diffusion", "diffusion"]);
        let text: String = runs.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(text, "Video diffusion: a diffusion-model survey", "nothing is lost");
        assert!(!w.contains("for"), "common words are not highlighted");
    }

    #[test]
    fn a_long_abstract_is_cut_around_the_first_match() {
        let long =
            format!("{} the robot kicks a ball {}", "word ".repeat(100), "more ".repeat(100));
        let s = snippet(&long, &words("robot"));
        assert!(s.starts_with("… ") && s.contains("robot kicks") && s.ends_with(" …"), "{s}");
        assert!(s.chars().count() <= SNIPPET + 4);
    }

    #[test]
    fn dates_must_be_well_formed_and_in_order() {
        let form =
            |from: &str, to: &str| SearchForm { q: "x".into(), from: from.into(), to: to.into() };
        assert!(days(&form("", "")).is_some());
        assert!(days(&form("2025-11-01", "2025-11-30")).is_some());
        assert!(days(&form("2025-11-30", "2025-11-01")).is_none());
        assert!(days(&form("yesterday", "")).is_none());
    }
}
