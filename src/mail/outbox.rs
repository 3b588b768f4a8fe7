//! Delivers queued transactional mail, retrying transient failures with backoff.
//!
//! Workers claim batches with `FOR UPDATE SKIP LOCKED`, marking the rows with their
//! connection's backend pid, so several workers or processes never send the same row and
//! a crashed worker's rows are free again at once; each outcome is recorded as it happens.

use std::sync::Arc;

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bounces::{self, Inbound};
use crate::domain::Links;
use crate::domain::Sent;
use crate::domain::redact_addresses;
use crate::jobs::worker::{self, Health, Step};
use crate::mail::{Mailer, RetryPolicy, SendError};
use crate::store::leases::{Queue, Renewal};
use crate::store::{
    self,
    mail_queue::{self, QueuedMail},
};

/// Messages one worker claims at a time.
const BATCH: i64 = 20;

/// How transactional mail goes out: the links and confirmation lifetime it is rendered
/// with, the mailer, the retry policy, and the bounce processor for refusals that say the
/// address is dead.
pub struct MailSender {
    pub links: Links,
    pub confirm_ttl_hours: u64,
    pub mailer: Arc<Mailer>,
    pub policy: RetryPolicy,
    pub inbound: Inbound,
    /// How long a claim lasts unless renewed.
    pub lease: std::time::Duration,
}

/// Runs `concurrency` supervised workers until `shutdown`; sends in progress finish
/// first. `wake` is notified by whoever queues mail in this process.
pub fn spawn(
    db: PgPool,
    sender: Arc<MailSender>,
    concurrency: usize,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let stop = shutdown.clone();
    worker::spawn("mail", concurrency, wake, health, shutdown, move || {
        let (db, sender, stop) = (db.clone(), sender.clone(), stop.clone());
        async move {
            if deliver_batch(&db, &sender, &stop).await? > 0 {
                return Ok(Step::Worked);
            }
            Ok(Step::Idle(mail_queue::next_due(&db).await?))
        }
    })
}

/// Claims a batch of due messages and sends them one by one, recording each outcome as it
/// happens (a crash repeats at most the message in flight). Returns how many it claimed.
pub async fn deliver_batch(
    db: &PgPool,
    sender: &MailSender,
    shutdown: &CancellationToken,
) -> sqlx::Result<usize> {
    let mut conn = db.acquire().await?;
    store::relax_commits(&mut conn, true).await?;
    let result = async {
        let batch = mail_queue::claim(&mut conn, BATCH, sender.lease).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let claimed = batch.iter().map(|m| m.id).collect();
        let _renewal = Renewal::start(&mut conn, db, Queue::Mail, claimed, sender.lease).await?;
        for (i, mail) in batch.iter().enumerate() {
            if shutdown.is_cancelled() {
                let rest: Vec<i64> = batch[i..].iter().map(|m| m.id).collect();
                mail_queue::release(&mut conn, &rest).await?;
                break;
            }
            if !mail_queue::still_ours(&mut conn, mail.id).await? {
                // Erased since the claim, or the claim ran out and another worker has it.
                continue;
            }
            if let Some(reply) = deliver_one(&mut conn, sender, mail).await? {
                bounces::refused_at_send(db, &sender.inbound, Sent::Mail(mail.id), &reply).await?;
            }
        }
        sqlx::Result::Ok(batch.len())
    }
    .await;
    store::relax_commits(&mut conn, false).await?;
    result
}

#[tracing::instrument(name = "deliver_mail", skip_all, fields(mail_id = mail.id, kind = %mail.kind, attempt = mail.attempts + 1))]
async fn deliver_one(
    conn: &mut PgConnection,
    sender: &MailSender,
    mail: &QueuedMail,
) -> sqlx::Result<Option<String>> {
    let MailSender { links, confirm_ttl_hours, mailer, policy, .. } = sender;
    let draft = match draft(mail, links, *confirm_ttl_hours) {
        Ok(draft) => draft,
        Err(why) => {
            mail_queue::mark_failed(conn, mail.id, &why).await?;
            tracing::error!(error = ?why, "cannot write the message");
            return Ok(None);
        }
    };
    let message_id = mailer.new_message_id(Sent::Mail(mail.id));
    match mailer.send(&mail.recipient, &draft, &message_id, &[], Sent::Mail(mail.id)).await {
        Ok(()) => {
            mail_queue::mark_sent(conn, mail.id, &message_id).await?;
            tracing::debug!("sent");
        }
        Err(SendError::Transient(e)) if mail.attempts + 1 < policy.max_attempts => {
            let delay = policy.delay(mail.attempts + 1);
            let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            mail_queue::mark_retry(conn, mail.id, next, &e).await?;
            tracing::warn!(error = ?redact_addresses(&e), retry_in = ?delay, "send failed; will retry");
        }
        Err(e) => {
            mail_queue::mark_failed(conn, mail.id, &e.to_string()).await?;
            tracing::error!(error = ?redact_addresses(&e.to_string()), "send failed for good");
            if let SendError::Permanent(reply) = e {
                return Ok(Some(reply));
            }
        }
    }
    Ok(None)
}

/// The message as it goes out, or why it cannot be written. A queued notice is read per
/// message, so that one this version cannot read fails alone; a message queued before
/// notices were rendered at send time carries its rendered body instead.
fn draft(
    mail: &crate::store::mail_queue::QueuedMail,
    links: &crate::domain::Links,
    confirm_ttl_hours: u64,
) -> Result<super::Draft, String> {
    use serde::Deserialize;
    match &mail.notice {
        Some(json) => {
            let notice =
                super::Notice::deserialize(json).map_err(|e| format!("unreadable notice: {e}"))?;
            notice.render(links, confirm_ttl_hours).map_err(|e| format!("cannot render: {e}"))
        }
        None => Ok(super::Draft {
            subject: mail.subject.clone(),
            text: mail.body_text.clone(),
            html: mail.body_html.clone(),
        }),
    }
}
