//! Dashboard numbers: per-day series (complete days rolled up once into `daily_stats`,
//! today counted live) and current totals.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate, Utc};
use sqlx::PgPool;

/// The metrics charted per day, in display order.
pub const METRICS: [&str; 5] = ["signups", "confirmations", "unsubscribes", "sent", "failed"];

/// Per metric, one value per day from `from` to today.
pub struct Series {
    pub days: Vec<NaiveDate>,
    pub values: HashMap<&'static str, Vec<i64>>,
}

use crate::store::daily_stats::{self, DayCounts};

/// Today's counts, recounted at most every `TODAY_TTL` (a dashboard can be a minute behind;
/// a busy day has a hundred thousand deliveries to count).
#[derive(Default)]
pub struct TodayCache(tokio::sync::Mutex<Option<(std::time::Instant, NaiveDate, DayCounts)>>);

const TODAY_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl TodayCache {
    async fn get(&self, db: &PgPool, today: NaiveDate) -> sqlx::Result<DayCounts> {
        let mut slot = self.0.lock().await;
        if let Some((at, day, rows)) = slot.as_ref()
            && *day == today
            && at.elapsed() < TODAY_TTL
        {
            return Ok(rows.clone());
        }
        let rows = daily_stats::count(db, today, today).await?;
        *slot = Some((std::time::Instant::now(), today, rows.clone()));
        Ok(rows)
    }
}

/// The last `days` days (today included). Complete days missing from the rollup are
/// computed once and stored; today is counted live (cached briefly).
pub async fn daily(db: &PgPool, today_cache: &TodayCache, days: u64) -> sqlx::Result<Series> {
    let today = Utc::now().date_naive();
    let from = today - Days::new(days.saturating_sub(1));
    let stored = daily_stats::rolled_up(db, from, today).await?;
    let have: HashSet<NaiveDate> = stored.iter().map(|r| r.0).collect();
    let missing: Vec<NaiveDate> =
        from.iter_days().take_while(|d| *d < today).filter(|d| !have.contains(d)).collect();
    let mut rows = stored;
    if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
        let counted = daily_stats::count(db, first, last).await?;
        let complete: Vec<(NaiveDate, &str, i64)> = missing
            .iter()
            .flat_map(|day| METRICS.iter().map(move |metric| (*day, *metric)))
            .map(|(day, metric)| {
                let value =
                    counted.iter().find(|(d, m, _)| *d == day && m == metric).map_or(0, |r| r.2);
                (day, metric, value)
            })
            .collect();
        daily_stats::roll_up(db, &complete).await?;
        rows.extend(complete.into_iter().map(|(d, m, v)| (d, m.to_string(), v)));
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
    let papers = crate::store::papers::estimated_count(db).await?;
    let queued = crate::store::deliveries::queue_depth(db).await?;
    Ok(Totals {
        pending: get("pending"),
        confirmed: get("confirmed"),
        unsubscribed: get("unsubscribed"),
        bounced: get("bounced"),
        papers,
        queued,
    })
}
