//! One `Mailer` in front of interchangeable lettre transports.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::Draft;
use super::smtp_pool::{SmtpPool, SmtpTarget};
use crate::config::{DkimSettings, Settings};
use crate::domain::{Sent, Signer};

enum Transport {
    /// `smtp://`: our pool of TCP_NODELAY connections.
    Direct(SmtpPool),
    /// `smtps://` (implicit TLS): lettre's pooled transport.
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

/// 5xx replies are final; everything else (4xx, network, TLS) is worth another try.
impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        if e.is_permanent() {
            Self::Permanent(e.to_string())
        } else {
            Self::Transient(e.to_string())
        }
    }
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    rate: Option<DefaultDirectRateLimiter>,
    dkim: Option<Dkim>,
    /// `PAPERBOY_BOUNCE_ADDRESS`: envelope senders become `user+<tag>@domain` (VERP).
    verp: Option<(Signer, lettre::Address)>,
}

/// Signing configurations: one covering the list headers digests carry, one without.
struct Dkim {
    with_list_headers: DkimConfig,
    plain: DkimConfig,
}

const SIGNED: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];
const SIGNED_LIST: [&str; 2] = ["List-Unsubscribe", "List-Unsubscribe-Post"];

impl Dkim {
    fn load(s: &DkimSettings) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(&s.key_file)
            .with_context(|| format!("PAPERBOY_DKIM_KEY_FILE {}", s.key_file.display()))?;
        let pkcs1 = pkcs1_pem(&pem)?;
        let config = |names: &[&'static str]| -> anyhow::Result<DkimConfig> {
            let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| {
                anyhow::anyhow!("PAPERBOY_DKIM_KEY_FILE: not a usable RSA key ({e:?})")
            })?;
            let headers = names.iter().map(|n| HeaderName::new_from_ascii_str(n)).collect();
            let canon = DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            };
            Ok(DkimConfig::new(s.selector.clone(), s.domain.clone(), key, headers, canon))
        };
        let all: Vec<&'static str> = SIGNED.iter().chain(SIGNED_LIST.iter()).copied().collect();
        Ok(Self { with_list_headers: config(&all)?, plain: config(&SIGNED)? })
    }
}

/// lettre signs with PKCS#1 keys; a PKCS#8 key is converted.
fn pkcs1_pem(pem: &str) -> anyhow::Result<String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
    use rsa::pkcs8::DecodePrivateKey;
    if rsa::RsaPrivateKey::from_pkcs1_pem(pem).is_ok() {
        return Ok(pem.to_string());
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| {
        anyhow::anyhow!(
            "PAPERBOY_DKIM_KEY_FILE: expected an RSA private key in PEM (PKCS#1 or PKCS#8)"
        )
    })?;
    Ok(key.to_pkcs1_pem(LineEnding::LF).map_err(|e| anyhow::anyhow!("DKIM key: {e}"))?.to_string())
}

impl Mailer {
    /// `secret`: the service secret, which VERP tags are MAC'ed under.
    pub fn from_settings(settings: &Settings, secret: &[u8]) -> anyhow::Result<Self> {
        let transport = match &settings.mail.smtp_url {
            Some(url) => match SmtpTarget::from_url(url.expose_secret())
                .map_err(anyhow::Error::msg)
                .context("PAPERBOY_SMTP_URL")?
            {
                Some(target) => {
                    let size = settings.mail.send_concurrency.max(1);
                    Transport::Direct(SmtpPool::new(target, size, Duration::from_secs(60)))
                }
                None => {
                    let pool = PoolConfig::new()
                        .max_size(settings.mail.send_concurrency.max(1) as u32)
                        .idle_timeout(Duration::from_secs(60));
                    let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                        .context("PAPERBOY_SMTP_URL")?
                        .timeout(Some(Duration::from_secs(30)))
                        .pool_config(pool)
                        .build();
                    Transport::Smtp(smtp)
                }
            },
            None => {
                std::fs::create_dir_all(&settings.mail.outbox_dir).with_context(|| {
                    format!("cannot create outbox {}", settings.mail.outbox_dir.display())
                })?;
                let dir = settings.mail.outbox_dir.clone();
                Transport::Outbox(AsyncFileTransport::new(&dir), dir)
            }
        };
        let rate = NonZeroU32::new(settings.mail.send_rate)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        let dkim = settings.mail.dkim.as_ref().map(Dkim::load).transpose()?;
        let verp = settings.mail.bounce_address.clone().map(|a| (Signer::new(secret), a));
        Ok(Self { transport, from: settings.mail.mail_from.clone(), rate, dkim, verp })
    }

    /// A fresh `Message-ID` in our own domain, naming the message it is for
    /// (`<d42.{uuid}@domain>`): a returned original is found by its id, and the random part
    /// proves it.
    pub fn new_message_id(&self, sent: Sent) -> String {
        let (kind, id) = match sent {
            Sent::Delivery(id) => ('d', id),
            Sent::Mail(id) => ('m', id),
        };
        format!("<{kind}{id}.{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain())
    }

    /// The `List-Id` of our digests.
    pub fn list_id(&self) -> String {
        format!("paperboy digest <digest.{}>", self.from.email.domain())
    }

    /// The envelope sender of a message: `bounces+<tag>@domain` with a bounce address
    /// configured (the tag names `sent` under a MAC), else the From address.
    pub fn envelope_sender(&self, sent: Sent) -> lettre::Address {
        match &self.verp {
            Some((signer, bounce)) => {
                let local = format!("{}+{}", bounce.user(), signer.bounce_tag(sent));
                lettre::Address::new(local, bounce.domain()).unwrap_or_else(|_| bounce.clone())
            }
            None => self.from.email.clone(),
        }
    }

    /// Sends one message (`sent` names it for bounces) with the given `Message-ID` and
    /// extra headers (name, value); DKIM-signs it when configured; waits for the send-rate
    /// limit first.
    pub async fn send(
        &self,
        to: &str,
        draft: &Draft,
        message_id: &str,
        extra_headers: &[(&'static str, String)],
        sent: Sent,
    ) -> Result<(), SendError> {
        let to: Mailbox =
            to.parse().map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&draft.subject)
            .message_id(Some(message_id.to_string()))
            .header(header::MIME_VERSION_1_0);
        for (name, value) in extra_headers {
            builder = builder
                .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
        }
        let mut message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(draft.text.clone()))
                    .singlepart(
                        SinglePart::builder()
                            .header(header::ContentType::TEXT_HTML)
                            .body(base64_body(&draft.html)),
                    ),
            )
            .map_err(|e| SendError::Permanent(format!("cannot build message: {e}")))?;
        if let Some(dkim) = &self.dkim {
            let listed =
                extra_headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("List-Unsubscribe"));
            message.sign(if listed { &dkim.with_list_headers } else { &dkim.plain });
        }
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        let envelope = lettre::address::Envelope::new(
            Some(self.envelope_sender(sent)),
            message.envelope().to().to_vec(),
        )
        .map_err(|e| SendError::Permanent(format!("cannot build envelope: {e}")))?;
        match &self.transport {
            Transport::Direct(pool) => pool.send(&envelope, &message.formatted()).await,
            Transport::Smtp(smtp) => {
                smtp.send_raw(&envelope, &message.formatted()).await?;
                Ok(())
            }
            Transport::Outbox(files, dir) => {
                let id = files
                    .send_raw(&envelope, &message.formatted())
                    .await
                    .map_err(|e| SendError::Transient(format!("cannot write to outbox: {e}")))?;
                tracing::info!(path = %dir.join(format!("{id}.eml")).display(), "wrote email to the outbox");
                Ok(())
            }
        }
    }
}

/// The HTML part as base64 in 76-character lines, encoded here in one pass: lettre's own
/// path scans the text to choose an encoding, rewrites line ends and then encodes, which
/// was the largest cost of building a digest. Our HTML has long lines, so 7bit is out.
/// (The text part stays readable, quoted-printable where needed, also in the outbox.)
fn base64_body(text: &str) -> Body {
    use base64::Engine;
    let canonical = if text.contains('\r') { text.to_string() } else { text.replace('\n', "\r\n") };
    let encoded = base64::engine::general_purpose::STANDARD.encode(canonical);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    Body::dangerous_pre_encoded(out, ContentTransferEncoding::Base64)
}
