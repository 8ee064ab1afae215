//! Exit codes (SPEC: Exit codes) and the error type that carries one: every error is classified
//! where it arises, so nothing is taken for "nothing was sent" by default.
//!
//! An error's message is whole: the OS error it wraps is in its text and is not also its
//! `source()`, so a printer that walks the chain (anyhow's `{:#}`) does not say it twice.

use thiserror::Error;

use crate::input::InputError;

/// Exit codes, in one place.
pub mod exit {
    /// Every row succeeded or was unchanged (validate / dry run: every row is valid).
    pub const OK: u8 = 0;
    /// The run finished, but at least one row is invalid or failed.
    pub const ROWS_FAILED: u8 = 1;
    /// Usage or configuration error, or unreadable input: nothing was sent.
    pub const USAGE: u8 = 2;
    /// Aborted (max errors, credentials refused, interrupted, a record that could not be written
    /// once sending began): results so far are on disk.
    pub const ABORTED: u8 = 3;
}

/// Why a command could not do its job.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad flags or configuration, or a file that cannot be run: nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The input could not be read: nothing was sent.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A local file could not be read or written before anything was sent.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        /// In the message, so not a `#[source]`.
        cause: std::io::Error,
    },
    /// Sending had begun when the run had to stop: what was sent is in the journal.
    #[error("{0}")]
    Aborted(String),
    /// Ctrl-C or SIGTERM before anything was sent.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Input(_) | Error::Io { .. } | Error::Interrupted(_) => {
                exit::USAGE
            }
            Error::Aborted(_) => exit::ABORTED,
        }
    }
}

/// A file that cannot be run at all (exit 2): the planner's refusal, before any `Error` exists.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e.0)
    }
}

/// `bail!` for usage errors.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Usage(format!($($arg)*)))
    };
}
pub(crate) use usage;

#[cfg(test)]
mod tests {
    use super::*;

    /// anyhow's `{:#}` prints an error, then each `source()` in turn: an error whose message holds
    /// its cause must not also return it.
    #[test]
    fn a_chained_error_says_the_os_error_once() {
        let os = || std::io::Error::from_raw_os_error(2);
        let said = os().to_string();
        let input = || InputError::Io {
            path: "in.csv".into(),
            cause: os(),
        };
        for e in [
            anyhow::Error::new(Error::io("cannot write out.csv", os())).context("apply"),
            anyhow::Error::new(input()).context("cannot read the results file"),
            anyhow::Error::new(Error::from(input())),
        ] {
            let text = format!("{e:#}");
            assert_eq!(text.matches(&said).count(), 1, "{text}");
        }
    }
}
