//! The commands of the public contract.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ingest::{self, Sources, Trigger};
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
        #[arg(long, value_enum, default_value_t = SourceArg::All)]
        source: SourceArg,
        /// The Hugging Face featured day (default: today, UTC). arXiv's feed only holds
        /// its latest announcement, whose own date is recorded.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    Huggingface,
    Arxiv,
    All,
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
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
            if source != SourceArg::Arxiv {
                match ingest::huggingface(&db, &sources, day, Trigger::Cli).await {
                    Ok(summary) => println!("{summary}"),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            if source != SourceArg::Huggingface {
                match ingest::arxiv(&db, &sources, Trigger::Cli).await {
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
        Command::Migrate => {
            startup::database(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
    }
}
