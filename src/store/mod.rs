//! SQL, grouped by what it stores. Nothing above this module writes a query.

pub mod app_settings;
pub mod dashboard;
pub mod deliveries;
pub mod editions;
pub mod ingest_runs;
pub mod mail_queue;
pub mod papers;
pub mod subscribers;

/// Connects to Postgres, creating the database when it is missing, and applies the
/// migrations embedded in the binary.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
    use anyhow::Context;
    use sqlx::migrate::MigrateDatabase;

    if !sqlx::Postgres::database_exists(url).await.context("cannot reach Postgres")? {
        // Two processes may race here; losing the race is fine.
        if let Err(e) = sqlx::Postgres::create_database(url).await {
            if !sqlx::Postgres::database_exists(url).await.unwrap_or(false) {
                return Err(e).context("cannot create the database");
            }
        } else {
            tracing::info!("created the database");
        }
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .context("cannot connect to the database")?;
    sqlx::migrate!().run(&pool).await.context("cannot apply migrations")?;
    Ok(pool)
}
