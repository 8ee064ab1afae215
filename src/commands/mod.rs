//! One module per command; each turns its configuration into a run and an exit code.

pub mod apply;
pub mod auth;
pub mod auth_login;
pub mod export;
pub mod sandbox;
pub mod template;
pub mod undo;
pub mod validate;

use crate::api::auth::Credentials;
use crate::cli::InputArgs;
use crate::cli::{AuthCommand, Cli, Command};
use crate::config::Target;
use crate::config::{ApplyConfig, InputConfig};
use crate::error::Error;
use crate::report::summary::Summary;
use crate::report::Output;

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
        Command::Apply(args) => apply_command(&args),
        Command::Plan(args) => {
            let output = Output::from(&args.input.output);
            rows(&output, &args.input, "plan", "plan", || {
                let cfg = ApplyConfig::try_from(&args)?;
                one_thread_runtime()?.block_on(apply::apply(cfg, &output))
            })
        }
        Command::Validate(args) => {
            let output = Output::from(&args.output);
            rows(&output, &args, "validation", "validate", || {
                validate::validate(&InputConfig::from_args(&args, "validation")?, &output)
            })
        }
        Command::Export(args) => export::run(&args),
        Command::Template { operation } => template::print(operation),
        Command::Completions { shell } => completions(shell),
        Command::Undo { results, out } => undo::run(&results, out.as_deref()),
        Command::Auth { command } => auth_command(command),
        Command::Sandbox(args) => {
            let opts = crate::sandbox::Options::try_from(&args)?;
            runtime()?.block_on(sandbox::serve(opts))
        }
    }
}

/// `pcbulk apply`, or with `--dry-run` a plan; an aborted run's summary names the command that
/// finishes it.
fn apply_command(args: &crate::cli::ApplyArgs) -> Result<u8, Error> {
    let output = Output::from(&args.input.output);
    let sandbox = args.target.sandbox;
    let (kind, command) = match args.dry_run {
        true => ("plan", "plan"),
        false => ("results", "apply"),
    };
    rows(&output, &args.input, kind, command, || {
        let cfg = ApplyConfig::try_from(args)?;
        let mut summary = one_thread_runtime()?.block_on(apply::apply(cfg, &output))?;
        if summary.aborted.is_some() && !sandbox {
            summary.resume_command =
                Some(crate::runs::resume_command(std::env::args_os().collect()));
        }
        Ok(summary)
    })
}

/// `pcbulk completions SHELL`: the script, on stdout.
fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Written whole once made: clap_complete panics when a write fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pcbulk", &mut script);
    crate::term::Stream::Out
        .write_raw(&script)
        .map_err(|e| crate::error::Error::io("cannot write to standard output", e))?;
    Ok(crate::error::exit::OK)
}

/// `pcbulk auth status|login|logout`.
fn auth_command(command: AuthCommand) -> Result<u8, Error> {
    match command {
        AuthCommand::Status(args) => {
            let target = crate::config::Target::try_from(&args)?;
            one_thread_runtime()?.block_on(auth::status(target, args.cloud_name()))
        }
        AuthCommand::Login(args) => {
            let sign_in = auth_login::SignIn::try_from(&args)?;
            one_thread_runtime()?.block_on(auth_login::login(sign_in))
        }
        AuthCommand::Logout(args) => auth_login::logout(auth_login::SignOut::try_from(&args)?),
    }
}

/// Runs apply, plan or validate and ends it: the text summary, the JSON summary, the report. A run
/// that cannot start or stops with an error still leaves its JSON summary, saying why.
fn rows(
    output: &Output,
    input: &InputArgs,
    kind: &str,
    command: &'static str,
    run: impl FnOnce() -> Result<Summary, Error>,
) -> Result<u8, Error> {
    crate::interrupt::listen();
    let started = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let results = input
        .out
        .clone()
        .unwrap_or_else(|| crate::config::default_path(&input.input, input.sheet.as_deref(), kind));
    // A path refused here is never written, not even to say it was refused.
    output.check_paths(&input.input, &results)?;
    match run() {
        Ok(summary) => {
            let code = summary.exit_code();
            output.finish(&summary, code);
            Ok(code)
        }
        Err(e) => {
            let mut s = Summary::new(results);
            s.about.command = command;
            s.about.input = Some(input.input.clone());
            s.about.started = started;
            s.elapsed = clock.elapsed();
            output.finish_failed(s, &e);
            Err(e)
        }
    }
}

/// A target made ready: the embedded sandbox started if that is the target, the base URL, and the
/// credentials to use there.
pub struct Reached {
    pub sandbox: Option<crate::sandbox::Running>,
    pub base_url: String,
    pub credentials: Credentials,
}

/// Starts the embedded sandbox for `--sandbox` (whose token is always accepted); a service target
/// is used as it is.
pub async fn reach(target: Target) -> Result<Reached, Error> {
    match target {
        Target::Sandbox => {
            let s = crate::sandbox::start(crate::sandbox::Options::default())
                .await
                .map_err(|e| Error::usage(format!("cannot start the sandbox: {e:#}")))?;
            Ok(Reached {
                base_url: s.base_url(),
                sandbox: Some(s),
                credentials: Credentials::Static(secrecy::SecretString::from("sandbox")),
            })
        }
        Target::Service {
            base_url,
            credentials,
        } => Ok(Reached {
            sandbox: None,
            base_url,
            credentials,
        }),
    }
}
