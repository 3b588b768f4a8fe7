//! The commands of the public contract.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::embeddings::{Embedder, ModelError, papers};
use crate::papers::ingest::{self, Selection, Sources, Trigger};
use crate::startup::{self, Application};
use chrono::NaiveDate;

#[derive(Debug, Parser)]
#[command(
    name = "paperboy",
    version,
    about = "Personalised digests of the day's trending AI/ML papers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Web server, scheduler and delivery workers, until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Create the database if missing, apply migrations, exit.
    Migrate,
    /// Ingest papers once and exit; prints one summary line per source.
    Ingest {
        /// Which source to read.
        #[arg(long, value_enum, default_value_t = Selection::All)]
        source: Selection,
        /// The Hugging Face featured day (default: today, UTC). arXiv's feed only holds
        /// its latest announcement, whose own date is recorded.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
    /// Manage dashboard admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Compose and deliver the editions of a paper day to every confirmed subscriber who has
    /// not had them, ignoring delivery hours, then exit with a summary line.
    Send {
        /// The paper day (default: the latest day with papers).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
    /// Compute the sentence-embedding vectors of papers that have none for the configured
    /// model (PAPERBOY_EMBEDDING_MODEL): a progress bar on a terminal, one summary line
    /// otherwise. Exits non-zero with a reason when no model can be loaded.
    Embed {
        /// Recompute every paper's vector, not only the missing ones.
        #[arg(long)]
        all: bool,
    },
    /// Read one RFC 5322 message on standard input (a bounce, a complaint report, an
    /// auto-reply, anything sent to the bounce address) and act on it: for a Postfix pipe
    /// alias or procmail. Exit 0 when it was handled or deliberately ignored; 75
    /// (EX_TEMPFAIL, so the mail server tries again later) when the database is unreachable.
    Inbound,
    /// GET /healthz of the configured bind address; exit 0 when healthy (for container
    /// health checks), else a one-line reason and a non-zero exit.
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin, or set a new password for an existing one (signing it out
    /// everywhere). The password is read from standard input.
    Add { email: String },
}

/// The error of a command that should be tried again later (exit code 75, EX_TEMPFAIL).
#[derive(Debug, thiserror::Error)]
#[error("{0}; try again later")]
pub struct RetryLater(pub String);

/// How long `paperboy send` waits for the embedding model before ranking literally.
const MODEL_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Inbound => {
            use tokio::io::AsyncReadExt;
            let mut raw = Vec::new();
            let read = tokio::io::stdin()
                .take(crate::bounces::MAX_INBOUND_BYTES as u64 + 1)
                .read_to_end(&mut raw)
                .await;
            if let Err(e) = read {
                return Err(
                    RetryLater(format!("cannot read the message on standard input: {e}")).into()
                );
            }
            if raw.len() > crate::bounces::MAX_INBOUND_BYTES {
                tracing::warn!(
                    limit = crate::bounces::MAX_INBOUND_BYTES,
                    "inbound message too large; ignored"
                );
                return Ok(());
            }
            let db = startup::database(&settings)
                .await
                .map_err(|e| RetryLater(format!("database unreachable: {e:#}")))?;
            let secret =
                startup::secret(&db, &settings).await.map_err(|e| RetryLater(format!("{e:#}")))?;
            let inbound = crate::bounces::Inbound::from_settings(&settings, &secret);
            let outcome = crate::bounces::process_mime(&db, &inbound, &raw)
                .await
                .map_err(|e| RetryLater(format!("database error: {e}")))?;
            tracing::info!(?outcome, bytes = raw.len(), "inbound message processed");
            println!("{}", crate::bounces::describe(&outcome));
            Ok(())
        }
        Command::Serve => {
            let app = Application::build(settings).await?;
            let shutdown = CancellationToken::new();
            startup::cancel_on_signal(shutdown.clone());
            app.run(shutdown).await
        }
        Command::Ingest { source, date } => {
            let db = startup::database(&settings).await?;
            let sources = Sources::from_settings(&settings);
            let day = date.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let mut failures = Vec::new();
            for outcome in ingest::selected(&db, &sources, source, day, Trigger::Cli).await {
                match outcome {
                    Ok(summary) => println!("{summary}"),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            if failures.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("ingest failed: {}", failures.join("; ")))
            }
        }
        Command::Send { date } => {
            let db = startup::database(&settings).await?;
            let secret = startup::secret(&db, &settings).await?;
            let mailer =
                std::sync::Arc::new(crate::mail::Mailer::from_settings(&settings, &secret)?);
            // With the model, the edition's papers are embedded before composing; without
            // it, the send ranks literally and says why.
            let embedder = Embedder::from_settings(&settings);
            match tokio::time::timeout(MODEL_WAIT, embedder.load()).await {
                Ok(Ok(_)) | Ok(Err(ModelError::Off)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "ranking literally"),
                Err(_) => tracing::warn!(
                    wait = ?MODEL_WAIT,
                    "the embedding model did not load in time; ranking literally"
                ),
            }
            let deliverer = crate::digests::deliver::Deliverer::from_settings(
                &db, &mailer, &settings, &secret, &embedder,
            );
            // Ctrl-C/SIGTERM: finish the message in flight, hand the rest back, exit.
            let shutdown = CancellationToken::new();
            startup::cancel_on_signal(shutdown.clone());
            let summary = crate::digests::plan::send(
                &db,
                &deliverer,
                date,
                settings.mail.send_concurrency,
                shutdown,
            )
            .await?;
            println!("{summary}");
            if summary.failed > 0 || summary.retrying > 0 {
                anyhow::bail!(
                    "{} digests failed and {} wait for a retry (see the deliveries table or /admin/deliveries)",
                    summary.failed,
                    summary.retrying
                );
            }
            Ok(())
        }
        Command::Admin { command: AdminCommand::Add { email } } => {
            let db = startup::database(&settings).await?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let created = crate::operators::admins::create_or_reset(&db, &email, password).await?;
            println!(
                "{} admin {email}",
                if created { "created" } else { "updated the password of" }
            );
            Ok(())
        }
        Command::Embed { all } => embed(settings, all).await,
        Command::Migrate => {
            startup::database(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Healthcheck => healthcheck(settings.web.bind).await,
    }
}

/// `paperboy embed`: loads the model (downloading it if needed), drops other models'
/// vectors, then embeds batch by batch; a kill loses at most the batch in flight.
async fn embed(settings: Settings, all: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let db = startup::database(&settings).await?;
    let embedder = Embedder::from_settings(&settings);
    let started = std::time::Instant::now();
    embedder.load().await?;
    let model = embedder.model_id();
    crate::store::vectors::switch_to_model(&db, &model).await?;
    // embedded_at is the database's clock: `--all` redoes what is older than its start.
    let since = if all { Some(crate::store::vectors::now(&db).await?) } else { None };
    let scope = papers::Scope { only: None, since };
    let todo = crate::store::vectors::count_unembedded(&db, &model, since, None).await?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(todo.max(0) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} papers, {per_sec}, {eta} left",
        )
        .expect("a valid template"),
    );
    let shutdown = CancellationToken::new();
    startup::cancel_on_signal(shutdown.clone());
    let done = papers::embed_all(&db, &embedder, scope, &shutdown, |n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    let total = crate::store::vectors::count_papers(&db, &model).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "embed {model}: embedded {done} papers in {seconds:.1} s; {total} papers have vectors"
    );
    if shutdown.is_cancelled() {
        anyhow::bail!("stopped before the end; run it again to embed the rest");
    }
    Ok(())
}

/// `paperboy healthcheck`: asks the server on `bind` (on loopback when it listens on
/// every address) for `/healthz`, within 3 seconds.
async fn healthcheck(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client =
        reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(3)).build()?;
    let response = client.get(&url).send().await.map_err(|e| {
        let reason = if e.is_timeout() {
            "no answer within 3 s".to_string()
        } else {
            // The innermost cause says it best ("Connection refused (os error 111)").
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            cause.to_string()
        };
        anyhow::anyhow!("unhealthy: {url}: {reason}")
    })?;
    if !response.status().is_success() {
        anyhow::bail!("unhealthy: {url} answered {}", response.status());
    }
    println!("healthy: {url}");
    Ok(())
}
