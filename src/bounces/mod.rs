//! The bounce and complaint processor: finds the subscriber a report is about, and acts.

mod json;
pub mod postmark;
pub mod report;
pub mod ses;

/// Largest message `paperboy inbound` and `/inbound/mime` read.
pub const MAX_INBOUND_BYTES: usize = 10 * 1024 * 1024;

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Sent, Signer};
use crate::store::bounces::{self, NewBounce, Target};
use report::ReportKind;

/// What processing a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a message at all (HTTP 400).
    NotAMessage,
    /// Deliberately ignored: an auto-reply, a delay notice, a report for nobody we know, a
    /// replay of a report already processed.
    Ignored(&'static str),
    /// Kept against a subscriber, but it proves nothing: nothing changed.
    Unproven(ReportKind),
    /// Acted on: `changed` says whether the subscriber's state changed (a second hard bounce
    /// of a bounced subscriber changes nothing).
    Applied { kind: ReportKind, changed: bool },
}

/// One line for logs and `paperboy inbound`'s output.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::NotAMessage => "ignored: not a message".into(),
        Outcome::Ignored(why) => format!("ignored: {why}"),
        Outcome::Unproven(kind) => {
            format!(
                "kept a {} report that does not prove the message was ours; nothing changed",
                kind.as_str()
            )
        }
        Outcome::Applied { kind, changed: true } => {
            format!("{} applied: the subscriber changed", kind.as_str())
        }
        Outcome::Applied { kind, changed: false } => format!("{} recorded", kind.as_str()),
    }
}

/// What the processor needs from the service's configuration.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub signer: Signer,
    /// `PAPERBOY_BOUNCE_ADDRESS`: where VERP tags are looked for.
    pub bounce_address: Option<lettre::Address>,
    pub soft_limit: i64,
    pub soft_days: i64,
}

impl Inbound {
    pub fn from_settings(settings: &crate::config::Settings, secret: &[u8]) -> Self {
        Self {
            signer: Signer::new(secret),
            bounce_address: settings.mail.bounce_address.clone(),
            soft_limit: settings.mail.soft_bounce_limit,
            soft_days: settings.mail.soft_bounce_days,
        }
    }

    /// The message a VERP address names (`bounces+<tag>@domain`, in any case), if the tag
    /// is ours.
    fn verp(&self, address: &str) -> Option<Sent> {
        let bounce = self.bounce_address.as_ref()?;
        let address = address.to_ascii_lowercase();
        let (local, domain) = address.rsplit_once('@')?;
        let tag = local.strip_prefix(&format!("{}+", bounce.user().to_ascii_lowercase()))?;
        (domain.eq_ignore_ascii_case(bounce.domain()))
            .then(|| self.signer.verify_bounce_tag(tag))
            .flatten()
    }
}

/// A report in the processor's terms, from whichever source.
///
/// Whichever way it came in (`paperboy inbound`, `/inbound/*`, an SMTP refusal at send
/// time), a report changes a subscriber only when it proves the message was ours: the VERP
/// tag of our envelope sender (MAC'ed), or our own random `Message-ID` in the returned
/// original. A report that names only an address is kept for the operator and changes
/// nothing, so nobody can bounce or unsubscribe a subscriber by mailing us a made-up report.
pub struct Evidence<'a> {
    pub kind: ReportKind,
    pub source: &'static str,
    pub status: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    pub raw: &'a [u8],
    /// Proven: found through a VERP tag or our Message-ID.
    pub target: Option<Target>,
    /// Else the address the report names.
    pub recipient: Option<&'a str>,
}

/// Processes one raw RFC 5322 message (a DSN, an ARF report, a prose bounce, an
/// auto-reply, anything).
pub async fn process_mime(db: &PgPool, inbound: &Inbound, raw: &[u8]) -> sqlx::Result<Outcome> {
    let Some(report) = report::read(raw) else { return Ok(Outcome::NotAMessage) };
    if report.auto_reply {
        return Ok(Outcome::Ignored("an automatic reply"));
    }
    let Some(kind) = report.kind else {
        return Ok(Outcome::Ignored("not a bounce or complaint"));
    };
    let addresses = report.addressed_to.iter().map(String::as_str);
    let target =
        proven_target(db, inbound, addresses, report.original_message_id.as_deref()).await?;
    // Of the addresses a report names, the subscriber's when it is one of them.
    let recipient = report
        .named
        .iter()
        .map(String::as_str)
        .find(|a| target.as_ref().is_some_and(|t| t.email == *a))
        .or(report.recipient());
    apply(
        db,
        inbound,
        Evidence {
            kind,
            source: "mime",
            status: report.status.as_deref(),
            diagnostic: report.diagnostic.as_deref(),
            raw,
            target,
            recipient,
        },
    )
    .await
}

/// The message a report proves was ours: the first of `addresses` that is our VERP
/// address with a valid tag, else our `Message-ID`.
async fn proven_target<'a>(
    db: &PgPool,
    inbound: &Inbound,
    addresses: impl IntoIterator<Item = &'a str>,
    message_id: Option<&str>,
) -> sqlx::Result<Option<Target>> {
    for sent in addresses.into_iter().filter_map(|a| inbound.verp(a)) {
        if let Some(t) = bounces::target_of(db, sent).await? {
            return Ok(Some(t));
        }
    }
    match message_id.filter(|id| printable(id)) {
        Some(id) => {
            let id = format!("<{}>", id.trim_matches(['<', '>']));
            bounces::target_by_message_id(db, &id).await
        }
        None => Ok(None),
    }
}

/// Records a report and acts on it when it is proven.
pub async fn apply(db: &PgPool, inbound: &Inbound, e: Evidence<'_>) -> sqlx::Result<Outcome> {
    // Reports are anyone's text: no control characters (Postgres refuses NUL), bounded.
    let (status, diagnostic) = (e.status.map(clean), e.diagnostic.map(clean));
    let recipient = e.recipient.filter(|r| printable(r));
    // A tag or Message-ID proves the message was ours, not that the failure is the
    // subscriber's: a subscriber who forwards to a dead address (without rewriting the
    // envelope) would bounce on its behalf. Whatever the format, a report that names an
    // address must name the subscriber's.
    let mut target = e.target;
    if let (Some(t), Some(address)) = (&target, recipient)
        && t.email != address.to_lowercase()
    {
        tracing::warn!("report names another address than the message's subscriber; kept unproven");
        target = None;
    }
    let (subscriber, proven) = match (&target, recipient) {
        (Some(t), _) => (Some(t.subscriber), true),
        (None, Some(address)) => {
            (bounces::subscriber_by_address(db, address).await?.map(|t| t.subscriber), false)
        }
        (None, None) => (None, false),
    };
    let Some(subscriber) = subscriber else {
        tracing::info!(
            kind = e.kind.as_str(),
            source = e.source,
            "report for no known subscriber; ignored"
        );
        return Ok(Outcome::Ignored("no known subscriber"));
    };
    let digest = Sha256::digest(e.raw);
    let (delivery, mail) = match &target {
        Some(t) => (t.delivery, t.mail),
        None => (None, None),
    };
    let mut tx = db.begin().await?;
    let fresh = bounces::record(
        &mut tx,
        &NewBounce {
            subscriber: Some(subscriber),
            delivery,
            mail,
            kind: e.kind.as_str(),
            source: e.source,
            status_code: status.as_deref(),
            diagnostic: diagnostic.as_deref(),
            raw_size: i32::try_from(e.raw.len()).unwrap_or(i32::MAX),
            raw_digest: (!e.raw.is_empty()).then_some(digest.as_slice()),
            proven,
        },
    )
    .await?;
    if !fresh {
        return Ok(Outcome::Ignored("the same report was processed before"));
    }
    if !proven {
        tx.commit().await?;
        tracing::warn!(
            kind = e.kind.as_str(),
            source = e.source,
            "report does not prove the message was ours; kept, nothing changed"
        );
        return Ok(Outcome::Unproven(e.kind));
    }
    let changed = act(&mut tx, inbound, e.kind, subscriber, delivery).await?;
    tx.commit().await?;
    count(e.kind);
    tracing::info!(kind = e.kind.as_str(), source = e.source, changed, "report applied");
    Ok(Outcome::Applied { kind: e.kind, changed })
}

/// Longest status or diagnostic kept from a report.
const MAX_TEXT: usize = 1000;

/// Text without control characters, at most `MAX_TEXT` characters.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_TEXT).collect()
}

fn printable(text: &str) -> bool {
    !text.is_empty() && text.len() <= 320 && !text.chars().any(char::is_control)
}

async fn act(
    tx: &mut sqlx::PgConnection,
    inbound: &Inbound,
    kind: ReportKind,
    subscriber: Uuid,
    delivery: Option<i64>,
) -> sqlx::Result<bool> {
    match kind {
        ReportKind::Hard => bounces::mark_bounced(tx, subscriber, delivery).await,
        ReportKind::Complaint => bounces::mark_complained(tx, subscriber).await,
        ReportKind::Soft => {
            let (n, first, last) = bounces::soft_run(tx, subscriber).await?;
            let spread = match (first, last) {
                (Some(first), Some(last)) => (last - first).num_days(),
                _ => 0,
            };
            if n >= inbound.soft_limit && spread >= inbound.soft_days {
                bounces::mark_bounced(tx, subscriber, None).await
            } else {
                Ok(false)
            }
        }
    }
}

fn count(kind: ReportKind) {
    match kind {
        ReportKind::Complaint => metrics::counter!("paperboy_complaints_total").increment(1),
        k => metrics::counter!("paperboy_bounces_total", "kind" => k.as_str()).increment(1),
    }
}

/// An SMTP refusal at send time that says the address does not exist (5.1.x) counts as a
/// hard bounce. `reply` is the server's answer; the message is proven ours (we sent it).
pub async fn refused_at_send(
    db: &PgPool,
    inbound: &Inbound,
    sent: Sent,
    reply: &str,
) -> sqlx::Result<Option<Outcome>> {
    if !report::refusal_is_hard_bounce(reply) {
        return Ok(None);
    }
    let target = bounces::target_of(db, sent).await?;
    let status = report::status_code(reply);
    let outcome = apply(
        db,
        inbound,
        Evidence {
            kind: ReportKind::Hard,
            source: "smtp",
            status: status.as_deref(),
            diagnostic: Some(reply),
            raw: &[],
            target,
            recipient: None,
        },
    )
    .await?;
    Ok(Some(outcome))
}

/// Where a provider's report finds the subscriber: our VERP envelope sender, our Message-ID,
/// else the recipient address (a provider's webhook, authenticated by the inbound token,
/// speaks for the messages it sent, so its word on the address is proof enough).
async fn provider_target(
    db: &PgPool,
    inbound: &Inbound,
    envelope_sender: Option<&str>,
    message_id: Option<&str>,
    recipient: Option<&str>,
) -> sqlx::Result<Option<Target>> {
    if let Some(t) = proven_target(db, inbound, envelope_sender, message_id).await? {
        return Ok(Some(t));
    }
    Ok(match recipient {
        Some(address) => bounces::subscriber_by_address(db, address).await?,
        None => None,
    })
}

/// What a provider's webhook said (`ses`, `postmark`), before the subscriber is found.
#[derive(Debug, PartialEq, Eq)]
struct ProviderReport {
    kind: ReportKind,
    status: Option<String>,
    diagnostic: Option<String>,
    recipient: Option<String>,
    envelope_sender: Option<String>,
    message_id: Option<String>,
}

/// Finds the subscriber a provider's report is about, and applies it.
async fn apply_provider(
    db: &PgPool,
    inbound: &Inbound,
    source: &'static str,
    r: ProviderReport,
    raw: &[u8],
) -> sqlx::Result<Outcome> {
    let target = provider_target(
        db,
        inbound,
        r.envelope_sender.as_deref(),
        r.message_id.as_deref(),
        r.recipient.as_deref(),
    )
    .await?;
    let evidence = Evidence {
        kind: r.kind,
        source,
        status: r.status.as_deref(),
        diagnostic: r.diagnostic.as_deref(),
        raw,
        target,
        recipient: r.recipient.as_deref(),
    };
    apply(db, inbound, evidence).await
}
