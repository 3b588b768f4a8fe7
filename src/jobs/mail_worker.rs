//! Delivers queued transactional mail, retrying transient failures with backoff.
//!
//! Each message is claimed with `FOR UPDATE SKIP LOCKED` inside a transaction held for
//! the duration of its send, so several workers or processes never send the same row,
//! and a crash releases the row at once for the next worker.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::mail::{Draft, Mailer, SendError};
use crate::store::mail_queue;

const POLL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: i32,
}

impl RetryPolicy {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self { base: settings.retry_base, max_attempts: settings.max_attempts }
    }

    /// Delay before the next try after `attempts` failed ones: base·2^(attempts-1), at most 6 h.
    pub fn delay(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.clamp(1, 30) as u32 - 1);
        self.base.saturating_mul(factor).min(Duration::from_secs(6 * 3600))
    }
}

/// Runs `concurrency` workers until `shutdown`; a send in progress is finished first.
pub async fn run(
    db: PgPool,
    mailer: Arc<Mailer>,
    policy: RetryPolicy,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let wake = Arc::new(Notify::new());
    let listener =
        tokio::spawn(listen(db.clone(), mail_queue::CHANNEL, wake.clone(), shutdown.clone()));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            tokio::spawn(work(db.clone(), mailer.clone(), policy, wake.clone(), shutdown.clone()))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    listener.abort();
}

async fn work(
    db: PgPool,
    mailer: Arc<Mailer>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match deliver_one(&db, &mailer, policy).await {
            Ok(true) => continue,
            Ok(false) => {
                idle(&wake, mail_queue::next_due(&db).await.ok().flatten(), &shutdown).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "mail worker: database error");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Sends the next due message, if any. Returns whether there was one.
#[tracing::instrument(name = "deliver_mail", skip_all, fields(mail_id, kind, attempt))]
pub async fn deliver_one(db: &PgPool, mailer: &Mailer, policy: RetryPolicy) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let Some(mail) = mail_queue::claim_next(&mut tx).await? else {
        return Ok(false);
    };
    let span = tracing::Span::current();
    span.record("mail_id", mail.id);
    span.record("kind", mail.kind.as_str());
    span.record("attempt", mail.attempts + 1);

    let draft = Draft { subject: mail.subject, text: mail.body_text, html: mail.body_html };
    let message_id = mailer.new_message_id();
    match mailer.send(&mail.recipient, &draft, &message_id, &[]).await {
        Ok(()) => {
            mail_queue::mark_sent(&mut tx, mail.id, &message_id).await?;
            tracing::info!("sent");
        }
        Err(SendError::Transient(e)) if mail.attempts + 1 < policy.max_attempts => {
            let delay = policy.delay(mail.attempts + 1);
            let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            mail_queue::mark_retry(&mut tx, mail.id, next, &e).await?;
            tracing::warn!(error = %e, retry_in = ?delay, "send failed; will retry");
        }
        Err(e) => {
            mail_queue::mark_failed(&mut tx, mail.id, &e.to_string()).await?;
            tracing::error!(error = %e, "send failed for good");
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Waits for a wake-up, the next due time (at most `POLL` away), or shutdown.
pub(crate) async fn idle(
    wake: &Notify,
    next_due: Option<DateTime<Utc>>,
    shutdown: &CancellationToken,
) {
    let pause = match next_due {
        Some(at) => (at - Utc::now()).to_std().unwrap_or_default().min(POLL),
        None => POLL,
    };
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(pause.max(Duration::from_millis(10))) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Turns `NOTIFY`s on `channel` into wake-ups; the workers' polling covers any gap.
pub(crate) async fn listen(
    db: PgPool,
    channel: &'static str,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&db).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        if listener.listen(channel).await.is_err() {
            tokio::time::sleep(POLL).await;
            continue;
        }
        while listener.recv().await.is_ok() {
            wake.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy { base: Duration::from_secs(30), max_attempts: 8 };
        assert_eq!(p.delay(1), Duration::from_secs(30));
        assert_eq!(p.delay(2), Duration::from_secs(60));
        assert_eq!(p.delay(4), Duration::from_secs(240));
        assert_eq!(p.delay(40), Duration::from_secs(6 * 3600));
    }
}
