//! The sandbox's state, shared by all connections: the tenant, the fault plan, the tokens issued,
//! the answers kept for replay by MS-RequestId, the counts `GET /_sandbox/stats` reports and the
//! writes applied, by target, that `GET /_sandbox/writes` reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::Value;

use crate::sandbox::faults::Faults;
use crate::sandbox::tenant::{Size, Tenant};
use crate::sandbox::Options;

/// Calls by route and outcome, and everything a test may want to know about what the server saw.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) calls: BTreeMap<String, u64>,
    pub(super) total: u64,
    pub(super) replays: u64,
    pub(super) request_id_reuse: u64,
    pub(super) unauthorized: u64,
    pub(super) violations: u64,
    pub(super) violation_examples: Vec<String>,
    pub(super) max_in_flight: usize,
    pub(super) tokens_issued: u64,
    pub(super) throttled: u64,
    pub(super) faults: BTreeMap<&'static str, u64>,
}

pub(super) struct Stored {
    pub(super) fingerprint: String,
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

/// Who an access token speaks for, which decides the operations it may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// A user's delegated token (App+User): every operation.
    AppUser,
    /// The application alone (client_credentials): the billing profile only.
    AppOnly,
}

#[derive(Default)]
pub(super) struct TokenBook {
    /// Access token → when it expires, and what kind it is.
    pub(super) access: HashMap<String, (Instant, TokenKind)>,
    /// Refresh token → when a newer one replaced it.
    pub(super) refresh: HashMap<String, Option<Instant>>,
    pub(super) issued: u64,
    /// Device codes of the device authorization grant, by device code.
    pub(super) devices: HashMap<String, super::tokens::Device>,
}

/// The sandbox's state, shared by all connections.
pub struct Shared {
    pub(super) opts: Options,
    pub(super) tenant: Mutex<Tenant>,
    pub(super) stats: Mutex<Stats>,
    pub(super) idempotency: Mutex<HashMap<String, Stored>>,
    pub(super) tokens: Mutex<TokenBook>,
    pub(super) faults: Mutex<Faults>,
    pub(super) in_flight: AtomicUsize,
    /// Writes applied (answered 2xx by the resource, replays not counted), by
    /// `"<METHOD> /v1/<path>"` with the path's words lower-cased: the sandbox's own count, for
    /// tests that check a change landed exactly once.
    pub(super) writes: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    pub fn new(opts: Options) -> Self {
        Shared {
            tenant: Mutex::new(Tenant::demo(Size {
                seed: opts.seed,
                extra_subscriptions: opts.extra_subscriptions,
                extra_customers: opts.extra_customers,
                subscriptions_per_customer: opts.subscriptions_per_customer,
            })),
            faults: Mutex::new(Faults::new(opts.knobs.clone(), opts.seed)),
            opts,
            stats: Mutex::default(),
            idempotency: Mutex::default(),
            tokens: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            writes: Mutex::default(),
        }
    }

    pub fn state_json(&self) -> Value {
        self.tenant.lock().unwrap().to_json()
    }

    pub fn changes(&self) -> Vec<String> {
        self.tenant.lock().unwrap().changes.clone()
    }

    pub fn writes(&self) -> BTreeMap<String, u64> {
        self.writes.lock().unwrap().clone()
    }

    pub(super) fn applied(&self, method: &axum::http::Method, rest: &[&str]) {
        let key = format!("{method} /v1/{}", rest.join("/"));
        *self.writes.lock().unwrap().entry(key).or_default() += 1;
    }

    pub(super) fn fault(&self, kind: &'static str) {
        *self.stats.lock().unwrap().faults.entry(kind).or_default() += 1;
    }

    pub(super) fn violation(&self, what: String) {
        let mut s = self.stats.lock().unwrap();
        s.violations += 1;
        if s.violation_examples.len() < 20 {
            s.violation_examples.push(what);
        }
    }
}

/// Counts a call in flight for as long as it lives.
pub(super) struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    pub(super) fn enter(s: &'a Shared) -> Self {
        let n = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut st = s.stats.lock().unwrap();
        st.max_in_flight = st.max_in_flight.max(n);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
