//! The applies a user ran, kept per user: a line when an apply begins sending and one when it
//! finishes (the input's SHA-256, the target, the input and results paths, when, and what its rows
//! came to), so that the same content applied again to the same target is refused (SPEC: Results
//! CSV) however the file is named and wherever its results go, whether the earlier run finished or
//! is still going (running, interrupted or killed: it is to be resumed, not run again).
//!
//! The list is `runs.jsonl` in pcbulk's state folder: `$PCBULK_STATE_DIR`, else
//! `$XDG_STATE_HOME/pcbulk`, else `~/.local/state/pcbulk`. It is an aid, never a reason for a run to
//! fail: a list that cannot be read or written (or no state folder at all) is named in a warning
//! and the run goes on. It is read as a hostile file: only its newest [`MAX_READ`] bytes, lines
//! longer than [`MAX_LINE`] skipped, and a line that is not a record pcbulk writes (torn, edited,
//! garbage) ignored. Lines are appended through `fsafe` (never through a link), whole, one `write`
//! each, under an exclusive lock; a run's "started" line is appended under the same lock as the
//! check before it, so of two applies of one file started together only one passes.
//!
//! Lines, each a JSON object told apart by its fields:
//! - started ([`Start`]): a run began sending; `resume` is the command that finishes it.
//! - finished ([`Run`]): it finished; it ends the run's started line.
//! - withdrawn: a run that had its started line stopped before sending anything.
//! - moved: a run's records were moved aside (`moved` → `to`): a later refusal names where they are.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::target_key;
use crate::error::Error;
use crate::journal::Job;
use crate::report::summary::Summary;
use crate::results::Status;

/// Overrides where the list is kept (tests, or a user who wants it elsewhere).
pub const STATE_DIR_ENV: &str = "PCBULK_STATE_DIR";
const FILE: &str = "runs.jsonl";
/// The most of the list read: its newest lines (a line is a few hundred bytes: tens of thousands of
/// runs).
pub const MAX_READ: u64 = 8 << 20;
/// The longest line read; pcbulk never writes a longer one.
pub const MAX_LINE: usize = 16 << 10;
/// The longest text field (a path, a URL, a command) a line may hold.
const MAX_FIELD: usize = 4096;
const FIX: &str = "pcbulk keeps its list of runs there: move what is at that path away, \
                   or set PCBULK_STATE_DIR to another folder";
/// How long a look at the list waits for another pcbulk's to end before it goes on unlocked (a
/// single O_APPEND write does not mix with another's).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// One finished apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub input_sha256: String,
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

fn text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD && !s.chars().any(char::is_control)
}

fn sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn time(s: &str) -> bool {
    text(s) && s.len() <= 32
}

impl Entry {
    /// Whether a line read back is one pcbulk could have written: anything else is ignored.
    fn is_sound(&self) -> bool {
        match self {
            Entry::Moved(m) => text(&m.moved) && text(&m.to) && time(&m.at),
            Entry::Withdrawn(w) => {
                sha(&w.input_sha256) && text(&w.target) && text(&w.results) && time(&w.withdrawn)
            }
            Entry::Started(s) => {
                sha(&s.input_sha256)
                    && text(&s.target)
                    && text(&s.input)
                    && text(&s.results)
                    && time(&s.started)
                    && text(&s.resume)
            }
            Entry::Finished(r) => {
                sha(&r.input_sha256)
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
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let command = super::resume_command(args);
        let resume = match std::env::current_dir() {
            Ok(dir) => format!(
                "cd {} && {command}",
                super::shell_quote(&dir.display().to_string())
            ),
            Err(_) => command,
        };
        Start {
            input_sha256: job.input_sha256.clone(),
            target: job.target.clone(),
            input: absolute(Path::new(&job.input)).display().to_string(),
            results: absolute(results).display().to_string(),
            started: super::records::utc(std::time::SystemTime::now()),
            // A command that cannot be shown as it is (a control character, a huge command line)
            // is described instead: the line must stay one pcbulk reads back.
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

fn env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// pcbulk's state folder, if the environment gives one.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(d) = env(STATE_DIR_ENV) {
        return Some(d);
    }
    // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    if let Some(d) = env("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
        return Some(d.join("pcbulk"));
    }
    env("HOME").map(|h| h.join(".local").join("state").join("pcbulk"))
}

/// Where the list of runs is kept.
pub fn path() -> Option<PathBuf> {
    state_dir().map(|d| d.join(FILE))
}

/// The list's path, or (once per process) a warning that there is none, so the guard is off.
fn list_or_warn() -> Option<PathBuf> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let list = path();
    if list.is_none() {
        WARNED.call_once(|| {
            eprintln!(
                "pcbulk: warning: no state folder for pcbulk's list of runs (PCBULK_STATE_DIR, \
                 XDG_STATE_HOME and HOME are all unset), so an apply of this same content to this \
                 target from a copy of the file or with another --out will not be refused, and \
                 this run will not be remembered. Set PCBULK_STATE_DIR to a folder to turn that \
                 guard on"
            );
        });
    }
    list
}

/// What the list at `path` holds against a new run of this content on this target writing
/// `results` (see [`Earlier`]). A list that cannot be read is named in a warning and counts as
/// empty.
pub fn look_up(path: &Path, input_sha256: &str, target: &str, results: &Path) -> Option<Earlier> {
    let bytes = match crate::fsafe::open_read(path, FIX).and_then(|mut f| read_tail(&mut f)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn_unreadable(path, &e);
            return None;
        }
    };
    earlier(&bytes, input_sha256, target, results)
}

fn warn_unreadable(path: &Path, e: &io::Error) {
    eprintln!(
        "pcbulk: warning: cannot read the list of runs {} ({e}); an earlier apply of this file is \
         looked for beside the results file only",
        path.display()
    );
}

/// [`look_up`] in the list's bytes: read newest first, the first line that counts decides.
fn earlier(bytes: &[u8], input_sha256: &str, target: &str, results: &Path) -> Option<Earlier> {
    let key = target_key(target);
    let results = absolute(results).display().to_string();
    let ours = |sha: &str, t: &str| sha.eq_ignore_ascii_case(input_sha256) && target_key(t) == key;
    // Where moved-aside results are now, by the path they had.
    let mut moved: HashMap<String, String> = HashMap::new();
    // Results paths whose runs ended (finished or withdrawn) after the lines still to be read.
    let mut ended: HashSet<String> = HashSet::new();
    let entries = bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| !line.is_empty() && line.len() <= MAX_LINE)
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
        .filter(Entry::is_sound);
    for entry in entries {
        match entry {
            Entry::Moved(m) => {
                let now = moved.get(&m.to).cloned().unwrap_or(m.to);
                moved.insert(m.moved, now);
            }
            Entry::Withdrawn(w) if ours(&w.input_sha256, &w.target) => {
                ended.insert(w.results);
            }
            Entry::Finished(r) if ours(&r.input_sha256, &r.target) => {
                let now = moved.get(&r.results).cloned();
                return Some(Earlier::Finished(r, now));
            }
            // A run with this very results file is the results file's business: its journal says
            // whether it is to be resumed (`records::check`).
            Entry::Started(s)
                if ours(&s.input_sha256, &s.target)
                    && s.results != results
                    && !ended.contains(&s.results) =>
            {
                return Some(Earlier::Unfinished(s));
            }
            _ => {}
        }
    }
    None
}

/// The newest [`MAX_READ`] bytes of the list, from the start of a line.
fn read_tail(file: &mut File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let from = len.saturating_sub(MAX_READ);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    if from > 0 {
        // The first line read is cut: start after it.
        let start = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
        bytes.drain(..start);
    }
    Ok(bytes)
}

/// Refuses (exit 2) an apply of content that a finished run already applied to the same target, or
/// that another run (with another results file) began sending there and has not finished.
/// Looked at before anything is asked or sent; [`begin`] looks again under the list's lock.
pub fn refuse_repeat(job: &Job, results: &Path) -> Result<(), Error> {
    let Some(list) = list_or_warn() else {
        return Ok(());
    };
    match look_up(&list, &job.input_sha256, &job.target, results) {
        Some(earlier) => Err(refusal(job, &earlier, &list)),
        None => Ok(()),
    }
}

fn refusal(job: &Job, earlier: &Earlier, list: &Path) -> Error {
    let input = absolute(Path::new(&job.input)).display().to_string();
    let (earlier_input, verb) = match earlier {
        Earlier::Finished(r, _) => (&r.input, "was"),
        Earlier::Unfinished(s) => (&s.input, "is being"),
    };
    let what = if *earlier_input == input {
        format!("{} {verb}", job.input)
    } else {
        format!(
            "{} has the same content as {earlier_input}, which {verb}",
            job.input
        )
    };
    // Named as the earlier run named it, and as this one does where that differs.
    let earlier_target = match earlier {
        Earlier::Finished(r, _) => &r.target,
        Earlier::Unfinished(s) => &s.target,
    };
    let target = if *earlier_target == job.target {
        job.target.clone()
    } else {
        format!("{earlier_target} (the service {} names too)", job.target)
    };
    match earlier {
        Earlier::Finished(r, now) => {
            let results = match now {
                Some(now) => format!("{now} (moved aside from {})", r.results),
                None => r.results.clone(),
            };
            Error::usage(format!(
                "{what} already applied to {} by the run that finished at {} ({}; its results: \
                 {results}). Applying it again would send every row again (notes would be added \
                 twice): give --force to do it anyway. (pcbulk's list of runs: {})",
                target,
                r.finished,
                r.did(),
                list.display()
            ))
        }
        Earlier::Unfinished(s) => Error::usage(format!(
            "{what} applied to {} by a run that started at {} and has not finished (it is running \
             now, or it was interrupted or killed; its results: {}). Another run of it could send \
             rows twice (notes would be added twice): let that run end, or finish it with `{}`; \
             or give --force to run this one anyway. (pcbulk's list of runs: {})",
            target,
            s.started,
            s.results,
            s.resume,
            list.display()
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
            target: self.start.target.clone(),
            results: self.start.results.clone(),
            withdrawn: super::records::utc(std::time::SystemTime::now()),
        };
        if let Err(e) = locked(&self.list, |file| append_to(file, &w)) {
            warn_unwritable(&self.list, &e);
        }
    }
}

/// Just before an apply (a new run, or with `check` false a forced run or a resume) begins sending:
/// with the list locked, refuses it as [`refuse_repeat`] does when `check`, else adds its started
/// line. Two applies of one content started together: one passes, the other sees its line.
pub fn begin(job: &Job, results: &Path, check: bool) -> Result<Option<Begun>, Error> {
    let Some(list) = list_or_warn() else {
        return Ok(None);
    };
    let start = Start::of(job, results);
    let outcome = locked(&list, |file| {
        if check {
            let bytes = read_tail(file)?;
            if let Some(e) = earlier(&bytes, &job.input_sha256, &job.target, results) {
                return Ok(Err(e));
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
        Ok(Err(earlier)) => Err(refusal(job, &earlier, &list)),
        Err(e) => {
            warn_unwritable(&list, &e);
            Ok(None)
        }
    }
}

fn warn_unwritable(list: &Path, e: &io::Error) {
    eprintln!(
        "pcbulk: warning: cannot add this run to the list of runs {} ({e}); applying this file to \
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
    let named = |bytes: &[u8]| {
        bytes
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty() && line.len() <= MAX_LINE)
            .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
            .any(|e| match e {
                Entry::Finished(r) => r.results == from,
                Entry::Started(s) => s.results == from,
                Entry::Moved(m) => m.to == from,
                Entry::Withdrawn(_) => false,
            })
    };
    let done = locked(&list, |file| {
        if named(&read_tail(file)?) {
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

/// Runs `f` on the list (created if need be), holding its lock for the whole of `f`.
fn locked<T>(list: &Path, f: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
    if let Some(dir) = list.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let mut file = crate::fsafe::append_or_create(list, FIX)?;
    let locked = lock(&file);
    let done = f(&mut file);
    if locked {
        let _ = file.unlock();
    }
    done
}

/// Appends `line` to the open list (its lock held), as one whole line.
fn append_to<T: Serialize>(file: &mut File, line: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(line).map_err(io::Error::other)?;
    if line.len() >= MAX_LINE {
        return Err(io::Error::other("the run's record is too long to keep"));
    }
    line.push(b'\n');
    // A line torn by a crash must not swallow this one.
    if !ends_whole(file)? {
        line.insert(0, b'\n');
    }
    file.write_all(&line).and_then(|()| file.sync_data())
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

/// Whether the file is empty or ends with a line break.
fn ends_whole(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finished run [`look_up`] finds for a new run writing elsewhere.
    fn find(list: &Path, sha: &str, target: &str) -> Option<Run> {
        match look_up(list, sha, target, Path::new("/elsewhere.csv")) {
            Some(Earlier::Finished(r, _)) => Some(r),
            _ => None,
        }
    }

    fn start(sha: char, target: &str, results: &str) -> Start {
        Start {
            input_sha256: sha.to_string().repeat(64),
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
        let look = |results: &str| look_up(&list, &sha, "http://localhost:1", Path::new(results));
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
            look_up(&list, &"a".repeat(64), "https://x", Path::new("/tmp/b.csv")),
            Some(Earlier::Finished(done, Some("/tmp/a.1.3.csv".into())))
        );
    }

    fn run(sha: char, target: &str) -> Run {
        Run {
            input_sha256: sha.to_string().repeat(64),
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

    #[test]
    fn a_corrupt_list_is_ignored_line_by_line_never_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join(FILE);
        let good = serde_json::to_string(&run('a', "https://x")).unwrap();
        let mut bad = run('a', "https://x");
        bad.results = "/tmp/\u{1b}[2Jevil".into();
        let mut not_hex = run('a', "https://x");
        not_hex.input_sha256 = "z".repeat(64);
        let mut odd_status = run('a', "https://x");
        odd_status.rows.insert("exploded".into(), 1);
        let mut junk = Vec::new();
        junk.extend_from_slice(b"\xff\xfe garbage\n{\"input_sha256\":\n");
        junk.extend_from_slice(&vec![b'x'; MAX_LINE + 10]);
        junk.push(b'\n');
        for r in [&bad, &not_hex, &odd_status] {
            junk.extend_from_slice(serde_json::to_string(r).unwrap().as_bytes());
            junk.push(b'\n');
        }
        junk.extend_from_slice(br#"{"input_sha256":1e999999,"rows":{"succeeded":-1}}"#);
        junk.push(b'\n');
        junk.extend_from_slice(&good.as_bytes()[..good.len() / 2]);
        std::fs::write(&list, &junk).unwrap();
        assert_eq!(find(&list, &"a".repeat(64), "https://x"), None);
        // A line appended after a torn one is whole and found.
        append(&list, &run('a', "https://x")).unwrap();
        assert_eq!(
            find(&list, &"a".repeat(64), "https://x"),
            Some(run('a', "https://x"))
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
