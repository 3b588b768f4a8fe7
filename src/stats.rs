//! Dashboard numbers: per-day series (complete days rolled up once into `daily_stats`,
//! today counted live) and current totals.

use std::collections::HashMap;

use chrono::{Days, NaiveDate, Utc};
use sqlx::PgPool;

/// The metrics charted per day, in display order.
pub const METRICS: [&str; 5] = ["signups", "confirmations", "unsubscribes", "sent", "failed"];

/// Per metric, one value per day from `from` to today.
pub struct Series {
    pub days: Vec<NaiveDate>,
    pub values: HashMap<&'static str, Vec<i64>>,
}

/// Counts per day and metric between two days (inclusive), straight from the tables.
async fn count_days(
    db: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<(NaiveDate, String, i64)>> {
    sqlx::query_as(
        "SELECT (at AT TIME ZONE 'UTC')::date AS day,
                CASE kind WHEN 'subscribed' THEN 'signups' WHEN 'confirmed' THEN 'confirmations'
                          WHEN 'unsubscribed' THEN 'unsubscribes' END AS metric,
                count(*)
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
         GROUP BY 1, 2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// (day, metric, value) rows.
type DayCounts = Vec<(NaiveDate, String, i64)>;

/// Today's counts, recounted at most every `TODAY_TTL` (a dashboard can be a minute behind;
/// a busy day has a hundred thousand deliveries to count).
#[derive(Default)]
pub struct TodayCache(tokio::sync::Mutex<Option<(std::time::Instant, NaiveDate, DayCounts)>>);

const TODAY_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl TodayCache {
    async fn get(
        &self,
        db: &PgPool,
        today: NaiveDate,
    ) -> sqlx::Result<Vec<(NaiveDate, String, i64)>> {
        let mut slot = self.0.lock().await;
        if let Some((at, day, rows)) = slot.as_ref()
            && *day == today
            && at.elapsed() < TODAY_TTL
        {
            return Ok(rows.clone());
        }
        let rows = count_days(db, today, today).await?;
        *slot = Some((std::time::Instant::now(), today, rows.clone()));
        Ok(rows)
    }
}

/// The last `days` days (today included). Complete days missing from the rollup are
/// computed once and stored; today is counted live (cached briefly).
pub async fn daily(db: &PgPool, today_cache: &TodayCache, days: u64) -> sqlx::Result<Series> {
    let today = Utc::now().date_naive();
    let from = today - Days::new(days.saturating_sub(1));
    let stored: Vec<(NaiveDate, String, i64)> =
        sqlx::query_as("SELECT day, metric, value FROM daily_stats WHERE day >= $1 AND day < $2")
            .bind(from)
            .bind(today)
            .fetch_all(db)
            .await?;
    let mut have: HashMap<NaiveDate, bool> = HashMap::new();
    for (d, _, _) in &stored {
        have.insert(*d, true);
    }
    let missing: Vec<NaiveDate> =
        from.iter_days().take_while(|d| *d < today).filter(|d| !have.contains_key(d)).collect();
    let mut rows = stored;
    if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
        let counted = count_days(db, first, last).await?;
        let mut tx = db.begin().await?;
        for day in &missing {
            for metric in METRICS {
                let value = counted
                    .iter()
                    .find(|(d, m, _)| d == day && m == metric)
                    .map(|r| r.2)
                    .unwrap_or(0);
                sqlx::query("INSERT INTO daily_stats (day, metric, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(day)
                    .bind(metric)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                rows.push((*day, metric.to_string(), value));
            }
        }
        tx.commit().await?;
    }
    rows.extend(today_cache.get(db, today).await?);

    let days_list: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= today).collect();
    let index: HashMap<NaiveDate, usize> =
        days_list.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut values: HashMap<&'static str, Vec<i64>> =
        METRICS.iter().map(|m| (*m, vec![0; days_list.len()])).collect();
    for (day, metric, value) in rows {
        if let (Some(&i), Some(m)) = (index.get(&day), METRICS.iter().find(|m| **m == metric)) {
            values.get_mut(m).expect("every metric")[i] = value;
        }
    }
    Ok(Series { days: days_list, values })
}

/// Current totals for the overview.
#[derive(Debug, Default)]
pub struct Totals {
    pub pending: i64,
    pub confirmed: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
    pub papers: i64,
    pub queued: i64,
}

pub async fn totals(db: &PgPool) -> sqlx::Result<Totals> {
    let by_status = crate::store::subscribers::counts(db).await?;
    let get = |s: &str| by_status.iter().find(|(k, _)| k == s).map(|r| r.1).unwrap_or(0);
    // Planner estimates are plenty for a dashboard's paper count.
    let papers: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN reltuples < 10000 THEN (SELECT count(*) FROM papers) ELSE reltuples::bigint END
         FROM pg_class WHERE relname = 'papers'",
    )
    .fetch_one(db)
    .await?;
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM delivery_queue").fetch_one(db).await?;
    Ok(Totals {
        pending: get("pending"),
        confirmed: get("confirmed"),
        unsubscribed: get("unsubscribed"),
        bounced: get("bounced"),
        papers,
        queued,
    })
}
