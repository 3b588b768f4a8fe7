//! Papers: upserts from each source, and the lists pages show.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::{AnnouncedPaper, FeaturedPaper, FetchedPaper};

/// What an upsert did to the stored paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Inserted,
    Updated,
    Unchanged,
}

fn outcome(row: Option<bool>) -> Upserted {
    match row {
        Some(true) => Upserted::Inserted,
        Some(false) => Upserted::Updated,
        None => Upserted::Unchanged,
    }
}

/// Stores what Hugging Face knows; upvotes and comments always take the latest count.
/// A new paper is stored as read by the lexicon: the caller counts it (`lexicon::count`).
pub async fn upsert_featured(conn: &mut PgConnection, p: &FeaturedPaper) -> sqlx::Result<Upserted> {
    let row: Option<bool> = sqlx::query_scalar!(
        r#"INSERT INTO papers (arxiv_id, title, abstract, authors, published_at, featured_on, upvotes,
                             num_comments, ai_summary, ai_keywords, github_repo, github_stars,
                             project_page, organization, thumbnail, withdrawn_at, on_huggingface, lexicon_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, true, now())
         ON CONFLICT (arxiv_id) DO UPDATE SET
             title = EXCLUDED.title,
             abstract = CASE WHEN EXCLUDED.abstract <> '' THEN EXCLUDED.abstract ELSE papers.abstract END,
             authors = CASE WHEN cardinality(EXCLUDED.authors) > 0 THEN EXCLUDED.authors ELSE papers.authors END,
             published_at = coalesce(EXCLUDED.published_at, papers.published_at),
             featured_on = least(papers.featured_on, EXCLUDED.featured_on),
             upvotes = EXCLUDED.upvotes,
             num_comments = EXCLUDED.num_comments,
             ai_summary = coalesce(EXCLUDED.ai_summary, papers.ai_summary),
             ai_keywords = CASE WHEN cardinality(EXCLUDED.ai_keywords) > 0 THEN EXCLUDED.ai_keywords ELSE papers.ai_keywords END,
             github_repo = coalesce(EXCLUDED.github_repo, papers.github_repo),
             github_stars = coalesce(EXCLUDED.github_stars, papers.github_stars),
             project_page = coalesce(EXCLUDED.project_page, papers.project_page),
             organization = coalesce(EXCLUDED.organization, papers.organization),
             thumbnail = coalesce(EXCLUDED.thumbnail, papers.thumbnail),
             withdrawn_at = EXCLUDED.withdrawn_at,
             on_huggingface = true,
             updated_at = now()
         WHERE (papers.title, papers.abstract, papers.authors, papers.featured_on, papers.upvotes,
                papers.num_comments, papers.ai_summary, papers.ai_keywords, papers.github_repo,
                papers.github_stars, papers.project_page, papers.withdrawn_at, papers.on_huggingface)
               IS DISTINCT FROM
               (EXCLUDED.title, EXCLUDED.abstract, EXCLUDED.authors, least(papers.featured_on, EXCLUDED.featured_on),
                EXCLUDED.upvotes, EXCLUDED.num_comments, EXCLUDED.ai_summary, EXCLUDED.ai_keywords,
                EXCLUDED.github_repo, EXCLUDED.github_stars, EXCLUDED.project_page, EXCLUDED.withdrawn_at, true)
         RETURNING (xmax = 0) AS "inserted!""#,
        p.arxiv_id.as_str(),
        &p.title,
        &p.abstract_text,
        &p.authors,
        p.published_at,
        p.featured_on,
        p.upvotes,
        p.num_comments,
        p.ai_summary.as_deref(),
        &p.ai_keywords,
        p.github_repo.as_deref(),
        p.github_stars,
        p.project_page.as_deref(),
        p.organization.as_deref(),
        p.thumbnail.as_deref(),
        p.withdrawn_at,
    )
    .fetch_optional(conn)
    .await?;
    Ok(outcome(row))
}

/// Stores what an arXiv announcement says (a new paper as read by the lexicon, as above). The first announcement day is kept, so a
/// later replacement does not make an old paper look new.
pub async fn upsert_announced(
    conn: &mut PgConnection,
    p: &AnnouncedPaper,
) -> sqlx::Result<Upserted> {
    let row: Option<bool> = sqlx::query_scalar!(
        r#"INSERT INTO papers (arxiv_id, arxiv_version, title, abstract, authors, categories,
                             announced_on, announce_type, on_arxiv, lexicon_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, now())
         ON CONFLICT (arxiv_id) DO UPDATE SET
             arxiv_version = coalesce(EXCLUDED.arxiv_version, papers.arxiv_version),
             title = EXCLUDED.title,
             abstract = CASE WHEN EXCLUDED.abstract <> '' THEN EXCLUDED.abstract ELSE papers.abstract END,
             authors = CASE WHEN cardinality(EXCLUDED.authors) > 0 THEN EXCLUDED.authors ELSE papers.authors END,
             categories = EXCLUDED.categories,
             announced_on = coalesce(papers.announced_on, EXCLUDED.announced_on),
             announce_type = coalesce(papers.announce_type, EXCLUDED.announce_type),
             on_arxiv = true,
             updated_at = now()
         WHERE (papers.arxiv_version, papers.title, papers.abstract, papers.authors, papers.categories,
                papers.announced_on IS NULL, papers.on_arxiv)
               IS DISTINCT FROM
               (coalesce(EXCLUDED.arxiv_version, papers.arxiv_version), EXCLUDED.title,
                EXCLUDED.abstract, EXCLUDED.authors, EXCLUDED.categories, false, true)
         RETURNING (xmax = 0) AS "inserted!""#,
        p.arxiv_id.as_str(),
        p.version,
        &p.title,
        &p.abstract_text,
        &p.authors,
        &p.categories,
        p.announced_on,
        &p.announce_type,
    )
    .fetch_optional(conn)
    .await?;
    Ok(outcome(row))
}

/// Stores a paper fetched from arXiv's query API because a reader named it. A paper we
/// have already stays as it is; a new one has no announcement day (it was not announced
/// to us), so no edition offers it as new, and the lexicon reads it later.
pub async fn insert_fetched(conn: &mut PgConnection, p: &FetchedPaper) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO papers (arxiv_id, arxiv_version, title, abstract, authors, categories,
                             published_at, on_arxiv)
         VALUES ($1, $2, $3, $4, $5, $6, $7, true)
         ON CONFLICT (arxiv_id) DO NOTHING",
        p.arxiv_id.as_str(),
        p.version,
        &p.title,
        &p.abstract_text,
        &p.authors,
        &p.categories,
        p.published_at,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A paper as a list shows it.
#[derive(Clone, Debug)]
pub struct PaperCard {
    pub arxiv_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub upvotes: i32,
    pub num_comments: i32,
    pub ai_summary: Option<String>,
    pub github_repo: Option<String>,
    pub github_stars: Option<i32>,
    pub project_page: Option<String>,
    pub organization: Option<String>,
    pub featured_on: Option<NaiveDate>,
    pub published_at: Option<DateTime<Utc>>,
}

/// The most recent Hugging Face featured day, if any paper is stored.
pub async fn latest_featured_day(db: &PgPool) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar!("SELECT max(featured_on) FROM papers WHERE withdrawn_at IS NULL",)
        .fetch_one(db)
        .await
}

/// Every paper featured on `day`, most upvoted first; withdrawn papers left out.
pub async fn featured_on(db: &PgPool, day: NaiveDate) -> sqlx::Result<Vec<PaperCard>> {
    sqlx::query_as!(
        PaperCard,
        "SELECT arxiv_id, title, authors, upvotes, num_comments, ai_summary, github_repo,
                github_stars, project_page, organization, featured_on, published_at
         FROM papers
         WHERE featured_on = $1 AND withdrawn_at IS NULL
         ORDER BY upvotes DESC, arxiv_id",
        day,
    )
    .fetch_all(db)
    .await
}

/// One paper as its own page (or a search result) shows it.
#[derive(Clone, Debug)]
pub struct PaperPage {
    pub card: PaperCard,
    pub abstract_text: String,
    /// The day the archive lists it under: featured, else announced, else published.
    pub day: Option<NaiveDate>,
}

/// These stored papers, in no particular order; withdrawn papers left out.
pub async fn pages(db: &PgPool, ids: &[String]) -> sqlx::Result<Vec<PaperPage>> {
    let rows = sqlx::query!(
        "SELECT arxiv_id, title, authors, upvotes, num_comments, ai_summary, github_repo,
                github_stars, project_page, organization, featured_on, published_at, abstract,
                coalesce(featured_on, announced_on, published_at::date) AS day
         FROM papers WHERE arxiv_id = ANY($1) AND withdrawn_at IS NULL",
        ids,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PaperPage {
            card: PaperCard {
                arxiv_id: r.arxiv_id,
                title: r.title,
                authors: r.authors,
                upvotes: r.upvotes,
                num_comments: r.num_comments,
                ai_summary: r.ai_summary,
                github_repo: r.github_repo,
                github_stars: r.github_stars,
                project_page: r.project_page,
                organization: r.organization,
                featured_on: r.featured_on,
                published_at: r.published_at,
            },
            abstract_text: r.r#abstract,
            day: r.day,
        })
        .collect())
}

/// The Hugging Face featured days with how many papers each, newest first.
pub async fn featured_days(db: &PgPool) -> sqlx::Result<Vec<(NaiveDate, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT featured_on AS "day!", count(*) AS "papers!" FROM papers
           WHERE featured_on IS NOT NULL AND withdrawn_at IS NULL
           GROUP BY featured_on ORDER BY featured_on DESC"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.papers)).collect())
}

/// Whether any (not withdrawn) paper was featured on `day`.
pub async fn featured_any(db: &PgPool, day: NaiveDate) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM papers WHERE featured_on = $1 AND withdrawn_at IS NULL) AS "any!""#,
        day,
    )
    .fetch_one(db)
    .await
}

/// The featured days just before and just after `day`.
pub async fn days_around(
    db: &PgPool,
    day: NaiveDate,
) -> sqlx::Result<(Option<NaiveDate>, Option<NaiveDate>)> {
    let row = sqlx::query!(
        "SELECT (SELECT max(featured_on) FROM papers WHERE featured_on < $1 AND withdrawn_at IS NULL) AS before,
                (SELECT min(featured_on) FROM papers WHERE featured_on > $1 AND withdrawn_at IS NULL) AS after",
        day,
    )
    .fetch_one(db)
    .await?;
    Ok((row.before, row.after))
}

/// How many papers are stored: counted while few, the planner's estimate once many (plenty
/// for a dashboard).
pub async fn estimated_count(db: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT CASE WHEN reltuples < 10000 THEN (SELECT count(*) FROM papers)
                       ELSE reltuples::bigint END AS "n!"
           FROM pg_class WHERE relname = 'papers'"#
    )
    .fetch_one(db)
    .await
}

// What the admin pages list.

#[derive(Debug)]
pub struct PaperRow {
    pub arxiv_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub upvotes: i32,
    pub featured_on: Option<NaiveDate>,
    pub announced_on: Option<NaiveDate>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub on_huggingface: bool,
    pub digests: i64,
}

/// The latest papers, or those matching `q` (full text), with how many digests carried each.
pub async fn search(db: &PgPool, q: &str) -> sqlx::Result<Vec<PaperRow>> {
    sqlx::query_as!(
        PaperRow,
        r#"WITH picked AS (
             SELECT arxiv_id, title, authors, upvotes, featured_on, announced_on, withdrawn_at, on_huggingface,
                    coalesce(featured_on, announced_on) AS day
             FROM papers
             WHERE $1 = '' OR search @@ websearch_to_tsquery('english', $1)
             ORDER BY CASE WHEN $1 = '' THEN 0 ELSE ts_rank(search, websearch_to_tsquery('english', $1)) END DESC,
                      coalesce(featured_on, announced_on) DESC NULLS LAST, upvotes DESC
             LIMIT 50
         ),
         counts AS (
             SELECT p, count(*) AS n
             FROM editions e
             JOIN deliveries d ON d.edition_id = e.id AND d.status IN ('sent', 'posted')
             CROSS JOIN LATERAL unnest(d.paper_ids) AS p
             WHERE e.day BETWEEN (SELECT min(day) FROM picked) AND (SELECT max(day) FROM picked) + 6
               AND p IN (SELECT arxiv_id FROM picked)
             GROUP BY p
         )
         SELECT picked.arxiv_id, title, authors, upvotes, featured_on, announced_on, withdrawn_at, on_huggingface,
                coalesce(counts.n, 0) AS "digests!"
         FROM picked LEFT JOIN counts ON counts.p = picked.arxiv_id"#,
        q.trim(),
    )
    .fetch_all(db)
    .await
}
