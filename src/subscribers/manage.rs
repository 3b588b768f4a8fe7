//! What a subscriber does from their manage link: save preferences (which re-embeds their
//! topics and retrains their taste), unsubscribe and resubscribe. The web handlers call
//! these and only render.

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Links, Preferences, Purpose, Token};
use crate::embeddings::{Embedder, topics};
use crate::ratings::Trainer;
use crate::store::ratings;
use crate::store::subscribers::{self, Status, SubscriberRow};

/// The subscriber a manage token belongs to. Tokens from before links were derived (in old
/// emails) still work.
pub async fn find(db: &PgPool, links: &Links, raw: &str) -> sqlx::Result<Option<SubscriberRow>> {
    match links.signer().verify(Purpose::Manage, raw) {
        Some(id) => subscribers::find_by_id(db, id).await,
        None => match Token::parse(raw) {
            Some(legacy) => subscribers::find_by_legacy_manage_hash(db, &legacy.hash()).await,
            None => Ok(None),
        },
    }
}

/// Saves new preferences. Topics are embedded once, when saved (without a ready model they
/// match by their words until the worker catches up), and since topics count as liked
/// papers in a taste, an existing taste is retrained.
pub async fn save_preferences(
    db: &PgPool,
    embedder: &Embedder,
    trainer: &Trainer,
    subscriber: Uuid,
    prefs: &Preferences,
) -> sqlx::Result<()> {
    subscribers::update_preferences(db, subscriber, prefs).await?;
    if let Err(e) = topics::ensure(db, embedder, prefs.topics.items()).await {
        tracing::warn!(error = %e, "could not embed the topics");
    }
    if ratings::any(db, subscriber).await? {
        trainer.retrain(subscriber, prefs.topics.items()).await?;
    }
    tracing::info!("preferences saved");
    Ok(())
}

/// Any status → unsubscribed. Whether this call changed it (a second click changes nothing).
pub async fn unsubscribe(db: &PgPool, subscriber: Uuid) -> sqlx::Result<bool> {
    let changed = subscribers::unsubscribe(db, subscriber).await?;
    if changed {
        tracing::info!("subscriber unsubscribed");
    }
    Ok(changed)
}

/// Undoes an unsubscribe. Whether the subscriber now receives digests: true also when a
/// second post finds them confirmed already.
pub async fn resubscribe(db: &PgPool, subscriber: Uuid) -> sqlx::Result<bool> {
    if subscribers::resubscribe(db, subscriber).await? {
        tracing::info!("subscriber resubscribed");
        return Ok(true);
    }
    let now = subscribers::find_by_id(db, subscriber).await?;
    Ok(now.is_some_and(|r| r.status() == Status::Confirmed))
}
