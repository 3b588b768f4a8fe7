//! Editions and the candidate papers of each.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::Frequency;
use crate::domain::{Candidate, Edition};

/// The edition's row id, creating the row on first use.
pub async fn ensure(db: &PgPool, edition: &Edition) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO editions (frequency, day, label) VALUES ($1, $2, $3)
         ON CONFLICT (frequency, day) DO UPDATE SET label = EXCLUDED.label
         RETURNING id",
        edition.frequency.as_str(),
        edition.day,
        edition.label(),
    )
    .fetch_one(db)
    .await
}

pub async fn find(db: &PgPool, id: i64) -> sqlx::Result<Option<Edition>> {
    let row = sqlx::query!("SELECT frequency, day FROM editions WHERE id = $1", id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| Edition {
        frequency: Frequency::parse(&r.frequency).unwrap_or_default(),
        day: r.day,
    }))
}

/// A paper as ranking and rendering read it.
struct CandidateRow {
    arxiv_id: String,
    title: String,
    abstract_text: String,
    authors: Vec<String>,
    categories: Vec<String>,
    ai_keywords: Vec<String>,
    ai_summary: Option<String>,
    upvotes: i32,
    github_repo: Option<String>,
    github_stars: Option<i32>,
    project_page: Option<String>,
    on_huggingface: bool,
}

/// The papers of an edition's period: featured on Hugging Face, or newly announced on
/// arXiv (new or cross-listed, not replacements), and not withdrawn.
pub async fn candidates(db: &PgPool, edition: &Edition) -> sqlx::Result<Vec<Candidate>> {
    let (from, to) = edition.period();
    let rows = sqlx::query_as!(
        CandidateRow,
        r#"SELECT arxiv_id, title, abstract AS abstract_text, authors, categories, ai_keywords,
                  ai_summary, upvotes, github_repo, github_stars, project_page, on_huggingface
           FROM papers
           WHERE withdrawn_at IS NULL
             AND (featured_on BETWEEN $1 AND $2
                  OR (announced_on BETWEEN $1 AND $2 AND announce_type IN ('new', 'cross')))
           ORDER BY upvotes DESC, arxiv_id"#,
        from,
        to,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Candidate::from).collect())
}

/// These papers as a digest shows them (web copies, feeds), in no particular order;
/// withdrawn papers too: they were sent.
pub async fn papers(db: &PgPool, ids: &[String]) -> sqlx::Result<Vec<Candidate>> {
    let rows = sqlx::query_as!(
        CandidateRow,
        "SELECT arxiv_id, title, abstract AS abstract_text, authors, categories, ai_keywords,
                ai_summary, upvotes, github_repo, github_stars, project_page, on_huggingface
         FROM papers WHERE arxiv_id = ANY($1)",
        ids,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Candidate::from).collect())
}

impl From<CandidateRow> for Candidate {
    fn from(r: CandidateRow) -> Self {
        Candidate {
            arxiv_id: r.arxiv_id,
            title: r.title,
            abstract_text: r.abstract_text,
            authors: r.authors,
            categories: r.categories,
            ai_keywords: r.ai_keywords,
            ai_summary: r.ai_summary,
            upvotes: r.upvotes,
            github_repo: r.github_repo,
            github_stars: r.github_stars,
            project_page: r.project_page,
            on_huggingface: r.on_huggingface,
        }
    }
}

/// The most recent paper day (featured or newly announced), optionally before a day.
pub async fn latest_paper_day(
    db: &PgPool,
    before: Option<NaiveDate>,
) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar!(
        "SELECT max(d) FROM (
             SELECT max(featured_on) AS d FROM papers
              WHERE withdrawn_at IS NULL AND ($1::date IS NULL OR featured_on < $1)
             UNION ALL
             SELECT max(announced_on) FROM papers
              WHERE withdrawn_at IS NULL AND announce_type IN ('new', 'cross')
                AND ($1::date IS NULL OR announced_on < $1)
         ) days",
        before,
    )
    .fetch_one(db)
    .await
}

// What the admin pages list.

#[derive(Debug)]
pub struct EditionRow {
    pub label: String,
    pub frequency: String,
    pub created_at: DateTime<Utc>,
    pub total: i64,
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
    pub queued: i64,
}

/// The latest editions (digest runs) with their deliveries by outcome.
pub async fn latest_with_outcomes(db: &PgPool, limit: i64) -> sqlx::Result<Vec<EditionRow>> {
    sqlx::query_as!(
        EditionRow,
        r#"SELECT e.label, e.frequency, e.created_at,
                count(d.id) AS "total!",
                count(*) FILTER (WHERE d.status = 'sent') AS "sent!",
                count(*) FILTER (WHERE d.status = 'skipped') AS "skipped!",
                count(*) FILTER (WHERE d.status = 'failed') AS "failed!",
                count(*) FILTER (WHERE d.status = 'pending') AS "queued!"
         FROM (SELECT * FROM editions ORDER BY id DESC LIMIT $1) e
         LEFT JOIN deliveries d ON d.edition_id = e.id
         GROUP BY e.id, e.label, e.frequency, e.created_at
         ORDER BY e.id DESC"#,
        limit,
    )
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct EditionBrief {
    pub label: String,
    pub frequency: String,
    pub created_at: DateTime<Utc>,
    pub queued: i64,
}

/// The latest editions with what is still queued of each (cheap: the queue is small).
pub async fn recent_with_queue(db: &PgPool, limit: i64) -> sqlx::Result<Vec<EditionBrief>> {
    sqlx::query_as!(
        EditionBrief,
        r#"SELECT e.label, e.frequency, e.created_at,
                (SELECT count(*) FROM delivery_queue q WHERE q.edition_id = e.id) AS "queued!"
         FROM editions e ORDER BY e.id DESC LIMIT $1"#,
        limit,
    )
    .fetch_all(db)
    .await
}
