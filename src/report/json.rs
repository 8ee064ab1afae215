//! The JSON summary (SPEC: Summary JSON), for cron jobs and scripts: one object, its names fixed.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::summary::Summary;
use crate::results::Status;

/// A time as RFC 3339 in UTC, to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn path(p: Option<&Path>) -> Value {
    p.map_or(Value::Null, |p| Value::String(p.display().to_string()))
}

/// The summary as one JSON object. The SPEC's names first (`operation` ... `errors`); the rest is
/// added to, never renamed.
pub fn summary(s: &Summary, exit_code: u8) -> Value {
    let finished = s.about.finished.unwrap_or_else(SystemTime::now);
    let rows: Map<String, Value> = Status::ALL
        .iter()
        .map(|st| (st.as_str().to_owned(), json!(s.count_of(*st))))
        .collect();
    let errors: Vec<Value> = s
        .errors()
        .into_iter()
        .map(|g| {
            json!({
                "code": g.code,
                "count": g.count,
                "message": g.message,
                "example_row": g.example_row,
                "http_status": g.http_status,
            })
        })
        .collect();
    let latency = s.calls.latency().map_or(Value::Null, |l| {
        let ms = |v: f64| (v * 10.0).round() / 10.0;
        json!({ "p50": ms(l.p50), "p90": ms(l.p90), "p99": ms(l.p99), "max": ms(l.max) })
    });
    json!({
        "operation": s.about.operation,
        "target": s.about.target,
        "input": path(s.about.input.as_deref()),
        "results": s.results.display().to_string(),
        "started": rfc3339(s.about.started),
        "finished": rfc3339(finished),
        "elapsed_s": (s.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "exit_code": exit_code,
        "aborted": s.aborted,
        "rows": rows,
        "calls": s.calls.calls,
        "retries": s.calls.retries,
        "throttled": s.calls.throttled,
        "errors": errors,
        "command": s.about.command,
        "journal": path(s.about.journal.as_deref()),
        "undo": path(s.about.undo.as_deref()),
        "calls_per_s": s.calls.rate().map(|r| (r * 10.0).round() / 10.0),
        "latency_ms": latency,
        "token_renewals": s.calls.token_renewals,
        "outcome": outcome(s, exit_code),
        "resume_command": s.resume_command,
    })
}

/// How a run ended, in one word a cron wrapper can test (SPEC: Summary JSON `outcome`): from the
/// exit code, and for a run stopped after it began sending, from why it stopped.
pub fn outcome(s: &Summary, exit_code: u8) -> &'static str {
    if let Some(o) = s.outcome {
        return o;
    }
    match exit_code {
        0 => "completed",
        1 => "completed_with_errors",
        2 => "refused",
        _ => stopped_because(s.aborted.as_deref().unwrap_or_default()),
    }
}

/// How an export's reason starts when the service refused its listing: the service did not give
/// what the export needs (`unreachable`), whatever it answered.
pub const LISTING_REFUSED: &str = "the listing could not be read to its end";

/// The outcome of a run that stopped after sending began, from the reason it gave.
pub fn stopped_because(why: &str) -> &'static str {
    if why.starts_with("credentials refused") {
        "credentials_refused"
    } else if why.starts_with("cannot reach") || why.starts_with(LISTING_REFUSED) {
        "unreachable"
    } else if why.contains("--max-errors") || why.starts_with(crate::dispatch::HOPELESS_REASON) {
        "max_errors"
    } else if why.starts_with("cannot write") || why.contains("could not be written") {
        "write_error"
    } else {
        "interrupted"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Outcome;
    use std::path::PathBuf;

    #[test]
    fn every_name_the_spec_fixes_is_there_with_its_type() {
        let mut s = Summary::new(PathBuf::from("in.results.csv"));
        let mut o = Outcome::unsent(3, 4, Status::Failed, "600039", "Subscription not found.");
        o.http_status = Some(404);
        s.count(o);
        s.count(Outcome::unsent(1, 2, Status::Succeeded, "", ""));
        s.about.started = SystemTime::UNIX_EPOCH;
        s.about.finished = Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(90));
        let v = summary(&s, 1);
        for name in ["operation", "target", "input", "aborted"] {
            assert!(v.get(name).is_some(), "{name} missing: {v}");
        }
        assert_eq!(v["started"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["finished"], "1970-01-01T00:01:30.000Z");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["rows"]["failed"], 1);
        assert_eq!(v["rows"]["succeeded"], 1);
        assert_eq!(v["rows"]["invalid"], 0);
        assert_eq!(v["results"], "in.results.csv");
        assert!(v["elapsed_s"].is_number() && v["calls"].is_number());
        assert!(v["retries"].is_number() && v["throttled"].is_number());
        assert_eq!(
            v["errors"][0],
            json!({"code": "600039", "count": 1, "message": "Subscription not found.",
                   "example_row": 3, "http_status": 404})
        );
    }

    #[test]
    fn a_run_stopped_because_its_first_rows_all_failed_ends_max_errors() {
        let why = format!(
            "{}: 50 of 50 (all with error code 600039)",
            crate::dispatch::HOPELESS_REASON
        );
        assert_eq!(stopped_because(&why), "max_errors");
        assert_eq!(
            stopped_because("12 rows failed, reaching --max-errors; the rest were not attempted"),
            "max_errors"
        );
        assert_eq!(stopped_because("interrupted (Ctrl-C)"), "interrupted");
    }
}
