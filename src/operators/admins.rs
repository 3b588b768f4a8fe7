//! Operators: argon2id passwords and server-side sessions with a CSRF token each.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use sqlx::PgPool;

use crate::domain::{SubscriberEmail, Token};
use crate::store;

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Too many password checks waiting already (a sign-in flood).
    #[error("too many sign-ins at once")]
    Busy,
}

/// Password hashing is deliberately slow CPU work: it runs on the blocking pool, at most
/// two at a time, so a flood of sign-ins cannot stall the async workers serving every
/// other page. A check that waits too long for its turn is refused.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn off_executor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    let _turn = tokio::time::timeout(HASHING_WAIT, HASHING.acquire())
        .await
        .map_err(|_| AdminError::Busy)?
        .map_err(|_| AdminError::Busy)?;
    tokio::task::spawn_blocking(work).await.map_err(|e| AdminError::Hash(e.to_string()))
}

fn hash_now(password: &str) -> Result<String, AdminError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Hash(e.to_string()))
}

async fn hash(password: &str) -> Result<String, AdminError> {
    let password = password.to_string();
    off_executor(move || hash_now(&password)).await?
}

/// Creates the admin, or sets a new password for an existing one.
pub async fn create_or_reset(db: &PgPool, email: &str, password: &str) -> Result<bool, AdminError> {
    let email = SubscriberEmail::parse(email)
        .map_err(|_| AdminError::Invalid("not a valid email address"))?;
    if password.chars().count() < 10 {
        return Err(AdminError::Invalid("the password must have at least 10 characters"));
    }
    let hashed = hash(password).await?;
    // A reset signs the admin out everywhere.
    let created = store::admins::upsert(db, email.as_str(), &email.normalized(), &hashed).await?;
    Ok(created)
}

/// With `PAPERBOY_ADMIN_EMAIL` and `PAPERBOY_ADMIN_PASSWORD` set and no admin yet, creates one.
pub async fn ensure_first(
    db: &PgPool,
    email: Option<&str>,
    password: Option<&str>,
) -> Result<(), AdminError> {
    let (Some(email), Some(password)) = (email, password) else { return Ok(()) };
    if !store::admins::any(db).await? {
        create_or_reset(db, email, password).await?;
        tracing::info!("created the first admin from PAPERBOY_ADMIN_EMAIL");
    }
    Ok(())
}

/// The admin's id when the password is right.
pub async fn authenticate(
    db: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<i64>, AdminError> {
    let row = store::admins::credentials(db, &email.trim().to_lowercase()).await?;
    // Unknown addresses cost as much time as known ones.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = row.as_ref().map(|(_, h)| h.clone());
    let password = password.to_string();
    let ok = off_executor(move || {
        let stored = stored.unwrap_or_else(|| {
            DUMMY.get_or_init(|| hash_now("not a password of anyone").unwrap_or_default()).clone()
        });
        PasswordHash::new(&stored)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await?;
    Ok(row.filter(|_| ok).map(|(id, _)| id))
}

#[derive(Clone, Debug)]
pub struct Session {
    pub admin_id: i64,
    pub email: String,
    pub csrf: String,
}

/// What is stored for a session cookie: HMAC-SHA256 under the service's secret
/// (`PAPERBOY_SECRET`, or the one generated into the database), so neither a database
/// copy alone nor a guessed row makes a working cookie, and rotating the secret signs
/// everyone out.
fn keyed_hash(key: &[u8], token: &Token) -> Vec<u8> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(token.as_str().as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A new session; returns the cookie value (only its keyed hash is stored).
pub async fn start_session(db: &PgPool, key: &[u8], admin_id: i64) -> Result<Token, AdminError> {
    let token = Token::generate();
    let csrf = Token::generate();
    let hours = SESSION_HOURS as i32;
    store::admins::insert_session(db, &keyed_hash(key, &token), admin_id, csrf.as_str(), hours)
        .await?;
    Ok(token)
}

pub async fn session(db: &PgPool, key: &[u8], cookie: &str) -> Result<Option<Session>, AdminError> {
    let Some(token) = Token::parse(cookie) else { return Ok(None) };
    let row = store::admins::live_session(db, &keyed_hash(key, &token)).await?;
    Ok(row.map(|(admin_id, email, csrf)| Session { admin_id, email, csrf }))
}

pub async fn revoke(db: &PgPool, key: &[u8], cookie: &str) -> Result<(), AdminError> {
    if let Some(token) = Token::parse(cookie) {
        store::admins::revoke_session(db, &keyed_hash(key, &token)).await?;
    }
    Ok(())
}

/// Compares secrets without leaking where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    crate::domain::same_secret(a.as_bytes(), b.as_bytes())
}
