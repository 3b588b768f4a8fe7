//! The subscriber's journey as operations: sign up, confirm, renew a link. Web handlers call
//! these; each writes its changes and the mail they cause in one transaction.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;

use crate::config::Settings;
use crate::domain::{
    Categories, Frequency, Links, PhraseList, PreferenceErrors, SubscriberEmail, Token,
};
use crate::mail;
use crate::store::examples::{Added, Source};
use crate::store::subscribers::{self, ConfirmRow, LinkKind, SignupChoices, Status, SubscriberRow};
use crate::store::{self, mail_queue};

/// At most this many emails to one address a day, whatever the form is sent.
const MAX_MAILS_PER_DAY: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot record the sign-up: {0}")]
    Write(String),
}

pub use super::signups::{SignupWriter, Written};

/// The sign-up form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    pub email: String,
    pub topics: String,
    pub categories: Vec<String>,
    pub frequency: String,
    /// "Papers like these": arXiv ids or links, optional.
    pub examples: String,
    /// Honeypot: people leave it empty, form-filling bots do not.
    pub website: String,
}

/// A sign-up that passed validation.
#[derive(Debug)]
pub struct NewSignup {
    pub email: SubscriberEmail,
    pub topics: PhraseList,
    pub categories: Categories,
    pub frequency: Frequency,
    /// "Papers like these", applied when the address is confirmed.
    pub examples: Vec<String>,
    /// What the examples field held that is not a paper, with the reason (said on the
    /// "check your inbox" page).
    pub rejected: Vec<(String, &'static str)>,
}

impl TryFrom<&SignupForm> for NewSignup {
    type Error = PreferenceErrors;

    fn try_from(form: &SignupForm) -> Result<Self, Self::Error> {
        let mut errors = PreferenceErrors::default();
        let email = SubscriberEmail::parse(&form.email).map_err(|e| errors.add("email", e));
        let topics = PhraseList::parse(&form.topics, "topic").map_err(|e| errors.add("topics", e));
        let categories =
            Categories::parse(&form.categories).map_err(|e| errors.add("categories", e));
        let frequency = Frequency::parse(&form.frequency).map_err(|e| errors.add("frequency", e));
        let examples = crate::ratings::examples::parse_pasted(&form.examples)
            .map_err(|e| errors.add("examples", e));
        match (email, topics, categories, frequency, examples) {
            (Ok(email), Ok(topics), Ok(categories), Ok(frequency), Ok(pasted)) => Ok(Self {
                email,
                topics,
                categories,
                frequency,
                examples: pasted.ids,
                rejected: pasted.rejected,
            }),
            _ => Err(errors),
        }
    }
}

/// Whether this address may get another email today (abuse guard).
async fn within_mail_budget(
    conn: &mut sqlx::PgConnection,
    subscriber: uuid::Uuid,
) -> Result<bool, Error> {
    let day_ago = Utc::now() - chrono::Duration::hours(24);
    Ok(mail_queue::count_since(conn, subscriber, day_ago).await? < MAX_MAILS_PER_DAY)
}

fn confirm_expiry(settings: &Settings) -> DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(settings.mail.confirm_ttl)
            .unwrap_or(chrono::Duration::hours(48))
}

/// A new confirmation link: the seed its email is queued with and the token it carries.
fn new_confirmation_link(links: &Links) -> (Token, Token) {
    let seed = Token::generate();
    let token = links.signer().confirmation_token(&seed);
    (seed, token)
}

/// The confirmation email for the link made from `seed`, saying what confirming sets up
/// when the sign-up form's choices are known.
fn confirmation(seed: &Token, signup: Option<&NewSignup>) -> mail::Notice {
    let choices = signup.map(|s| mail::SignupSummary {
        topics: s.topics.items().to_vec(),
        frequency: s.frequency.as_str().to_string(),
    });
    mail::Notice::confirmation(seed, choices)
}

/// Records the sign-up and queues the right email: a confirmation for a new, pending or
/// unsubscribed address, the preferences link for a confirmed one. The caller answers
/// the same in every case. Returns whether an email was queued.
#[tracing::instrument(skip_all, fields(email = ?signup.email.redacted()))]
pub async fn subscribe(
    db: &PgPool,
    writer: &SignupWriter,
    settings: &Settings,
    links: &Links,
    signup: &NewSignup,
) -> Result<bool, Error> {
    let key = signup.email.normalized();
    let (seed, token) = new_confirmation_link(links);
    let expires = confirm_expiry(settings);
    let confirmation = confirmation(&seed, Some(signup));

    // The common case, a new address: subscriber, event and email in one batched statement.
    let written = writer
        .insert(subscribers::NewPending {
            email: signup.email.as_str().to_string(),
            email_key: key.clone(),
            topics: signup.topics.items().to_vec(),
            categories: signup.categories.items().to_vec(),
            frequency: signup.frequency.as_str(),
            examples: signup.examples.clone(),
            confirm_hash: token.hash(),
            confirm_expires_at: expires,
            confirmation: confirmation.queued(),
        })
        .await
        .map_err(Error::Write)?;
    if let Written::New = written {
        tracing::info!("new subscriber pending confirmation");
        return Ok(true);
    }
    sign_up_known(db, &key, signup, &token, expires, &confirmation).await
}

/// A sign-up of an address we know: the preferences link for a confirmed subscriber, a new
/// confirmation link for anyone else, within the address's daily mail budget. Whether an
/// email was queued.
async fn sign_up_known(
    db: &PgPool,
    key: &str,
    signup: &NewSignup,
    token: &Token,
    expires: DateTime<Utc>,
    confirmation: &mail::Notice,
) -> Result<bool, Error> {
    let mut tx = db.begin().await?;
    // Erased since the insert: then there is nothing to do.
    let Some(existing) = subscribers::lock_by_email(&mut tx, key).await? else {
        return Ok(false);
    };
    if !within_mail_budget(&mut tx, existing.id).await? {
        tracing::warn!("sign-up mail limit reached for this address; nothing sent");
        return Ok(false);
    }
    match existing.status() {
        Status::Confirmed => {
            let notice = mail::Notice::AlreadySubscribed { subscriber: existing.id };
            mail_queue::enqueue(&mut tx, existing.id, &existing.email, &notice.queued()).await?;
            tracing::info!("known subscriber signed up again; sent the preferences link");
        }
        // A bounced address may have been fixed: a fresh double opt-in (the confirmation
        // itself is not suppressed).
        Status::Pending | Status::Unsubscribed | Status::Bounced => {
            let choices = SignupChoices {
                topics: &signup.topics,
                categories: &signup.categories,
                frequency: signup.frequency,
                examples: &signup.examples,
            };
            let hash = token.hash();
            subscribers::restart_confirmation(&mut tx, existing.id, &choices, &hash, expires)
                .await?;
            mail_queue::enqueue(&mut tx, existing.id, &existing.email, &confirmation.queued())
                .await?;
            tracing::info!("sent a new confirmation link");
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// What a confirmation link refers to.
pub enum ConfirmLink {
    /// Pending and in time.
    Valid(SubscriberRow),
    Expired(SubscriberRow),
    /// The link was used to confirm already: it no longer leads to the preferences.
    AlreadyConfirmed,
}

/// Looks a confirmation token up without changing anything (for `GET`).
pub async fn find_confirmation(db: &PgPool, raw: &str) -> Result<Option<ConfirmLink>, Error> {
    let Some(token) = Token::parse(raw) else {
        return Ok(None);
    };
    let row = subscribers::find_by_confirm_hash(db, &token.hash()).await?;
    Ok(row.and_then(classify))
}

fn classify(found: ConfirmRow) -> Option<ConfirmLink> {
    let ConfirmRow { row, link } = found;
    let expires_at = match (row.status(), link) {
        (Status::Confirmed, LinkKind::Used) => return Some(ConfirmLink::AlreadyConfirmed),
        (Status::Pending, LinkKind::Latest { expires_at }) => expires_at,
        (Status::Pending, LinkKind::Earlier { expires_at }) => Some(expires_at),
        // A used link of a subscriber who left (or signed up again since): not theirs any more.
        _ => return None,
    };
    match expires_at.is_some_and(|t| t < Utc::now()) {
        true => Some(ConfirmLink::Expired(row)),
        false => Some(ConfirmLink::Valid(row)),
    }
}

/// Confirms the subscription behind a token (for `POST`), and adds the "papers like these"
/// its sign-up named; the caller settles those (retrains, wakes the arXiv queue).
#[tracing::instrument(skip_all)]
pub async fn confirm(db: &PgPool, raw: &str) -> Result<Option<(ConfirmLink, Added)>, Error> {
    let Some(token) = Token::parse(raw) else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let hash = token.hash();
    let link = subscribers::lock_by_confirm_hash(&mut tx, &hash).await?.and_then(classify);
    let mut added = Added::default();
    if let Some(ConfirmLink::Valid(row)) = &link
        && subscribers::confirm(&mut tx, row.id, &hash).await?
    {
        tracing::info!("subscriber confirmed");
        let examples = subscribers::take_pending_examples(&mut tx, row.id).await?;
        added = store::examples::add(&mut tx, row.id, &examples, Source::Example).await?;
    }
    tx.commit().await?;
    Ok(link.map(|link| (link, added)))
}

/// Sends a fresh link for an expired one. Returns `None` when the token is not an expired
/// confirmation link, else whether an email was queued.
#[tracing::instrument(skip_all)]
pub async fn renew_confirmation(
    db: &PgPool,
    settings: &Settings,
    links: &Links,
    raw: &str,
) -> Result<Option<bool>, Error> {
    let Some(old) = Token::parse(raw) else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let Some(ConfirmLink::Expired(row)) =
        subscribers::lock_by_confirm_hash(&mut tx, &old.hash()).await?.and_then(classify)
    else {
        return Ok(None);
    };
    let mut queued = false;
    if within_mail_budget(&mut tx, row.id).await? {
        let (seed, token) = new_confirmation_link(links);
        let expires = confirm_expiry(settings);
        subscribers::renew_confirmation(&mut tx, row.id, &old.hash(), &token.hash(), expires)
            .await?;
        let notice = confirmation(&seed, None);
        mail_queue::enqueue(&mut tx, row.id, &row.email, &notice.queued()).await?;
        queued = true;
    }
    tx.commit().await?;
    Ok(Some(queued))
}
