//! The dashboard's per-day counts: complete days rolled up once into `daily_stats`, any
//! day countable straight from the events and deliveries.

use chrono::NaiveDate;
use sqlx::PgPool;

/// (day, metric, value) rows.
pub type DayCounts = Vec<(NaiveDate, String, i64)>;

/// Counts per day and metric between two days (inclusive), straight from the tables.
pub async fn count(db: &PgPool, from: NaiveDate, to: NaiveDate) -> sqlx::Result<DayCounts> {
    let rows = sqlx::query!(
        r#"SELECT (at AT TIME ZONE 'UTC')::date AS "day!",
                  CASE kind WHEN 'subscribed' THEN 'signups' WHEN 'confirmed' THEN 'confirmations'
                            WHEN 'unsubscribed' THEN 'unsubscribes' END AS "metric!",
                  count(*) AS "value!"
           FROM subscriber_events
           WHERE at >= ($1::date AT TIME ZONE 'UTC') AND at < (($2::date + 1) AT TIME ZONE 'UTC')
             AND kind IN ('subscribed', 'confirmed', 'unsubscribed')
           GROUP BY 1, 2
           UNION ALL
           SELECT (created_at AT TIME ZONE 'UTC')::date,
                  CASE status WHEN 'bounced' THEN 'sent' ELSE status END, count(*)
           FROM deliveries
           WHERE created_at >= ($1::date AT TIME ZONE 'UTC') AND created_at < (($2::date + 1) AT TIME ZONE 'UTC')
             AND status IN ('sent', 'failed', 'bounced')
           GROUP BY 1, 2"#,
        from,
        to,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.metric, r.value)).collect())
}

/// The rolled-up days from `from` up to (not including) `until`.
pub async fn rolled_up(db: &PgPool, from: NaiveDate, until: NaiveDate) -> sqlx::Result<DayCounts> {
    let rows = sqlx::query!(
        "SELECT day, metric, value FROM daily_stats WHERE day >= $1 AND day < $2",
        from,
        until,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.metric, r.value)).collect())
}

/// Stores complete days' counts (a day already rolled up keeps its numbers).
pub async fn roll_up(db: &PgPool, rows: &[(NaiveDate, &str, i64)]) -> sqlx::Result<()> {
    let days: Vec<NaiveDate> = rows.iter().map(|r| r.0).collect();
    let metrics: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
    let values: Vec<i64> = rows.iter().map(|r| r.2).collect();
    sqlx::query!(
        "INSERT INTO daily_stats (day, metric, value)
         SELECT * FROM unnest($1::date[], $2::text[], $3::bigint[])
         ON CONFLICT DO NOTHING",
        &days,
        &metrics,
        &values,
    )
    .execute(db)
    .await?;
    Ok(())
}
