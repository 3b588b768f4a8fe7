//! Sentence-embedding vectors of papers and topics, each stored under the model that
//! computed it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A paper waiting for its vector: what it is computed from.
#[derive(Clone, Debug)]
pub struct Unembedded {
    pub arxiv_id: String,
    pub title: String,
    pub abstract_text: String,
}

/// Claims up to `limit` papers that have no vector of `model` computed at or after `since`
/// (`None`: none at all), newest first, among `only` when given. Each claimed paper is
/// held by a transaction-scoped advisory lock on `conn`, so that other embedders (another
/// instance, `paperboy embed` beside `serve`) skip it until this transaction ends.
pub async fn claim_unembedded(
    conn: &mut PgConnection,
    model: &str,
    since: Option<DateTime<Utc>>,
    only: Option<&[String]>,
    limit: i64,
) -> sqlx::Result<Vec<Unembedded>> {
    // The inner query picks a few more than needed, in order; the lock is tried only on
    // those (a lock in the same WHERE as the ORDER BY would be tried on every row).
    if since.is_none() && only.is_none() {
        // The usual case, every few seconds: the queue, which is empty when all are done.
        return sqlx::query_as!(
            Unembedded,
            r#"SELECT arxiv_id AS "arxiv_id!", title AS "title!", abstract_text AS "abstract_text!"
               FROM (SELECT p.arxiv_id, p.title, p.abstract AS abstract_text,
                            coalesce(p.featured_on, p.announced_on) AS day
                     FROM papers_to_embed q JOIN papers p USING (arxiv_id)
                     WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v
                                       WHERE v.arxiv_id = p.arxiv_id AND v.model = $1)
                     ORDER BY day DESC NULLS LAST, p.arxiv_id
                     LIMIT $2::bigint * 4) c
               WHERE pg_try_advisory_xact_lock(hashtextextended('paper_vectors:' || c.arxiv_id, 0))
               ORDER BY day DESC NULLS LAST, arxiv_id
               LIMIT $2::bigint"#,
            model,
            limit,
        )
        .fetch_all(conn)
        .await;
    }
    sqlx::query_as!(
        Unembedded,
        r#"SELECT arxiv_id AS "arxiv_id!", title AS "title!", abstract_text AS "abstract_text!"
           FROM (SELECT p.arxiv_id, p.title, p.abstract AS abstract_text,
                        coalesce(p.featured_on, p.announced_on) AS day
                 FROM papers p
                 WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v
                                   WHERE v.arxiv_id = p.arxiv_id AND v.model = $1
                                     AND ($2::timestamptz IS NULL OR v.embedded_at >= $2))
                   AND ($3::text[] IS NULL OR p.arxiv_id = ANY($3))
                 ORDER BY day DESC NULLS LAST, p.arxiv_id
                 LIMIT $4::bigint * 4) c
           WHERE pg_try_advisory_xact_lock(hashtextextended('paper_vectors:' || c.arxiv_id, 0))
           ORDER BY day DESC NULLS LAST, arxiv_id
           LIMIT $4::bigint"#,
        model,
        since,
        only,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Which of `ids` have a vector of `model` computed at or after `since`.
pub async fn embedded_among(
    conn: &mut PgConnection,
    model: &str,
    since: Option<DateTime<Utc>>,
    ids: &[String],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT arxiv_id FROM paper_vectors
         WHERE model = $1 AND arxiv_id = ANY($3)
           AND ($2::timestamptz IS NULL OR embedded_at >= $2)",
        model,
        since,
        ids,
    )
    .fetch_all(conn)
    .await
}

/// The database's clock, which `embedded_at` is written by.
pub async fn now(db: &PgPool) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar!(r#"SELECT now() AS "now!""#).fetch_one(db).await
}

/// How many papers still lack a vector of `model` (computed at or after `since`), among
/// `only` when given.
pub async fn count_unembedded(
    db: &PgPool,
    model: &str,
    since: Option<DateTime<Utc>>,
    only: Option<&[String]>,
) -> sqlx::Result<i64> {
    if since.is_none() && only.is_none() {
        return sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM papers_to_embed q
               WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v
                                 WHERE v.arxiv_id = q.arxiv_id AND v.model = $1)"#,
            model,
        )
        .fetch_one(db)
        .await;
    }
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM papers p
           WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v
                             WHERE v.arxiv_id = p.arxiv_id AND v.model = $1
                               AND ($2::timestamptz IS NULL OR v.embedded_at >= $2))
             AND ($3::text[] IS NULL OR p.arxiv_id = ANY($3))"#,
        model,
        since,
        only,
    )
    .fetch_one(db)
    .await
}

/// Stores papers' vectors of `model`, replacing any earlier vector of theirs. `embedded_at`
/// is the time of this statement, not of its transaction's start (an embedding transaction
/// stays open while the model works): processes that read the vectors embedded since a time
/// (`page_since`) see it within moments of its commit.
pub async fn save_papers(
    conn: &mut PgConnection,
    model: &str,
    rows: &[(String, Vec<f32>)],
) -> sqlx::Result<()> {
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    // Postgres arrays of arrays must be rectangular: one flat array, cut by the dimension.
    let dim = same_dimension(rows)?;
    let flat: Vec<f32> = rows.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    sqlx::query!(
        "INSERT INTO paper_vectors (arxiv_id, model, vector, embedded_at)
         SELECT id, $2, ($3::real[])[(n - 1) * $4 + 1 : n * $4], clock_timestamp()
         FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)
         WHERE EXISTS (SELECT 1 FROM papers WHERE arxiv_id = t.id)
         ON CONFLICT (arxiv_id) DO UPDATE
         SET model = EXCLUDED.model, vector = EXCLUDED.vector, embedded_at = EXCLUDED.embedded_at",
        &ids as &[&str],
        model,
        &flat,
        dim,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows' common length (a row of another length would shift every later one).
fn same_dimension(rows: &[(String, Vec<f32>)]) -> sqlx::Result<i64> {
    let dim = rows.first().map_or(0, |(_, v)| v.len());
    if rows.iter().any(|(_, v)| v.len() != dim) {
        return Err(sqlx::Error::Protocol("vectors of different lengths in one batch".into()));
    }
    Ok(dim as i64)
}

/// Makes `model` the one embedders work for: deletes the vectors of every other model and,
/// when there were any, queues each paper that lacks a vector of `model` (the queue's
/// triggers keep it exact otherwise). In one transaction, so that no deleted vector goes
/// unqueued. Returns how many vectors it deleted.
pub async fn switch_to_model(db: &PgPool, model: &str) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let papers = sqlx::query!("DELETE FROM paper_vectors WHERE model <> $1", model)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let topics = sqlx::query!("DELETE FROM topic_vectors WHERE model <> $1", model)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if papers > 0 {
        sqlx::query!(
            "INSERT INTO papers_to_embed (arxiv_id)
             SELECT arxiv_id FROM papers p
             WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v
                               WHERE v.arxiv_id = p.arxiv_id AND v.model = $1)
             ON CONFLICT DO NOTHING",
            model,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(papers + topics)
}

/// The vectors of `model` these papers have.
pub async fn of_papers(
    db: &PgPool,
    model: &str,
    ids: &[String],
) -> sqlx::Result<HashMap<String, Vec<f32>>> {
    let rows = sqlx::query!(
        "SELECT arxiv_id, vector FROM paper_vectors WHERE model = $1 AND arxiv_id = ANY($2)",
        model,
        ids,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.arxiv_id, r.vector)).collect())
}

/// How many papers have a vector of `model`.
pub async fn count_papers(db: &PgPool, model: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM paper_vectors WHERE model = $1"#, model)
        .fetch_one(db)
        .await
}

/// The vectors of `model` these topics (keys) have.
pub async fn of_topics(
    db: &PgPool,
    model: &str,
    topics: &[String],
) -> sqlx::Result<HashMap<String, Vec<f32>>> {
    let rows = sqlx::query!(
        "SELECT topic, vector FROM topic_vectors WHERE model = $1 AND topic = ANY($2)",
        model,
        topics,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.topic, r.vector)).collect())
}

/// Stores topics' vectors of `model` (a topic already stored keeps its vector).
pub async fn save_topics(
    db: &PgPool,
    model: &str,
    rows: &[(String, Vec<f32>)],
) -> sqlx::Result<()> {
    let topics: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let dim = same_dimension(rows)?;
    let flat: Vec<f32> = rows.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    sqlx::query!(
        "INSERT INTO topic_vectors (model, topic, vector)
         SELECT $2, topic, ($3::real[])[(n - 1) * $4 + 1 : n * $4]
         FROM unnest($1::text[]) WITH ORDINALITY AS t(topic, n)
         ON CONFLICT (model, topic) DO NOTHING",
        &topics as &[&str],
        model,
        &flat,
        dim,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Topics of subscribers who may get digests that have no vector of `model`, at most `limit`.
pub async fn unembedded_topics(db: &PgPool, model: &str, limit: i64) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query_scalar!(
        r#"SELECT DISTINCT lower(t) AS "topic!"
           FROM subscribers s, unnest(s.topics) AS t
           WHERE s.status IN ('pending', 'confirmed')
             AND NOT EXISTS (SELECT 1 FROM topic_vectors v WHERE v.model = $1 AND v.topic = lower(t))
           LIMIT $2"#,
        model,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// A paper's vector as the archive in memory keeps it.
#[derive(Debug)]
pub struct ArchiveVector {
    pub arxiv_id: String,
    /// The day the archive lists it under (featured, else announced, else published).
    pub day: Option<chrono::NaiveDate>,
    pub vector: Vec<f32>,
    pub embedded_at: DateTime<Utc>,
}

/// Up to `limit` vectors of `model` after the cursor (`embedded_at`, `arxiv_id`), in that
/// order; withdrawn papers left out.
pub async fn page_since(
    db: &PgPool,
    model: &str,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> sqlx::Result<Vec<ArchiveVector>> {
    let (at, id) = after.unzip();
    sqlx::query_as!(
        ArchiveVector,
        r#"SELECT v.arxiv_id, coalesce(p.featured_on, p.announced_on, p.published_at::date) AS day,
                  v.vector, v.embedded_at
           FROM paper_vectors v JOIN papers p USING (arxiv_id)
           WHERE v.model = $1 AND p.withdrawn_at IS NULL
             AND ($2::timestamptz IS NULL OR (v.embedded_at, v.arxiv_id) > ($2, $3::text))
           ORDER BY v.embedded_at, v.arxiv_id
           LIMIT $4"#,
        model,
        at,
        id,
        limit,
    )
    .fetch_all(db)
    .await
}
