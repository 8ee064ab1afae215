//! pcbulk: apply bulk updates to Microsoft Partner Center from a CSV file.
//!
//! `CSV file → rows (input) → validated jobs (plan, ops) → dispatcher (rate limit, concurrency,
//! retries) → Partner Center client (api) → outcomes → results writer (results)`.

pub mod api;
pub mod cli;
pub mod dispatch;
pub mod exit;
pub mod failpoint;
pub mod input;
pub mod journal;
pub mod ops;
pub mod plan;
pub mod report;
pub mod results;
pub mod run;
pub mod sandbox;
pub mod stream;
pub mod undo;

use std::io::Write;

use clap::Parser;

use cli::{ApplyConfig, Cli, Command, InputConfig};

/// Runs the command line and returns the exit code.
pub fn main_with_args() -> u8 {
    let cli = Cli::parse();
    init_logging();
    match run_command(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcbulk: {e:#}");
            exit::USAGE
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_command(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Apply(args) => {
            let cfg = ApplyConfig::try_from(&args)?;
            let summary = runtime()?.block_on(run::apply(cfg, true))?;
            print!("{}", report::summary_text(&summary));
            Ok(summary.exit_code())
        }
        Command::Validate(args) => {
            let cfg = InputConfig::try_from(&args)?;
            let summary = stream::validate(&cfg, true)?;
            print!("{}", report::summary_text(&summary));
            Ok(summary.exit_code())
        }
        Command::Template { operation } => {
            let op = ops::by_name(&operation).ok_or_else(|| {
                anyhow::anyhow!(
                    "{operation:?} is not an operation; use one of {}",
                    ops::names()
                )
            })?;
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(op.example.iter().map(|(c, _)| *c))?;
            w.write_record(op.example.iter().map(|(_, v)| *v))?;
            w.flush()?;
            Ok(exit::OK)
        }
        Command::Undo { results, out } => {
            let report = undo::write_undo(&results, out.as_deref())?;
            print!("{}", undo::report_text(&report));
            Ok(exit::OK)
        }
        Command::Sandbox(args) => {
            runtime()?.block_on(serve_sandbox(args))?;
            Ok(exit::OK)
        }
    }
}

async fn serve_sandbox(args: cli::SandboxArgs) -> anyhow::Result<()> {
    let opts = sandbox::Options::try_from(&args)?;
    let running = sandbox::start(opts).await?;
    let url = running.base_url();
    let mut out = std::io::stdout();
    writeln!(out, "pcbulk sandbox listening on {url}")?;
    writeln!(
        out,
        "  try: PCBULK_ACCESS_TOKEN=sandbox pcbulk apply samples/support-contacts.csv --base-url {url}"
    )?;
    writeln!(
        out,
        "  state: {url}/_sandbox/state   stats: {url}/_sandbox/stats   stop: Ctrl-C"
    )?;
    out.flush()?;
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
