//! The journal: an append-only record of a run, beside the results file, that lets a run killed at
//! any instant be finished without applying anything twice.
//!
//! One JSON object per line. The call a row is about to make (`send`: method, path, body, If-Match
//! and MS-RequestId) is written and fsynced *before* the call goes out; its answer, the row's
//! before-values and its final outcome follow. A line torn by a crash can only be the last one, and is
//! ignored: a `send` whose `answer` is missing is a call whose outcome is unknown, which a resume
//! settles (by reading, or by sending it again with the same MS-RequestId).
//!
//! Read back, the journal is a file like any other: `replay` bounds it and checks it, record by
//! record and then row by row against the input, before a resume uses any of it.

mod replay;

pub use replay::{read, Before, Misfit, ReadError, Replay, Unanswered};

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{usage, Error};
use crate::results::Outcome;

/// The longest record line pcbulk writes, and reads back.
pub const MAX_LINE: usize = 1 << 20;

/// A record too large to journal (over [`MAX_LINE`]): refused before anything is written.
#[derive(Debug)]
pub struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a journal record would be over {} MiB, more than a journal line may hold",
            MAX_LINE >> 20
        )
    }
}

impl std::error::Error for TooLarge {}

/// Whether an append failed because its record was [`TooLarge`] (the journal itself is fine).
pub fn is_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
}

/// What to do about a journal path pcbulk refuses to write (see [`crate::fsafe`]).
pub const FIX: &str = "the journal is kept beside the results file, so give --out another path";

/// The error for a journal that cannot be written.
pub fn cannot_write(path: &Path, e: io::Error) -> Error {
    Error::io(format!("cannot write the journal {}", path.display()), e)
}

/// The journal beside a results file.
pub fn path_for(results: &Path) -> PathBuf {
    let mut name = results.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    results.with_file_name(name)
}

/// What a run applies (SPEC: Exit codes): what "the same input" means for a resume, `--from-plan`
/// and the "already applied" refusal. Two runs with the same identity apply the same changes to the
/// same service, whatever the file is called, where its results go and how it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The operation as resolved: its name, or `per-row` when an operation column names each
    /// row's (see `Planner::identity_operation`).
    pub operation: String,
    /// The service, canonical (`target::target_key`): one service named two ways is one target.
    pub target: String,
    /// The workbook's sheet, as the workbook names it; `None` for a text file.
    pub sheet: Option<String>,
    /// How input columns are mapped to the operation's: one `header=column` for each `--map`,
    /// the header as the input has it (trimmed), the column canonical, sorted; empty without
    /// `--map` (see `Planner::mapping`). Read back to tell which results columns the operation
    /// read: the mapped headers, and the others by header matching, less those a mapping displaced.
    pub mapping: Vec<String>,
    /// The operation's own cells, in row order (see `pipeline::source::RowsDigest`).
    pub rows_sha256: String,
}

/// A part of an [`Identity`], where two differ first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Target,
    Operation,
    Sheet,
    Mapping,
    Rows,
}

impl Identity {
    /// The first part in which `self` is not `now`, if any.
    pub fn first_difference(&self, now: &Identity) -> Option<Part> {
        [
            (Part::Target, self.target == now.target),
            (Part::Operation, self.operation == now.operation),
            (Part::Sheet, self.sheet == now.sheet),
            (Part::Mapping, self.mapping == now.mapping),
            (Part::Rows, self.rows_sha256 == now.rows_sha256),
        ]
        .into_iter()
        .find_map(|(part, same)| (!same).then_some(part))
    }

    /// What was read, for a message: `sheet "Q3"`, or a text file.
    pub fn source(&self) -> String {
        match &self.sheet {
            Some(s) => format!("sheet {s:?}"),
            None => "a text file (no sheet)".to_owned(),
        }
    }

    /// How an earlier run (`self`) is not `now`, worded for a refusal to resume.
    fn differs(&self, now: &Identity, input: &str) -> Option<String> {
        Some(match self.first_difference(now)? {
            Part::Target => format!(
                "the run was sent to {}, not {}: resume against the same service",
                self.target, now.target
            ),
            Part::Operation => format!(
                "the run applied {}, not {}: resume with the same --operation (or none, as it \
                 was started)",
                self.operation, now.operation
            ),
            Part::Sheet => format!(
                "the run read {}, not {}: resume with the same --sheet",
                self.source(),
                now.source()
            ),
            Part::Mapping => format!(
                "the run was started with {}, not {}: resume with the same --map flags (or none, \
                 to take the run's)",
                mapping_words(&self.mapping),
                mapping_words(&now.mapping)
            ),
            Part::Rows => format!(
                "{input} does not hold the rows the run started with (a value the run applies was \
                 changed, or rows were added, taken out or moved; line ends, encoding, the order of \
                 columns and columns the operation does not read do not count): resume with the \
                 rows it started with"
            ),
        })
    }
}

/// A recorded mapping as the flags that give it: `--map 'Tenant ID=customer_id'`, or `no --map`.
pub fn mapping_words(mapping: &[String]) -> String {
    if mapping.is_empty() {
        return "no --map".to_owned();
    }
    (mapping.iter())
        .map(|m| match m.rsplit_once('=') {
            Some((h, c)) => crate::input::header::ColumnMap::flag(h, c),
            None => format!("--map {m:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a run is: a resume must be the same job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// SHA-256 of the input file's bytes. Not what the run applies (see [`Identity`]): a journal
    /// written before identities were recorded is compared by it (see [`check_resume`]).
    pub input_sha256: String,
    /// What the run applies; `None` only in a journal an earlier pcbulk wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub input: String,
    /// `--operation`, if given.
    pub operation: Option<String>,
    /// The base URL calls go to, as given.
    pub target: String,
    /// A plan's journal (`pcbulk plan`, `apply --dry-run`): it read, and wrote nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plan: bool,
    /// `--from-plan`: the plan this run applied (as given); a resume must apply the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_plan: Option<String>,
}

impl Job {
    /// Whether an earlier run's record (its identity, bytes and target) is of the same input as
    /// this job, for the "already applied" refusal: the same operation, service and rows (the
    /// cells of the operation's own columns, after mapping), whatever sheet or file they were read
    /// from and whatever headers named their columns (the same rows saved from a workbook as CSV,
    /// or with pcbulk's own headers in place of a `--map`, would apply every row again; a resume or
    /// a plan also holds the sheet and the mapping, see [`Identity::first_difference`]). A record an earlier pcbulk wrote has no identity: it is the
    /// same input when it had the same bytes and went to the same service.
    pub fn same_input(
        &self,
        identity: Option<&Identity>,
        input_sha256: &str,
        target: &str,
    ) -> bool {
        match (identity, &self.identity) {
            (Some(then), Some(now)) => {
                let content = Identity {
                    sheet: now.sheet.clone(),
                    mapping: now.mapping.clone(),
                    ..then.clone()
                };
                content.first_difference(now).is_none()
            }
            _ => {
                input_sha256.eq_ignore_ascii_case(&self.input_sha256)
                    && crate::target::target_key(target) == crate::target::target_key(&self.target)
            }
        }
    }
}

/// The first way a journal an earlier pcbulk wrote (no identity: the file's bytes, `--operation`
/// and the target) is not this job, as [`Identity::differs`] words it. Such a journal recorded no
/// sheet, so a workbook's run cannot be resumed from it.
fn differs_from_old(earlier: &Job, job: &Job, path: &Path) -> Option<String> {
    let same_target =
        crate::target::target_key(&earlier.target) == crate::target::target_key(&job.target);
    if job.identity.as_ref().is_some_and(|i| i.sheet.is_some()) {
        Some(format!(
            "the journal {} was written by an earlier version of pcbulk, which did not record the \
             sheet the run read: finish the run with that version",
            path.display()
        ))
    } else if !earlier.input_sha256.eq_ignore_ascii_case(&job.input_sha256) {
        Some(format!(
            "{} is not the file the run started with ({} has changed since, or another file was \
             given; the journal, written by an earlier version of pcbulk, recorded the file's \
             bytes): resume with the original file",
            job.input, earlier.input
        ))
    } else if earlier.operation != job.operation {
        Some(format!(
            "the run started with --operation {}, not {}: resume with the same --operation",
            earlier.operation.as_deref().unwrap_or("(none)"),
            job.operation.as_deref().unwrap_or("(none)")
        ))
    } else if !same_target {
        Some(format!(
            "the run was sent to {}, not {}: resume against the same service",
            earlier.target, job.target
        ))
    } else {
        None
    }
}

/// One call, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentCall {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    pub request_id: String,
    /// When its intent was journaled (milliseconds since 1970, UTC): a resume waits for a write
    /// still on its way only as long as it may still be, counted from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    Run(Job),
    /// A resumed run took over.
    Resume {
        retry_failed: bool,
    },
    /// The values a row found before changing them, by input column; `extra` holds what undo or a
    /// resume needs beyond columns (how many notes had the row's text, say).
    Before {
        row: usize,
        op: String,
        values: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        extra: BTreeMap<String, Value>,
    },
    /// A write is about to be sent (fsynced before it is).
    Send {
        row: usize,
        correlation_id: String,
        call: SentCall,
    },
    /// The answer to a write (any HTTP status); `None`: it was not sent after all (the run stopped
    /// while the row waited for its turn, after its intent was journaled), so a resume applies the
    /// row afresh instead of waiting for a write that is not on its way.
    Answer {
        row: usize,
        request_id: String,
        status: Option<u16>,
    },
    /// A row's final outcome.
    Row(Outcome),
    /// Every row has its outcome and the results file is complete.
    Done,
}

/// Appends records; safe to share between threads and tasks.
///
/// Records are queued as they are; one syncer thread turns them into lines (off the thread that runs
/// the calls), writes them out in one write and, when a record asked to be durable, fsyncs. Durable records are made durable in groups: while one fsync runs,
/// every record appended meanwhile waits for the next, and that one covers them all. The guarantee
/// is unchanged: a durable record (a write's intent) is on disk before `append` returns, so before
/// its call is sent. Other records reach the file within [`FLUSH`], or with the next durable one.
pub struct Journal {
    shared: std::sync::Arc<Shared>,
    syncer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

/// How long a record that need not be durable may wait in memory before it is written.
pub const FLUSH: std::time::Duration = std::time::Duration::from_millis(5);

struct Shared {
    state: Mutex<State>,
    /// The syncer waits here for work.
    work: std::sync::Condvar,
    /// Threads waiting for durability wait here.
    synced_cv: std::sync::Condvar,
    /// Tasks waiting for durability watch this (the last record made durable).
    synced_tx: tokio::sync::watch::Sender<u64>,
    /// Wakes the pump task, which relays syncs to `synced_tx` from the runtime's own thread (see
    /// `State::pumped`).
    synced_notify: tokio::sync::Notify,
}

struct State {
    /// Records appended and not yet written, in order, each with whether it must be durable.
    queue: Vec<(Record, bool)>,
    /// Records appended so far.
    appended: u64,
    /// The highest record some caller needs durable.
    wanted: u64,
    /// Records written to the file, and made durable.
    written: u64,
    synced: u64,
    /// The first error the syncer met: every later append fails with it.
    failed: Option<(io::ErrorKind, String)>,
    closing: bool,
    /// The syncer is waiting for work (and must be woken for a durable record).
    idle: bool,
    /// Threads blocked in `wait_synced`.
    blocked: usize,
    /// Durable records the syncer refused as [`TooLarge`], by number, until their callers look.
    refused: Vec<u64>,
    /// While a pump task on the runtime relays syncs to `synced_tx`, the syncer wakes that one task
    /// per fsync, not every task waiting: a wake from another thread costs the runtime a system call
    /// each; the pump's wakes are local. Cleared when the pump goes (its runtime shut down), after
    /// which the syncer wakes the waiting tasks itself.
    pumped: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn error_of(failed: &(io::ErrorKind, String)) -> io::Error {
    io::Error::new(failed.0, failed.1.clone())
}

/// The last fsync: how long it took, when it ended, and how many intents it covered.
struct LastSync {
    took: Duration,
    end: std::time::Instant,
    covered: usize,
}

/// A batch of records taken from the queue: the records, the number of the last, and whether some
/// caller waits for it to be durable.
struct Batch {
    records: Vec<(Record, bool)>,
    upto: u64,
    durable: bool,
}

/// The syncer: writes what was appended, fsyncs when asked, until the journal is closed.
fn sync_loop(shared: &Shared, mut file: File) {
    // Two queues take turns: records go into one while the other is written.
    let mut spare = Vec::with_capacity(1024);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut last = LastSync {
        took: Duration::ZERO,
        end: std::time::Instant::now(),
        covered: 0,
    };
    loop {
        let Some(mut batch) = next_batch(shared, &mut spare, &last) else {
            shared.synced_notify.notify_one(); // the pump ends too
            return;
        };
        let (done, refused) = write_batch(&mut file, &mut buf, &mut batch, &mut last);
        spare = batch.records;
        // A buffer grown by a burst of large records does not stay that large.
        if buf.capacity() > 4 << 20 {
            buf = Vec::with_capacity(1 << 16);
        }
        if !publish(shared, done, refused, batch.upto, batch.durable) {
            shared.synced_notify.notify_one();
            return;
        }
    }
}

/// Waits for work and takes the queue (leaving `spare` in its place), or `None` once the journal is
/// closed with nothing left to write. Durable records go at once; others wait up to [`FLUSH`] to
/// share a write; and when fsyncs are slow, intents wait up to [`LINGER`] to share one.
fn next_batch(shared: &Shared, spare: &mut Vec<(Record, bool)>, last: &LastSync) -> Option<Batch> {
    let mut st = shared.lock();
    while st.wanted <= st.synced && !st.closing {
        st.idle = true;
        let (g, waited) = shared
            .work
            .wait_timeout(st, FLUSH)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle = false;
        if waited.timed_out() && !st.queue.is_empty() {
            break;
        }
    }
    if st.queue.is_empty() && st.wanted <= st.synced && st.closing {
        return None;
    }
    // Many intents at once, on a disk where an fsync costs: wait for more to share it.
    let linger = LINGER.saturating_sub(last.end.elapsed());
    if last.covered >= 2
        && last.took >= SLOW_SYNC
        && !linger.is_zero()
        && !st.closing
        && st.queue.len() < 512
    {
        drop(st);
        std::thread::sleep(linger);
        st = shared.lock();
    }
    let records = std::mem::replace(&mut st.queue, std::mem::take(spare));
    Some(Batch {
        records,
        upto: st.appended,
        durable: st.wanted > st.synced,
    })
}

/// Writes a batch (and fsyncs it when some caller waits for that), emptying its records. What the
/// write gave, and the numbers of durable records refused as too large.
fn write_batch(
    file: &mut File,
    buf: &mut Vec<u8>,
    batch: &mut Batch,
    last: &mut LastSync,
) -> (io::Result<()>, Vec<u64>) {
    let first = batch.upto + 1 - batch.records.len() as u64;
    let mut refused = Vec::new();
    let mut covered = 0;
    buf.clear();
    for (i, (record, durable)) in batch.records.drain(..).enumerate() {
        covered += usize::from(durable);
        if !line(buf, &record) && durable {
            refused.push(first + i as u64);
        }
    }
    let mut done = file.write_all(buf);
    if batch.durable && done.is_ok() {
        let started = std::time::Instant::now();
        done = file.sync_data();
        last.end = std::time::Instant::now();
        (last.took, last.covered) = (last.end - started, covered);
    }
    (done, refused)
}

/// Records what the write of records up to `upto` gave, and wakes whoever waits for it. Whether
/// the syncer goes on (not after a failure while closing).
fn publish(
    shared: &Shared,
    done: io::Result<()>,
    refused: Vec<u64>,
    upto: u64,
    durable: bool,
) -> bool {
    let mut st = shared.lock();
    st.refused.extend(refused);
    let synced = match done {
        Ok(()) => {
            st.written = upto;
            durable.then(|| {
                st.synced = upto;
                upto
            })
        }
        Err(e) => {
            st.failed.get_or_insert((e.kind(), e.to_string()));
            st.synced = u64::MAX; // nobody waits for what will never come
            Some(u64::MAX)
        }
    };
    if synced.is_some() && st.blocked > 0 {
        shared.synced_cv.notify_all();
    }
    let end = st.failed.is_some() && st.closing;
    // Read under the lock that set `synced`: a pump that goes after this relays it on its way.
    let pumped = st.pumped;
    drop(st);
    if let Some(synced) = synced {
        if pumped {
            shared.synced_notify.notify_one();
        } else {
            shared.synced_tx.send_replace(synced);
        }
    }
    !end
}

/// How long the syncer may wait for more intents before an fsync, counted from the end of the last
/// one, when that one covered several intents and took [`SLOW_SYNC`] or more. Each fsync of a real
/// disk costs the machine CPU (about a quarter millisecond, most of it in the kernel), and at full
/// speed an fsync per handful of intents cost more than everything else the run did; the wait adds
/// at most this much to a write's latency, and only while writes come many at a time.
const LINGER: Duration = Duration::from_millis(2);
const SLOW_SYNC: Duration = Duration::from_micros(100);

/// Adds a record's line to `buf`; false, and nothing added, for a record over [`MAX_LINE`] (never a
/// line the reader would refuse).
fn line(buf: &mut Vec<u8>, record: &Record) -> bool {
    let start = buf.len();
    let fits = serde_json::to_writer(&mut *buf, record).is_ok() && buf.len() - start <= MAX_LINE;
    if fits {
        buf.push(b'\n');
    } else {
        buf.truncate(start);
    }
    fits
}

/// The pump's hold on the journal. However the pump ends (its runtime may drop it, polled or not), it
/// hands the relaying back to the syncer and relays what is already synced: no waiting task is left
/// without its wake.
struct Pumping(std::sync::Arc<Shared>);

impl Drop for Pumping {
    fn drop(&mut self) {
        let synced = {
            let mut st = self.0.lock();
            st.pumped = false;
            st.synced
        };
        self.0.synced_tx.send_replace(synced);
    }
}

/// Relays the syncer's progress to the tasks waiting for it, from the runtime's own thread.
async fn pump(pumping: Pumping) {
    let shared = &pumping.0;
    loop {
        shared.synced_notify.notified().await;
        let (synced, over) = {
            let st = shared.lock();
            (st.synced, st.closing)
        };
        shared.synced_tx.send_replace(synced);
        if over {
            return;
        }
    }
}

impl Journal {
    fn new(file: File, path: &Path) -> Journal {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let shared = std::sync::Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::with_capacity(1024),
                appended: 0,
                wanted: 0,
                written: 0,
                synced: 0,
                failed: None,
                closing: false,
                idle: false,
                blocked: 0,
                refused: Vec::new(),
                pumped: runtime.is_some(),
            }),
            work: std::sync::Condvar::new(),
            synced_cv: std::sync::Condvar::new(),
            synced_tx: tokio::sync::watch::Sender::new(0),
            synced_notify: tokio::sync::Notify::new(),
        });
        if let Some(rt) = runtime {
            rt.spawn(pump(Pumping(std::sync::Arc::clone(&shared))));
        }
        let s = std::sync::Arc::clone(&shared);
        let syncer = std::thread::Builder::new()
            .name("pcbulk-journal".into())
            .spawn(move || sync_loop(&s, file))
            .expect("a thread for the journal");
        Journal {
            shared,
            syncer: Some(syncer),
            path: path.to_owned(),
        }
    }

    /// Starts a new journal (replacing any old one) with the job's header, made durable.
    pub fn create(path: &Path, job: &Job) -> io::Result<Journal> {
        let j = Journal::new(crate::fsafe::create(path, FIX)?, path);
        j.append(Record::Run(job.clone()), true)?;
        Ok(j)
    }

    /// Opens an existing journal to append to it.
    pub fn reopen(path: &Path) -> io::Result<Journal> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = crate::fsafe::open_append(path, FIX)?;
        // A torn last line gets a newline of its own, so the next record starts clean.
        if file.metadata()?.len() > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Journal::new(file, path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one record; returns its number. With `durable`, the syncer is told.
    fn push(&self, record: Record, durable: bool) -> io::Result<u64> {
        let mut st = self.shared.lock();
        if let Some(f) = &st.failed {
            return Err(error_of(f));
        }
        st.queue.push((record, durable));
        st.appended += 1;
        let seq = st.appended;
        if durable {
            st.wanted = seq;
            // A busy syncer comes back for it by itself.
            if st.idle {
                st.idle = false;
                self.shared.work.notify_one();
            }
        }
        Ok(seq)
    }

    /// What became of durable record `seq` once the syncer has been past it: written, refused as
    /// too large (the journal goes on), or the journal failed.
    fn outcome(st: &mut State, seq: u64) -> io::Result<()> {
        if let Some(at) = st.refused.iter().position(|r| *r == seq) {
            st.refused.swap_remove(at);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, TooLarge));
        }
        match &st.failed {
            Some(f) => Err(error_of(f)),
            None => Ok(()),
        }
    }

    /// Blocks until record `seq` is on disk (or the syncer has failed).
    fn wait_synced(&self, seq: u64) -> io::Result<()> {
        let mut st = self.shared.lock();
        while st.synced < seq {
            st.blocked += 1;
            st = self
                .shared
                .synced_cv
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
            st.blocked -= 1;
        }
        Self::outcome(&mut st, seq)
    }

    /// Appends one record; with `durable`, waits until it is on disk.
    pub fn append(&self, record: Record, durable: bool) -> io::Result<()> {
        let seq = self.push(record, durable)?;
        if durable {
            self.wait_synced(seq)?;
        }
        crate::failpoint::hit("after-journal-append");
        Ok(())
    }

    /// Waits until every record appended so far is on disk (before the process exits at once).
    pub fn sync(&self) -> io::Result<()> {
        let seq = {
            let mut st = self.shared.lock();
            st.wanted = st.appended;
            self.shared.work.notify_one();
            st.appended
        };
        self.wait_synced(seq)
    }

    /// Appends one record and waits, without holding a thread, until it is on disk.
    pub async fn append_durable(&self, record: Record) -> io::Result<()> {
        let seq = self.push(record, true)?;
        let mut rx = self.shared.synced_tx.subscribe();
        let _ = rx.wait_for(|s| *s >= seq).await;
        Self::outcome(&mut self.shared.lock(), seq)?;
        crate::failpoint::hit("after-journal-append");
        Ok(())
    }
}

impl Drop for Journal {
    /// Writes out what is buffered before the journal goes.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
    }
}

/// What to do with a journal that cannot be used, after what is wrong with it.
const START_OVER: &str = "To start over, move the journal aside (rename it) and run again without \
     --resume: rows the earlier run applied then come out unchanged, except notes, which would be \
     added again (take those rows out first)";

/// Why a resume refuses a journal: its path, the line, what is wrong, and what to do.
fn refusal(path: &Path, input: &str, m: &Misfit) -> String {
    format!(
        "refusing to resume: the journal {} line {}: {}. It does not fit {input} (it may be damaged \
         or edited), so nothing was sent. {START_OVER}.",
        path.display(),
        m.line,
        m.what
    )
}

/// Reads the journal a resume continues, every record checked on its own (see [`read`]); `None`
/// when there is none: `--resume` then starts the run (SPEC: Resume).
pub fn read_for_resume(path: &Path, input: &str) -> Result<Option<Replay>, Error> {
    // Looked at before it is read: this run will write it.
    if crate::fsafe::look(path, FIX)
        .map_err(|e| cannot_write(path, e))?
        .is_none()
    {
        return Ok(None);
    }
    read(path).map(Some).map_err(|e| match e {
        ReadError::Io(e) => Error::io(format!("cannot read the journal {}", path.display()), e),
        ReadError::Misfit(m) => Error::Usage(refusal(path, input, &m)),
    })
}

/// What a resume does with the journal at the results path (see [`check_resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// This input's run, unfinished: it is continued.
    Unfinished,
    /// This input's run, finished: nothing is left to send.
    Finished,
    /// A finished run of another input, or a plan: it is moved aside and this run starts.
    Another,
}

/// Checks that a resume is of the same job as the journal it continues (read by
/// [`read_for_resume`]), and that the journal fits the input (`misfit`: the first way it does not,
/// from the checking pass), and says what the resume does with it. A finished run of another input
/// (or a plan, which applied nothing) stands in no one's way; an unfinished run of another input is
/// refused. Called before anything is recorded: a refused resume leaves the journal, and pcbulk's
/// list of runs, as they were.
pub fn check_resume(
    path: &Path,
    replay: &Replay,
    job: &Job,
    misfit: Option<Misfit>,
) -> Result<ResumeFrom, Error> {
    let Some(earlier) = &replay.job else {
        usage!(
            "the journal {} has no run header: it cannot be resumed. {START_OVER}.",
            path.display()
        );
    };
    let differs = match (&earlier.identity, &job.identity) {
        (Some(then), Some(now)) => then.differs(now, &job.input),
        _ => differs_from_old(earlier, job, path),
    };
    if earlier.plan || (differs.is_some() && replay.done) {
        return Ok(ResumeFrom::Another);
    }
    if let Some(why) = differs {
        usage!(
            "refusing to resume: the journal {} records an unfinished run of another input, and \
             {why}. Nothing was sent; to start a new run instead, give --out another path",
            path.display()
        );
    }
    if earlier.from_plan != job.from_plan {
        match &earlier.from_plan {
            Some(plan) => usage!(
                "refusing to resume: the run applied the plan {plan}, and its rows must still be \
                 held to it (rows the plan left out stay out, rows changed since fail as drifted); \
                 resume with --from-plan {plan}"
            ),
            None => usage!(
                "refusing to resume: the run did not apply a plan; resume without --from-plan"
            ),
        }
    }
    match misfit {
        Some(m) => Err(Error::Usage(refusal(path, &job.input, &m))),
        None if replay.done => Ok(ResumeFrom::Finished),
        None => Ok(ResumeFrom::Unfinished),
    }
}

/// Opens the journal for this run. A new run (`resume` is `None`) replaces a finished journal and
/// refuses to replace an unfinished one; a resume gets the earlier journal as [`read_for_resume`]
/// read it and [`check_resume`] accepted it, and appends to it.
pub fn open_for_run(
    path: &std::path::Path,
    job: &Job,
    resume: Option<Replay>,
    retry_failed: bool,
) -> Result<(Journal, Option<Replay>), Error> {
    let Some(replay) = resume else {
        // Looked at before it is read: this run will write it.
        if crate::fsafe::look(path, FIX)
            .map_err(|e| cannot_write(path, e))?
            .is_some()
        {
            let earlier = read(path).map_err(|e| match e {
                ReadError::Io(e) => {
                    Error::io(format!("cannot read the journal {}", path.display()), e)
                }
                ReadError::Misfit(m) => Error::Usage(format!(
                    "{} line {}: {}: it is not a journal pcbulk wrote, and a new run will not \
                     replace it; move it aside (rename it) to start a new run",
                    path.display(),
                    m.line,
                    m.what
                )),
            })?;
            if !earlier.done && earlier.job.is_some() {
                usage!(
                    "{} records an unfinished run ({} rows finished): run the same command with \
                     --resume to finish it without applying anything twice, or delete that file to \
                     start over",
                    path.display(),
                    earlier.outcomes.len()
                );
            }
        }
        let j = Journal::create(path, job).map_err(|e| cannot_write(path, e))?;
        return Ok((j, None));
    };
    let cannot = |e| cannot_write(path, e);
    let j = Journal::reopen(path).map_err(cannot)?;
    j.append(Record::Resume { retry_failed }, true)
        .map_err(cannot)?;
    Ok((j, Some(replay)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            plan: false,
            from_plan: None,
            input_sha256: "ab".into(),
            identity: None,
            input: "in.csv".into(),
            operation: None,
            target: "http://127.0.0.1:1".into(),
        }
    }

    /// A GUID per number, as pcbulk's ids are.
    fn id(n: usize) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn call(request_id: &str) -> SentCall {
        SentCall {
            method: "PATCH".into(),
            path: "/servicerequests/1".into(),
            body: Some(serde_json::json!({"NewNote": {"Text": "x"}})),
            if_match: None,
            request_id: request_id.into(),
            at_ms: None,
        }
    }

    fn send(row: usize, n: usize) -> Record {
        Record::Send {
            row,
            correlation_id: id(1000 + n),
            call: call(&id(n)),
        }
    }

    #[test]
    fn a_send_without_its_answer_is_unanswered_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv.journal");
        let j = Journal::create(&p, &job()).unwrap();
        j.append(send(1, 1), true).unwrap();
        let answer = Record::Answer {
            row: 1,
            request_id: id(1),
            status: Some(200),
        };
        j.append(answer, false).unwrap();
        j.append(send(2, 2), true).unwrap();
        drop(j);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"t":"answer","row":2,"requ"#).unwrap();
        let r = read(&p).unwrap();
        assert_eq!(r.job, Some(job()));
        assert!(!r.unanswered.contains_key(&1));
        assert_eq!(r.unanswered[&2].pending.request_id.to_string(), id(2));

        // A resumed run appends after the torn line; the journal still reads.
        let j = Journal::reopen(&p).unwrap();
        j.append(
            Record::Resume {
                retry_failed: false,
            },
            true,
        )
        .unwrap();
        assert_eq!(read(&p).unwrap().unanswered.len(), 1);
    }

    #[test]
    fn a_record_too_large_to_read_back_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let j = Journal::create(&p, &job()).unwrap();
        let mut big = call(&id(1));
        big.body = Some(serde_json::json!({"NewNote": {"Text": "x".repeat(MAX_LINE)}}));
        let e = j
            .append(
                Record::Send {
                    row: 1,
                    correlation_id: id(2),
                    call: big,
                },
                true,
            )
            .unwrap_err();
        assert!(is_too_large(&e), "{e}");
        j.append(send(1, 3), true).expect("the journal goes on");
        drop(j);
        assert_eq!(read(&p).unwrap().unanswered.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_durable_record_is_in_the_file_when_append_returns_however_many_share_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv.journal");
        let j = std::sync::Arc::new(Journal::create(&p, &job()).unwrap());
        let mut tasks = Vec::new();
        for row in 1..=64 {
            let (j, p) = (std::sync::Arc::clone(&j), p.clone());
            tasks.push(tokio::spawn(async move {
                // A record that need not be durable, then an intent that must be.
                let before = Record::Before {
                    row,
                    op: "service-request".into(),
                    values: BTreeMap::new(),
                    extra: BTreeMap::from([("notes_with_text".into(), row.into())]),
                };
                j.append(before, false).unwrap();
                j.append_durable(send(row, row)).await.unwrap();
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    text.contains(&format!("\"request_id\":\"{}\"", id(row))),
                    "row {row}"
                );
                assert!(
                    text.contains(&format!("\"notes_with_text\":{row}}}")),
                    "what came before it is written with it"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop(j);
        assert_eq!(read(&p).unwrap().unanswered.len(), 64);
    }

    #[test]
    fn a_durable_append_still_returns_once_the_runtime_that_opened_the_journal_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let j = first.block_on(async { Journal::create(&p, &job()).unwrap() });
        drop(first); // and the task that relayed its fsyncs with it
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        second.block_on(async {
            // Bounded only so that a lost wake fails the test instead of hanging it.
            let appended = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                j.append_durable(send(1, 1)),
            )
            .await;
            appended.expect("woken").expect("appended");
        });
        drop(j);
        assert_eq!(read(&p).unwrap().unanswered.len(), 1);
    }

    #[test]
    fn records_that_need_not_be_durable_reach_the_file_when_the_journal_closes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let j = Journal::create(&p, &job()).unwrap();
        j.append(Record::Done, false).unwrap();
        drop(j);
        assert!(read(&p).unwrap().done);
    }

    #[test]
    fn sync_puts_every_record_appended_so_far_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let j = Journal::create(&p, &job()).unwrap();
        j.append(Record::Done, false).unwrap();
        j.sync().unwrap();
        assert!(
            read(&p).unwrap().done,
            "written before the journal is dropped"
        );
        drop(j);
    }

    fn replay_of(job: Job) -> Replay {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        drop(Journal::create(&p, &job).unwrap());
        read(&p).unwrap()
    }

    fn identity(sheet: Option<&str>) -> Identity {
        Identity {
            operation: "service-request".into(),
            target: "http://localhost:1".into(),
            sheet: sheet.map(str::to_owned),
            mapping: Vec::new(),
            rows_sha256: "e".repeat(64),
        }
    }

    #[test]
    fn a_resume_is_checked_against_what_the_run_applies_not_the_file_s_bytes() {
        let p = Path::new("r.csv.journal");
        let then = Job {
            identity: Some(identity(Some("A"))),
            ..job()
        };
        let replay = replay_of(then.clone());
        let resaved = Job {
            input_sha256: "cd".into(),
            target: "http://LOCALHOST:1/".into(),
            ..then.clone()
        };
        assert!(matches!(
            check_resume(p, &replay, &resaved, None),
            Ok(ResumeFrom::Unfinished)
        ));
        let other_sheet = Job {
            identity: Some(identity(Some("B"))),
            ..then
        };
        let e = check_resume(p, &replay, &other_sheet, None).unwrap_err();
        assert!(
            e.to_string().contains("sheet \"A\", not sheet \"B\""),
            "{e}"
        );
    }

    #[test]
    fn a_journal_an_earlier_pcbulk_wrote_resumes_only_from_the_same_bytes_of_a_text_file() {
        let p = Path::new("r.csv.journal");
        let replay = replay_of(job());
        let now = |sha: &str, sheet| Job {
            input_sha256: sha.into(),
            identity: Some(identity(sheet)),
            ..job()
        };
        assert!(check_resume(p, &replay, &now("ab", None), None).is_ok());
        let e = check_resume(p, &replay, &now("cd", None), None).unwrap_err();
        assert!(
            e.to_string().contains("not the file the run started with"),
            "{e}"
        );
        let e = check_resume(p, &replay, &now("ab", Some("A")), None).unwrap_err();
        assert!(e.to_string().contains("did not record the sheet"), "{e}");
    }

    #[test]
    fn a_new_run_will_not_replace_a_file_that_is_not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(&p, "not json\n{\"t\":\"done\"}\n").unwrap();
        let e = open_for_run(&p, &job(), None, false).err().unwrap();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "not json\n{\"t\":\"done\"}\n",
            "left as it was"
        );
    }
}
