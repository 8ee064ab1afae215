//! Log lines from the run's events (`-v`: one per row, `-vv`: also one per call, retry, 429 and
//! token renewal), through `tracing`, as text or one JSON object per line. Only ids, statuses,
//! counts and times are logged: events carry no token, and a row's message was masked where it
//! was made.

use tracing::{debug, info};

use crate::events::Event;
use crate::results::Outcome;

/// Where run events are logged from (the `target` of every line, so `PCBULK_LOG` can pick them).
pub const TARGET: &str = "pcbulk::run";

/// Logs one event, if its level is on (a disabled level costs a check of a cached flag).
pub fn log(event: &Event) {
    match event {
        Event::RowFinished(f) => row_finished(&f.outcome),
        Event::CallSent {
            row,
            method,
            attempt,
            correlation_id,
            request_id,
        } => debug!(
            target: TARGET,
            row,
            method,
            attempt,
            correlation_id = %correlation_id,
            request_id = %request_id,
            "call sent"
        ),
        Event::CallAnswered {
            row,
            status,
            elapsed,
        } => debug!(
            target: TARGET,
            row,
            status,
            elapsed_ms = elapsed.as_millis() as u64,
            "answer"
        ),
        Event::Throttled { row, retry_after } => debug!(
            target: TARGET,
            row,
            status = 429,
            wait_ms = retry_after.map(|w| w.as_millis() as u64),
            "throttled"
        ),
        Event::RetryScheduled { row, attempt, wait } => debug!(
            target: TARGET,
            row,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retry scheduled"
        ),
        Event::TokenRenewed => debug!(target: TARGET, "access token renewed"),
        Event::RunStarted { rows, to_send } => info!(target: TARGET, rows, to_send, "run started"),
        Event::RunFinished { aborted: Some(why) } => {
            // At info: the summary says why, once; a log (-v) still has it.
            info!(target: TARGET, aborted = why.as_str(), "run stopped early")
        }
        Event::RunFinished { aborted: None } => info!(target: TARGET, "run finished"),
        Event::RowPlanned { .. } => {}
    }
}

/// A row's outcome with every id a support case asks for, at info: the one line per row `-v`
/// promises, whatever the calls before it logged.
fn row_finished(o: &Outcome) {
    info!(
        target: TARGET,
        row = o.row,
        line = o.line,
        status = o.status.as_str(),
        http_status = o.http_status,
        error_code = o.error_code.as_str(),
        attempt = o.attempts,
        correlation_id = o.correlation_id.as_str(),
        request_id = o.request_id.as_str(),
        duration_ms = o.duration_ms,
        "row finished"
    );
}
