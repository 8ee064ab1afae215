//! pcbulk: apply bulk updates to Microsoft Partner Center from a CSV file.
//!
//! `input file → pipeline::source (rows) → pipeline::check (planner, ops: verdicts; duplicates) →
//! pipeline::engine → dispatch (rate limit, concurrency, retries, journal) → api (Partner Center) →
//! events → run record (results, journal outcomes, progress, summary: report)`.
//!
//! `cli` converts flags into `config`; `commands` has one module per command.

// In this crate, `print!`, `println!`, `eprint!` and `eprintln!` are these: the standard ones
// panic on a closed stream (see `term`), and print what they are given raw. Defined before the
// modules, so every module's prints are these.
macro_rules! print {
    ($($arg:tt)*) => { $crate::term::Stream::Out.write_text(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::term::Stream::Out.write_text(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::term::Stream::Out.write_line(format_args!($($arg)*)) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::term::Stream::Err.write_text(format_args!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::term::Stream::Err.write_text(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::term::Stream::Err.write_line(format_args!($($arg)*)) };
}

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod csvfile;
pub mod dispatch;
pub mod duplicates;
pub mod error;
pub mod events;
pub mod export;
pub mod failpoint;
pub mod fsafe;
pub mod help;
pub mod input;
pub mod interrupt;
pub mod journal;
pub mod ops;
pub mod pipeline;
pub mod planner;
pub mod report;
pub mod results;
pub mod runs;
pub mod sandbox;
pub mod target;
pub mod term;
pub mod text;
pub mod undo_file;

use clap::Parser;

/// Runs the command line and returns the exit code.
pub fn main_with_args() -> u8 {
    let cli = cli::Cli::parse();
    init_logging(cli.output());
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcbulk: {e}");
            e.exit_code()
        }
    }
}

/// Logs on stderr: `-v` the rows, `-vv` the calls too (else `PCBULK_LOG`, else warnings only), as
/// text (coloured on a terminal unless `NO_COLOR`) or one JSON object per line.
fn init_logging(output: Option<&cli::OutputArgs>) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let (verbose, json) = output.map_or((0, false), |o| {
        (o.verbose, o.log_format == cli::LogFormat::Json)
    });
    let filter = match verbose {
        0 => EnvFilter::try_from_env("PCBULK_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("warn,pcbulk=info"),
        _ => EnvFilter::new("warn,pcbulk=debug"),
    };
    let colour = report::progress::colour(std::io::stderr().is_terminal());
    let writer = term::LogWriter { colour, json };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer)
        .with_ansi(colour)
        // Its own complaint about a failed write would go to the stream that failed, and panic.
        .log_internal_errors(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
