//! Rows done, rate and ETA on a terminal (nothing animated otherwise).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::events::{Event, Listener};
use crate::results::{Outcome, Status};

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

impl Listener for Progress {
    fn on(&mut self, event: &Event) -> std::io::Result<()> {
        if let Event::RowFinished(f) = event {
            self.row_done(&f.outcome);
        }
        Ok(())
    }
}
