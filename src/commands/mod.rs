//! One module per command; each turns its configuration into a run and an exit code.

pub mod apply;
pub mod auth;
pub mod auth_login;
mod records;
pub mod registry;
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
        Command::Apply(args) => {
            let output = Output::from(&args.input.output);
            let sandbox = args.target.sandbox;
            let (kind, command) = match args.dry_run {
                true => ("plan", "plan"),
                false => ("results", "apply"),
            };
            rows(&output, &args.input, kind, command, || {
                let cfg = ApplyConfig::try_from(&args)?;
                let mut summary = one_thread_runtime()?.block_on(apply::apply(cfg, &output))?;
                if summary.aborted.is_some() && !sandbox {
                    summary.resume_command = Some(resume_command(std::env::args_os().collect()));
                }
                Ok(summary)
            })
        }
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
        Command::Template { operation } => template::print(operation),
        Command::Completions { shell } => {
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
        Command::Undo { results, out } => undo::run(&results, out.as_deref()),
        Command::Auth {
            command: AuthCommand::Status(args),
        } => {
            let target = crate::config::Target::try_from(&args)?;
            one_thread_runtime()?.block_on(auth::status(target, args.cloud_name()))
        }
        Command::Auth {
            command: AuthCommand::Login(args),
        } => {
            let sign_in = auth_login::SignIn::try_from(&args)?;
            one_thread_runtime()?.block_on(auth_login::login(sign_in))
        }
        Command::Auth {
            command: AuthCommand::Logout(args),
        } => auth_login::logout(auth_login::SignOut::try_from(&args)?),
        Command::Sandbox(args) => {
            let opts = crate::sandbox::Options::try_from(&args)?;
            runtime()?.block_on(sandbox::serve(opts))
        }
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

/// The command line that was run, with `--resume` in place of any `--resume`/`--retry-failed` it had
/// (keeping `--retry-failed`, which implies it), quoted for a POSIX shell.
fn resume_command(args: Vec<std::ffi::OsString>) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 1);
    let mut retry_failed = false;
    for (i, a) in args.into_iter().enumerate() {
        match a.to_str() {
            Some("--resume") => continue,
            Some("--retry-failed") => retry_failed = true,
            _ => {}
        }
        out.push(if i == 0 {
            "pcbulk".to_owned()
        } else {
            shell_quote_os(&a)
        });
    }
    if !retry_failed {
        out.push("--resume".into());
    }
    out.join(" ")
}

/// An argument quoted for a POSIX shell; one that is not UTF-8 (a file name's bytes) as bash's
/// `$'...'` with each byte that is not plain ASCII escaped, so the command names the very file.
fn shell_quote_os(s: &std::ffi::OsStr) -> String {
    if let Some(s) = s.to_str() {
        return shell_quote(s);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut q = String::from("$'");
        for &b in s.as_bytes() {
            match b {
                b'\\' | b'\'' => q.push_str(&format!("\\{}", b as char)),
                0x20..=0x7e => q.push(b as char),
                _ => q.push_str(&format!("\\x{b:02x}")),
            }
        }
        q.push('\'');
        q
    }
    #[cfg(not(unix))]
    shell_quote(&s.to_string_lossy())
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    /// Found by an outside tester: a file name that is not UTF-8 was kept with U+FFFD in the
    /// resume command, which then named a file that does not exist.
    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_utf8_is_quoted_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let name = std::ffi::OsString::from_vec(b"e\x1b[31mred'\x9b.csv".to_vec());
        let quoted = super::shell_quote_os(&name);
        assert_eq!(quoted, r"$'e\x1b[31mred\'\x9b.csv'");
        let said = std::process::Command::new("bash")
            .args(["-c", &format!("printf %s {quoted}")])
            .output()
            .unwrap();
        assert_eq!(
            said.stdout,
            name.as_bytes(),
            "the shell reads back the same bytes"
        );
    }

    #[test]
    fn the_resume_command_is_the_run_s_own_with_resume_quoted_for_a_shell() {
        let args = |s: &[&str]| s.iter().map(std::ffi::OsString::from).collect();
        assert_eq!(
            super::resume_command(args(&["/usr/bin/pcbulk", "apply", "my file.csv", "--yes"])),
            "pcbulk apply 'my file.csv' --yes --resume"
        );
        assert_eq!(
            super::resume_command(args(&[
                "pcbulk", "apply", "a.csv", "--resume", "--out", "it's.csv"
            ])),
            "pcbulk apply a.csv --out 'it'\\''s.csv' --resume"
        );
        assert_eq!(
            super::resume_command(args(&["pcbulk", "apply", "a.csv", "--retry-failed"])),
            "pcbulk apply a.csv --retry-failed"
        );
    }
}
