//! The record of every ingest run, for the CLI, the logs and the dashboard.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub fetched: i32,
    pub inserted: i32,
    pub updated: i32,
}

pub async fn start(
    db: &PgPool,
    source: &str,
    day: Option<NaiveDate>,
    trigger: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO ingest_runs (source, day, trigger) VALUES ($1, $2, $3) RETURNING id",
        source,
        day,
        trigger,
    )
    .fetch_one(db)
    .await
}

pub async fn succeed(db: &PgPool, id: i64, day: NaiveDate, c: Counts) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE ingest_runs SET status = 'succeeded', finished_at = now(), day = $2,
                fetched = $3, inserted = $4, updated = $5
         WHERE id = $1",
        id,
        day,
        c.fetched,
        c.inserted,
        c.updated,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn fail(db: &PgPool, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE ingest_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
        id,
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}

// What the admin pages list.

#[derive(Debug)]
pub struct RunRow {
    pub id: i64,
    pub source: String,
    pub day: Option<NaiveDate>,
    pub trigger: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub fetched: i32,
    pub inserted: i32,
    pub updated: i32,
    pub error: Option<String>,
}

pub async fn latest(db: &PgPool, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as!(
        RunRow,
        "SELECT id, source, day, trigger, status, started_at, finished_at, fetched, inserted, updated, error
         FROM ingest_runs ORDER BY id DESC LIMIT $1",
        limit,
    )
    .fetch_all(db)
    .await
}
