//! Values the service keeps for itself. Versions before the secret file kept the generated
//! signing secret here (`secret`); `secret::load` moves it out.

use sqlx::PgPool;

/// The signing secret an older version generated and kept in the database, if any.
pub async fn legacy_secret(db: &PgPool) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT value FROM app_settings WHERE key = 'secret'")
        .fetch_optional(db)
        .await
}

/// Deletes the database-held signing secret (once it lives in the secret file).
pub async fn forget_legacy_secret(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM app_settings WHERE key = 'secret'").execute(db).await?;
    Ok(())
}
