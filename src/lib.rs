//! pcbulk: apply bulk updates to Microsoft Partner Center from a CSV file.
//!
//! `input file → pipeline::source (rows) → pipeline::check (planner, ops: verdicts; duplicates) →
//! pipeline::engine → dispatch (rate limit, concurrency, retries, journal) → api (Partner Center) →
//! events → run record (results, journal outcomes, progress, summary: report)`.
//!
//! `cli` converts flags into `config`; `commands` has one module per command.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod duplicates;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod fsafe;
pub mod help;
pub mod input;
pub mod journal;
pub mod ops;
pub mod pipeline;
pub mod planner;
pub mod report;
pub mod results;
pub mod sandbox;
pub mod undo;

use clap::Parser;

/// Runs the command line and returns the exit code.
pub fn main_with_args() -> u8 {
    let cli = cli::Cli::parse();
    init_logging();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcbulk: {e}");
            e.exit_code()
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PCBULK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
