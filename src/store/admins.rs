//! Operators and their sign-in sessions (`admins`, `admin_sessions`).

use sqlx::PgPool;

/// Creates the admin or replaces their password hash; true when the admin is new. A new
/// password revokes every session the admin had.
pub async fn upsert(db: &PgPool, email: &str, email_key: &str, hash: &str) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let created = sqlx::query_scalar!(
        r#"INSERT INTO admins (email, email_key, password_hash) VALUES ($1, $2, $3)
           ON CONFLICT (email_key) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()
           RETURNING (xmax = 0) AS "created!""#,
        email,
        email_key,
        hash,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !created {
        sqlx::query!(
            "UPDATE admin_sessions SET revoked_at = now()
             WHERE revoked_at IS NULL AND admin_id = (SELECT id FROM admins WHERE email_key = $1)",
            email_key,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub async fn any(db: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM admins) AS "any!""#).fetch_one(db).await
}

/// (id, password hash) of the admin with this address key.
pub async fn credentials(db: &PgPool, email_key: &str) -> sqlx::Result<Option<(i64, String)>> {
    let row = sqlx::query!("SELECT id, password_hash FROM admins WHERE email_key = $1", email_key)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (r.id, r.password_hash)))
}

pub async fn insert_session(
    db: &PgPool,
    token_hash: &[u8],
    admin_id: i64,
    csrf: &str,
    hours: i32,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(hours => $4))",
        token_hash,
        admin_id,
        csrf,
        hours,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A live session: (admin id, admin address, CSRF token).
pub async fn live_session(
    db: &PgPool,
    token_hash: &[u8],
) -> sqlx::Result<Option<(i64, String, String)>> {
    let row = sqlx::query!(
        "SELECT s.admin_id, a.email, s.csrf_token
         FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()",
        token_hash,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.admin_id, r.email, r.csrf_token)))
}

pub async fn revoke_session(db: &PgPool, token_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query!("UPDATE admin_sessions SET revoked_at = now() WHERE token_hash = $1", token_hash)
        .execute(db)
        .await?;
    Ok(())
}
