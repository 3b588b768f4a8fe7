//! A reader's reference library (an uploaded BibTeX file): its summary and the entries
//! liked as they are, with their vectors once embedded.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An entry without an arXiv id, liked by its title and abstract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    pub cite_key: String,
    pub title: String,
    pub abstract_text: String,
}

/// Replaces a subscriber's library: the old one's entries and the examples it added go.
/// The caller adds the new one's arXiv entries as examples in the same transaction.
pub async fn replace(
    conn: &mut PgConnection,
    subscriber: Uuid,
    file_name: &str,
    entries: i32,
    skipped: &[(String, String)],
    direct: &[NewEntry],
) -> sqlx::Result<()> {
    remove(conn, subscriber).await?;
    let skipped: Vec<serde_json::Value> = skipped
        .iter()
        .map(|(key, reason)| serde_json::json!({"key": key, "reason": reason}))
        .collect();
    sqlx::query!(
        "INSERT INTO libraries (subscriber_id, file_name, entries, skipped) VALUES ($1, $2, $3, $4)",
        subscriber,
        file_name,
        entries,
        serde_json::Value::from(skipped),
    )
    .execute(&mut *conn)
    .await?;
    let column = |f: fn(&NewEntry) -> &str| direct.iter().map(f).collect::<Vec<&str>>();
    sqlx::query!(
        "INSERT INTO library_entries (subscriber_id, position, cite_key, title, abstract)
         SELECT $1, n::int, k, t, a
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(k, t, a, n)",
        subscriber,
        &column(|e| &e.cite_key) as &[&str],
        &column(|e| &e.title) as &[&str],
        &column(|e| &e.abstract_text) as &[&str],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a subscriber's library and the examples it added (their own ratings stay).
pub async fn remove(conn: &mut PgConnection, subscriber: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH r AS (DELETE FROM ratings WHERE subscriber_id = $1 AND source = 'library'),
              w AS (DELETE FROM wanted_examples WHERE subscriber_id = $1 AND source = 'library')
         DELETE FROM libraries WHERE subscriber_id = $1",
        subscriber,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What the preferences page says of a library.
#[derive(Clone, Debug)]
pub struct Summary {
    pub file_name: String,
    pub uploaded_at: DateTime<Utc>,
    /// Entries in the file.
    pub entries: i32,
    /// Entries with an arXiv id (examples).
    pub arxiv: i64,
    /// Entries liked as they are, and how many of them are embedded.
    pub direct: i64,
    pub embedded: i64,
    /// (citation key, why it was not used).
    pub skipped: Vec<(String, String)>,
}

pub async fn summary(db: &PgPool, subscriber: Uuid) -> sqlx::Result<Option<Summary>> {
    let row = sqlx::query!(
        r#"SELECT l.file_name, l.uploaded_at, l.entries, l.skipped,
                  (SELECT count(*) FROM ratings r
                   WHERE r.subscriber_id = $1 AND r.source = 'library') AS "rated!",
                  (SELECT count(*) FROM wanted_examples w
                   WHERE w.subscriber_id = $1 AND w.source = 'library') AS "wanted!",
                  (SELECT count(*) FROM library_entries e WHERE e.subscriber_id = $1) AS "direct!",
                  (SELECT count(*) FROM library_entries e
                   WHERE e.subscriber_id = $1 AND e.vector IS NOT NULL) AS "embedded!"
           FROM libraries l WHERE l.subscriber_id = $1"#,
        subscriber,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Summary {
        file_name: r.file_name,
        uploaded_at: r.uploaded_at,
        entries: r.entries,
        arxiv: r.rated + r.wanted,
        direct: r.direct,
        embedded: r.embedded,
        skipped: skipped_list(&r.skipped),
    }))
}

fn skipped_list(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let field = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            (field("key"), field("reason"))
        })
        .collect()
}

/// A library entry as training and the export read it.
#[derive(Clone, Debug)]
pub struct EntryRow {
    pub position: i32,
    pub cite_key: String,
    pub title: String,
    pub abstract_text: String,
    pub uploaded_at: DateTime<Utc>,
}

/// A subscriber's entries liked as they are, in the file's order, at most `limit`.
pub async fn entries(db: &PgPool, subscriber: Uuid, limit: i64) -> sqlx::Result<Vec<EntryRow>> {
    sqlx::query_as!(
        EntryRow,
        r#"SELECT e.position, e.cite_key, e.title, e.abstract AS abstract_text, l.uploaded_at
           FROM library_entries e JOIN libraries l USING (subscriber_id)
           WHERE e.subscriber_id = $1 ORDER BY e.position LIMIT $2"#,
        subscriber,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The vectors of a subscriber's entries under `model`, by position.
pub async fn vectors(
    db: &PgPool,
    subscriber: Uuid,
    model: &str,
    positions: &[i32],
) -> sqlx::Result<Vec<(i32, Vec<f32>)>> {
    let rows = sqlx::query!(
        r#"SELECT position, vector AS "vector!" FROM library_entries
           WHERE subscriber_id = $1 AND model = $2 AND position = ANY($3) AND vector IS NOT NULL"#,
        subscriber,
        model,
        positions,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.position, r.vector)).collect())
}

/// Claims entries without a vector (locked until the transaction ends; entries another
/// embedder holds are skipped): (subscriber, position, title, abstract), at most `limit`.
pub async fn claim_unembedded(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, i32, String, String)>> {
    let rows = sqlx::query!(
        "SELECT subscriber_id, position, title, abstract FROM library_entries
         WHERE vector IS NULL ORDER BY subscriber_id, position LIMIT $1
         FOR UPDATE SKIP LOCKED",
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.subscriber_id, r.position, r.title, r.r#abstract)).collect())
}

/// Stores entries' vectors under `model` (all of one length).
pub async fn save_vectors(
    conn: &mut PgConnection,
    model: &str,
    rows: &[(Uuid, i32, Vec<f32>)],
) -> sqlx::Result<()> {
    let dim = rows.first().map_or(0, |r| r.2.len()) as i64;
    if rows.iter().any(|r| r.2.len() as i64 != dim) {
        return Err(sqlx::Error::Protocol("vectors of different lengths in one batch".into()));
    }
    // Postgres arrays of arrays must be rectangular: one flat array, cut by the dimension.
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.2.iter().copied()).collect();
    sqlx::query!(
        "UPDATE library_entries e
         SET model = $1, embedded_at = clock_timestamp(),
             vector = ($4::real[])[(i.n - 1) * $5 + 1 : i.n * $5]
         FROM unnest($2::uuid[], $3::int[]) WITH ORDINALITY AS i(s, p, n)
         WHERE e.subscriber_id = i.s AND e.position = i.p",
        model,
        &rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        &flat,
        dim,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops the vectors of other models (the model changed): the entries are embedded again.
pub async fn forget_other_models(db: &PgPool, model: &str) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "UPDATE library_entries SET model = NULL, vector = NULL, embedded_at = NULL
         WHERE model IS DISTINCT FROM $1 AND vector IS NOT NULL",
        model,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
