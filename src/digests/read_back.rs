//! What was delivered, read again: the web copy of a digest, the subscriber's private feed,
//! and the list of editions they were sent.
//! Everything comes from the delivery records (papers in order, each with the why-line the
//! email gave), so a web copy shows what the email showed.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::digests::DigestItem;
use crate::digests::render::{self, item};
use crate::domain::Edition;
use crate::domain::{Frequency, Links, Purpose, Signer};
use crate::store::deliveries::{self, Filter, Record};
use crate::store::{editions, ratings, subscribers};

/// A feed holds the papers of this many days.
pub const FEED_DAYS: i64 = 60;
/// The preferences page lists this many editions at most.
const HISTORY_SHOWN: i64 = 100;

/// One delivered digest, as its web copy shows it.
pub struct WebCopy {
    pub subscriber: Uuid,
    pub edition: Edition,
    pub heading: String,
    pub intro: String,
    pub sent_at: Option<DateTime<Utc>>,
    /// The papers, in the email's order, each with the subscriber's rating (+1, −1) if any.
    pub items: Vec<(DigestItem, Option<i16>)>,
    /// Posted to a feed-only subscriber's feed rather than mailed.
    pub posted: bool,
}

/// The web copy a `/d/{token}` link names: 404 (None) for a tampered token, a delivery
/// that was never delivered, or a subscriber who was erased.
pub async fn web_copy(db: &PgPool, links: &Links, raw: &str) -> sqlx::Result<Option<WebCopy>> {
    let Some(id) = links.copy_delivery(raw) else { return Ok(None) };
    let Some(record) = deliveries::delivered(db, id).await? else { return Ok(None) };
    let rated: HashMap<String, i16> =
        ratings::of_subscriber(db, record.subscriber_id, Some(&record.paper_ids))
            .await?
            .into_iter()
            .map(|(paper, _, rating, _, _)| (paper, rating))
            .collect();
    let items = items_of(db, std::slice::from_ref(&record)).await?.pop().unwrap_or_default();
    let edition = edition_of(&record);
    let (heading, intro) = render::heading(&edition, items.len());
    Ok(Some(WebCopy {
        subscriber: record.subscriber_id,
        edition,
        heading,
        intro,
        sent_at: record.sent_at,
        posted: record.posted(),
        items: items
            .into_iter()
            .map(|i| {
                let rating = rated.get(&i.arxiv_id).copied();
                (i, rating)
            })
            .collect(),
    }))
}

fn edition_of(record: &Record) -> Edition {
    Edition::of(Frequency::parse(&record.frequency).unwrap_or_default(), record.day)
}

/// The papers of each record, in order, with their stored why-lines. Papers since deleted
/// from the store are left out.
pub async fn items_of(db: &PgPool, records: &[Record]) -> sqlx::Result<Vec<Vec<DigestItem>>> {
    let mut ids: Vec<String> = records.iter().flat_map(|r| r.paper_ids.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    let papers: HashMap<String, crate::digests::ranking::Candidate> =
        editions::papers(db, &ids).await?.into_iter().map(|c| (c.arxiv_id.clone(), c)).collect();
    Ok(records
        .iter()
        .map(|r| {
            r.paper_ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| papers.get(id).map(|c| item(c, r.why(i).to_string())))
                .collect()
        })
        .collect())
}

/// One entry of a subscriber's feed: a paper they were sent.
pub struct FeedEntry {
    /// Stable across feed resets, opaque, unique per subscriber and paper (a paper is never
    /// sent twice to one subscriber).
    pub id: String,
    pub item: DigestItem,
    pub delivered_at: DateTime<Utc>,
    /// The edition it came in. (No link to its web copy: that page carries the subscriber's
    /// rating forms, and resetting a leaked feed address must take everything it gave.)
    pub edition: String,
}

/// A subscriber's private feed: the papers delivered in the last `FEED_DAYS` days, newest
/// first.
pub struct SubscriberFeed {
    pub url: String,
    pub entries: Vec<FeedEntry>,
    /// When the newest entry was delivered (the feed's `updated`).
    pub updated: Option<DateTime<Utc>>,
}

/// The feed a `/feed/{token}` link names, if the token is the subscriber's current one.
pub async fn feed(db: &PgPool, links: &Links, raw: &str) -> sqlx::Result<Option<SubscriberFeed>> {
    let Some(id) = Signer::claimed_id(raw) else { return Ok(None) };
    let Some(subscriber) = subscribers::find_by_id(db, id).await? else { return Ok(None) };
    if links.signer().verify(Purpose::Feed(subscriber.feed_generation), raw).is_none() {
        return Ok(None);
    }
    let since = Utc::now() - Duration::days(FEED_DAYS);
    let filter = Filter { since: Some(since), delivered_only: true, limit: None };
    let records = deliveries::of_subscriber(db, id, filter).await?;
    let items = items_of(db, &records).await?;
    let mut entries = Vec::new();
    for (record, items) in records.iter().zip(items) {
        let (delivered_at, edition) = (record.delivered_at(), edition_of(record).title());
        for item in items {
            let digest = Sha256::new()
                .chain_update(id.as_bytes())
                .chain_update(item.arxiv_id.as_bytes())
                .finalize();
            entries.push(FeedEntry {
                id: format!("urn:paperboy:entry:{}", &hex::encode(digest)[..32]),
                item,
                delivered_at,
                edition: edition.clone(),
            });
        }
    }
    Ok(Some(SubscriberFeed {
        url: links.feed(&id, subscriber.feed_generation),
        updated: entries.first().map(|e| e.delivered_at),
        entries,
    }))
}

/// An edition a subscriber was sent, as the preferences page lists it.
pub struct EditionSent {
    pub title: String,
    pub delivered_at: DateTime<Utc>,
    pub papers: usize,
    pub web_copy: String,
    pub posted: bool,
}

/// The editions delivered to a subscriber, newest first.
pub async fn history(
    db: &PgPool,
    links: &Links,
    subscriber: Uuid,
) -> sqlx::Result<Vec<EditionSent>> {
    let filter = Filter { since: None, delivered_only: true, limit: Some(HISTORY_SHOWN) };
    let records = deliveries::of_subscriber(db, subscriber, filter).await?;
    Ok(records
        .iter()
        .map(|r| EditionSent {
            title: edition_of(r).title(),
            delivered_at: r.delivered_at(),
            papers: r.paper_ids.len(),
            web_copy: links.copy_path(r.id),
            posted: r.posted(),
        })
        .collect())
}
