//! One `Mailer` in front of interchangeable lettre transports.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::Draft;
use crate::config::Settings;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP server configured: each message becomes an `.eml` file.
    Outbox(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// Why a message did not go out, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused for good (5xx) or the message cannot be built.
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later: 4xx, connection trouble, timeouts.
    #[error("{0}")]
    Transient(String),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    rate: Option<DefaultDirectRateLimiter>,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => {
                let pool = PoolConfig::new()
                    .max_size(settings.send_concurrency.max(1) as u32)
                    .idle_timeout(Duration::from_secs(60));
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("PAPERBOY_SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(30)))
                    .pool_config(pool)
                    .build();
                Transport::Smtp(smtp)
            }
            None => {
                std::fs::create_dir_all(&settings.outbox_dir).map_err(|e| {
                    anyhow::anyhow!("cannot create outbox {}: {e}", settings.outbox_dir.display())
                })?;
                let dir = settings.outbox_dir.clone();
                Transport::Outbox(AsyncFileTransport::new(&dir), dir)
            }
        };
        let rate =
            NonZeroU32::new(settings.send_rate).map(|n| RateLimiter::direct(Quota::per_second(n)));
        Ok(Self { transport, from: settings.mail_from.clone(), rate })
    }

    /// A fresh `Message-ID` in our own domain.
    pub fn new_message_id(&self) -> String {
        format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain())
    }

    /// Sends one message with the given `Message-ID`; waits for the send-rate limit first.
    pub async fn send(&self, to: &str, draft: &Draft, message_id: &str) -> Result<(), SendError> {
        let to: Mailbox =
            to.parse().map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&draft.subject)
            .message_id(Some(message_id.to_string()))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(draft.text.clone(), draft.html.clone()))
            .map_err(|e| SendError::Permanent(format!("cannot build message: {e}")))?;
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Transient(e.to_string())),
            },
            Transport::Outbox(files, dir) => {
                let id = files
                    .send(message)
                    .await
                    .map_err(|e| SendError::Transient(format!("cannot write to outbox: {e}")))?;
                tracing::info!(path = %dir.join(format!("{id}.eml")).display(), "wrote email to the outbox");
                Ok(())
            }
        }
    }
}
