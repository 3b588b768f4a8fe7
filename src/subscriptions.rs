//! The reader's journey as operations: sign up, confirm, renew a link. Web handlers call
//! these; each writes its changes and the mail they cause in one transaction.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;

use crate::config::Settings;
use crate::domain::{Categories, Frequency, PhraseList, PreferenceErrors, SubscriberEmail, Token};
use crate::mail;
use crate::store::mail_queue;
use crate::store::subscribers::{self, SignupChoices, Status, SubscriberRow};

/// At most this many emails to one address a day, whatever the form is sent.
const MAX_MAILS_PER_DAY: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot render email: {0}")]
    Template(#[from] askama::Error),
}

/// The sign-up form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    pub email: String,
    pub topics: String,
    pub categories: Vec<String>,
    pub frequency: String,
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
        match (email, topics, categories, frequency) {
            (Ok(email), Ok(topics), Ok(categories), Ok(frequency)) => {
                Ok(Self { email, topics, categories, frequency })
            }
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
        + chrono::Duration::from_std(settings.confirm_ttl).unwrap_or(chrono::Duration::hours(48))
}

fn confirmation_draft(settings: &Settings, token: &Token) -> askama::Result<mail::Draft> {
    let url = settings.link(&format!("/confirm/{}", token.as_str()));
    mail::confirmation(&url, settings.confirm_ttl.as_secs() / 3600)
}

/// Records the sign-up and queues the right email: a confirmation for a new, pending or
/// unsubscribed address, the preferences link for a confirmed one. The caller answers
/// the same in every case.
#[tracing::instrument(skip_all, fields(email = %signup.email.redacted()))]
pub async fn subscribe(db: &PgPool, settings: &Settings, signup: &NewSignup) -> Result<(), Error> {
    let choices = SignupChoices {
        topics: &signup.topics,
        categories: &signup.categories,
        frequency: signup.frequency,
    };
    let key = signup.email.normalized();
    let token = Token::generate();
    let expires = confirm_expiry(settings);
    let mut tx = db.begin().await?;

    let existing = match subscribers::lock_by_email(&mut tx, &key).await? {
        Some(row) => row,
        None => {
            let manage = Token::generate();
            let inserted = subscribers::insert_pending(
                &mut tx,
                signup.email.as_str(),
                &key,
                &choices,
                manage.as_str(),
                &token.hash(),
                expires,
            )
            .await?;
            match inserted {
                Some(id) => {
                    let draft = confirmation_draft(settings, &token)?;
                    mail_queue::enqueue(&mut tx, "confirmation", id, signup.email.as_str(), &draft)
                        .await?;
                    tx.commit().await?;
                    tracing::info!("new subscriber pending confirmation");
                    return Ok(());
                }
                // Someone signed up with this address a moment ago; treat it as known.
                None => match subscribers::lock_by_email(&mut tx, &key).await? {
                    Some(row) => row,
                    None => return Ok(()),
                },
            }
        }
    };

    if !within_mail_budget(&mut tx, existing.id).await? {
        tracing::warn!("sign-up mail limit reached for this address; nothing sent");
        return Ok(());
    }
    match existing.status() {
        Status::Confirmed => {
            let prefs = settings.link(&format!("/preferences/{}", existing.manage_token));
            let unsub = settings.link(&format!("/unsubscribe/{}", existing.manage_token));
            let draft = mail::already_subscribed(&prefs, &unsub)?;
            mail_queue::enqueue(
                &mut tx,
                "already_subscribed",
                existing.id,
                &existing.email,
                &draft,
            )
            .await?;
            tracing::info!("known subscriber signed up again; sent the preferences link");
        }
        Status::Pending | Status::Unsubscribed => {
            subscribers::restart_confirmation(
                &mut tx,
                existing.id,
                &choices,
                &token.hash(),
                expires,
            )
            .await?;
            let draft = confirmation_draft(settings, &token)?;
            mail_queue::enqueue(&mut tx, "confirmation", existing.id, &existing.email, &draft)
                .await?;
            tracing::info!("sent a new confirmation link");
        }
    }
    tx.commit().await?;
    Ok(())
}

/// What a confirmation link refers to.
pub enum ConfirmLink {
    /// Pending and in time, or already confirmed (a second click is harmless).
    Valid(SubscriberRow),
    Expired(SubscriberRow),
}

/// Looks a confirmation token up without changing anything (for `GET`).
pub async fn find_confirmation(db: &PgPool, raw: &str) -> Result<Option<ConfirmLink>, Error> {
    let Some(token) = Token::parse(raw) else {
        return Ok(None);
    };
    let row = subscribers::find_by_confirm_hash(db, &token.hash()).await?;
    Ok(row.and_then(classify))
}

fn classify(row: SubscriberRow) -> Option<ConfirmLink> {
    match row.status() {
        Status::Unsubscribed => None,
        Status::Confirmed => Some(ConfirmLink::Valid(row)),
        Status::Pending if row.confirm_expires_at.is_some_and(|t| t < Utc::now()) => {
            Some(ConfirmLink::Expired(row))
        }
        Status::Pending => Some(ConfirmLink::Valid(row)),
    }
}

/// Confirms the subscription behind a token (for `POST`).
#[tracing::instrument(skip_all)]
pub async fn confirm(db: &PgPool, raw: &str) -> Result<Option<ConfirmLink>, Error> {
    let Some(token) = Token::parse(raw) else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let link = subscribers::lock_by_confirm_hash(&mut tx, &token.hash()).await?.and_then(classify);
    if let Some(ConfirmLink::Valid(row)) = &link
        && subscribers::confirm(&mut tx, row.id).await?
    {
        tracing::info!("subscriber confirmed");
    }
    tx.commit().await?;
    Ok(link)
}

/// Sends a fresh link for an expired one. Returns false when the token is not an
/// expired confirmation link.
#[tracing::instrument(skip_all)]
pub async fn renew_confirmation(
    db: &PgPool,
    settings: &Settings,
    raw: &str,
) -> Result<bool, Error> {
    let Some(old) = Token::parse(raw) else {
        return Ok(false);
    };
    let mut tx = db.begin().await?;
    let Some(ConfirmLink::Expired(row)) =
        subscribers::lock_by_confirm_hash(&mut tx, &old.hash()).await?.and_then(classify)
    else {
        return Ok(false);
    };
    if within_mail_budget(&mut tx, row.id).await? {
        let token = Token::generate();
        subscribers::renew_confirmation(&mut tx, row.id, &token.hash(), confirm_expiry(settings))
            .await?;
        let draft = confirmation_draft(settings, &token)?;
        mail_queue::enqueue(&mut tx, "confirmation", row.id, &row.email, &draft).await?;
    }
    tx.commit().await?;
    Ok(true)
}
