//! How a run ended: counts by status, calls, errors grouped by code, the first problems and
//! changes, where the records are.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::error::exit;
use crate::events::{Event, Listener};
use crate::results::{Outcome, Status};

/// How a run ended.
#[derive(Debug)]
pub struct Summary {
    /// Rows by status, indexed as [`Status::ALL`].
    counts: [usize; Status::ALL.len()],
    pub results: PathBuf,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    pub elapsed: Duration,
    /// The first invalid and failed rows, for the summary's list of problems.
    pub problems: Vec<Outcome>,
    /// How many rows are invalid or failed in all.
    pub problems_total: usize,
    /// What the sandbox changed, for `apply --sandbox`.
    pub sandbox_changes: Option<Vec<String>>,
    /// The first rows a plan would change, with what it would change.
    pub planned: Vec<Outcome>,
    /// The command that finishes a stopped run (`... --resume`), when one can.
    pub resume_command: Option<String>,
    /// How the run ended, when its exit code alone does not say (SPEC: Summary JSON `outcome`).
    pub outcome: Option<&'static str>,
    /// What ran, where, and when.
    pub about: About,
    /// Calls, retries, 429s, latencies.
    pub calls: super::stats::CallStats,
    /// Invalid and failed rows by error code.
    errors: HashMap<String, ErrorGroup>,
    /// The first rows that changed (or, in a plan, would change), and how many did in all.
    pub changes: Vec<Outcome>,
    pub changes_total: usize,
}

/// What ran, where and when: for the JSON summary and the report.
#[derive(Debug, Clone)]
pub struct About {
    /// `apply`, `plan` or `validate`.
    pub command: &'static str,
    pub operation: Option<String>,
    /// `sandbox`, or the base URL.
    pub target: Option<String>,
    pub input: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    /// Where `pcbulk undo` would write the file that puts this run's changes back.
    pub undo: Option<PathBuf>,
    pub started: SystemTime,
    pub finished: Option<SystemTime>,
    /// The indices of the input columns the run's operations read, when the run says: the others
    /// are the admin's own, carried (the report names rows by them).
    pub read_columns: Option<Vec<usize>>,
}

/// The rows that failed (or are invalid) with one error code.
#[derive(Debug, Clone)]
pub struct ErrorGroup {
    pub code: String,
    pub count: usize,
    /// The first row's message (it says what to do) and HTTP status.
    pub message: String,
    pub http_status: Option<u16>,
    pub example_row: usize,
    /// The first few rows, for the report.
    pub rows: Vec<Outcome>,
}

/// How many rows of each error code a summary keeps to show.
pub const ROWS_PER_ERROR: usize = 5;
/// How many changed rows a summary keeps to show (the report's before → after table).
pub const CHANGES_SHOWN: usize = 200;
/// How many distinct error codes a summary tells apart; the rest count as `other`.
const MAX_CODES: usize = 1000;

/// How many problem rows a summary keeps to show.
pub const PROBLEMS_SHOWN: usize = 10;

impl Summary {
    pub fn new(results: PathBuf) -> Self {
        Summary {
            counts: [0; Status::ALL.len()],
            results,
            aborted: None,
            elapsed: Duration::ZERO,
            problems: Vec::new(),
            problems_total: 0,
            sandbox_changes: None,
            resume_command: None,
            outcome: None,
            planned: Vec::new(),
            about: About {
                command: "apply",
                operation: None,
                target: None,
                input: None,
                journal: None,
                undo: None,
                started: SystemTime::now(),
                finished: None,
                read_columns: None,
            },
            calls: Default::default(),
            errors: HashMap::new(),
            changes: Vec::new(),
            changes_total: 0,
        }
    }

    /// Counts one row's outcome (keeping the first few problems to show).
    pub fn count(&mut self, o: Outcome) {
        self.counts[o.status as usize] += 1;
        if o.status == Status::Planned && self.planned.len() < PROBLEMS_SHOWN {
            self.planned.push(o.clone());
        }
        if matches!(o.status, Status::Succeeded | Status::Planned) && !o.change.is_empty() {
            self.changes_total += 1;
            if self.changes.len() < CHANGES_SHOWN {
                self.changes.push(o.clone());
            }
        }
        if matches!(o.status, Status::Invalid | Status::Failed) {
            self.group_error(&o);
            self.problems_total += 1;
            if self.problems.len() < PROBLEMS_SHOWN {
                self.problems.push(o);
            } else if self.problems.last().is_some_and(|p| p.row > o.row) {
                // A problem found after the fact (a duplicate) may come before those shown.
                self.problems.pop();
                self.problems.push(o);
                self.problems.sort_by_key(|p| p.row);
            }
        }
    }

    /// A row counted as `was` turns out to be `o` (a duplicate found after the fact).
    pub fn recount(&mut self, was: Status, o: Outcome) {
        self.counts[was as usize] -= 1;
        self.count(o);
        self.problems.sort_by_key(|p| p.row);
    }

    /// Counts a problem row under its error code (a row with none under its HTTP status).
    fn group_error(&mut self, o: &Outcome) {
        let code = match (o.error_code.as_str(), o.http_status) {
            ("", Some(h)) => format!("http_{h}"),
            ("", None) => "no_code".to_owned(),
            (c, _) if self.errors.len() >= MAX_CODES && !self.errors.contains_key(c) => {
                "other".to_owned()
            }
            (c, _) => c.to_owned(),
        };
        let g = self
            .errors
            .entry(code)
            .or_insert_with_key(|code| ErrorGroup {
                code: code.clone(),
                count: 0,
                message: o.error_message.clone(),
                http_status: o.http_status,
                example_row: o.row,
                rows: Vec::new(),
            });
        g.count += 1;
        if g.rows.len() < ROWS_PER_ERROR {
            g.rows.push(o.clone());
        }
    }

    /// Invalid and failed rows by error code, the most frequent first (then by first row).
    pub fn errors(&self) -> Vec<&ErrorGroup> {
        let mut v: Vec<&ErrorGroup> = self.errors.values().collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.example_row.cmp(&b.example_row))
        });
        v
    }

    pub fn count_of(&self, s: Status) -> usize {
        self.counts[s as usize]
    }

    pub fn rows(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn exit_code(&self) -> u8 {
        if self.aborted.is_some() {
            exit::ABORTED
        } else if self.count_of(Status::Invalid) + self.count_of(Status::Failed) > 0 {
            exit::ROWS_FAILED
        } else {
            exit::OK
        }
    }
}

impl Listener for Summary {
    fn on(&mut self, event: &Event) -> std::io::Result<()> {
        match event {
            Event::RowFinished(f) => self.count(f.outcome.clone()),
            Event::RunFinished { aborted } => self.aborted = aborted.clone(),
            _ => {}
        }
        self.calls.on(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(row: usize, code: &str, status: Status) -> Outcome {
        let mut o = Outcome::unsent(row, row as u64 + 1, status, code, &format!("row {row} bad"));
        o.http_status = (status == Status::Failed).then_some(404);
        o
    }

    #[test]
    fn errors_are_grouped_by_code_most_frequent_first_with_their_first_row() {
        let mut s = Summary::new(PathBuf::from("r.csv"));
        s.count(failed(1, "bad_guid", Status::Invalid));
        for row in 2..=9 {
            s.count(failed(row, "600039", Status::Failed));
        }
        s.count(failed(10, "bad_guid", Status::Invalid));
        s.count(failed(11, "", Status::Failed));
        s.count(Outcome::unsent(12, 13, Status::Succeeded, "", ""));
        let e = s.errors();
        let got: Vec<(&str, usize, usize)> = e
            .iter()
            .map(|g| (g.code.as_str(), g.count, g.example_row))
            .collect();
        assert_eq!(
            got,
            [("600039", 8, 2), ("bad_guid", 2, 1), ("http_404", 1, 11)]
        );
        assert_eq!(e[0].message, "row 2 bad");
        assert_eq!(e[0].rows.len(), ROWS_PER_ERROR);
    }

    #[test]
    fn a_file_of_distinct_codes_is_bounded() {
        let mut s = Summary::new(PathBuf::from("r.csv"));
        for row in 0..MAX_CODES + 50 {
            s.count(failed(row, &format!("code{row}"), Status::Invalid));
        }
        let e = s.errors();
        assert_eq!(e.len(), MAX_CODES + 1);
        assert_eq!(e[0].code, "other");
        assert_eq!(e[0].count, 50);
    }
}
