//! Operators: argon2id passwords and server-side sessions with a CSRF token each.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{SubscriberEmail, Token};

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
    let created: bool = sqlx::query_scalar(
        "INSERT INTO admins (email, email_key, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (email_key) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(email.as_str())
    .bind(email.normalized())
    .bind(hashed)
    .fetch_one(db)
    .await?;
    if !created {
        // A reset signs the admin out everywhere.
        sqlx::query(
            "UPDATE admin_sessions SET revoked_at = now()
             WHERE revoked_at IS NULL AND admin_id = (SELECT id FROM admins WHERE email_key = $1)",
        )
        .bind(email.normalized())
        .execute(db)
        .await?;
    }
    Ok(created)
}

/// With `PAPERBOY_ADMIN_EMAIL` and `PAPERBOY_ADMIN_PASSWORD` set and no admin yet, creates one.
pub async fn ensure_first(
    db: &PgPool,
    email: Option<&str>,
    password: Option<&str>,
) -> Result<(), AdminError> {
    let (Some(email), Some(password)) = (email, password) else { return Ok(()) };
    let any: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admins)").fetch_one(db).await?;
    if !any {
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
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, password_hash FROM admins WHERE email_key = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(db)
            .await?;
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
    pub expires_at: DateTime<Utc>,
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
    sqlx::query(
        "INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(hours => $4))",
    )
    .bind(keyed_hash(key, &token))
    .bind(admin_id)
    .bind(Token::generate().as_str())
    .bind(SESSION_HOURS as i32)
    .execute(db)
    .await?;
    Ok(token)
}

pub async fn session(db: &PgPool, key: &[u8], cookie: &str) -> Result<Option<Session>, AdminError> {
    let Some(token) = Token::parse(cookie) else { return Ok(None) };
    let row: Option<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT s.admin_id, a.email, s.csrf_token, s.expires_at
         FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()",
    )
    .bind(keyed_hash(key, &token))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(admin_id, email, csrf, expires_at)| Session { admin_id, email, csrf, expires_at }))
}

pub async fn revoke(db: &PgPool, key: &[u8], cookie: &str) -> Result<(), AdminError> {
    if let Some(token) = Token::parse(cookie) {
        sqlx::query("UPDATE admin_sessions SET revoked_at = now() WHERE token_hash = $1")
            .bind(keyed_hash(key, &token))
            .execute(db)
            .await?;
    }
    Ok(())
}

/// Compares secrets without leaking where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    crate::domain::same_secret(a.as_bytes(), b.as_bytes())
}
