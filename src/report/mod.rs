//! What the user sees while a run goes and when it ends: progress, logs, the summary (text and
//! JSON) and the HTML report. All of it is kept from the run's events (`crate::events`).

pub mod headline;
pub mod html;
pub mod json;
pub mod logs;
pub mod progress;
pub mod rows;
pub mod stats;
pub mod summary;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::results::Status;
use crate::text::count;
use summary::Summary;

/// What a run shows and leaves besides its results (from the output flags).
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub progress: progress::Mode,
    pub summary_json: Option<JsonTo>,
    pub report: Option<PathBuf>,
}

/// Where the JSON summary goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTo {
    /// `-`: stdout holds the JSON only; the text summary goes to stderr.
    Stdout,
    File(PathBuf),
}

/// What to do about a summary or report path pcbulk will not write.
const FIX: &str = "give --summary-json or --report another path";

impl Output {
    /// The files this run would write, refused before anything is read or sent when one is the
    /// input, the results, or a path pcbulk never writes (a link, a device, a file with other
    /// names).
    pub fn check_paths(&self, input: &Path, results: &Path) -> Result<(), Error> {
        let json = match &self.summary_json {
            Some(JsonTo::File(p)) => Some(("--summary-json", p)),
            _ => None,
        };
        let report = self.report.as_ref().map(|p| ("--report", p));
        if let (Some((_, a)), Some((_, b))) = (json, report) {
            if crate::fsafe::same_file(a, b) || a == b {
                crate::error::usage!(
                    "--summary-json and --report both name {}; give each its own path",
                    a.display()
                );
            }
        }
        let journal = crate::journal::path_for(results);
        for (flag, path) in json.into_iter().chain(report) {
            for (other, what) in [
                (input, "the input file"),
                (results, "the results file"),
                (journal.as_path(), "the run's journal"),
            ] {
                if crate::fsafe::same_file(path, other) || path == other {
                    crate::error::usage!(
                        "{flag} {} is {what}; give it another path",
                        path.display()
                    );
                }
            }
            crate::fsafe::look(path, FIX)
                .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))?;
            // Written at the end: a folder that is missing or read-only is found now, before
            // anything is sent, not after (a cron job would read yesterday's summary).
            let (probe, _) = crate::fsafe::fresh(path, "probe", crate::fsafe::Access::Owner)
                .map_err(|e| {
                    Error::usage(format!(
                        "{flag} {}: cannot write there ({e}); {FIX}",
                        path.display()
                    ))
                })?;
            let _ = std::fs::remove_file(probe);
        }
        Ok(())
    }

    /// Ends a run: the text summary (on stdout, or on stderr when the JSON goes there), the JSON
    /// summary, the report. A file that cannot be written is said on stderr; the run's exit code
    /// stays what the rows made it.
    pub fn finish(&self, s: &Summary, exit_code: u8) {
        let text = summary_text(s);
        // A closed stream loses the text only (see `crate::term`): the JSON and the report are
        // still written.
        if self.summary_json == Some(JsonTo::Stdout) {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        self.write_json(s, exit_code);
        if let Some(p) = &self.report {
            match write_file(p, html::render(s, exit_code).as_bytes()) {
                Ok(()) => eprintln!("report: {}", p.display()),
                Err(e) => eprintln!("pcbulk: cannot write the report {}: {e}", p.display()),
            }
        }
    }

    /// Ends a run that could not run or stopped with an error: the JSON summary still says so
    /// (with the exit code and the reason in `aborted`), so a script never finds it missing.
    pub fn finish_failed(&self, mut s: Summary, e: &Error) {
        if self.summary_json.is_none() {
            return;
        }
        s.aborted = Some(e.to_string());
        s.outcome = Some(match e {
            Error::Interrupted(_) => "interrupted",
            Error::Aborted(why) => json::stopped_because(why),
            Error::Usage(_) | Error::Input(_) | Error::Io { .. } => "refused",
        });
        s.about.finished = Some(std::time::SystemTime::now());
        self.write_json(&s, e.exit_code());
    }

    fn write_json(&self, s: &Summary, exit_code: u8) {
        let Some(to) = &self.summary_json else {
            return;
        };
        let mut doc = json::summary(s, exit_code).to_string();
        doc.push('\n');
        let written = match to {
            JsonTo::Stdout => crate::term::Stream::Out.write_raw(doc.as_bytes()),
            JsonTo::File(p) => write_file(p, doc.as_bytes()),
        };
        if let Err(e) = written {
            eprintln!("pcbulk: cannot write the summary JSON: {e}");
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fsafe::replace(path, bytes, crate::fsafe::Access::Default, FIX)
}

/// How many error codes the text summary lists.
const ERRORS_SHOWN: usize = 5;

/// Calls, retries, 429s and the effective rate, for the text summary ("" when nothing was sent).
fn calls_line(s: &Summary) -> String {
    let c = &s.calls;
    if c.calls == 0 {
        return String::new();
    }
    let rate = c
        .rate()
        .map(|r| format!(", {r:.1} calls/s"))
        .unwrap_or_default();
    format!(
        "calls: {} ({}, {} met{rate})\n",
        c.calls,
        count(c.retries as usize, "retry").replace("retrys", "retries"),
        count(c.throttled as usize, "429"),
    )
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
    out.push_str(&calls_line(s));
    errors_text(s, &mut out);
    planned_text(s, &mut out);
    problems_text(s, &mut out);
    ending_text(s, &mut out);
    out
}

/// Errors by code, most frequent first, with an example row of each.
fn errors_text(s: &Summary, out: &mut String) {
    let errors = s.errors();
    if errors.is_empty() {
        return;
    }
    out.push_str("errors by code, most frequent first:\n");
    for g in errors.iter().take(ERRORS_SHOWN) {
        let http = g
            .http_status
            .map(|h| format!(", HTTP {h}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {}{http}, e.g. row {}: {}\n",
            g.count, g.code, g.example_row, g.message
        ));
    }
    if errors.len() > ERRORS_SHOWN {
        out.push_str(&format!(
            "  ... and {} more codes in the results file\n",
            errors.len() - ERRORS_SHOWN
        ));
    }
}

/// A plan's first changes.
fn planned_text(s: &Summary, out: &mut String) {
    if s.planned.is_empty() {
        return;
    }
    out.push_str("applying it would change:\n");
    for o in &s.planned {
        out.push_str(&format!(
            "  row {} (line {}): {}\n",
            o.row,
            o.line,
            crate::term::escape(&o.change)
        ));
    }
    let more = s.count_of(Status::Planned).saturating_sub(s.planned.len());
    if more > 0 {
        out.push_str(&format!("  ... and {more} more in the plan file\n"));
    }
}

/// The first rows not applied, each with its message.
fn problems_text(s: &Summary, out: &mut String) {
    if !s.problems.is_empty() {
        out.push_str("first rows in trouble:\n");
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
}

/// Why the run stopped and how to finish it, where its records are, and what the sandbox tenant
/// now holds.
fn ending_text(s: &Summary, out: &mut String) {
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
    if let Some(j) = &s.about.journal {
        out.push_str(&format!("journal: {}\n", j.display()));
    }
    if let Some(u) = &s.about.undo {
        if s.count_of(Status::Succeeded) > 0 {
            out.push_str(&format!(
                "undo: pcbulk undo {} writes {}, a file that puts these changes back\n",
                s.results.display(),
                u.display()
            ));
        }
    }
    match &s.sandbox_changes {
        Some(changes) if changes.is_empty() => out.push_str("the sandbox tenant did not change\n"),
        Some(changes) => {
            out.push_str(&format!(
                "the sandbox tenant changed ({}):\n",
                changes.len()
            ));
            for c in changes {
                out.push_str(&format!("  {c}\n"));
            }
        }
        None => {}
    }
}
