//! One module per command; each turns its configuration into a run and an exit code.

pub mod apply;
pub mod sandbox;
pub mod template;
pub mod undo;
pub mod validate;

use crate::cli::{Cli, Command};
use crate::config::{ApplyConfig, InputConfig};
use crate::error::Error;
use crate::report;

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

/// The runtime a run's calls go out on: one thread. The work per call is small next to its cost of
/// crossing threads (a work-stealing runtime spent a third more CPU per call on futex wake-ups and
/// migrations in the wire benchmark); the file is read, checked, journaled and written on threads
/// of their own.
fn one_thread_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Apply(args) => {
            let cfg = ApplyConfig::try_from(&args)?;
            let summary = one_thread_runtime()?.block_on(apply::apply(cfg, true))?;
            print!("{}", report::summary_text(&summary));
            Ok(summary.exit_code())
        }
        Command::Validate(args) => {
            let summary = validate::validate(&InputConfig::try_from(&args)?)?;
            print!("{}", report::summary_text(&summary));
            Ok(summary.exit_code())
        }
        Command::Template { operation } => template::print(operation),
        Command::Undo { results, out } => undo::run(&results, out.as_deref()),
        Command::Sandbox(args) => {
            let opts = crate::sandbox::Options::try_from(&args)?;
            runtime()?.block_on(sandbox::serve(opts))
        }
    }
}
