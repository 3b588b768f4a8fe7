//! `paperboy`: parse the command line, start logging, dispatch.

use clap::Parser;

// Many small allocations from many threads (requests, messages, queries): mimalloc keeps
// them cheap where glibc's malloc contends (the sign-up benchmark in the README shows it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main, before any other thread.
    unsafe { paperboy::embeddings::single_threaded_kernels() };
    run()
}

#[tokio::main]
async fn run() -> std::process::ExitCode {
    let cli = paperboy::cli::Cli::parse();
    let settings = match paperboy::config::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("paperboy: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    paperboy::telemetry::init(settings.log_format);
    match paperboy::cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("paperboy: {}", paperboy::telemetry::error_chain(&e));
            if e.downcast_ref::<paperboy::cli::RetryLater>().is_some() {
                // EX_TEMPFAIL: a mail server piping a message to us tries again later.
                return std::process::ExitCode::from(75);
            }
            std::process::ExitCode::FAILURE
        }
    }
}
