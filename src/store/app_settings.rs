//! Values the service keeps for itself, such as the generated signing secret.

use base64::Engine;
use rand::RngCore;
use sqlx::PgPool;

/// The secret for signed cookies and tokens: the configured one, else one generated on
/// first start and kept in the database so every process and restart shares it.
pub async fn signing_secret(db: &PgPool, configured: Option<&str>) -> sqlx::Result<Vec<u8>> {
    if let Some(s) = configured {
        return Ok(s.as_bytes().to_vec());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = base64::engine::general_purpose::STANDARD.encode(bytes);
    sqlx::query!(
        "INSERT INTO app_settings (key, value) VALUES ('secret', $1) ON CONFLICT (key) DO NOTHING",
        fresh,
    )
    .execute(db)
    .await?;
    let stored = sqlx::query_scalar!("SELECT value FROM app_settings WHERE key = 'secret'")
        .fetch_one(db)
        .await?;
    Ok(stored.into_bytes())
}
