//! The `/_sandbox/*` endpoints, for tests and for people watching a run: `GET /_sandbox/state`, the
//! tenant as it now stands, and `GET /_sandbox/stats`, what the server saw (calls by route and
//! outcome, replays, header violations, throttling, faults, tokens issued), and
//! `GET /_sandbox/writes`, the writes applied by target.

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Shared;

/// `/_sandbox/state`: the tenant as JSON.
pub(super) fn state(s: &Shared) -> Response {
    axum::Json(s.state_json()).into_response()
}

/// `/_sandbox/stats`: what the server saw so far.
pub(super) fn stats(s: &Shared) -> Response {
    axum::Json(s.stats_json()).into_response()
}

impl Shared {
    fn stats_json(&self) -> Value {
        // Calls being served now (a late write among them until it is applied).
        let in_flight = self.in_flight.load(std::sync::atomic::Ordering::SeqCst);
        let s = self.stats.lock().unwrap();
        json!({
            "calls": s.calls, "total": s.total, "replays": s.replays,
            "requestIdReuse": s.request_id_reuse, "unauthorized": s.unauthorized,
            "violations": s.violations, "violationExamples": s.violation_examples,
            "inFlight": in_flight, "maxInFlight": s.max_in_flight, "tokensIssued": s.tokens_issued,
            "throttled": s.throttled, "faults": s.faults,
        })
    }
}

/// `/_sandbox/writes`: writes applied so far by `"<METHOD> /v1/<path>"` (replays and refused
/// writes not counted), the sandbox's own count for exactly-once checks.
pub(super) fn writes(s: &Shared) -> Response {
    axum::Json(s.writes()).into_response()
}
