//! Delivers queued transactional mail, retrying transient failures with backoff.
//!
//! Workers claim batches with `FOR UPDATE SKIP LOCKED`, marking the rows with their
//! connection's backend pid, so several workers or processes never send the same row and
//! a crashed worker's rows are free again at once; each outcome is recorded as it happens,
//! by the rules of `mail::queue`.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bounces::{self, Inbound};
use crate::domain::{Links, Sent};
use crate::jobs::worker::{self, Health, Step};
use crate::mail::queue::{self, Batch, DurableQueue, Outbox, Settled};
use crate::mail::{Mailer, RetryPolicy};
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
    let result = send_batch(&mut conn, db, sender, shutdown).await;
    store::relax_commits(&mut conn, false).await?;
    result
}

async fn send_batch(
    conn: &mut PgConnection,
    db: &PgPool,
    sender: &MailSender,
    shutdown: &CancellationToken,
) -> sqlx::Result<usize> {
    let Some(mut batch) =
        Batch::claim(&Outbox, conn, db, sender.lease, BATCH, sender.policy).await?
    else {
        return Ok(0);
    };
    let claimed = batch.len();
    while let Some(mail) = batch.next(&Outbox, conn, shutdown).await? {
        if !mail_queue::still_ours(conn, mail.id).await? {
            // Erased since the claim, or the claim ran out and another worker has it.
            continue;
        }
        if let Some(reply) = deliver_one(conn, sender, &mail).await? {
            bounces::refused_at_send(db, &sender.inbound, Sent::Mail(mail.id), &reply).await?;
        }
    }
    Ok(claimed)
}

/// Sends one claimed message and records the outcome; returns the reply of a permanent
/// refusal.
#[tracing::instrument(name = "deliver_mail", skip_all, fields(mail_id = mail.id, kind = %mail.kind, attempt = mail.attempts))]
async fn deliver_one(
    conn: &mut PgConnection,
    sender: &MailSender,
    mail: &QueuedMail,
) -> sqlx::Result<Option<String>> {
    let MailSender { links, confirm_ttl_hours, mailer, policy, .. } = sender;
    let draft = match draft(mail, links, *confirm_ttl_hours) {
        Ok(draft) => draft,
        Err(why) => {
            Outbox.give_up(conn, mail.id, &why).await?;
            tracing::error!(error = ?why, "cannot write the message");
            return Ok(None);
        }
    };
    let message_id = mailer.new_message_id(Sent::Mail(mail.id));
    let outcome = mailer
        .send(&mail.recipient, &draft, &message_id, &[], Sent::Mail(mail.id))
        .await
        .map(|()| message_id.as_str());
    Ok(match queue::settle(&Outbox, conn, mail, outcome, policy).await? {
        Settled::Sent => {
            tracing::debug!("sent");
            None
        }
        Settled::Retrying(_) => None,
        Settled::GaveUp(refusal) => refusal,
    })
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
