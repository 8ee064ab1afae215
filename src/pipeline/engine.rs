//! `apply`'s sending pass, streamed: a reader thread reads and plans the rows again (the checking
//! pass has found the duplicates), the dispatcher sends up to [`WINDOW`] rows at a time, and rows
//! finish in input order, so the results file is written as the run goes and memory does not grow
//! with the file. Everything that happens is an [`Event`]; the run record listens.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::check::Scan;
use super::source::{Charset, Fingerprint, Source, StreamRow};
use crate::config::InputConfig;
use crate::dispatch::{Dispatcher, Job};
use crate::duplicates;
use crate::events::{Emitter, Event, Finished};
use crate::journal::Replay;
use crate::planner::{Planner, Verdict};
use crate::results::{Outcome, Status};

/// Rows under way at once (sent, waiting for a throttled customer, or finished and waiting for an
/// earlier row to finish): the bound on memory, and on how far rows may finish out of order.
pub const WINDOW: usize = 2048;

/// How long calls in flight may finish after an interrupt.
pub const GRACE: Duration = Duration::from_secs(5);

/// A row as the reader hands it over.
enum Item {
    /// The job boxed: it is the largest by far, and items wait in a channel of [`WINDOW`].
    Send(StreamRow, Box<Job>),
    /// Finished without sending: invalid, a duplicate, or finished by an earlier run (`known`).
    Done(StreamRow, Outcome, bool),
    /// The file could not be read again.
    Broken(String),
}

/// A plan's rows, for `--from-plan`: each row's status there, and what it read before.
#[derive(Debug, Default)]
pub struct PlanRows {
    pub status: std::collections::BTreeMap<usize, Status>,
    pub before: std::collections::BTreeMap<usize, crate::dispatch::Expected>,
    /// The rows the plan's CSV still marks `planned` after review.
    pub reviewed: std::collections::BTreeSet<usize>,
}

/// What the reader needs to turn rows into items.
pub struct Reading {
    pub input: InputConfig,
    pub planner: Planner,
    pub dups: duplicates::Firsts,
    pub replay: Option<(Replay, bool)>,
    /// `--from-plan`: each row's status in the plan, and the before-values the plan read.
    pub plan: Option<PlanRows>,
    /// `--force`: rows are sent whatever their `expected_<column>` cells say.
    pub force: bool,
    /// What the checking pass read: the sending pass must read the same.
    rows: usize,
    sha256: String,
    charset: Charset,
    file: std::fs::File,
    fingerprint: Fingerprint,
}

/// How many rows the reader reads between two looks at whether the file has changed.
const LOOK_EVERY: usize = 256;

impl Reading {
    pub fn from_scan(input: InputConfig, scan: Scan, replay: Option<(Replay, bool)>) -> Self {
        Reading {
            input,
            planner: scan.planner,
            dups: scan.dups,
            replay,
            plan: None,
            force: false,
            rows: scan.rows,
            sha256: scan.sha256,
            charset: scan.charset,
            file: scan.file,
            fingerprint: scan.fingerprint,
        }
    }

    /// A row read again, as the sending pass hands it on: planned, checked against the other
    /// rows, then against `--from-plan`'s plan and `--resume`'s journal.
    fn item(&self, raw: StreamRow) -> Item {
        let cells: Vec<&str> = raw.cells().collect();
        let (op, verdict) = match self.planner.plan_row(&cells) {
            Ok(v) => v,
            Err(e) => return Item::Broken(e.0),
        };
        let change = match verdict {
            Verdict::Invalid { code, message } => {
                let o = Outcome::unsent(raw.row, raw.line, Status::Invalid, &code, &message);
                return Item::Done(raw, o, false);
            }
            Verdict::Ready(change) => change,
        };
        let target = change.target();
        if let Some(o) = duplicates::outcome(&self.dups, raw.row, raw.line, target.as_deref()) {
            return Item::Done(raw, o, false);
        }
        let mut job = Job::new(raw.row, raw.line, op.map(|o| o.name).unwrap_or(""), change);
        if !self.force {
            job.preconditions = self.planner.preconditions(&cells);
        }
        if let Err(message) = self.as_planned(raw.row, &mut job) {
            let o = Outcome::unsent(raw.row, raw.line, Status::Skipped, "not_planned", &message);
            return Item::Done(raw, o, false);
        }
        if let Some(done) = self.as_journaled(raw.row, raw.line, &mut job) {
            return Item::Done(raw, done, true);
        }
        Item::Send(raw, Box::new(job))
    }

    /// `--from-plan`: a row is sent only if the reviewed plan still marks it planned, and then
    /// expects what the plan read; otherwise why it is skipped, for its results line.
    fn as_planned(&self, row: usize, job: &mut Job) -> Result<(), String> {
        let Some(plan) = &self.plan else {
            return Ok(());
        };
        match plan.status.get(&row) {
            Some(Status::Planned) if plan.reviewed.contains(&row) => {
                job.expected = plan.before.get(&row).cloned();
                Ok(())
            }
            other => {
                let why = match other {
                    Some(Status::Planned) => {
                        "file no longer marks it planned (taken out in review)".to_owned()
                    }
                    Some(s) => format!("says {s}"),
                    None => "does not list it".to_owned(),
                };
                Err(format!("not applied: the plan {why}"))
            }
        }
    }

    /// `--resume`: the row's outcome if an earlier run finished it, so it is never applied
    /// twice; otherwise the job picks up its unanswered write (to be looked for before it goes
    /// again) and the before-values it journaled.
    fn as_journaled(&self, row: usize, line: u64, job: &mut Job) -> Option<Outcome> {
        let (replay, retry_failed) = self.replay.as_ref()?;
        let before = replay.before.get(&row);
        if let Some(mut done) = replay.finished(row, line, *retry_failed) {
            // A write answered before the crash, its row's line lost: what it changed, from
            // the before-values the row journaled.
            if done.status == Status::Succeeded && done.change.is_empty() {
                if let Some(b) = before {
                    done.change = job.change.describe(&b.values);
                }
            }
            return Some(done);
        }
        if let Some(u) = replay.unanswered.get(&row) {
            job.pending = Some((u.correlation_id, u.pending.clone()));
        }
        if let Some(before) = before {
            job.extra = before.extra.clone();
            job.before = Some(before.values.clone());
        }
        None
    }

    /// Reads the file on its own thread, handing items over as the window makes room.
    fn spawn(self) -> tokio::sync::mpsc::Receiver<Item> {
        let (tx, rx) = tokio::sync::mpsc::channel(WINDOW);
        std::thread::spawn(move || {
            let broken = |e: String| Item::Broken(format!("cannot read the input again: {e}"));
            let changed = || {
                Item::Broken(format!(
                    "{} changed while it was being applied; the rows read before the change were \
                     sent, the rest were not: check the results, then run the file again",
                    self.input.input.display()
                ))
            };
            // The file that was checked, through the same open file, from its start.
            let reopened = self.file.try_clone().and_then(|mut f| {
                use std::io::Seek;
                f.seek(std::io::SeekFrom::Start(0))?;
                Ok(f)
            });
            let mut source = match reopened.map_err(|e| e.to_string()).and_then(|f| {
                Source::from_file(&self.input, f, true, Some(self.charset))
                    .map_err(|e| e.to_string())
            }) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.blocking_send(broken(e));
                    return;
                }
            };
            if let Err(e) = source.header(&self.input.input) {
                let _ = tx.blocking_send(broken(e.to_string()));
                return;
            }
            let same = || Fingerprint::of(&self.file).is_ok_and(|f| f == self.fingerprint);
            if !same() {
                let _ = tx.blocking_send(changed());
                return;
            }
            let mut row = 1;
            loop {
                let item = match source.next_row(row) {
                    Ok(Some(_)) if row % LOOK_EVERY == 0 && !same() => changed(),
                    Ok(Some(raw)) if row <= self.rows => self.item(raw),
                    Ok(None) if row == self.rows + 1 && source.sha256() == self.sha256 => return,
                    // Rows the check never saw, too few rows, or other bytes.
                    Ok(_) => changed(),
                    Err(e) => broken(e.to_string()),
                };
                let last = matches!(item, Item::Broken(_));
                if tx.blocking_send(item).is_err() || last {
                    return;
                }
                row += 1;
            }
        });
        rx
    }
}

/// A row under way: its input cells, and its outcome once it has one.
struct Slot {
    raw: StreamRow,
    known: bool,
    outcome: Option<Outcome>,
}

/// The sending pass, in a form that survives being interrupted: the rows under way and the rest of
/// the file stay here, so a cut-short run can still give every row its line.
pub struct Drive {
    dispatcher: Arc<Dispatcher>,
    events: Emitter,
    items: tokio::sync::mpsc::Receiver<Item>,
    /// Rows being sent, each a future polled by this one task (not a task each: spawning, joining
    /// and scheduling a task per row cost more than the row's own work), with its slot's sequence
    /// number; dropping the set cancels them.
    inflight:
        futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, (u64, Outcome)>>,
    /// Rows under way in input order; the first is number `first`.
    slots: VecDeque<Slot>,
    first: u64,
    threshold: Option<usize>,
    /// Rows in the file (as checked), and rows given their line so far.
    total: usize,
    emitted: usize,
    /// What rows under way touch (service request, subscription, profile), each with the rows
    /// waiting for it, in input order: rows that touch the same thing run one after another.
    busy: rustc_hash::FxHashMap<String, VecDeque<(u64, Job)>>,
    /// What each running row touches, by sequence number.
    running: rustc_hash::FxHashMap<u64, String>,
}

impl Drive {
    pub fn start(
        reading: Reading,
        dispatcher: Arc<Dispatcher>,
        events: Emitter,
        to_send: usize,
    ) -> Drive {
        let threshold = dispatcher.error_threshold(to_send);
        let total = reading.rows;
        Drive {
            total,
            emitted: 0,
            busy: rustc_hash::FxHashMap::default(),
            running: rustc_hash::FxHashMap::default(),
            items: reading.spawn(),
            dispatcher,
            events,
            inflight: futures::stream::FuturesUnordered::new(),
            slots: VecDeque::new(),
            first: 0,
            threshold,
        }
    }

    fn emit(&mut self, slot: Slot, outcome: Outcome) {
        self.emitted += 1;
        self.events.emit(Event::RowFinished(Box::new(Finished {
            raw: slot.raw,
            outcome,
            known: slot.known,
        })));
    }

    /// Starts sending a row.
    fn send(&mut self, seq: u64, job: Job) {
        let d = Arc::clone(&self.dispatcher);
        let threshold = self.threshold;
        let (row, line) = (job.row, job.line);
        self.inflight.push(Box::pin(async move {
            let run = std::panic::AssertUnwindSafe(d.run_job(job, threshold));
            let o = futures::FutureExt::catch_unwind(run)
                .await
                .unwrap_or_else(|_| {
                    Outcome::unsent(
                    row,
                    line,
                    Status::Failed,
                    "internal_error",
                    "pcbulk hit an internal error on this row; the change may or may not have been \
                     applied: check it before sending it again, and report the bug",
                )
                });
            (seq, o)
        }));
    }

    /// A sent row has finished: the next row waiting for what it touched may start.
    fn release(&mut self, seq: u64) {
        let Some(thing) = self.running.remove(&seq) else {
            return;
        };
        let next = self.busy.get_mut(&thing).and_then(VecDeque::pop_front);
        match next {
            Some((next_seq, job)) => {
                self.running.insert(next_seq, thing);
                self.send(next_seq, job);
            }
            None => {
                self.busy.remove(&thing);
            }
        }
    }

    /// Records an outcome, and finishes every row at the front that has one.
    fn done(&mut self, seq: u64, outcome: Outcome) {
        let at = (seq - self.first) as usize;
        self.slots[at].outcome = Some(outcome);
        while self.slots.front().is_some_and(|s| s.outcome.is_some()) {
            let mut slot = self.slots.pop_front().expect("a front slot");
            self.first += 1;
            let o = slot.outcome.take().expect("an outcome");
            self.emit(slot, o);
        }
    }

    fn take(&mut self, item: Item) -> bool {
        let seq = self.first + self.slots.len() as u64;
        match item {
            Item::Send(raw, job) => {
                let job = *job;
                self.events.emit(Event::RowPlanned { row: raw.row });
                self.slots.push_back(Slot {
                    raw,
                    known: false,
                    outcome: None,
                });
                match job.change.touches() {
                    Some(thing) => match self.busy.get_mut(&thing) {
                        // Waits for the rows before it that touch the same thing.
                        Some(queue) => queue.push_back((seq, job)),
                        None => {
                            self.busy.insert(thing.clone(), VecDeque::new());
                            self.running.insert(seq, thing);
                            self.send(seq, job);
                        }
                    },
                    None => self.send(seq, job),
                }
            }
            Item::Done(raw, outcome, known) => {
                self.slots.push_back(Slot {
                    raw,
                    known,
                    outcome: None,
                });
                self.done(seq, outcome);
            }
            Item::Broken(message) => {
                self.dispatcher.stop.raise(message);
                return false;
            }
        }
        true
    }

    /// Sends every row, finishing them in input order.
    pub async fn run(&mut self) {
        let mut reading = true;
        loop {
            tokio::select! {
                biased;
                Some((seq, o)) = futures::StreamExt::next(&mut self.inflight), if !self.inflight.is_empty() => {
                    // Rows catch their own panics.
                    self.release(seq);
                    self.done(seq, o)
                }
                item = self.items.recv(), if reading && self.slots.len() < WINDOW => {
                    match item {
                        Some(item) => reading = self.take(item),
                        None => reading = false,
                    }
                }
                else => break,
            }
        }
    }

    /// Ends a run whose rows in flight did not finish in time: they, and every row not read yet,
    /// get a line all the same (`skipped`).
    pub async fn cut_short(&mut self, message: &str) {
        self.inflight.clear();
        let reason = self.dispatcher.stop.reason().unwrap_or_default();
        // Rows still waiting for a row before them that touched the same thing never started.
        let waiting: std::collections::HashSet<u64> = self
            .busy
            .drain()
            .flat_map(|(_, q)| q.into_iter().map(|(seq, _)| seq))
            .collect();
        self.running.clear();
        while let Some(mut slot) = self.slots.pop_front() {
            let seq = self.first;
            self.first += 1;
            let o = slot.outcome.take().unwrap_or_else(|| {
                let (code, why) = if waiting.contains(&seq) {
                    ("aborted", reason.as_str())
                } else {
                    ("interrupted", message)
                };
                Outcome::unsent(slot.raw.row, slot.raw.line, Status::Skipped, code, why)
            });
            self.emit(slot, o);
        }
        while let Some(item) = self.items.recv().await {
            let (raw, o, known) = match item {
                Item::Send(raw, _) => {
                    let o = Outcome::unsent(raw.row, raw.line, Status::Skipped, "aborted", &reason);
                    (raw, o, false)
                }
                Item::Done(raw, o, known) => (raw, o, known),
                Item::Broken(_) => break,
            };
            self.emit(
                Slot {
                    raw,
                    known,
                    outcome: None,
                },
                o,
            );
        }
    }

    /// Gives a line to every row the sending pass could not read (the file changed or could not be
    /// read again): `skipped`, with the reason, and the row's number but not its cells.
    pub fn account_for_unread_rows(&mut self) {
        let reason = self.dispatcher.stop.reason().unwrap_or_default();
        while self.emitted < self.total {
            let row = self.emitted + 1;
            let o = Outcome::unsent(row, 0, Status::Skipped, "input_changed", &reason);
            let raw = StreamRow::new(row, 0, String::new(), Vec::new());
            self.emit(
                Slot {
                    raw,
                    known: false,
                    outcome: None,
                },
                o,
            );
        }
    }

    /// Stops at once: the rows that have an outcome get their lines (out of order if an earlier
    /// row is still in flight); rows in flight and rows not read get none.
    pub fn stop_at_once(&mut self) {
        self.inflight.clear();
        while let Some(mut slot) = self.slots.pop_front() {
            if let Some(o) = slot.outcome.take() {
                self.emit(slot, o);
            }
        }
        self.items.close();
        while let Ok(item) = self.items.try_recv() {
            match item {
                Item::Done(raw, o, known) => self.emit(
                    Slot {
                        raw,
                        known,
                        outcome: None,
                    },
                    o,
                ),
                Item::Send(raw, _) => {
                    let reason = self.dispatcher.stop.reason().unwrap_or_default();
                    let o = Outcome::unsent(raw.row, raw.line, Status::Skipped, "aborted", &reason);
                    self.emit(
                        Slot {
                            raw,
                            known: false,
                            outcome: None,
                        },
                        o,
                    );
                }
                Item::Broken(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::ReadOptions;
    use futures::future::BoxFuture;

    const HEADER: &str = "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n";

    fn rows(n: usize, name: &str) -> String {
        let mut s = HEADER.to_string();
        for i in 0..n {
            s.push_str(&format!(
                "0c39d6d5-c70d-4c55-bc02-f620844f3fd1,d1000000-0000-4000-8000-{i:012x},\
                 3b33e682-00c3-41ee-9dd2-a548adf56438,4391507,{name}\n"
            ));
        }
        s
    }

    /// Scans `before`, writes `after` over the file in place, and reads what the sending pass hands
    /// over: the last item says whether the change was seen.
    fn read_after_change(before: &str, after: Option<&str>) -> (usize, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, before).unwrap();
        let cfg = InputConfig {
            input: input.clone(),
            out: dir.path().join("in.results.csv"),
            operation: None,
            read: ReadOptions::default(),
            mapping: Vec::new(),
        };
        let scan = crate::pipeline::check::scan(&cfg, None).unwrap();
        if let Some(after) = after {
            std::fs::write(&input, after).unwrap(); // the same file, rewritten
        }
        let mut rx = Reading::from_scan(cfg, scan, None).spawn();
        let (mut sent, mut broken) = (0, None);
        while let Some(item) = rx.blocking_recv() {
            match item {
                Item::Send(..) | Item::Done(..) => sent += 1,
                Item::Broken(why) => broken = Some(why),
            }
        }
        (sent, broken)
    }

    /// A transport that answers after a few milliseconds and records, per path and over all
    /// paths, the most calls it had under way at once.
    #[derive(Default)]
    struct Overlap {
        now: std::sync::Mutex<std::collections::HashMap<String, usize>>,
        most: std::sync::Mutex<std::collections::HashMap<String, usize>>,
        /// (under way now, most under way at once) over every path.
        all: std::sync::Mutex<(usize, usize)>,
    }

    impl crate::api::http::Transport for Overlap {
        fn send<'a>(
            &'a self,
            req: &'a crate::api::Request,
            _ids: crate::api::http::CallIds,
            _token: &'a str,
        ) -> BoxFuture<'a, Result<crate::api::Response, crate::api::CallError>> {
            Box::pin(async move {
                let path = req.path.clone();
                {
                    let mut now = self.now.lock().unwrap();
                    let n = now.entry(path.clone()).or_default();
                    *n += 1;
                    let mut most = self.most.lock().unwrap();
                    let m = most.entry(path.clone()).or_default();
                    *m = (*m).max(*n);
                    let mut all = self.all.lock().unwrap();
                    all.0 += 1;
                    all.1 = all.1.max(all.0);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                *self.now.lock().unwrap().get_mut(&path).unwrap() -= 1;
                self.all.lock().unwrap().0 -= 1;
                Ok(crate::api::Response {
                    status: 200,
                    body: br#"{"id":"1","status":"open","notes":[]}"#.to_vec(),
                    ..crate::api::Response::default()
                })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_that_touch_the_same_thing_run_one_after_another_others_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut csv = String::from("service_request_id,note\n");
        for i in 0..12 {
            csv.push_str(&format!("{},note {i}\n", ["111", "222", "333"][i % 3]));
        }
        std::fs::write(&input, csv).unwrap();
        let cfg = InputConfig {
            input,
            out: dir.path().join("in.results.csv"),
            operation: None,
            read: ReadOptions::default(),
            mapping: Vec::new(),
        };
        let scan = crate::pipeline::check::scan(&cfg, None).unwrap();
        let transport = Arc::new(Overlap::default());
        let settings = crate::dispatch::Settings {
            rate: 1e6,
            concurrency: 16,
            retry: crate::dispatch::RetryPolicy::default(),
            max_errors: None,
            reads_only: false,
        };
        let tokens = Arc::new(crate::api::auth::Tokens::new(
            crate::api::auth::Credentials::Static("t".to_string().into()),
        ));
        let dispatcher = Arc::new(Dispatcher::new(transport.clone(), tokens, settings, None));
        let (events, received) = Emitter::channel();
        let to_send = scan.to_send;
        let reading = Reading::from_scan(cfg, scan, None);
        let mut drive = Drive::start(reading, dispatcher, events, to_send);
        drive.run().await;
        drop(drive);
        let finished: Vec<usize> = received
            .try_iter()
            .filter_map(|e| match e {
                Event::RowFinished(f) => Some(f.outcome.row),
                _ => None,
            })
            .collect();
        assert_eq!(
            finished,
            (1..=12).collect::<Vec<_>>(),
            "every row, in order"
        );
        let most = transport.most.lock().unwrap().clone();
        assert_eq!(most.len(), 3, "{most:?}");
        assert!(
            most.values().all(|m| *m == 1),
            "one call at a time per service request: {most:?}"
        );
        let side_by_side = transport.all.lock().unwrap().1;
        assert!(
            side_by_side > 1,
            "calls to different service requests were never under way together: at most \
             {side_by_side} at once"
        );
    }

    #[test]
    fn the_sending_pass_reads_what_was_checked_or_says_the_file_changed() {
        let (sent, broken) = read_after_change(&rows(10, "Trey"), None);
        assert_eq!(
            (sent, broken),
            (10, None),
            "an untouched file: every row, no alarm"
        );

        let (sent, broken) = read_after_change(&rows(10, "Trey"), Some(&rows(10, "Evil")));
        let why = broken.expect("other bytes are seen");
        assert!(why.contains("changed while it was being applied"), "{why}");
        assert_eq!(sent, 0, "a file changed before sending began sends nothing");

        let (sent, broken) = read_after_change(&rows(10, "Trey"), Some(&rows(12, "Trey")));
        assert!(broken.is_some(), "a longer file is seen");
        assert_eq!(sent, 0);
    }
}
