//! Hugging Face Daily Papers: `GET {base}/api/daily_papers?date=YYYY-MM-DD&limit=100&p=N`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use url::Url;

use super::{Fetcher, SourceError};
use crate::domain::{ArxivId, FeaturedPaper, normalize_whitespace};

/// Items per page we ask for; a shorter page is the last.
pub const PAGE_SIZE: usize = 100;
/// No featured day has come near this; it bounds a misbehaving upstream.
const MAX_PAGES: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("expected JSON but got an HTML page")]
    Html,
    #[error("not a JSON array of papers: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct Item {
    paper: Paper,
    title: Option<String>,
    summary: Option<String>,
    thumbnail: Option<String>,
    #[serde(rename = "numComments")]
    num_comments: Option<i64>,
    organization: Option<Organization>,
}

#[derive(Deserialize)]
struct Paper {
    id: String,
    title: Option<String>,
    summary: Option<String>,
    #[serde(default)]
    authors: Option<Vec<Author>>,
    #[serde(rename = "publishedAt")]
    published_at: Option<DateTime<Utc>>,
    #[serde(rename = "submittedOnDailyAt")]
    submitted_on_daily_at: Option<DateTime<Utc>>,
    upvotes: Option<i64>,
    #[serde(rename = "githubRepo")]
    github_repo: Option<String>,
    #[serde(rename = "githubStars")]
    github_stars: Option<i64>,
    #[serde(rename = "projectPage")]
    project_page: Option<String>,
    ai_summary: Option<String>,
    ai_keywords: Option<Vec<String>>,
    #[serde(rename = "withdrawnAt")]
    withdrawn_at: Option<DateTime<Utc>>,
    organization: Option<Organization>,
}

#[derive(Deserialize)]
struct Author {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Organization {
    fullname: Option<String>,
    name: Option<String>,
}

/// One page of the API. Returns the papers and how many items the page held (items
/// without a usable arXiv id are skipped but still count towards paging).
pub fn parse_page(
    body: &[u8],
    queried: NaiveDate,
) -> Result<(Vec<FeaturedPaper>, usize), ParseError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if body[start..].first() == Some(&b'<') {
        return Err(ParseError::Html);
    }
    let items: Vec<Item> =
        serde_json::from_slice(body).map_err(|e| ParseError::Shape(e.to_string()))?;
    let count = items.len();
    let papers = items.into_iter().filter_map(|item| convert(item, queried)).collect();
    Ok((papers, count))
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| normalize_whitespace(&s)).filter(|s| !s.is_empty())
}

fn convert(item: Item, queried: NaiveDate) -> Option<FeaturedPaper> {
    let p = item.paper;
    let Some(arxiv_id) = ArxivId::parse(&p.id) else {
        tracing::warn!(id = ?p.id.chars().take(40).collect::<String>(), "skipping an item without a valid arXiv id");
        return None;
    };
    let title = clean(p.title).or_else(|| clean(item.title))?;
    let organization =
        p.organization.or(item.organization).and_then(|o| clean(o.fullname).or(clean(o.name)));
    Some(FeaturedPaper {
        arxiv_id,
        title,
        abstract_text: clean(p.summary).or_else(|| clean(item.summary)).unwrap_or_default(),
        authors: p.authors.unwrap_or_default().into_iter().filter_map(|a| clean(a.name)).collect(),
        published_at: p.published_at,
        featured_on: p.submitted_on_daily_at.map(|t| t.date_naive()).unwrap_or(queried),
        upvotes: p.upvotes.unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
        num_comments: item.num_comments.unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
        ai_summary: clean(p.ai_summary),
        ai_keywords: p
            .ai_keywords
            .unwrap_or_default()
            .into_iter()
            .filter_map(|k| clean(Some(k)))
            .collect(),
        github_repo: clean(p.github_repo).filter(|u| is_web_url(u)),
        github_stars: p.github_stars.map(|n| n.clamp(0, i32::MAX as i64) as i32),
        project_page: clean(p.project_page).filter(|u| is_web_url(u)),
        organization,
        thumbnail: clean(item.thumbnail).filter(|u| is_web_url(u)),
        withdrawn_at: p.withdrawn_at,
    })
}

/// Only http(s) links may reach a page or an email (no `javascript:`).
fn is_web_url(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Every paper featured on `date`, following pages until a short one.
pub async fn fetch_day(
    fetcher: &Fetcher,
    base: &Url,
    date: NaiveDate,
) -> Result<Vec<FeaturedPaper>, SourceError> {
    let mut all = Vec::new();
    for page in 0..MAX_PAGES {
        // Settings only allow http(s) bases; a `mailto:` one cannot be joined onto.
        let mut url = base.join("/api/daily_papers").map_err(|e| SourceError::Network {
            url: base.to_string(),
            reason: format!("not a base URL ({e})"),
        })?;
        url.query_pairs_mut()
            .append_pair("date", &date.format("%Y-%m-%d").to_string())
            .append_pair("limit", &PAGE_SIZE.to_string())
            .append_pair("p", &page.to_string());
        let body = fetcher.get(&url, None).await?;
        let (papers, count) = parse_page(&body, date)
            .map_err(|e| SourceError::Malformed { url: url.to_string(), reason: e.to_string() })?;
        all.extend(papers);
        if count < PAGE_SIZE {
            break;
        }
    }
    // A paper listed on two pages (the list shifted while we paged) counts once.
    let mut seen = std::collections::HashSet::new();
    all.retain(|p| seen.insert(p.arxiv_id.clone()));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 6).unwrap()
    }

    #[test]
    fn a_real_day_parses_completely() {
        let body = crate::papers::sources::fixture("huggingface/daily_papers/2025-11-06.json");
        let (papers, count) = parse_page(&body, day()).unwrap();
        assert_eq!(count, 13);
        assert_eq!(papers.len(), 13);
        let p = &papers[0];
        assert_eq!(p.arxiv_id.as_str(), "2511.03276");
        assert_eq!(p.title, "Diffusion Language Models are Super Data Learners");
        assert!(!p.abstract_text.contains('\n'));
        assert_eq!(p.upvotes, 132);
        assert_eq!(p.authors.len(), 8);
        assert_eq!(p.authors[0], "Jinjie Ni");
        assert_eq!(p.featured_on, day());
        assert_eq!(p.github_stars, Some(339));
        assert_eq!(p.organization.as_deref(), Some("National University of Singapore"));
        assert!(p.ai_keywords.contains(&"diffusion language models".to_string()));
    }

    #[test]
    fn broken_bodies_are_errors() {
        assert_eq!(parse_page(b"  <!doctype html><html>", day()).unwrap_err(), ParseError::Html);
        assert!(matches!(
            parse_page(br#"{"error":"Invalid date"}"#, day()),
            Err(ParseError::Shape(_))
        ));
        assert!(matches!(
            parse_page(br#"[{"paper": {"id": "2511.0001""#, day()),
            Err(ParseError::Shape(_))
        ));
        assert!(matches!(
            parse_page(br#"[{"title": "no paper"}]"#, day()),
            Err(ParseError::Shape(_))
        ));
        assert_eq!(parse_page(b"[]", day()).unwrap().1, 0);
    }

    #[test]
    fn unknown_fields_nulls_and_bad_ids_are_tolerated() {
        let body = br#"[
          {"paper": {"id": "2511.00001", "title": "A <b>&amp;</b>\n title", "upvotes": null,
                     "authors": [{"name": "Ann", "hidden": true}, {"name": null}], "brandNew": {"x": 1},
                     "githubRepo": "javascript:alert(1)", "withdrawnAt": "2025-11-07T00:00:00.000Z"},
           "numComments": 3, "another": []},
          {"paper": {"id": "not-an-id", "title": "skipped"}}
        ]"#;
        let (papers, count) = parse_page(body, day()).unwrap();
        assert_eq!(count, 2);
        assert_eq!(papers.len(), 1);
        let p = &papers[0];
        assert_eq!(p.title, "A <b>&amp;</b> title");
        assert_eq!(p.upvotes, 0);
        assert_eq!(p.authors, ["Ann"]);
        assert_eq!(p.github_repo, None);
        assert!(p.withdrawn_at.is_some());
        assert_eq!(p.featured_on, day(), "no submittedOnDailyAt: the queried day");
    }
}
