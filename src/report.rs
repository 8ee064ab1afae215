//! What the user sees while a run goes and when it ends: a progress bar on a terminal (nothing
//! animated otherwise) and a summary.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::results::{Outcome, Status};
use crate::run::Summary;

/// Rows done, rate and ETA on stderr when it is a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `rows` rows, or a counter when the number is not known (a streamed file).
    pub fn new(rows: Option<u64>, enabled: bool) -> Self {
        let bar = if enabled && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(rows, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} rows · {rate} · ETA {eta} {msg}",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} rows/s", s.per_sec());
                    },
                ),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    pub fn row_done(&self, o: &Outcome) {
        self.bar.inc(1);
        if o.status == Status::Failed {
            self.bar
                .set_message(format!("· last failure: row {}", o.row));
        }
    }

    /// Many rows done at once (a streamed batch): one update, not one per row.
    pub fn rows_done(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
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
        "pcbulk: {} rows in {:.1} s: {}\n",
        s.rows(),
        s.elapsed.as_secs_f64(),
        if counts.is_empty() {
            "nothing to do".to_string()
        } else {
            counts.join(", ")
        }
    ));
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
    }
    out.push_str(&format!("results: {}\n", s.results.display()));
    if let Some(changes) = &s.sandbox_changes {
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
