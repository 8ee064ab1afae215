//! The applies a user ran, kept per user: a line when an apply begins sending and one when it
//! finishes (what it applies — its [`Identity`] —, the input and results paths, when, and what its
//! rows came to), so that the same input applied again to the same target is refused (SPEC: Results
//! CSV) however the file is named or saved and wherever its results go, whether the earlier run
//! finished or is still going (running, interrupted or killed: it is to be resumed, not run again).
//!
//! The list is `runs.jsonl` in pcbulk's state folder: `$PCBULK_STATE_DIR`, else
//! `$XDG_STATE_HOME/pcbulk`, else `~/.local/state/pcbulk`. A list that cannot be opened or written
//! (or no state folder at all) is named in a warning and the run goes on. Its lines are read as
//! hostile text, only the newest [`MAX_READ`] bytes, but never skipped: a line that is not a record
//! pcbulk writes (edited, garbage, too long) stops the run (exit 2, naming the line), since what
//! it said may be a run that must not be applied twice. The one exception is a last line without
//! its line break: an append cut short by a crash, which is ignored and taken away by the next
//! append. Text fields hold any path or URL as it is (JSON escapes control characters). Lines are
//! appended through `fsafe` (never through a link), whole, one `write` each, under an exclusive
//! lock; a run's "started" line is appended under the same lock as the check before it, so of two
//! applies of one input started together only one passes.
//!
//! Lines, each a JSON object told apart by its fields:
//! - started ([`Start`]): a run began sending; `resume` is the command that finishes it; `run` is
//!   its own id.
//! - finished ([`Run`]): it finished; it ends the input's earlier lines.
//! - withdrawn: the run `run` stopped before sending anything: it ends that run's started line
//!   only.
//! - moved: a run's records were moved aside (`moved` → `to`): a later refusal names where they are.
//!
//! Lines an earlier pcbulk wrote have no `identity` (their input is the file's bytes,
//! `input_sha256`) and no `run`: they are matched by bytes and target, and a withdrawn line without
//! a `run` ends the started lines without one for its results file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::journal::{Identity, Job};
use crate::report::summary::Summary;
use crate::results::Status;

const FILE: &str = "runs.jsonl";
/// The most of the list read: its newest lines (a line is a few hundred bytes: tens of thousands of
/// runs).
pub const MAX_READ: u64 = 8 << 20;
/// The longest line read; pcbulk never writes a longer one (see [`append_to`]).
pub const MAX_LINE: usize = 128 << 10;
/// The longest text field (a path, a URL, a command) a line may hold.
const MAX_FIELD: usize = 16 << 10;
const FIX: &str = "pcbulk keeps its list of runs there: move what is at that path away, \
                   or set PCBULK_STATE_DIR to another folder";
/// How long a look at the list waits for another pcbulk's to end before it goes on unlocked (a
/// single O_APPEND write does not mix with another's).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// One finished apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The input file's bytes: what an earlier pcbulk took as the input.
    pub input_sha256: String,
    /// What the run applied; `None` in a line an earlier pcbulk wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub target: String,
    pub input: String,
    pub results: String,
    /// `2026-11-23 15:33:49 UTC`.
    pub finished: String,
    /// Rows by status (only statuses that occurred).
    pub rows: BTreeMap<String, u64>,
}

/// An apply that began sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub input_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// This run's own id, which its withdrawn line names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub target: String,
    pub input: String,
    pub results: String,
    /// `2026-11-23 15:33:49 UTC`.
    pub started: String,
    /// The shell command that finishes it: its own command line with `--resume`, run where it was.
    pub resume: String,
}

/// A run that had its started line ended before it sent anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Withdrawn {
    input_sha256: String,
    /// The run whose started line this ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    target: String,
    results: String,
    withdrawn: String,
}

/// A results file (and its journal) moved aside by a new run using its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Moved {
    moved: String,
    to: String,
    at: String,
}

/// A line of the list; each kind has a field no other has.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Moved(Moved),
    Withdrawn(Withdrawn),
    Started(Start),
    Finished(Run),
}

/// A text field: any text (a path may hold any character but NUL), bounded.
fn text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD && !s.contains('\0')
}

/// An identity as pcbulk writes it.
fn identity(i: &Option<Identity>) -> bool {
    i.as_ref().is_none_or(|i| {
        text(&i.operation)
            && i.operation.len() <= 64
            && text(&i.target)
            && i.sheet.as_deref().is_none_or(text)
            && i.mapping.len() <= 1024
            && i.mapping.iter().all(|m| text(m))
            && sha(&i.rows_sha256)
    })
}

/// A run id as pcbulk writes them (a GUID).
fn run_id(r: &Option<String>) -> bool {
    r.as_deref()
        .is_none_or(|r| uuid::Uuid::try_parse(r).is_ok())
}

fn sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn time(s: &str) -> bool {
    text(s) && s.len() <= 32
}

impl Entry {
    /// Whether a line read back is one pcbulk could have written.
    fn is_sound(&self) -> bool {
        match self {
            Entry::Moved(m) => text(&m.moved) && text(&m.to) && time(&m.at),
            Entry::Withdrawn(w) => {
                sha(&w.input_sha256)
                    && run_id(&w.run)
                    && text(&w.target)
                    && text(&w.results)
                    && time(&w.withdrawn)
            }
            Entry::Started(s) => {
                sha(&s.input_sha256)
                    && identity(&s.identity)
                    && run_id(&s.run)
                    && text(&s.target)
                    && text(&s.input)
                    && text(&s.results)
                    && time(&s.started)
                    && text(&s.resume)
            }
            Entry::Finished(r) => {
                sha(&r.input_sha256)
                    && identity(&r.identity)
                    && text(&r.target)
                    && text(&r.input)
                    && text(&r.results)
                    && time(&r.finished)
                    && r.rows.len() <= Status::ALL.len()
                    && r.rows
                        .keys()
                        .all(|k| Status::ALL.iter().any(|s| s.as_str() == k))
            }
        }
    }
}

impl Run {
    /// The record of a run that has just finished.
    pub fn finished(job: &Job, results: &Path, summary: &Summary) -> Run {
        let rows = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), summary.count_of(*s) as u64))
            .filter(|(_, n)| *n > 0)
            .collect();
        Run {
            input_sha256: job.input_sha256.clone(),
            identity: job.identity.clone(),
            target: job.target.clone(),
            input: absolute(Path::new(&job.input)).display().to_string(),
            results: absolute(results).display().to_string(),
            finished: super::records::utc(std::time::SystemTime::now()),
            rows,
        }
    }

    /// `3 succeeded, 1 invalid`, in the results' order of statuses.
    pub fn did(&self) -> String {
        let did: Vec<String> = Status::ALL
            .iter()
            .filter_map(|s| self.rows.get(s.as_str()).map(|n| format!("{n} {s}")))
            .collect();
        if did.is_empty() {
            "no rows".to_owned()
        } else {
            did.join(", ")
        }
    }
}

impl Start {
    /// The started line of this process's run.
    fn of(job: &Job, results: &Path) -> Start {
        let command = super::resume_command(std::env::args_os().collect());
        let resume = match std::env::current_dir() {
            Ok(dir) => format!("cd {} && {command}", super::shell_quote_os(dir.as_os_str())),
            Err(_) => command,
        };
        Start {
            input_sha256: job.input_sha256.clone(),
            identity: job.identity.clone(),
            run: Some(uuid::Uuid::new_v4().to_string()),
            target: job.target.clone(),
            input: absolute(Path::new(&job.input)).display().to_string(),
            results: absolute(results).display().to_string(),
            started: super::records::utc(std::time::SystemTime::now()),
            // A command too long to keep is described instead: the line must stay one pcbulk
            // reads back.
            resume: if text(&resume) {
                resume
            } else {
                "its own command with --resume added, run where it was".to_owned()
            },
        }
    }
}

/// What the list holds against a new run of some content on some target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// The newest finished run, and where its results are now if they were moved aside.
    Finished(Run, Option<String>),
    /// A run that began sending, with another results file, and has not finished.
    Unfinished(Start),
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Where the list of runs is kept.
pub fn path() -> Option<PathBuf> {
    crate::fsafe::state_dir().map(|d| d.join(FILE))
}

/// The list's path, or (once per process) a warning that there is none, so the guard is off.
fn list_or_warn() -> Option<PathBuf> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let list = path();
    if list.is_none() {
        WARNED.call_once(|| {
            tracing::warn!(
                "no state folder for pcbulk's list of runs (PCBULK_STATE_DIR, \
                 XDG_STATE_HOME, HOME and LOCALAPPDATA are all unset), so an apply of this same content to this \
                 target from a copy of the file or with another --out will not be refused, and \
                 this run will not be remembered. Set PCBULK_STATE_DIR to a folder to turn that \
                 guard on"
            );
        });
    }
    list
}

/// The newest part of the list: its bytes, from the start of a line, and where they start in it.
pub struct Tail {
    bytes: Vec<u8>,
    from: u64,
}

/// A line of the list that is not a record pcbulk writes: where it is, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line's number, when the whole list was read; else where it starts, in bytes.
    line: Option<usize>,
    at: u64,
    what: &'static str,
}

impl BadLine {
    /// The refusal (exit 2): the list, the line, and what to do.
    fn error(&self, list: &Path) -> Error {
        let at = match self.line {
            Some(n) => format!("line {n}"),
            None => format!("the line at byte {}", self.at),
        };
        Error::usage(format!(
            "pcbulk's list of runs {} {at} {}: it is not a line pcbulk writes, and pcbulk will not \
             guess what it said (it may record a run that must not be applied twice), so nothing \
             was sent. Look at that line, then repair it or delete it (each line is one JSON \
             object), or set PCBULK_STATE_DIR to another folder to start a new list (which \
             forgets the runs this one holds)",
            shown(&list.display().to_string()),
            self.what
        ))
    }
}

/// What the list at `path` holds against a new run of `job` writing `results` (see [`Earlier`]).
/// A list that cannot be opened is named in a warning and counts as empty; a line in it that
/// pcbulk did not write is an error.
pub fn look_up(path: &Path, job: &Job, results: &Path) -> Result<Option<Earlier>, BadLine> {
    let tail = match crate::fsafe::open_read(path, FIX).and_then(|mut f| read_tail(&mut f)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            warn_unreadable(path, &e);
            return Ok(None);
        }
    };
    earlier(&tail, job, results)
}

fn warn_unreadable(path: &Path, e: &io::Error) {
    tracing::warn!(
        "cannot read the list of runs {} ({e}); an earlier apply of this file is \
         looked for beside the results file only",
        shown(&path.display().to_string())
    );
}

/// Every line of the tail, oldest first, as a record pcbulk writes, or the first line that is not
/// one. A last line without its line break is an append cut short by a crash: left out.
fn entries(tail: &Tail) -> Result<Vec<Entry>, BadLine> {
    let mut lines: Vec<&[u8]> = tail.bytes.split(|&b| b == b'\n').collect();
    // After the last line break: empty, or a torn append.
    lines.pop();
    let mut at = tail.from;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let bad = |what| BadLine {
            line: (tail.from == 0).then_some(i + 1),
            at,
            what,
        };
        let entry = if line.len() > MAX_LINE {
            return Err(bad("is longer than any line pcbulk writes"));
        } else if line.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("is blank"));
        } else {
            serde_json::from_slice::<Entry>(line).map_err(|_| bad("is not a record of a run"))?
        };
        if !entry.is_sound() {
            return Err(bad("has a field pcbulk never writes (edited or damaged)"));
        }
        out.push(entry);
        at += line.len() as u64 + 1;
    }
    Ok(out)
}

/// [`look_up`] in the list's tail: read newest first, the first line that counts decides.
fn earlier(tail: &Tail, job: &Job, results: &Path) -> Result<Option<Earlier>, BadLine> {
    let results = absolute(results).display().to_string();
    let mut later = Later::default();
    for entry in entries(tail)?.into_iter().rev() {
        match entry {
            Entry::Moved(m) => later.moved(m),
            Entry::Withdrawn(w) => later.withdrawn(w, job),
            // A run that changed nothing (every row failed, say) is no reason to refuse the next
            // attempt; it still ends its input's earlier started lines.
            Entry::Finished(r)
                if job.same_input(r.identity.as_ref(), &r.input_sha256, &r.target)
                    && !r.rows.contains_key(Status::Succeeded.as_str()) =>
            {
                later.ended = true;
            }
            Entry::Finished(r)
                if job.same_input(r.identity.as_ref(), &r.input_sha256, &r.target) =>
            {
                let now = later.moved.get(&r.results).cloned();
                return Ok(Some(Earlier::Finished(r, now)));
            }
            // A run with this very results file is the results file's business: its journal says
            // whether it is to be resumed (`records::check`), unless its records were moved aside
            // since (a run killed after its journal's end, before its finished line): then it
            // finished, and nothing says what it did.
            Entry::Started(s)
                if !later.ended
                    && job.same_input(s.identity.as_ref(), &s.input_sha256, &s.target)
                    && !later.withdraws(&s) =>
            {
                if let Some(now) = later.moved.get(&s.results) {
                    return Ok(Some(Earlier::Finished(
                        unrecorded_end(s),
                        Some(now.clone()),
                    )));
                }
                if s.results != results {
                    return Ok(Some(Earlier::Unfinished(s)));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// What the lines after the one being read said, as [`earlier`] reads the list newest first: a
/// line about a run is read in the light of every line written after it.
#[derive(Default)]
struct Later {
    /// Where moved-aside results are now, by the path they had.
    moved: HashMap<String, String>,
    /// Runs withdrawn after the lines still to be read, by id.
    withdrawn: HashSet<String>,
    /// Runs withdrawn whose lines an earlier pcbulk wrote (no id), by results path.
    withdrawn_old: HashSet<String>,
    /// Whether a finished run of the input was read: the started lines before it are of runs
    /// that ended.
    ended: bool,
}

impl Later {
    /// Notes a move, following it through the moves written after it to where the file is now.
    fn moved(&mut self, m: Moved) {
        let now = self.moved.get(&m.to).cloned().unwrap_or(m.to);
        self.moved.insert(m.moved, now);
    }

    /// Notes a withdrawal: by run id, or (for a line without one) by results path when it is of
    /// this job's input.
    fn withdrawn(&mut self, w: Withdrawn, job: &Job) {
        match w.run {
            Some(run) => {
                self.withdrawn.insert(run);
            }
            None if job.same_input(None, &w.input_sha256, &w.target) => {
                self.withdrawn_old.insert(w.results);
            }
            None => {}
        }
    }

    /// Whether a started run was withdrawn by a line written after it.
    fn withdraws(&self, s: &Start) -> bool {
        match &s.run {
            Some(run) => self.withdrawn.contains(run),
            None => self.withdrawn_old.contains(&s.results),
        }
    }
}

/// A run whose records were moved aside with no finished line: taken as finished, having applied
/// its rows (what it did is in its records).
fn unrecorded_end(s: Start) -> Run {
    Run {
        input_sha256: s.input_sha256,
        identity: s.identity,
        target: s.target,
        input: s.input,
        results: s.results,
        finished: format!("{} or later (its end was not recorded)", s.started),
        rows: BTreeMap::new(),
    }
}

/// The newest [`MAX_READ`] bytes of the list, from the start of a line.
fn read_tail(file: &mut File) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    let from = len.saturating_sub(MAX_READ);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    let mut start = 0;
    if from > 0 {
        // The first line read is cut: start after it.
        start = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
        bytes.drain(..start);
    }
    Ok(Tail {
        bytes,
        from: from + start as u64,
    })
}

/// A text from the list or a path, fit for a terminal: control characters escaped.
fn shown(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Refuses (exit 2) an apply of an input that a finished run already applied to the same target,
/// or that another run (with another results file) began sending there and has not finished; and
/// an apply while the list holds a line pcbulk did not write. Looked at before anything is asked
/// or sent; [`begin`] looks again under the list's lock. A `resume` is not refused for a finished
/// run: it has nothing left to do, and gets what to say about that run (SPEC: Resume).
pub fn refuse_repeat(job: &Job, results: &Path, resume: bool) -> Result<Option<String>, Error> {
    let Some(list) = list_or_warn() else {
        return Ok(None);
    };
    match look_up(&list, job, results) {
        Ok(Some(Earlier::Finished(r, now))) if resume => Ok(Some(finished_elsewhere(&r, now))),
        Ok(Some(earlier)) => Err(refusal(job, &earlier, &list)),
        Ok(None) => Ok(None),
        Err(bad) => Err(bad.error(&list)),
    }
}

/// A finished run with another results file, for a resume that finds it: when, what, where.
fn finished_elsewhere(r: &Run, now: Option<String>) -> String {
    let results = now.unwrap_or_else(|| r.results.clone());
    let retry = match r.rows.contains_key(Status::Failed.as_str()) {
        true => format!(
            "; to re-attempt its failed rows, give --out {} --retry-failed",
            super::shell_quote_os(std::ffi::OsStr::new(&results))
        ),
        false => String::new(),
    };
    format!(
        "its run finished at {} ({}; its results: {}){retry}",
        r.finished,
        r.did(),
        shown(&results)
    )
}

fn refusal(job: &Job, earlier: &Earlier, list: &Path) -> Error {
    let input = absolute(Path::new(&job.input)).display().to_string();
    let (earlier_input, verb) = match earlier {
        Earlier::Finished(r, _) => (&r.input, "was"),
        Earlier::Unfinished(s) => (&s.input, "is being"),
    };
    let what = if *earlier_input == input {
        format!("{} {verb}", shown(&job.input))
    } else {
        format!(
            "{} holds the same input as {} (the same rows for the same operation), which {verb}",
            shown(&job.input),
            shown(earlier_input)
        )
    };
    // Named as the earlier run named it, and as this one does where that differs.
    let earlier_target = match earlier {
        Earlier::Finished(r, _) => &r.target,
        Earlier::Unfinished(s) => &s.target,
    };
    let target = if *earlier_target == job.target {
        shown(&job.target)
    } else {
        format!(
            "{} (the service {} names too)",
            shown(earlier_target),
            shown(&job.target)
        )
    };
    let list = shown(&list.display().to_string());
    match earlier {
        Earlier::Finished(r, now) => {
            let results = match now {
                Some(now) => format!("{} (moved aside from {})", shown(now), shown(&r.results)),
                None => shown(&r.results),
            };
            Error::usage(format!(
                "{what} already applied to {} by the run that finished at {} ({}; its results: \
                 {results}). Applying it again would send every row again (notes would be added \
                 twice): give --force to do it anyway. (pcbulk's list of runs: {})",
                target,
                r.finished,
                r.did(),
                list
            ))
        }
        Earlier::Unfinished(s) => Error::usage(format!(
            "{what} applied to {} by a run that started at {} and has not finished (it is running \
             now, or it was interrupted or killed; its results: {}). Another run of it could send \
             rows twice (notes would be added twice): let that run end, or finish it with `{}`; \
             or give --force to run this one anyway. (pcbulk's list of runs: {})",
            target,
            s.started,
            shown(&s.results),
            shown(&s.resume),
            list
        )),
    }
}

/// A run's started line in the list, until it starts sending: a run that stops before that (an
/// error setting it up) ends its line with a withdrawn one, so it stands in no one's way.
pub struct Begun {
    list: PathBuf,
    start: Start,
    sending: bool,
}

impl Begun {
    /// The run is sending: from here its line stays until it finishes (or is resumed and finishes).
    pub fn sending(mut self) {
        self.sending = true;
    }
}

impl Drop for Begun {
    fn drop(&mut self) {
        if self.sending {
            return;
        }
        let w = Withdrawn {
            input_sha256: self.start.input_sha256.clone(),
            run: self.start.run.clone(),
            target: self.start.target.clone(),
            results: self.start.results.clone(),
            withdrawn: super::records::utc(std::time::SystemTime::now()),
        };
        if let Err(e) = locked(&self.list, |file| append_to(file, &w)) {
            warn_unwritable(&self.list, &e);
        }
    }
}

/// Just before an apply (a new run, or with `check` false a forced run or a resume) begins sending,
/// once everything that can refuse it has been checked: with the list locked, refuses it as
/// [`refuse_repeat`] does when `check`, else adds its started line. Two applies of one input started
/// together: one passes, the other sees its line.
pub fn begin(job: &Job, results: &Path, check: bool) -> Result<Option<Begun>, Error> {
    let Some(list) = list_or_warn() else {
        return Ok(None);
    };
    let start = Start::of(job, results);
    let outcome = locked(&list, |file| {
        if check {
            match earlier(&read_tail(&mut file.file)?, job, results) {
                Ok(None) => {}
                Ok(Some(e)) => return Ok(Err(refusal(job, &e, &list))),
                Err(bad) => return Ok(Err(bad.error(&list))),
            }
        }
        append_to(file, &start).map(Ok)
    });
    match outcome {
        Ok(Ok(())) => Ok(Some(Begun {
            list,
            start,
            sending: false,
        })),
        Ok(Err(refused)) => Err(refused),
        Err(e) => {
            warn_unwritable(&list, &e);
            Ok(None)
        }
    }
}

fn warn_unwritable(list: &Path, e: &io::Error) {
    tracing::warn!(
        "cannot add this run to the list of runs {} ({e}); applying this file to \
         this target again will be refused only where its results file is",
        list.display()
    );
}

/// Adds a finished run to the list; a list that cannot be written is named in a warning.
pub fn record(run: &Run) {
    let Some(list) = path() else {
        return;
    };
    if let Err(e) = append(&list, run) {
        warn_unwritable(&list, &e);
    }
}

/// After a new run moved `results` (and its journal) aside to `to`: if the list names that results
/// file, it learns where the records went, so a refusal names the file that holds them.
pub fn moved(results: &Path, to: &Path) {
    let Some(list) = path() else {
        return;
    };
    // No list, nothing in it to correct (and a plan's files moved aside create none).
    if !matches!(crate::fsafe::look(&list, FIX), Ok(Some(_))) {
        return;
    }
    let from = absolute(results).display().to_string();
    let m = Moved {
        moved: from.clone(),
        to: absolute(to).display().to_string(),
        at: super::records::utc(std::time::SystemTime::now()),
    };
    // A list with a line pcbulk did not write is left as it is (the next apply stops on that line).
    let named = |tail: &Tail| {
        entries(tail).is_ok_and(|entries| {
            entries.iter().any(|e| match e {
                Entry::Finished(r) => r.results == from,
                Entry::Started(s) => s.results == from,
                Entry::Moved(m) => m.to == from,
                Entry::Withdrawn(_) => false,
            })
        })
    };
    let done = locked(&list, |file| {
        if named(&read_tail(&mut file.file)?) {
            append_to(file, &m)?;
        }
        Ok(())
    });
    match done {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn_unwritable(&list, &e),
    }
}

/// Appends `line` as one whole line.
pub fn append<T: Serialize>(list: &Path, line: &T) -> io::Result<()> {
    locked(list, |file| append_to(file, line))
}

/// The list, open for appending, and whether this process holds its lock.
struct Held {
    file: File,
    locked: bool,
}

/// Runs `f` on the list (created if need be), holding its lock for the whole of `f` (or, when
/// another pcbulk holds it for longer than [`LOCK_WAIT`], without it).
fn locked<T>(list: &Path, f: impl FnOnce(&mut Held) -> io::Result<T>) -> io::Result<T> {
    if let Some(dir) = list.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let file = crate::fsafe::append_or_create(list, FIX)?;
    let locked = lock(&file);
    let mut held = Held { file, locked };
    let done = f(&mut held);
    if locked {
        let _ = held.file.unlock();
    }
    done
}

/// Appends `line` to the open list (its lock held), as one whole line, and only a line that reads
/// back as the record it is: the list never holds a line its reader refuses.
fn append_to<T: Serialize>(held: &mut Held, line: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(line).map_err(io::Error::other)?;
    if line.len() > MAX_LINE {
        return Err(io::Error::other(
            "the run's record is too long to keep (a path of many kilobytes?)",
        ));
    }
    if !serde_json::from_slice::<Entry>(&line).is_ok_and(|e| e.is_sound()) {
        return Err(io::Error::other(
            "the run's record would not read back as one (a path with a NUL character?)",
        ));
    }
    line.push(b'\n');
    cut_torn_end(held)?;
    let file = &mut held.file;
    file.write_all(&line).and_then(|()| file.sync_data())
}

/// Takes away a last line without its line break (an append cut short by a crash), so that the
/// line appended next is whole and the torn one never becomes a line in the middle. Without the
/// lock (another pcbulk may be appending) and for a tail longer than any line (not a torn line),
/// a line break is added instead, and the reader stops on that line.
fn cut_torn_end(held: &mut Held) -> io::Result<()> {
    let file = &mut held.file;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let from = len.saturating_sub(MAX_LINE as u64 + 1);
    file.seek(SeekFrom::Start(from))?;
    let mut end = Vec::new();
    file.take(len - from).read_to_end(&mut end)?;
    if end.last() == Some(&b'\n') {
        return Ok(());
    }
    match memchr::memrchr(b'\n', &end) {
        Some(i) if held.locked => file.set_len(from + i as u64 + 1),
        None if held.locked && from == 0 => file.set_len(0),
        // Not a line pcbulk wrote: the line break keeps the record apart from it.
        _ => file.write_all(b"\n"),
    }
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Takes the list's lock, waiting at most [`LOCK_WAIT`] for another pcbulk's.
fn lock(file: &File) -> bool {
    let until = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job as an earlier pcbulk's lines name it: by the file's bytes (`sha`) and the target.
    fn job(sha: &str, target: &str) -> Job {
        Job {
            input_sha256: sha.into(),
            identity: None,
            input: "in.csv".into(),
            operation: None,
            target: target.into(),
            plan: false,
            from_plan: None,
        }
    }

    /// The finished run [`look_up`] finds for a new run writing elsewhere.
    fn find(list: &Path, sha: &str, target: &str) -> Option<Run> {
        match look_up(list, &job(sha, target), Path::new("/elsewhere.csv")) {
            Ok(Some(Earlier::Finished(r, _))) => Some(r),
            _ => None,
        }
    }

    fn start(sha: char, target: &str, results: &str) -> Start {
        Start {
            input_sha256: sha.to_string().repeat(64),
            identity: None,
            run: None,
            target: target.into(),
            input: "/tmp/in.csv".into(),
            results: results.into(),
            started: "2026-11-23 15:33:49 UTC".into(),
            resume: "cd /tmp && pcbulk apply in.csv --resume".into(),
        }
    }

    fn withdrawn(sha: char, target: &str, results: &str) -> Withdrawn {
        Withdrawn {
            input_sha256: sha.to_string().repeat(64),
            run: None,
            target: target.into(),
            results: results.into(),
            withdrawn: "2026-11-23 15:33:50 UTC".into(),
        }
    }

    #[test]
    fn a_run_started_elsewhere_and_not_finished_is_found_until_it_finishes_or_is_withdrawn() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let sha = "a".repeat(64);
        let look = |results: &str| {
            look_up(&list, &job(&sha, "http://localhost:1"), Path::new(results)).unwrap()
        };
        append(&list, &start('a', "http://127.0.0.1:1/", "/tmp/a.csv")).unwrap();
        append(&list, &start('b', "http://127.0.0.1:1", "/tmp/b.csv")).unwrap();
        assert_eq!(
            look("/tmp/fresh.csv"),
            Some(Earlier::Unfinished(start(
                'a',
                "http://127.0.0.1:1/",
                "/tmp/a.csv"
            ))),
            "the same service under another name"
        );
        assert_eq!(look("/tmp/a.csv"), None, "its own results file decides");
        append(&list, &withdrawn('a', "http://127.0.0.1:1", "/tmp/a.csv")).unwrap();
        assert_eq!(look("/tmp/fresh.csv"), None, "withdrawn before sending");
        append(&list, &start('a', "http://127.0.0.1:1", "/tmp/a.csv")).unwrap();
        assert!(matches!(
            look("/tmp/fresh.csv"),
            Some(Earlier::Unfinished(_))
        ));
        let mut done = run('a', "http://127.0.0.1:1");
        done.results = "/tmp/a.csv".into();
        append(&list, &done).unwrap();
        assert_eq!(
            look("/tmp/fresh.csv"),
            Some(Earlier::Finished(done, None)),
            "a finished line supersedes its started line"
        );
    }

    #[test]
    fn a_finished_run_whose_records_were_moved_aside_is_named_where_they_are() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let mut done = run('a', "https://x");
        done.results = "/tmp/a.csv".into();
        append(&list, &done).unwrap();
        // Appended as `moved` does (which writes to the user's list, not this one).
        let m = |from: &str, to: &str| Moved {
            moved: from.into(),
            to: to.into(),
            at: "2026-11-23 15:33:49 UTC".into(),
        };
        append(&list, &m("/tmp/a.csv", "/tmp/a.1.csv")).unwrap();
        // Another run at /tmp/a.csv, moved aside in turn: the first run is still at a.1.
        append(&list, &m("/tmp/a.csv", "/tmp/a.2.csv")).unwrap();
        // And a.1 moved again (a run given --out a.1.csv): the first run followed there.
        append(&list, &m("/tmp/a.1.csv", "/tmp/a.1.3.csv")).unwrap();
        assert_eq!(
            look_up(
                &list,
                &job(&"a".repeat(64), "https://x"),
                Path::new("/tmp/b.csv")
            ),
            Ok(Some(Earlier::Finished(done, Some("/tmp/a.1.3.csv".into()))))
        );
    }

    fn run(sha: char, target: &str) -> Run {
        Run {
            input_sha256: sha.to_string().repeat(64),
            identity: None,
            target: target.into(),
            input: "in.csv".into(),
            results: "/tmp/in.results.csv".into(),
            finished: "2026-11-23 15:33:49 UTC".into(),
            rows: [("succeeded".to_owned(), 3), ("invalid".to_owned(), 1)].into(),
        }
    }

    #[test]
    fn the_newest_run_of_the_content_on_the_target_is_found() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("state").join(FILE);
        assert_eq!(find(&list, &"a".repeat(64), "https://x"), None);
        append(&list, &run('a', "https://x")).unwrap();
        let mut newer = run('a', "https://x");
        newer.results = "/tmp/other.csv".into();
        append(&list, &newer).unwrap();
        append(&list, &run('b', "https://x")).unwrap();
        append(&list, &run('a', "https://y")).unwrap();
        assert_eq!(find(&list, &"A".repeat(64), "https://x"), Some(newer));
        assert_eq!(find(&list, &"c".repeat(64), "https://x"), None);
        assert_eq!(
            run('a', "t").did(),
            "3 succeeded, 1 invalid",
            "in the results' order"
        );
    }

    /// The first line [`look_up`] stops on, if any.
    fn bad_line(list: &Path) -> Option<BadLine> {
        look_up(
            list,
            &job(&"a".repeat(64), "https://x"),
            Path::new("/e.csv"),
        )
        .err()
    }

    #[test]
    fn a_line_pcbulk_did_not_write_stops_the_look_naming_it_never_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let good = serde_json::to_string(&run('a', "https://x")).unwrap() + "\n";
        let mut not_hex = run('a', "https://x");
        not_hex.input_sha256 = "z".repeat(64);
        let mut odd_status = run('a', "https://x");
        odd_status.rows.insert("exploded".into(), 1);
        let bad: Vec<Vec<u8>> = vec![
            b"\xff\xfe garbage".to_vec(),
            b"{\"input_sha256\":".to_vec(),
            vec![b'x'; MAX_LINE + 10],
            serde_json::to_vec(&not_hex).unwrap(),
            serde_json::to_vec(&odd_status).unwrap(),
            br#"{"input_sha256":1e999999,"rows":{"succeeded":-1}}"#.to_vec(),
            b"   ".to_vec(),
        ];
        for line in bad {
            let mut bytes = good.clone().into_bytes();
            bytes.extend(&line);
            bytes.push(b'\n');
            bytes.extend(good.as_bytes());
            std::fs::write(&list, &bytes).unwrap();
            let bad = bad_line(&list).expect("refused");
            assert_eq!(bad.line, Some(2), "{}", String::from_utf8_lossy(&line));
            let e = bad.error(&list).to_string();
            assert!(
                e.contains("line 2") && e.contains("PCBULK_STATE_DIR"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_taken_away_by_the_next_append() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let mut other = run('b', "https://x");
        other.results = "/tmp/other.csv".into();
        let good = serde_json::to_string(&other).unwrap() + "\n";
        let torn = serde_json::to_string(&run('a', "https://x")).unwrap();
        std::fs::write(&list, format!("{good}{}", &torn[..torn.len() / 2])).unwrap();
        assert_eq!(find(&list, &"a".repeat(64), "https://x"), None);
        assert_eq!(bad_line(&list), None);
        append(&list, &run('a', "https://x")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&list).unwrap(),
            format!("{good}{torn}\n"),
            "the torn line is gone, the new one whole"
        );
        assert_eq!(
            find(&list, &"a".repeat(64), "https://x"),
            Some(run('a', "https://x"))
        );
    }

    #[test]
    fn paths_and_urls_with_control_characters_are_kept_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let mut r = run('a', "http://127.0.0.1:1\r");
        r.results = "/tmp/tab\there \u{1b}[2J.csv".into();
        r.input = "/tmp/in\nput.csv".into();
        append(&list, &r).unwrap();
        assert_eq!(
            std::fs::read_to_string(&list).unwrap().lines().count(),
            1,
            "one line: escaped"
        );
        assert_eq!(
            find(&list, &"a".repeat(64), "http://127.0.0.1:1\r"),
            Some(r.clone())
        );
        let e = refusal(
            &job(&"a".repeat(64), "http://127.0.0.1:1\r"),
            &Earlier::Finished(r, None),
            &list,
        )
        .to_string();
        assert!(!e.chars().any(|c| c == '\u{1b}' || c == '\t'), "{e}");
        assert!(e.contains("tab\\there"), "{e}");
    }

    fn identity(sheet: Option<&str>, rows: char) -> Identity {
        Identity {
            operation: "support-contact".into(),
            target: "http://localhost:1".into(),
            sheet: sheet.map(str::to_owned),
            mapping: Vec::new(),
            rows_sha256: rows.to_string().repeat(64),
        }
    }

    #[test]
    fn a_run_is_found_by_what_it_applies_not_by_the_file_s_bytes() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let mut done = run('a', "http://127.0.0.1:1");
        done.identity = Some(identity(Some("A"), 'e'));
        append(&list, &done).unwrap();
        let look = |bytes: char, id: Identity| {
            let mut j = job(&bytes.to_string().repeat(64), "http://127.0.0.1:1");
            j.identity = Some(id);
            look_up(&list, &j, Path::new("/e.csv")).unwrap()
        };
        assert!(
            look('b', identity(Some("A"), 'e')).is_some(),
            "other bytes, the same rows"
        );
        assert!(
            look('a', identity(Some("B"), 'e')).is_some(),
            "the same rows from another sheet"
        );
        assert!(
            look('a', identity(None, 'e')).is_some(),
            "the same rows saved as CSV"
        );
        assert_eq!(look('a', identity(Some("A"), 'f')), None, "other rows");
    }

    #[test]
    fn a_withdrawn_line_ends_only_its_own_run_s_started_line() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let id = identity(None, 'e');
        let started = |run: &str| Start {
            identity: Some(id.clone()),
            run: Some(run.to_owned()),
            ..start('a', "http://127.0.0.1:1", "/tmp/a.csv")
        };
        let (first, second) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        append(&list, &started(&first)).unwrap();
        // A second run of the same input at the same results path (a resume) stops before sending.
        append(&list, &started(&second)).unwrap();
        let mut w = withdrawn('a', "http://127.0.0.1:1", "/tmp/a.csv");
        w.run = Some(second);
        append(&list, &w).unwrap();
        let mut j = job(&"a".repeat(64), "http://127.0.0.1:1");
        j.identity = Some(id.clone());
        assert_eq!(
            look_up(&list, &j, Path::new("/tmp/copy.csv")).unwrap(),
            Some(Earlier::Unfinished(started(&first))),
            "the first run is still unfinished"
        );
    }

    #[test]
    fn only_the_newest_part_of_a_huge_list_is_read() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let old = serde_json::to_string(&run('a', "https://x")).unwrap();
        let mut bytes = format!("{old}\n").into_bytes();
        let filler = serde_json::to_string(&run('f', "https://x")).unwrap() + "\n";
        while (bytes.len() as u64) < MAX_READ + 1024 {
            bytes.extend_from_slice(filler.as_bytes());
        }
        std::fs::write(&list, &bytes).unwrap();
        assert_eq!(
            find(&list, &"a".repeat(64), "https://x"),
            None,
            "beyond the bound"
        );
        assert!(find(&list, &"f".repeat(64), "https://x").is_some());
    }

    #[test]
    fn appends_from_many_threads_each_leave_one_whole_line() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        std::thread::scope(|s| {
            for i in 0..8 {
                let list = &list;
                s.spawn(move || {
                    let mut r = run('a', "https://x");
                    r.results = format!("/tmp/{i}.csv");
                    append(list, &r).unwrap();
                });
            }
        });
        let text = std::fs::read_to_string(&list).unwrap();
        let mut results: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Run>(l).unwrap().results)
            .collect();
        results.sort();
        let want: Vec<String> = (0..8).map(|i| format!("/tmp/{i}.csv")).collect();
        assert_eq!(results, want);
    }

    #[cfg(unix)]
    #[test]
    fn a_list_that_is_a_link_is_neither_read_nor_written_through() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("precious");
        std::fs::write(
            &target,
            serde_json::to_string(&run('a', "https://x")).unwrap() + "\n",
        )
        .unwrap();
        let before = std::fs::read(&target).unwrap();
        let list = d.path().join(FILE);
        std::os::unix::fs::symlink(&target, &list).unwrap();
        assert_eq!(find(&list, &"a".repeat(64), "https://x"), None);
        assert!(append(&list, &run('b', "https://x")).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), before);
    }
}
