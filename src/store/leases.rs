//! Claims on queued mail. A worker claims a batch (digests in `delivery_queue`,
//! transactional mail in `outgoing_mail`), marking the rows with its connection's backend
//! pid, and renews the claim while it works through the batch. A claim not renewed for a
//! lease (`PAPERBOY_CLAIM_LEASE_SECS`), or whose connection is gone, is free again. A
//! message's outcome is written only by the claim's owner, and a digest is sent holding its
//! row locked, so a stolen claim never sends twice.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

/// The two queues of mail.
#[derive(Clone, Copy, Debug)]
pub enum Queue {
    Deliveries,
    Mail,
}

/// Renews the claim of the worker on a connection on `ids` every third of `lease` until
/// dropped. The renewals go through the pool: the worker's own connection is busy sending.
pub struct Renewal(tokio::task::JoinHandle<()>);

impl Renewal {
    pub async fn start(
        conn: &mut PgConnection,
        db: &PgPool,
        queue: Queue,
        ids: Vec<i64>,
        lease: Duration,
    ) -> sqlx::Result<Self> {
        // The backend pid that marks this connection's claims.
        let owner =
            sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#).fetch_one(conn).await?;
        let db = db.clone();
        Ok(Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = renew(&db, queue, owner, &ids).await {
                    tracing::warn!(error = %e, ?queue, "could not renew a claim on queued mail");
                }
            }
        })))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn renew(db: &PgPool, queue: Queue, owner: i32, ids: &[i64]) -> sqlx::Result<()> {
    match queue {
        Queue::Deliveries => {
            sqlx::query!(
                "UPDATE delivery_queue SET claimed_at = now()
             WHERE delivery_id = ANY($1) AND claimed_by = $2",
                ids,
                owner,
            )
            .execute(db)
            .await?
        }
        Queue::Mail => {
            sqlx::query!(
                "UPDATE outgoing_mail SET claimed_at = now()
             WHERE id = ANY($1) AND claimed_by = $2 AND status = 'pending'",
                ids,
                owner,
            )
            .execute(db)
            .await?
        }
    };
    Ok(())
}
