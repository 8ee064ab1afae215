//! The applies a user finished, kept per user: one line per finished apply (the input's SHA-256,
//! the target, the input and results paths, when it finished and what its rows came to), so that
//! the same content applied again to the same target is refused (SPEC: Results CSV) however the file
//! is named and wherever its results go.
//!
//! The list is `runs.jsonl` in pcbulk's state folder: `$PCBULK_STATE_DIR`, else
//! `$XDG_STATE_HOME/pcbulk`, else `~/.local/state/pcbulk`. It is an aid, never a reason for a run to
//! fail: a list that cannot be read or written is named in a warning and the run goes on. It is read
//! as a hostile file: only its newest [`MAX_READ`] bytes, lines longer than [`MAX_LINE`] skipped,
//! and a line that is not a record pcbulk writes (torn, edited, garbage) ignored. Lines are appended
//! through `fsafe` (never through a link), whole, one `write` each, under an exclusive lock, so runs
//! that finish at the same moment each add their own line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

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
/// The longest text field (a path, a URL) a line may hold.
const MAX_FIELD: usize = 4096;
const FIX: &str = "pcbulk keeps its list of finished runs there: move what is at that path away, \
                   or set PCBULK_STATE_DIR to another folder";
/// How long an append waits for another pcbulk's append to end before it writes anyway (a single
/// O_APPEND write does not mix with another's).
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

    /// Whether a line read back is one pcbulk could have written: anything else is ignored.
    fn is_sound(&self) -> bool {
        let text =
            |s: &str| !s.is_empty() && s.len() <= MAX_FIELD && !s.chars().any(char::is_control);
        self.input_sha256.len() == 64
            && self.input_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && text(&self.target)
            && text(&self.input)
            && text(&self.results)
            && text(&self.finished)
            && self.finished.len() <= 32
            && self.rows.len() <= Status::ALL.len()
            && self
                .rows
                .keys()
                .all(|k| Status::ALL.iter().any(|s| s.as_str() == k))
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

/// Where the list of finished runs is kept.
pub fn path() -> Option<PathBuf> {
    state_dir().map(|d| d.join(FILE))
}

/// The newest finished run of this content on this target that the list at `path` holds. A list
/// that cannot be read is named in a warning and counts as empty.
pub fn find(path: &Path, input_sha256: &str, target: &str) -> Option<Run> {
    let bytes = match read_tail(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!(
                "pcbulk: warning: cannot read the list of finished runs {} ({e}); an earlier \
                 apply of this file is looked for beside the results file only",
                path.display()
            );
            return None;
        }
    };
    // Newest first: the last line that fits.
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| !line.is_empty() && line.len() <= MAX_LINE)
        .filter_map(|line| serde_json::from_slice::<Run>(line).ok())
        .find(|r| {
            r.is_sound() && r.input_sha256.eq_ignore_ascii_case(input_sha256) && r.target == target
        })
}

/// The newest [`MAX_READ`] bytes of the list, from the start of a line.
fn read_tail(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = crate::fsafe::open_read(path, FIX)?;
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

/// Refuses (exit 2) an apply of content that a finished run already applied to the same target.
pub fn refuse_repeat(job: &Job) -> Result<(), Error> {
    let Some(list) = path() else {
        return Ok(());
    };
    let Some(earlier) = find(&list, &job.input_sha256, &job.target) else {
        return Ok(());
    };
    let input = absolute(Path::new(&job.input)).display().to_string();
    let what = if earlier.input == input {
        format!("{} was", job.input)
    } else {
        format!(
            "{} has the same content as {}, which was",
            job.input, earlier.input
        )
    };
    Err(Error::usage(format!(
        "{what} already applied to {} by the run that finished at {} ({}; its results: {}). \
         Applying it again would send every row again (notes would be added twice): give --force \
         to do it anyway. (pcbulk's list of finished runs: {})",
        job.target,
        earlier.finished,
        earlier.did(),
        earlier.results,
        list.display()
    )))
}

/// Adds a finished run to the list; a list that cannot be written is named in a warning.
pub fn record(run: &Run) {
    let Some(list) = path() else {
        return;
    };
    if let Err(e) = append(&list, run) {
        eprintln!(
            "pcbulk: warning: cannot add this run to the list of finished runs {} ({e}); applying \
             this file to this target again will be refused only where its results file is",
            list.display()
        );
    }
}

/// Appends `run` as one whole line.
pub fn append(list: &Path, run: &Run) -> io::Result<()> {
    let mut line = serde_json::to_vec(run).map_err(io::Error::other)?;
    if line.len() >= MAX_LINE {
        return Err(io::Error::other("the run's record is too long to keep"));
    }
    line.push(b'\n');
    if let Some(dir) = list.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let mut file = crate::fsafe::append_or_create(list, FIX)?;
    let locked = lock(&file);
    // A line torn by a crash must not swallow this one.
    if !ends_whole(&mut file)? {
        line.insert(0, b'\n');
    }
    let written = file.write_all(&line).and_then(|()| file.sync_data());
    if locked {
        let _ = file.unlock();
    }
    written
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

/// Takes the list's lock, waiting at most [`LOCK_WAIT`] for another pcbulk's append.
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
