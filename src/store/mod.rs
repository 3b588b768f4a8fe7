//! SQL, grouped by what it stores. Nothing above this module writes a query.

/// An enum stored as one of a fixed set of texts (a text column with a CHECK list): the
/// sqlx mapping, `ALL` (in declaration order), `as_str`, `parse` and `Display`, all from
/// one list of variants and their texts.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
        #[sqlx(type_name = "text")]
        pub enum $name {
            $($(#[$vmeta])* #[sqlx(rename = $text)] $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

use anyhow::Context;

pub mod admins;
pub mod app_settings;
pub mod bounces;
pub mod daily_stats;
pub mod deliveries;
pub mod editions;
pub mod examples;
pub mod ingest_runs;
pub mod lexicon;
pub mod library;
pub mod mail_queue;
pub mod papers;
pub mod ratings;
pub mod scheduled_jobs;
pub mod subscribers;
pub mod vectors;

/// Answers when the database does.
pub async fn ping(db: &sqlx::PgPool) -> sqlx::Result<()> {
    sqlx::query!("SELECT 1 AS one").fetch_one(db).await?;
    Ok(())
}

/// The backend pid of this connection: what marks the claims its worker takes on queued
/// mail.
pub async fn backend_pid(conn: &mut sqlx::PgConnection) -> sqlx::Result<i32> {
    sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#).fetch_one(conn).await
}

/// Commits on this connection stop waiting for the WAL flush (`on`) or wait again. For
/// bookkeeping a Postgres crash may forget at worst (a "sent" mark: that message goes again,
/// a repeat, never a loss); reset before the connection goes back to the pool.
pub async fn relax_commits(conn: &mut sqlx::PgConnection, on: bool) -> sqlx::Result<()> {
    if on {
        sqlx::query!("SET synchronous_commit = off").execute(conn).await?;
    } else {
        sqlx::query!("RESET synchronous_commit").execute(conn).await?;
    }
    Ok(())
}

/// The URL's options, with one default of our own: a server on this machine is reached
/// without TLS unless the URL asks for it (`sslmode=`). libpq's default, "prefer", would
/// encrypt loopback traffic, which protects nothing and cost a tenth of the CPU of a
/// sign-up (both ends encrypt every row).
fn connect_options(url: &str) -> anyhow::Result<sqlx::postgres::PgConnectOptions> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).context("DATABASE_URL")?;
    let asks_for_tls =
        url::Url::parse(url).map(|u| u.query_pairs().any(|(k, _)| k == "sslmode")).unwrap_or(true);
    let local = is_loopback_host(options.get_host());
    Ok(if local && !asks_for_tls {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        options
    })
}

/// Connects to Postgres, creating the database when it is missing, and applies the
/// migrations embedded in the binary.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
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
        .connect_with(connect_options(url)?)
        .await
        .context("cannot connect to the database")?;
    sqlx::migrate!().run(&pool).await.context("cannot apply migrations")?;
    Ok(pool)
}

/// Whether a URL's host names this machine: `localhost`, a loopback address (`127.0.0.0/8`,
/// `::1`, also in brackets), or a Unix socket directory.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str) -> String {
        format!("{:?}", connect_options(url).unwrap().get_ssl_mode())
    }

    #[test]
    fn loopback_goes_without_tls_unless_asked_and_remote_hosts_keep_the_default() {
        assert_eq!(tls("postgres://postgres@127.0.0.1:5432/paperboy"), "Disable");
        assert_eq!(tls("postgres://postgres@localhost/paperboy"), "Disable");
        assert_eq!(tls("postgres://postgres@[::1]:5432/paperboy"), "Disable");
        assert_eq!(tls("postgres://postgres@127.0.0.1/paperboy?sslmode=require"), "Require");
        assert_eq!(tls("postgres://postgres@db.example.com/paperboy"), "Prefer");
    }
}
