//! How a run ended: counts by status, the first problems, where the records are.

use std::path::PathBuf;
use std::time::Duration;

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
}

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
            planned: Vec::new(),
        }
    }

    /// Counts one row's outcome (keeping the first few problems to show).
    pub fn count(&mut self, o: Outcome) {
        self.counts[o.status as usize] += 1;
        if o.status == Status::Planned && self.planned.len() < PROBLEMS_SHOWN {
            self.planned.push(o.clone());
        }
        if matches!(o.status, Status::Invalid | Status::Failed) {
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
        Ok(())
    }
}
