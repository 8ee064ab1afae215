//! Ctrl-C (SIGINT) and SIGTERM before a run sends anything: while the file is checked, the user
//! is asked to confirm, or the target is made ready. A first signal is noted and the work stops at
//! its next step (the checking pass looks between batches), removes its scratch files and ends with
//! exit 2, outcome `interrupted`: nothing was sent. A second signal ends the process at once, its
//! scratch files removed first (a read blocked on a terminal or a pipe never looks).
//!
//! Once sending begins the apply's own handler takes over (calls in flight get their grace period),
//! and signals seen here are ignored.
//!
//! On Unix the handler is a plain `sigaction` one that only touches atomics and makes
//! async-signal-safe calls (`unlink`, `write`, `_exit`): it needs no file descriptor, so a process
//! out of open files still answers Ctrl-C (tokio's signal driver needs a socket pair, and panics
//! when it cannot have one). The sending pass's tokio handler, registered later, runs this one too.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::Once;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SENDING: AtomicBool = AtomicBool::new(false);
/// Which signal: 0 none, 1 SIGINT (Ctrl-C), 2 SIGTERM (Ctrl-Break on Windows).
static SIGNAL: AtomicU8 = AtomicU8::new(0);
/// Scratch files a second signal removes: NUL-terminated paths, leaked on purpose (a handful a run).
static SCRATCH: [AtomicPtr<u8>; 8] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];

/// Starts listening (once per process).
pub fn listen() {
    static STARTED: Once = Once::new();
    STARTED.call_once(install);
}

#[cfg(unix)]
fn install() {
    extern "C" fn on_signal(sig: libc::c_int) {
        if SENDING.load(Ordering::SeqCst) {
            return;
        }
        if REQUESTED.swap(true, Ordering::SeqCst) {
            for slot in &SCRATCH {
                let p = slot.load(Ordering::SeqCst);
                if !p.is_null() {
                    // SAFETY: a NUL-terminated path leaked by `keep_track`, never freed.
                    unsafe { libc::unlink(p as *const libc::c_char) };
                }
            }
            let msg = b"pcbulk: interrupted again: stopped at once; nothing was sent\n";
            // SAFETY: write(2) and _exit(2) are async-signal-safe.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(crate::error::exit::USAGE.into());
            }
        }
        let which = if sig == libc::SIGTERM { 2 } else { 1 };
        SIGNAL.store(which, Ordering::SeqCst);
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches atomics and makes
        // async-signal-safe calls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// On Windows a console control handler (`SetConsoleCtrlHandler`) plays the part: Ctrl-C as SIGINT,
/// Ctrl-Break as SIGTERM. The system runs it on a thread of its own, not in a signal context, so it
/// may remove files and write freely. Closing the console window ends the process once the handler
/// returns, whatever it answers: that counts as a second signal (scratch files removed, exit at once).
/// While sending, tokio's handler (registered later, so asked first) answers; one that reaches this
/// handler is ignored, as on Unix.
#[cfg(windows)]
fn install() {
    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT,
    };
    unsafe extern "system" fn on_event(kind: u32) -> BOOL {
        if SENDING.load(Ordering::SeqCst) {
            return 1;
        }
        let first = kind == CTRL_C_EVENT || kind == CTRL_BREAK_EVENT;
        if !first || REQUESTED.swap(true, Ordering::SeqCst) {
            stop_at_once();
        }
        let which = if kind == CTRL_BREAK_EVENT { 2 } else { 1 };
        SIGNAL.store(which, Ordering::SeqCst);
        1
    }
    // SAFETY: registers a handler with the signature the system expects; it only touches atomics,
    // removes files and ends the process.
    unsafe { SetConsoleCtrlHandler(Some(on_event), 1) };
}

/// A second signal on Windows: the scratch files are removed and the process ends.
#[cfg(windows)]
fn stop_at_once() -> ! {
    use std::io::Write;
    for slot in &SCRATCH {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: a NUL-terminated path leaked by `keep_track`, never freed.
            let held = unsafe { std::ffi::CStr::from_ptr(p as *const std::ffi::c_char) };
            let _ = std::fs::remove_file(String::from_utf8_lossy(held.to_bytes()).as_ref());
        }
    }
    let _ = std::io::stderr()
        .write_all(b"pcbulk: interrupted again: stopped at once; nothing was sent\n");
    std::process::exit(crate::error::exit::USAGE.into())
}

#[cfg(not(any(unix, windows)))]
fn install() {}

/// The signal that asked the work to stop, if one did (and sending has not begun).
pub fn requested() -> Option<&'static str> {
    if !REQUESTED.load(Ordering::SeqCst) || SENDING.load(Ordering::SeqCst) {
        return None;
    }
    Some(match SIGNAL.load(Ordering::SeqCst) {
        2 if cfg!(windows) => "Ctrl-Break",
        2 => "SIGTERM",
        _ if cfg!(windows) => "Ctrl-C",
        _ => "Ctrl-C (SIGINT)",
    })
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

/// A scratch file that a second signal removes before the process ends (up to a few at once; one
/// past them is removed by its owner only).
pub fn keep_track(path: &Path) {
    let Some(c) = c_path(path) else { return };
    let raw = Box::leak(c.into_bytes_with_nul().into_boxed_slice()).as_mut_ptr();
    for slot in &SCRATCH {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                raw,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            return;
        }
    }
}

/// A scratch file removed by its owner: no longer tracked.
pub fn forget(path: &Path) {
    let Some(c) = c_path(path) else { return };
    let want = c.as_bytes_with_nul();
    for slot in &SCRATCH {
        let p = slot.load(Ordering::SeqCst);
        if p.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated path leaked by `keep_track`, never freed.
        let held = unsafe { std::ffi::CStr::from_ptr(p as *const std::ffi::c_char) };
        if held.to_bytes_with_nul() == want {
            let _ =
                slot.compare_exchange(p, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

#[cfg(unix)]
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
}

/// Windows paths are UTF-16; one that is not valid Unicode is kept with U+FFFD, and a second Ctrl-C
/// then leaves that one scratch file behind.
#[cfg(not(unix))]
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(path.to_string_lossy().as_bytes()).ok()
}
