//! Which slot of each scheduled job ran last (`scheduled_jobs`), and the lock that lets
//! only one process run a job at a time.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Takes the job's lock for this transaction, and claims `slot` unless it (or a later one)
/// ran already. False when another process holds the lock or the slot is taken; the claim
/// stands only if the transaction commits.
pub async fn claim_slot(
    tx: &mut PgConnection,
    name: &str,
    slot: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('paperboy-job:' || $1)) AS "locked!""#,
        name,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Ok(false);
    }
    let claimed = sqlx::query!(
        "INSERT INTO scheduled_jobs (name, last_slot) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET last_slot = EXCLUDED.last_slot
         WHERE scheduled_jobs.last_slot < EXCLUDED.last_slot",
        name,
        slot,
    )
    .execute(&mut *tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
