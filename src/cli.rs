//! The commands of the public contract.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::startup::{self, Application};

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
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            let shutdown = CancellationToken::new();
            startup::cancel_on_signal(shutdown.clone());
            app.run(shutdown).await
        }
        Command::Migrate => {
            startup::database(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
    }
}
