//! arXiv announcements: the RSS 2.0 feed at `{base}/{cat+cat+…}`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use url::Url;

use super::{Fetcher, SourceError, Throttle};
use crate::domain::{AnnouncedPaper, ArxivId, FetchedPaper, normalize_whitespace};

/// arXiv's terms: no more than one request every three seconds.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("expected an RSS feed but got an HTML page")]
    Html,
    #[error("not an RSS feed: {0}")]
    Invalid(String),
}

/// One announcement: its day and its papers.
#[derive(Debug, PartialEq)]
pub struct Feed {
    pub day: NaiveDate,
    pub papers: Vec<AnnouncedPaper>,
}

/// The announcement day as arXiv states it (in its own time zone, US Eastern).
fn feed_day(s: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc2822(s.trim()).ok().map(|t| t.date_naive())
}

/// An error page where a feed was expected.
fn looks_like_html(body: &[u8]) -> bool {
    let text_start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let head = String::from_utf8_lossy(&body[text_start..body.len().min(text_start + 200)])
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

pub fn parse_feed(body: &[u8]) -> Result<Feed, ParseError> {
    if looks_like_html(body) {
        return Err(ParseError::Html);
    }
    let channel = rss::Channel::read_from(body).map_err(|e| ParseError::Invalid(e.to_string()))?;
    let day = channel
        .pub_date()
        .and_then(feed_day)
        .or_else(|| channel.last_build_date().and_then(feed_day))
        .or_else(|| channel.items().iter().find_map(|i| i.pub_date().and_then(feed_day)))
        .unwrap_or_else(|| Utc::now().date_naive());
    let papers = channel.items().iter().filter_map(|item| convert(item, day)).collect();
    Ok(Feed { day, papers })
}

fn convert(item: &rss::Item, day: NaiveDate) -> Option<AnnouncedPaper> {
    let (arxiv_id, version) =
        item.guid().and_then(|g| ArxivId::parse_versioned(g.value())).or_else(|| {
            item.link().and_then(|l| ArxivId::parse_versioned(l.rsplit("/abs/").next()?))
        })?;
    let title = normalize_whitespace(item.title()?);
    if title.is_empty() {
        return None;
    }
    let description = item.description().unwrap_or_default();
    // "arXiv:2511.03276v2 Announce Type: replace \nAbstract: Under strictly …"
    let abstract_text = match description.find("Abstract:") {
        Some(i) => &description[i + "Abstract:".len()..],
        None => description,
    };
    let announce_type = item
        .extensions()
        .get("arxiv")
        .and_then(|m| m.get("announce_type"))
        .and_then(|v| v.first())
        .and_then(|e| e.value())
        .map(|v| v.trim().to_string())
        .or_else(|| {
            let rest = &description[description.find("Announce Type:")? + "Announce Type:".len()..];
            rest.split_whitespace().next().map(str::to_string)
        })
        .unwrap_or_else(|| "new".into());
    let authors = item
        .dublin_core_ext()
        .map(|dc| {
            dc.creators()
                .iter()
                .flat_map(|c| c.split(','))
                .map(normalize_whitespace)
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Some(AnnouncedPaper {
        arxiv_id,
        version,
        title,
        abstract_text: normalize_whitespace(abstract_text),
        authors,
        categories: item
            .categories()
            .iter()
            .map(|c| c.name().trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        announce_type,
        announced_on: day,
    })
}

/// The feed URL for a set of categories: `{base}/cs.AI+cs.LG`. Settings only allow
/// http(s) bases; any other (`mailto:`, no path to extend) is left as it is and fails
/// as a request instead of panicking here.
pub fn feed_url(base: &Url, categories: &[String]) -> Url {
    let mut url = base.clone();
    let joined = categories.join("+");
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push(&joined);
    }
    url
}

/// Fetches and parses the current announcement for `categories`.
pub async fn fetch_feed(
    fetcher: &Fetcher,
    throttle: &Throttle,
    base: &Url,
    categories: &[String],
) -> Result<Feed, SourceError> {
    let url = feed_url(base, categories);
    let body = fetcher.get(&url, Some(throttle)).await?;
    parse_feed(&body)
        .map_err(|e| SourceError::Malformed { url: url.to_string(), reason: e.to_string() })
}

/// The query API's URL for these ids: `{base}?id_list=a,b&max_results=n`.
pub fn api_url(base: &Url, ids: &[String]) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("id_list", &ids.join(","))
        .append_pair("max_results", &ids.len().to_string());
    url
}

/// The papers of a query API answer (Atom). An id arXiv does not know is simply absent
/// (or an entry titled "Error", which is left out).
pub fn parse_api(body: &[u8]) -> Result<Vec<FetchedPaper>, ParseError> {
    if looks_like_html(body) {
        return Err(ParseError::Html);
    }
    let feed =
        atom_syndication::Feed::read_from(body).map_err(|e| ParseError::Invalid(e.to_string()))?;
    Ok(feed.entries().iter().filter_map(api_paper).collect())
}

fn api_paper(entry: &atom_syndication::Entry) -> Option<FetchedPaper> {
    if entry.id().contains("/api/errors") {
        return None;
    }
    let (arxiv_id, version) = ArxivId::parse_versioned(entry.id().rsplit("/abs/").next()?)?;
    let title = normalize_whitespace(&entry.title().value);
    if title.is_empty() {
        return None;
    }
    Some(FetchedPaper {
        arxiv_id,
        version,
        title,
        abstract_text: entry.summary().map(|s| normalize_whitespace(&s.value)).unwrap_or_default(),
        authors: entry.authors().iter().map(|a| normalize_whitespace(&a.name)).collect(),
        categories: entry.categories().iter().map(|c| c.term().to_string()).collect(),
        published_at: entry.published().map(|t| t.with_timezone(&Utc)),
    })
}

/// Fetches these papers from the query API in one request (no retry: the caller's queue
/// tries again later, keeping arXiv's pace).
pub async fn fetch_by_ids(
    fetcher: &Fetcher,
    base: &Url,
    ids: &[String],
) -> Result<Vec<FetchedPaper>, SourceError> {
    let url = api_url(base, ids);
    let body = fetcher.get_one(&url).await?;
    parse_api(&body)
        .map_err(|e| SourceError::Malformed { url: url.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_api_fixture_parses() {
        let body = crate::papers::sources::fixture("arxiv/api_query_id_list.xml");
        let papers = parse_api(&body).unwrap();
        assert_eq!(papers.len(), 5);
        let first = &papers[0];
        assert_eq!(first.arxiv_id.as_str(), "2511.04570");
        assert_eq!(first.version, Some(1));
        assert!(first.title.starts_with(
            "Thinking with Video: Video Generation as a Promising Multimodal Reasoning"
        ));
        assert_eq!(first.authors[0], "Jingqi Tong");
        assert_eq!(first.categories, ["cs.CV", "cs.CL", "cs.LG"]);
        assert!(first.published_at.is_some());
        assert!(matches!(parse_api(b"<html><body>busy</body></html>"), Err(ParseError::Html)));
        assert!(parse_api(b"{}").is_err());
    }

    #[test]
    fn query_api_urls_list_the_ids() {
        let url = api_url(
            &"http://export.arxiv.org/api/query".parse().unwrap(),
            &["2511.04570".into(), "cs/0112017".into()],
        );
        assert_eq!(
            url.as_str(),
            "http://export.arxiv.org/api/query?id_list=2511.04570%2Ccs%2F0112017&max_results=2"
        );
    }

    #[test]
    fn the_fixture_feed_parses() {
        let feed =
            parse_feed(&crate::papers::sources::fixture("arxiv/rss_2025-11-06.xml")).unwrap();
        assert_eq!(feed.day, NaiveDate::from_ymd_opt(2025, 11, 6).unwrap());
        assert_eq!(feed.papers.len(), 13);
        let p = &feed.papers[0];
        assert_eq!(p.arxiv_id.as_str(), "2511.03276");
        assert_eq!(p.version, Some(2));
        assert_eq!(p.title, "Diffusion Language Models are Super Data Learners");
        assert!(p.abstract_text.starts_with("Under strictly controlled pre-training"));
        assert!(p.abstract_text.contains("> 56% accuracy"), "entities decoded");
        assert_eq!(p.announce_type, "replace");
        assert_eq!(p.categories, ["cs.CV", "cs.CL", "cs.LG"]);
        assert_eq!(p.authors.first().map(String::as_str), Some("Jinjie Ni"));
        assert!(feed.papers.iter().any(|p| p.announce_type == "new"));
    }

    #[test]
    fn broken_feeds_are_errors() {
        assert_eq!(
            parse_feed(b"<!DOCTYPE html><html><body>503</body></html>").unwrap_err(),
            ParseError::Html
        );
        assert!(matches!(parse_feed(b"<rss><channel><item><title>x"), Err(ParseError::Invalid(_))));
        assert!(parse_feed(b"{\"json\": true}").is_err());
    }

    #[test]
    fn an_empty_weekend_feed_is_fine() {
        let body = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>l</link>
            <description>d</description><pubDate>Sat, 08 Nov 2025 00:00:00 -0500</pubDate></channel></rss>"#;
        let feed = parse_feed(body).unwrap();
        assert!(feed.papers.is_empty());
        assert_eq!(feed.day, NaiveDate::from_ymd_opt(2025, 11, 8).unwrap());
    }

    #[test]
    fn feed_urls_join_categories() {
        let base = Url::parse("https://rss.arxiv.org/rss").unwrap();
        assert_eq!(
            feed_url(&base, &["cs.AI".into(), "cs.LG".into()]).as_str(),
            "https://rss.arxiv.org/rss/cs.AI+cs.LG"
        );
        let base = Url::parse("http://127.0.0.1:9/rss/").unwrap();
        assert_eq!(feed_url(&base, &["cs.CL".into()]).as_str(), "http://127.0.0.1:9/rss/cs.CL");
    }
}
