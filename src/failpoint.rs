//! Crash points for the kill tests: `PCBULK_CRASH_AT=<point>[:<n>]` aborts the process the n-th time
//! (default the first) it passes that point, as a power cut would. Unset, this does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Aborts here if `PCBULK_CRASH_AT` names this point and its count is reached.
pub fn hit(point: &str) {
    let spec = SPEC.get_or_init(|| {
        let v = std::env::var("PCBULK_CRASH_AT").ok()?;
        let (name, n) = match v.split_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
            None => (v, 1),
        };
        Some((name, n))
    });
    if let Some((name, n)) = spec {
        if name == point && COUNT.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            std::process::abort();
        }
    }
}
