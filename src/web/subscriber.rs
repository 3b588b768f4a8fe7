//! The subscriber's web: a digest's web copy, the private Atom feed, resetting the feed
//! address and the data export. Each is reached through its own purpose-bound token.

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use atom_syndication::{
    ContentBuilder, EntryBuilder, FeedBuilder, FixedDateTime, GeneratorBuilder, LinkBuilder,
    PersonBuilder, Text,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::client_ip::ClientIp;
use super::manage::by_manage_link;
use super::{AppError, AppState};
use crate::digests::DigestItem;
use crate::digests::read_back::{self, SubscriberFeed, WebCopy};
use crate::store::subscribers;

#[derive(Template, WebTemplate)]
#[template(path = "pages/web_copy.html")]
pub struct WebCopyPage {
    copy: WebCopy,
    /// `/rate/{token}/`: the rating forms' actions end in `{arxiv_id}/up` or `/down`.
    rate: String,
    /// The rating token, carried to the papers' pages so the reader can add one to their
    /// "papers like these" there.
    reader: String,
}

/// `GET /d/{token}`: the digest as it was delivered.
pub async fn web_copy(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<WebCopyPage, AppError> {
    let copy = read_back::web_copy(&app.db, &app.links, &token)
        .await
        .context("loading the web copy")?
        .ok_or(AppError::NotFound)?;
    let rate = app.links.rate_prefix(&copy.subscriber);
    let reader = app.links.rate_token(&copy.subscriber);
    Ok(WebCopyPage { rate, reader, copy })
}

/// `GET /feed/{token}`: the subscriber's Atom feed, answering 304 to a matching conditional GET.
pub async fn feed(
    State(app): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let feed = read_back::feed(&app.db, &app.links, &token)
        .await
        .context("loading the feed")?
        .ok_or(AppError::NotFound)?;
    let body = atom(&app, &feed);
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..32]);
    let updated = feed.updated.unwrap_or(DateTime::UNIX_EPOCH);
    let last_modified = updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let not_modified = match headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) => tags.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        }),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .is_some_and(|since| updated.timestamp() <= since.timestamp()),
    };
    let cache = [
        (header::ETAG, HeaderValue::from_str(&etag).context("the feed's ETag")?),
        (
            header::LAST_MODIFIED,
            HeaderValue::from_str(&last_modified).context("the feed's Last-Modified")?,
        ),
    ];
    if not_modified {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        cache,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/atom+xml; charset=utf-8"))],
        body,
    )
        .into_response())
}

/// Text without the characters XML 1.0 cannot carry at all (control characters such as
/// U+0008 from a `\b` in upstream JSON): one such paper must not break the whole feed.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

/// An entry's HTML content (escaped by the template; the feed escapes it again as text).
#[derive(Template)]
#[template(path = "partials/feed_entry.html")]
struct EntryHtml<'a> {
    item: &'a DigestItem,
    edition: &'a str,
}

/// The Atom 1.0 document of a subscriber's feed: one entry per paper, newest first.
fn atom(app: &AppState, feed: &SubscriberFeed) -> String {
    let time = |t: DateTime<Utc>| -> FixedDateTime { t.fixed_offset() };
    let entries = feed.entries.iter().map(|e| {
        let item = &e.item;
        let html = EntryHtml { item, edition: &e.edition }.render().unwrap_or_default();
        EntryBuilder::default()
            .id(e.id.clone())
            .title(Text::plain(xml_safe(&item.title)))
            .updated(time(e.delivered_at))
            .published(Some(time(e.delivered_at)))
            .links(vec![LinkBuilder::default().href(item.url.clone()).rel("alternate").build()])
            .summary(Some(Text::plain(xml_safe(&format!("Why: {}", item.why)))))
            .content(Some(
                ContentBuilder::default()
                    .content_type(Some("html".to_string()))
                    .value(Some(xml_safe(&html)))
                    .build(),
            ))
            .build()
    });
    FeedBuilder::default()
        .id(feed.url.clone())
        .title(Text::plain("paperboy: your papers"))
        .subtitle(Some(Text::plain("The papers paperboy picked for you, with why each is there.")))
        .updated(time(feed.updated.unwrap_or(DateTime::UNIX_EPOCH)))
        .authors(vec![
            PersonBuilder::default().name("paperboy").uri(Some(app.links.absolute("/"))).build(),
        ])
        .generator(Some(GeneratorBuilder::default().value("paperboy").build()))
        .links(vec![
            LinkBuilder::default()
                .href(feed.url.clone())
                .rel("self")
                .mime_type(Some("application/atom+xml".into()))
                .build(),
            LinkBuilder::default().href(app.links.absolute("/")).rel("alternate").build(),
        ])
        .entries(entries.collect::<Vec<_>>())
        .build()
        .to_string()
}

/// `POST /preferences/{token}/feed`: a new feed address; the old one answers 404.
#[tracing::instrument(name = "reset_feed", skip_all)]
pub async fn reset_feed(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Redirect, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    subscribers::reset_feed(&app.db, subscriber.row.id).await.context("resetting the feed link")?;
    tracing::info!("feed address reset");
    Ok(Redirect::to(&format!("/preferences/{}#feed", subscriber.token)))
}

/// `GET /preferences/{token}/export`: everything kept about the subscriber, as a JSON download
/// (rate-limited like the other subscriber-page actions: it is the heaviest page).
pub async fn export(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    let data = crate::subscribers::export::export(&app.db, &app.links, subscriber.row.id)
        .await
        .context("gathering the data export")?
        .ok_or(AppError::NotFound)?;
    let body = serde_json::to_vec_pretty(&data).context("writing the export as JSON")?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"paperboy-my-data.json\""),
        ],
        body,
    )
        .into_response())
}
