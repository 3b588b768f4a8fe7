//! The subscriber's data export: everything paperboy keeps about them, as their "download
//! my data" file.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::digests::ranking::Taste;
use crate::digests::read_back;
use crate::domain::{Links, Preferences};
use crate::store::{deliveries, examples, library, mail_queue, ratings, subscribers};

/// Everything paperboy keeps about a subscriber, as their "download my data" file.
#[derive(Serialize)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub email: String,
    pub status: &'static str,
    pub signed_up_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub preferences: ExportedPreferences,
    /// Choices made on the sign-up form that wait for the confirmation link.
    pub awaiting_confirmation: Option<AwaitingChoices>,
    /// Earlier confirmation links still in force, each with the choices it was sent with.
    pub earlier_confirmation_links: Vec<EarlierLink>,
    pub feed_url: String,
    pub events: Vec<ExportedEvent>,
    /// Confirmation and preference-link emails (their bodies are not kept once sent).
    pub emails: Vec<ExportedEmail>,
    pub deliveries: Vec<ExportedDelivery>,
    pub ratings: Vec<ExportedRating>,
    /// "Papers like these" still waiting for their paper, and the reference library.
    pub examples: ExportedExamples,
    /// What the ranking learned from the ratings: word stems and their weights.
    pub learned_interests: Vec<(String, f32)>,
    /// Bounce and complaint reports about their address.
    pub bounces: Vec<ExportedBounce>,
}

#[derive(Serialize)]
pub struct ExportedBounce {
    pub kind: String,
    /// Whether it proved the message was ours (else it was kept and changed nothing).
    pub proven: bool,
    pub source: String,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct AwaitingChoices {
    pub topics: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub frequency: Option<String>,
    /// "Papers like these" named at sign-up.
    pub examples: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct EarlierLink {
    #[serde(flatten)]
    pub choices: AwaitingChoices,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct ExportedEmail {
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub struct ExportedPreferences {
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub frequency: &'static str,
    pub weekday: i16,
    pub delivery_hour: i16,
    pub time_zone: String,
    pub papers_per_email: i32,
    pub min_upvotes: i32,
    pub trend_weight: i16,
}

#[derive(Serialize)]
pub struct ExportedEvent {
    pub kind: String,
    pub at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct ExportedDelivery {
    pub edition: String,
    pub day: NaiveDate,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    /// The mail server's refusal, for a failed delivery.
    pub error: Option<String>,
    pub web_copy: Option<String>,
    pub papers: Vec<ExportedPaper>,
}

#[derive(Serialize)]
pub struct ExportedPaper {
    pub arxiv_id: String,
    pub title: String,
    pub why: String,
}

#[derive(Serialize)]
pub struct ExportedRating {
    pub arxiv_id: String,
    pub title: String,
    pub rating: &'static str,
    /// `digest` (a 👍/👎), `example` (papers like these) or `library`.
    pub source: String,
    pub rated_at: DateTime<Utc>,
}

/// "Papers like these" still waiting for their paper, and the reference library.
#[derive(Serialize)]
pub struct ExportedExamples {
    /// (arXiv id, `queued` or `missing`, where from, when added).
    pub waiting: Vec<ExportedWaiting>,
    pub library: Option<ExportedLibrary>,
}

#[derive(Serialize)]
pub struct ExportedWaiting {
    pub arxiv_id: String,
    pub state: String,
    pub source: String,
    pub added_at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct ExportedLibrary {
    pub file_name: String,
    pub uploaded_at: DateTime<Utc>,
    pub entries: i32,
    /// Entries without an arXiv id, liked by their text (those with one are ratings).
    pub liked_entries: Vec<ExportedEntry>,
    pub skipped: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct ExportedEntry {
    pub cite_key: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
}

async fn examples_export(db: &PgPool, subscriber: Uuid) -> sqlx::Result<ExportedExamples> {
    let waiting = examples::of_subscriber(db, subscriber, i64::MAX)
        .await?
        .into_iter()
        .filter(|e| e.state != "liked")
        .map(|e| ExportedWaiting {
            arxiv_id: e.arxiv_id,
            state: e.state,
            source: e.source,
            added_at: e.added_at,
        })
        .collect();
    let library = match library::summary(db, subscriber).await? {
        None => None,
        Some(summary) => Some(ExportedLibrary {
            liked_entries: library::entries(db, subscriber, i64::MAX)
                .await?
                .into_iter()
                .map(|e| ExportedEntry {
                    cite_key: e.cite_key,
                    title: e.title,
                    abstract_text: e.abstract_text,
                })
                .collect(),
            file_name: summary.file_name,
            uploaded_at: summary.uploaded_at,
            entries: summary.entries,
            skipped: summary.skipped,
        }),
    };
    Ok(ExportedExamples { waiting, library })
}

/// The data export of a subscriber (None when there is no such subscriber).
pub async fn export(db: &PgPool, links: &Links, subscriber: Uuid) -> sqlx::Result<Option<Export>> {
    let Some(row) = subscribers::find_by_id(db, subscriber).await? else { return Ok(None) };
    let record = subscribers::record(db, subscriber).await?;
    let taste: Taste = ratings::taste(db, subscriber).await?;
    let events = subscribers::events(db, subscriber, None).await?;
    Ok(Some(Export {
        exported_at: Utc::now(),
        email: row.email.clone(),
        status: row.status().as_str(),
        signed_up_at: record.created_at,
        confirmed_at: record.confirmed_at,
        unsubscribed_at: record.unsubscribed_at,
        awaiting_confirmation: awaiting(record),
        earlier_confirmation_links: earlier_links(db, subscriber).await?,
        emails: emails(db, subscriber).await?,
        learned_interests: taste.terms.into_iter().map(|(term, w, _)| (term, w)).collect(),
        bounces: bounces(db, subscriber).await?,
        preferences: ExportedPreferences::from(&row.preferences()),
        feed_url: links.feed(&subscriber, row.feed_generation),
        events: events.into_iter().map(|e| ExportedEvent { kind: e.kind, at: e.at }).collect(),
        deliveries: deliveries(db, links, subscriber).await?,
        ratings: rated(db, subscriber).await?,
        examples: examples_export(db, subscriber).await?,
    }))
}

/// The choices a confirmation link still waits with, if any.
fn awaiting(record: subscribers::Record) -> Option<AwaitingChoices> {
    (record.pending_topics.is_some()
        || record.pending_categories.is_some()
        || record.pending_frequency.is_some()
        || record.pending_examples.is_some())
    .then_some(AwaitingChoices {
        topics: record.pending_topics,
        categories: record.pending_categories,
        frequency: record.pending_frequency,
        examples: record.pending_examples,
    })
}

async fn earlier_links(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<EarlierLink>> {
    let links = subscribers::earlier_links(db, subscriber).await?;
    Ok(links
        .into_iter()
        .map(|l| EarlierLink {
            choices: AwaitingChoices {
                topics: l.topics,
                categories: l.categories,
                frequency: l.frequency,
                examples: l.examples,
            },
            expires_at: l.expires_at,
        })
        .collect())
}

async fn emails(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<ExportedEmail>> {
    let emails = mail_queue::of_subscriber(db, subscriber).await?;
    Ok(emails
        .into_iter()
        .map(|(kind, subject, status, created_at, sent_at)| ExportedEmail {
            kind,
            subject,
            status,
            created_at,
            sent_at,
        })
        .collect())
}

async fn bounces(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<ExportedBounce>> {
    let bounces = crate::store::bounces::of_subscriber(db, subscriber).await?;
    Ok(bounces
        .into_iter()
        .map(|b| ExportedBounce {
            kind: b.kind,
            proven: b.proven,
            source: b.source,
            status_code: b.status_code,
            diagnostic: b.diagnostic,
            received_at: b.received_at,
        })
        .collect())
}

/// Every digest made for the subscriber, with its papers and why-lines as sent.
async fn deliveries(
    db: &PgPool,
    links: &Links,
    subscriber: Uuid,
) -> sqlx::Result<Vec<ExportedDelivery>> {
    let all = deliveries::Filter { since: None, delivered_only: false, limit: None };
    let records = deliveries::of_subscriber(db, subscriber, all).await?;
    let items = read_back::items_of(db, &records).await?;
    Ok(records
        .iter()
        .zip(items)
        .map(|(r, items)| ExportedDelivery {
            edition: r.edition_label.clone(),
            day: r.day,
            status: r.status.to_string(),
            created_at: r.created_at,
            delivered_at: r.sent_at,
            subject: r.subject.clone(),
            error: r.last_error.clone(),
            web_copy: r.delivered().then(|| links.copy(r.id)),
            papers: items
                .into_iter()
                .map(|i| ExportedPaper { arxiv_id: i.arxiv_id, title: i.title, why: i.why })
                .collect(),
        })
        .collect())
}

async fn rated(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Vec<ExportedRating>> {
    let rated = ratings::of_subscriber(db, subscriber, None).await?;
    Ok(rated
        .into_iter()
        .map(|(arxiv_id, title, rating, source, rated_at)| ExportedRating {
            arxiv_id,
            title,
            rating: if rating > 0 { "up" } else { "down" },
            source,
            rated_at,
        })
        .collect())
}

impl From<&Preferences> for ExportedPreferences {
    fn from(prefs: &Preferences) -> Self {
        Self {
            topics: prefs.topics.items().to_vec(),
            categories: prefs.categories.items().to_vec(),
            authors: prefs.authors.items().to_vec(),
            frequency: prefs.frequency.as_str(),
            weekday: prefs.weekday,
            delivery_hour: prefs.delivery_hour,
            time_zone: prefs.time_zone.name().to_string(),
            papers_per_email: prefs.papers_per_email,
            min_upvotes: prefs.min_upvotes,
            trend_weight: prefs.trend_weight,
        }
    }
}
