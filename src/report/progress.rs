//! Progress while a run goes, on stderr: on a terminal a bar with rows done, rate, ETA and live
//! succeeded / failed / retrying / throttled counts, which keeps ticking while a Retry-After is
//! waited out; off a terminal one plain line every 10 s, with an ETA; nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::summary::Summary;
use crate::events::{Event, Listener};
use crate::results::{Outcome, Status};

/// Whether progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// A bar on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// `--quiet`: nothing.
    Quiet,
    /// Plain lines even on a terminal: with `-v`, log lines own the terminal, and a bar redrawn
    /// between them would be torn.
    Lines,
}

/// How often a plain line is printed off a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);
/// How often the bar's counts are refreshed (the bar itself ticks on its own).
const BAR_EVERY: Duration = Duration::from_millis(200);
/// A hidden knob for tests: milliseconds between plain lines, so a test need not wait 10 s.
const LINE_EVERY_ENV: &str = "PCBULK_PROGRESS_EVERY_MS";

/// Whether to colour what goes to a stream: on a terminal, unless `NO_COLOR` is set (no-color.org).
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

enum Display {
    Bar(ProgressBar),
    Lines,
    Off,
}

/// Rows done, and the run's counts, on stderr.
pub struct Progress {
    display: Display,
    total: Option<u64>,
    // Atomics: the validate pass updates progress through a shared reference, from its workers.
    done: AtomicU64,
    start: Instant,
    /// When the next line or refresh is due, in milliseconds since `start`.
    next_ms: AtomicU64,
    every: Duration,
    /// Rows that finish without a call (invalid ones, those a resumed run's earlier run
    /// finished): counted as done, but not in the pace an ETA is reckoned at.
    unpaced: u64,
}

impl Progress {
    /// A bar (or lines) for `rows` rows, or a counter when the number is not known (a streamed
    /// file); nothing when not `enabled`.
    pub fn new(rows: Option<u64>, enabled: bool) -> Self {
        Progress::with_mode(rows, if enabled { Mode::Auto } else { Mode::Quiet })
    }

    pub fn with_mode(rows: Option<u64>, mode: Mode) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let (display, every) = match mode {
            Mode::Quiet => (Display::Off, LINE_EVERY),
            Mode::Auto if terminal => (Display::Bar(bar(rows)), BAR_EVERY),
            Mode::Auto | Mode::Lines => {
                let every = std::env::var(LINE_EVERY_ENV)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(LINE_EVERY, |ms| {
                        Duration::from_millis(ms.clamp(10, 3_600_000))
                    });
                (Display::Lines, every)
            }
        };
        let start = Instant::now();
        Progress {
            display,
            total: rows,
            done: AtomicU64::new(0),
            start,
            next_ms: AtomicU64::new(every.as_millis() as u64),
            every,
            unpaced: 0,
        }
    }

    /// `n` of the rows finish at once without a call: the ETA is reckoned at the pace of the
    /// others (a resume's earlier rows would make it far too short).
    pub fn unpaced(mut self, n: u64) -> Self {
        self.unpaced = n;
        self
    }

    pub fn row_done(&self, o: &Outcome) {
        self.done.fetch_add(1, Relaxed);
        if let Display::Bar(b) = &self.display {
            b.inc(1);
            if o.status == Status::Failed {
                b.set_message(format!("last failure: row {}", o.row));
            }
        }
    }

    /// Many rows done at once (a streamed batch): one update, not one per row.
    pub fn rows_done(&self, n: u64) {
        self.done.fetch_add(n, Relaxed);
        match &self.display {
            Display::Bar(b) => b.inc(n),
            Display::Lines if self.due() => {
                eprintln!(
                    "pcbulk: {} checked · {:.0} s",
                    crate::text::count(self.done.load(Relaxed) as usize, "row"),
                    self.start.elapsed().as_secs_f64()
                );
            }
            _ => {}
        }
    }

    /// Shows the run's counts when it is time to: the bar's message, or a plain line.
    pub fn show(&self, s: &Summary) {
        if matches!(self.display, Display::Off) {
            return;
        }
        if !self.due() {
            return;
        }
        let counts = counts(s);
        match &self.display {
            Display::Bar(b) => b.set_message(counts),
            Display::Lines => {
                let of = match self.total {
                    Some(t) if t > 0 => format!(
                        "{}/{t} rows ({:.0}%)",
                        self.done.load(Relaxed),
                        self.done.load(Relaxed) as f64 * 100.0 / t as f64
                    ),
                    _ => crate::text::count(self.done.load(Relaxed) as usize, "row"),
                };
                let rate = s
                    .calls
                    .rate()
                    .map(|r| format!(" · {r:.1} calls/s"))
                    .unwrap_or_default();
                let elapsed = self.start.elapsed();
                let eta = self
                    .total
                    .and_then(|t| eta(self.done.load(Relaxed), t, self.unpaced, elapsed))
                    .map(|left| format!(" · ETA {}", duration(left)))
                    .unwrap_or_default();
                eprintln!(
                    "pcbulk: {of} · {counts}{rate} · {:.0} s{eta}",
                    elapsed.as_secs_f64()
                );
            }
            Display::Off => {}
        }
    }

    /// Whether a line (or a refresh) is due now; if so, the next one is set an interval later.
    fn due(&self) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, now + self.every.as_millis() as u64, Relaxed, Relaxed)
                .is_ok()
    }

    pub fn finish(&self) {
        if let Display::Bar(b) = &self.display {
            b.finish_and_clear();
        }
    }
}

/// How long the rows left take at the pace of the rows done so far, the `unpaced` ones (done
/// without a call) left out; `None` before any row has set a pace.
fn eta(done: u64, total: u64, unpaced: u64, elapsed: Duration) -> Option<Duration> {
    let paced = done.saturating_sub(unpaced);
    if paced == 0 {
        return None;
    }
    let left = total.saturating_sub(done);
    Some(elapsed.mul_f64(left as f64 / paced as f64))
}

/// A duration as a line off a terminal shows it: "40 s", "12 min", "3 h 05 min".
fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", (s + 30) / 60),
        s => {
            let mins = (s + 30) / 60;
            format!("{} h {:02} min", mins / 60, mins % 60)
        }
    }
}

/// "12 succeeded · 1 failed · 2 retrying · 5 throttled"; a plan, which only reads, "12 planned ·
/// 3 unchanged · 1 failed ...": nothing succeeded, nothing was changed.
fn counts(s: &Summary) -> String {
    let unchanged = s.count_of(Status::Unchanged);
    let failed = s.count_of(Status::Failed);
    let mut out = if s.about.command == "plan" {
        format!(
            "{} planned · {unchanged} unchanged · {failed} failed",
            s.count_of(Status::Planned)
        )
    } else {
        let mut out = format!(
            "{} succeeded · {failed} failed",
            s.count_of(Status::Succeeded)
        );
        if unchanged > 0 {
            out.push_str(&format!(" · {unchanged} unchanged"));
        }
        out
    };
    out.push_str(&format!(
        " · {} retrying · {} throttled",
        s.calls.retrying(),
        s.calls.throttled
    ));
    out
}

fn bar(rows: Option<u64>) -> ProgressBar {
    let template = if colour(true) {
        "{spinner:.cyan} {bar:30.cyan/blue} {pos}/{len} rows · {rate} · ETA {eta} · {msg}"
    } else {
        "{spinner} {bar:30} {pos}/{len} rows · {rate} · ETA {eta} · {msg}"
    };
    let b = ProgressBar::with_draw_target(rows, ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} rows/s", s.per_sec());
            }),
    );
    // Redrawn on its own thread, so the bar (spinner, elapsed, ETA) moves while a Retry-After is
    // waited out and no event comes.
    b.enable_steady_tick(BAR_EVERY);
    b
}

impl Listener for Progress {
    fn on(&mut self, event: &Event) -> std::io::Result<()> {
        if let Event::RowFinished(f) = event {
            self.row_done(&f.outcome);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn summary(command: &'static str, statuses: &[Status]) -> Summary {
        let mut s = Summary::new(PathBuf::from("r.csv"));
        s.about.command = command;
        for (i, st) in statuses.iter().enumerate() {
            s.count(Outcome::unsent(i + 1, i as u64 + 2, *st, "", ""));
        }
        s
    }

    #[test]
    fn a_plan_s_progress_counts_planned_rows_not_succeeded_ones() {
        let plan = [Status::Planned, Status::Planned, Status::Unchanged];
        let c = counts(&summary("plan", &plan));
        assert!(c.starts_with("2 planned · 1 unchanged · 0 failed"), "{c}");
        assert!(!c.contains("succeeded"), "{c}");
        let c = counts(&summary("apply", &[Status::Succeeded, Status::Failed]));
        assert!(c.starts_with("1 succeeded · 1 failed"), "{c}");
    }

    #[test]
    fn the_eta_is_the_rows_left_at_the_pace_of_the_rows_done() {
        let ten_s = Duration::from_secs(10);
        assert_eq!(eta(0, 100, 0, ten_s), None, "no pace yet");
        assert_eq!(eta(25, 100, 0, ten_s), Some(Duration::from_secs(30)));
        assert_eq!(eta(100, 100, 0, ten_s), Some(Duration::ZERO));
        assert_eq!(
            eta(120, 100, 0, ten_s),
            Some(Duration::ZERO),
            "never negative"
        );
        // Found by an outside tester: a resume reckoned its pace with the earlier run's rows,
        // which it counts as done at once, and promised 15 s for 45 s of rows.
        assert_eq!(eta(60, 160, 50, ten_s), Some(Duration::from_secs(100)));
        assert_eq!(
            eta(50, 160, 50, ten_s),
            None,
            "only the earlier run's rows: no pace yet"
        );
    }

    #[test]
    fn an_eta_reads_in_seconds_minutes_or_hours() {
        assert_eq!(duration(Duration::from_secs(40)), "40 s");
        assert_eq!(duration(Duration::from_secs(12 * 60 + 10)), "12 min");
        assert_eq!(
            duration(Duration::from_secs(3 * 3600 + 5 * 60)),
            "3 h 05 min"
        );
        assert_eq!(
            duration(Duration::from_secs(55 * 3600 + 59 * 60 + 50)),
            "56 h 00 min"
        );
    }
}
