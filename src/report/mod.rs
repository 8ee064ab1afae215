//! What the user sees while a run goes and when it ends: progress, and the summary.

pub mod progress;
pub mod summary;

use crate::results::Status;
use summary::Summary;

/// "1 row", "2 rows": a count with its noun.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The end-of-run summary: counts by status, a few problem rows, where the results are.
pub fn summary_text(s: &Summary) -> String {
    let mut out = String::new();
    let counts: Vec<String> = Status::ALL
        .iter()
        .filter(|st| s.count_of(**st) > 0)
        .map(|st| format!("{} {st}", s.count_of(*st)))
        .collect();
    out.push_str(&format!(
        "pcbulk: {} in {:.1} s: {}\n",
        count(s.rows(), "row"),
        s.elapsed.as_secs_f64(),
        if counts.is_empty() {
            "nothing to do".to_string()
        } else {
            counts.join(", ")
        }
    ));
    if !s.planned.is_empty() {
        out.push_str("applying it would change:\n");
        for o in &s.planned {
            out.push_str(&format!(
                "  row {} (line {}): {}\n",
                o.row, o.line, o.change
            ));
        }
        let more = s.count_of(Status::Planned).saturating_sub(s.planned.len());
        if more > 0 {
            out.push_str(&format!("  ... and {more} more in the plan file\n"));
        }
    }
    for o in &s.problems {
        let http = o
            .http_status
            .map(|h| format!(" (HTTP {h})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  row {} (line {}) {}{http}: {}\n",
            o.row, o.line, o.status, o.error_message
        ));
    }
    if s.problems_total > s.problems.len() {
        out.push_str(&format!(
            "  ... and {} more in the results file\n",
            s.problems_total - s.problems.len()
        ));
    }
    if let Some(why) = &s.aborted {
        out.push_str(&format!("stopped early: {why}\n"));
        if let Some(cmd) = &s.resume_command {
            out.push_str(&format!(
                "to finish the run without applying anything twice, once the cause is fixed:\n  \
                 {cmd}\n"
            ));
        }
    }
    out.push_str(&format!("results: {}\n", s.results.display()));
    if s.sandbox_changes.as_ref().is_some_and(|c| c.is_empty()) {
        out.push_str("the sandbox tenant did not change\n");
    } else if let Some(changes) = &s.sandbox_changes {
        out.push_str(&format!(
            "the sandbox tenant changed ({}):\n",
            changes.len()
        ));
        for c in changes {
            out.push_str(&format!("  {c}\n"));
        }
    }
    out
}
