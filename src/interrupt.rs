//! Ctrl-C (SIGINT) and SIGTERM before a run sends anything: while the file is checked, the user
//! is asked to confirm, or the target is made ready. A first signal is noted and the work stops at
//! its next step (the checking pass looks between batches), removes its scratch files and ends with
//! exit 2, outcome `interrupted`: nothing was sent. A second signal ends the process at once, its
//! scratch files removed first (a read blocked on a terminal or a pipe never looks).
//!
//! Once sending begins the apply's own handler takes over (calls in flight get their grace period),
//! and signals seen here are ignored.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SENDING: AtomicBool = AtomicBool::new(false);
static SIGNAL: Mutex<Option<&'static str>> = Mutex::new(None);
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Starts listening (once per process), on a thread of its own.
pub fn listen() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("pcbulk-signals".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(watch());
            });
    });
}

async fn watch() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            on_signal(name);
        }
    }
    #[cfg(not(unix))]
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        on_signal("Ctrl-C");
    }
}

fn on_signal(name: &'static str) {
    if SENDING.load(Ordering::SeqCst) {
        return;
    }
    if REQUESTED.swap(true, Ordering::SeqCst) {
        remove_scratch();
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "pcbulk: {name} again: stopped at once; nothing was sent"
        );
        std::process::exit(crate::error::exit::USAGE.into());
    }
    *SIGNAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
}

/// The signal that asked the work to stop, if one did (and sending has not begun).
pub fn requested() -> Option<&'static str> {
    if !REQUESTED.load(Ordering::SeqCst) || SENDING.load(Ordering::SeqCst) {
        return None;
    }
    Some(SIGNAL.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or("a signal"))
}

/// The error that ends work stopped by `signal` before anything was sent.
pub fn error(signal: &str) -> crate::error::Error {
    crate::error::Error::Interrupted(format!(
        "interrupted by {signal} before anything was sent; run the same command again to start over"
    ))
}

/// Stops if a signal asked to: the work's next step is not taken.
pub fn check() -> Result<(), crate::error::Error> {
    match requested() {
        Some(signal) => Err(error(signal)),
        None => Ok(()),
    }
}

/// Sending begins: from here the apply's own handler answers signals.
pub fn sending() {
    SENDING.store(true, Ordering::SeqCst);
}

/// A scratch file that a second signal removes before the process ends.
pub fn keep_track(path: PathBuf) {
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).push(path);
}

/// A scratch file removed by its owner: no longer tracked.
pub fn forget(path: &std::path::Path) {
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

fn remove_scratch() {
    for p in SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        let _ = std::fs::remove_file(p);
    }
}
