//! Subscribers' ratings of papers and the tastes trained from them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::RatedPaper;

/// Records (`Some(up)`) or removes (`None`) a subscriber's rating of a paper. False when there
/// is no such paper.
pub async fn set(
    db: &PgPool,
    subscriber: Uuid,
    arxiv_id: &str,
    up: Option<bool>,
) -> sqlx::Result<bool> {
    match up {
        Some(up) => {
            let done = sqlx::query!(
                "INSERT INTO ratings (subscriber_id, arxiv_id, rating)
                 SELECT $1, arxiv_id, $3 FROM papers WHERE arxiv_id = $2
                 ON CONFLICT (subscriber_id, arxiv_id)
                 DO UPDATE SET rating = EXCLUDED.rating, rated_at = now()",
                subscriber,
                arxiv_id,
                if up { 1i16 } else { -1 },
            )
            .execute(db)
            .await?;
            Ok(done.rows_affected() == 1)
        }
        None => {
            sqlx::query!(
                "DELETE FROM ratings WHERE subscriber_id = $1 AND arxiv_id = $2",
                subscriber,
                arxiv_id,
            )
            .execute(db)
            .await?;
            Ok(true)
        }
    }
}

/// A paper as the rating page shows it, with the subscriber's rating (+1, −1) if any.
#[derive(Clone, Debug)]
pub struct RatedRow {
    pub arxiv_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub abstract_text: String,
    pub rating: Option<i16>,
    /// When it was sent to the subscriber (lists of sent papers).
    pub sent_at: Option<DateTime<Utc>>,
}

impl RatedRow {
    pub fn rated_up(&self) -> bool {
        self.rating.is_some_and(|r| r > 0)
    }

    pub fn rated_down(&self) -> bool {
        self.rating.is_some_and(|r| r < 0)
    }
}

/// A paper the subscriber may rate, with their rating: one sent to them, one on the public
/// archive's pages, or one they rated already (to change or clear it). None for any other.
pub async fn paper(
    db: &PgPool,
    subscriber: Uuid,
    arxiv_id: &str,
) -> sqlx::Result<Option<RatedRow>> {
    sqlx::query_as!(
        RatedRow,
        r#"SELECT p.arxiv_id, p.title, p.authors, p.abstract AS abstract_text,
                  r.rating AS "rating?", NULL::timestamptz AS sent_at
           FROM papers p
           LEFT JOIN ratings r ON r.arxiv_id = p.arxiv_id AND r.subscriber_id = $1
           WHERE p.arxiv_id = $2
             AND (p.featured_on IS NOT NULL OR r.rating IS NOT NULL
                  OR EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.subscriber_id = $1 AND d.status IN ('sent', 'posted')
                               AND d.paper_ids @> ARRAY[p.arxiv_id]))"#,
        subscriber,
        arxiv_id,
    )
    .fetch_optional(db)
    .await
}

/// The papers sent to a subscriber in the last `days` days, newest first, with their ratings.
pub async fn recently_sent(
    db: &PgPool,
    subscriber: Uuid,
    days: i32,
    limit: i64,
) -> sqlx::Result<Vec<RatedRow>> {
    sqlx::query_as!(
        RatedRow,
        r#"SELECT p.arxiv_id, p.title, p.authors, '' AS "abstract_text!", r.rating AS "rating?",
                s.sent_at
         FROM (SELECT DISTINCT ON (paper) paper, d.sent_at
               FROM deliveries d, unnest(d.paper_ids) AS paper
               WHERE d.subscriber_id = $1 AND d.status IN ('sent', 'posted')
                 AND d.sent_at > now() - make_interval(days => $2)
               ORDER BY paper, d.sent_at DESC) s
         JOIN papers p ON p.arxiv_id = s.paper
         LEFT JOIN ratings r ON r.arxiv_id = p.arxiv_id AND r.subscriber_id = $1
         ORDER BY s.sent_at DESC, p.arxiv_id
         LIMIT $3"#,
        subscriber,
        days,
        limit,
    )
    .fetch_all(db)
    .await
}

/// A subscriber's ratings of these papers (all of them without `papers`): (paper, title,
/// +1 or −1, where from, when), most recent first.
pub async fn of_subscriber(
    db: &PgPool,
    subscriber: Uuid,
    papers: Option<&[String]>,
) -> sqlx::Result<Vec<(String, String, i16, String, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        "SELECT p.arxiv_id, p.title, r.rating, r.source, r.rated_at
         FROM ratings r JOIN papers p USING (arxiv_id)
         WHERE r.subscriber_id = $1 AND ($2::text[] IS NULL OR r.arxiv_id = ANY($2))
         ORDER BY r.rated_at DESC, p.arxiv_id",
        subscriber,
        papers,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.arxiv_id, r.title, r.rating, r.source, r.rated_at)).collect())
}

/// The key training gives a library entry without an arXiv id, by its position.
pub fn library_key(position: i32) -> String {
    format!("library:{position}")
}

/// A library key's position (None for an arXiv id).
pub fn library_position(key: &str) -> Option<i32> {
    key.strip_prefix("library:")?.parse().ok()
}

/// A subscriber's latest `limit` ratings and library entries, most recent first, as
/// training reads them: the first `with_text` with their titles, abstracts and keywords, the
/// rest by id only. Library entries without an arXiv id count as papers rated up when the
/// library was uploaded, keyed by [`library_key`].
pub async fn for_training(
    db: &PgPool,
    subscriber: Uuid,
    limit: usize,
    with_text: usize,
) -> sqlx::Result<Vec<RatedPaper>> {
    // The ratings first (from their index), then the text of only those that train: a
    // join would read every paper to find 2,000.
    let rated = sqlx::query!(
        "SELECT arxiv_id, rating, rated_at FROM ratings WHERE subscriber_id = $1
         ORDER BY rated_at DESC, arxiv_id LIMIT $2",
        subscriber,
        limit as i64,
    )
    .fetch_all(db)
    .await?;
    // A library's entries share one time and come in the file's order, so only its first
    // `with_text` can be among the papers that train (the rest neither train nor exclude):
    // the others are not read, abstracts and all, on every rating.
    let library = super::library::entries(db, subscriber, with_text as i64).await?;
    let mut merged: Vec<(DateTime<Utc>, RatedPaper)> = rated
        .into_iter()
        .map(|r| {
            let paper = RatedPaper {
                arxiv_id: r.arxiv_id,
                title: String::new(),
                abstract_text: String::new(),
                keywords: Vec::new(),
                up: r.rating > 0,
            };
            (r.rated_at, paper)
        })
        .collect();
    merged.extend(library.into_iter().map(|e| {
        let paper = RatedPaper {
            arxiv_id: library_key(e.position),
            title: e.title,
            abstract_text: e.abstract_text,
            keywords: Vec::new(),
            up: true,
        };
        (e.uploaded_at, paper)
    }));
    // Stable: ratings keep their order, a library its file's order.
    merged.sort_by_key(|m| std::cmp::Reverse(m.0));
    let mut merged: Vec<RatedPaper> = merged.into_iter().take(limit).map(|(_, p)| p).collect();
    let training: Vec<String> = merged
        .iter()
        .take(with_text)
        .filter(|r| library_position(&r.arxiv_id).is_none())
        .map(|r| r.arxiv_id.clone())
        .collect();
    let mut text: HashMap<String, (String, String, Vec<String>)> = sqlx::query!(
        "SELECT arxiv_id, title, abstract, ai_keywords FROM papers WHERE arxiv_id = ANY($1)",
        &training,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| (r.arxiv_id, (r.title, r.r#abstract, r.ai_keywords)))
    .collect();
    for (i, paper) in merged.iter_mut().enumerate() {
        if i >= with_text {
            paper.title.clear();
            paper.abstract_text.clear();
        } else if let Some((title, abstract_text, keywords)) = text.remove(&paper.arxiv_id) {
            (paper.title, paper.abstract_text, paper.keywords) = (title, abstract_text, keywords);
        }
    }
    Ok(merged)
}

/// Subscribers whose stored taste predates the vector of something they liked or rated
/// (a paper fetched for their examples, a library entry, embedded in the last hour):
/// their tastes are trained again so that the vectors count. At most `limit`, with their
/// topics.
pub async fn stale_tastes(
    db: &PgPool,
    model: &str,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Vec<String>)>> {
    let rows = sqlx::query!(
        r#"WITH fresh AS (
               SELECT r.subscriber_id, max(v.embedded_at) AS at
               FROM paper_vectors v JOIN ratings r USING (arxiv_id)
               WHERE v.model = $1 AND v.embedded_at > now() - interval '1 hour'
               GROUP BY r.subscriber_id
               UNION ALL
               SELECT subscriber_id, max(embedded_at)
               FROM library_entries
               WHERE model = $1 AND embedded_at > now() - interval '1 hour'
               GROUP BY subscriber_id
           )
           SELECT DISTINCT s.id, s.topics
           FROM fresh f JOIN subscribers s ON s.id = f.subscriber_id
           LEFT JOIN tastes t ON t.subscriber_id = f.subscriber_id
           WHERE t.trained_at IS NULL OR t.trained_at < f.at
           LIMIT $2"#,
        model,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.topics)).collect())
}

/// Stores a subscriber's trained taste (`None`, an empty one, removes it). The taste is the
/// ranking's own model, kept as JSON.
pub async fn save_taste<T: serde::Serialize>(
    db: &PgPool,
    subscriber: Uuid,
    taste: Option<&T>,
) -> sqlx::Result<()> {
    let Some(taste) = taste else {
        sqlx::query!("DELETE FROM tastes WHERE subscriber_id = $1", subscriber,)
            .execute(db)
            .await?;
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO tastes (subscriber_id, model) VALUES ($1, $2)
         ON CONFLICT (subscriber_id) DO UPDATE SET model = EXCLUDED.model, trained_at = now()",
        subscriber,
        sqlx::types::Json(taste) as _,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The stored tastes of these subscribers (subscribers without one are left out).
pub async fn tastes<T: serde::de::DeserializeOwned>(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, T>> {
    let rows = sqlx::query!(
        r#"SELECT subscriber_id, model AS "model: sqlx::types::Json<serde_json::Value>"
           FROM tastes WHERE subscriber_id = ANY($1)"#,
        ids,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let taste = serde_json::from_value(r.model.0).map_err(|e| {
                sqlx::Error::ColumnDecode { index: "model".into(), source: Box::new(e) }
            })?;
            Ok((r.subscriber_id, taste))
        })
        .collect()
}

/// Whether the subscriber has rated anything (so their topics also train their taste).
pub async fn any(db: &PgPool, subscriber: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM ratings WHERE subscriber_id = $1) AS "any!""#,
        subscriber,
    )
    .fetch_one(db)
    .await
}

/// One subscriber's stored taste (empty when they rated nothing).
pub async fn taste<T: serde::de::DeserializeOwned + Default>(
    db: &PgPool,
    subscriber: Uuid,
) -> sqlx::Result<T> {
    let mut conn = db.acquire().await?;
    Ok(tastes(&mut conn, &[subscriber]).await?.remove(&subscriber).unwrap_or_default())
}
