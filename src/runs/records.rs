//! An apply's records (its results file and journal) are never lost: a new run sets an earlier
//! run's records aside instead of writing over them, refuses to apply the same file to the same
//! target twice unless told to, and holds a lock so that one process at a time uses a results file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::Error;
use crate::journal::{self, Job};
use crate::results::Status;

/// Held for the whole run: another pcbulk using the same results file is refused while it is.
/// The lock file is removed when the run ends, by its holder, still locked: a process that opened
/// it meanwhile finds, once it holds its own lock, that the name is no longer that file, and tries
/// again.
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Takes the results file's lock (`.<results name>.lock` beside it), or refuses: another run is
/// using that results file.
pub fn lock(out: &Path) -> Result<Lock, Error> {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let path = out.with_file_name(format!(".{name}.lock"));
    let fix = "the lock file sits beside the results file, so give --out another path";
    let cannot = |e| Error::io(format!("cannot lock {}", path.display()), e);
    loop {
        let file = match crate::fsafe::look(&path, fix).map_err(cannot)? {
            Some(_) => crate::fsafe::open_append(&path, fix),
            None => crate::fsafe::create(&path, fix),
        }
        .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::usage(format!(
                    "another pcbulk is running with the results file {}: wait for it to end, or \
                     give --out another path",
                    out.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(cannot(e)),
        }
        if same_inode(&file, &path) {
            return Ok(Lock { file, path });
        }
        // The holder removed it as we opened it: the name is free again.
    }
}

#[cfg(unix)]
fn same_inode(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Before a new (not resumed) run, with the results file's lock held: an unfinished earlier run
/// beside the results is refused (it needs `--resume`); a finished run of the same input on the same
/// target in which some row succeeded is refused unless `force`. Nothing is moved yet (see [`set_aside`]): a run refused later
/// (not confirmed, say) leaves the earlier records where they are.
pub fn check(out: &Path, job: &Job, force: bool) -> Result<(), Error> {
    let journal_path = journal::path_for(out);
    let Some(journal_meta) = look(&journal_path)? else {
        return Ok(());
    };
    let earlier = read_earlier(&journal_path)?;
    let Some(before) = &earlier.job else {
        return Ok(());
    };
    let same = job.same_input(
        before.identity.as_ref(),
        &before.input_sha256,
        &before.target,
    );
    // An unfinished plan has nothing to finish (it wrote nothing): it is moved aside like any
    // earlier record.
    if !earlier.done && !before.plan {
        return Err(unfinished(&journal_path, &earlier, &before.input, same));
    }
    // A run in which no row succeeded changed nothing: the next attempt is not refused.
    let changed = earlier
        .outcomes
        .values()
        .any(|(_, o)| o.status == Status::Succeeded);
    if !force && changed && same {
        let when = journal_meta
            .modified()
            .ok()
            .map(utc)
            .unwrap_or_else(|| "earlier".into());
        return Err(Error::usage(format!(
            "{} was already applied to {} by the run that finished at {when} ({}; its \
             records: {} and {}). Applying it again would send every row again (notes \
             would be added twice): give --force to do it anyway",
            job.input,
            job.target,
            what_it_did(&earlier),
            out.display(),
            journal_path.display()
        )));
    }
    Ok(())
}

/// The journal beside the results, or why it cannot be taken for one pcbulk wrote.
fn read_earlier(journal_path: &Path) -> Result<journal::Replay, Error> {
    journal::read(journal_path).map_err(|e| match e {
        journal::ReadError::Io(e) => Error::io(
            format!("cannot read the journal {}", journal_path.display()),
            e,
        ),
        journal::ReadError::Misfit(m) => Error::Usage(format!(
            "{} line {}: {}: it is not a journal pcbulk wrote, and a new run will not replace \
             it; move it aside (rename it) to start a new run",
            journal_path.display(),
            m.line,
            m.what
        )),
    })
}

/// The refusal of a new run over an unfinished one: of the `same` input, it needs `--resume`; of
/// another, that one is finished first, or this run goes elsewhere.
fn unfinished(journal_path: &Path, earlier: &journal::Replay, input: &str, same: bool) -> Error {
    // Rows a stop skipped are not finished: a resume sends them.
    let finished = (earlier.outcomes.values())
        .filter(|(_, o)| o.status != Status::Skipped)
        .count();
    let finished = crate::text::count(finished, "row");
    Error::usage(if same {
        format!(
            "{} records an unfinished run ({finished} finished): run the same command with \
             --resume to finish it without applying anything twice",
            journal_path.display(),
        )
    } else {
        format!(
            "{} records an unfinished run of another input ({}, {finished} finished): finish \
             it first (its own file with --resume), or give this run another --out",
            journal_path.display(),
            crate::term::escape(input),
        )
    })
}

/// The earlier run's rows counted by status (`3 succeeded, 1 failed`), or `no rows`.
fn what_it_did(earlier: &journal::Replay) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for (_, o) in earlier.outcomes.values() {
        *counts.entry(o.status).or_insert(0usize) += 1;
    }
    let did: Vec<String> = Status::ALL
        .iter()
        .filter_map(|s| counts.get(s).map(|n| format!("{n} {s}")))
        .collect();
    if did.is_empty() {
        "no rows".to_owned()
    } else {
        did.join(", ")
    }
}

fn look(p: &Path) -> Result<Option<std::fs::Metadata>, Error> {
    crate::fsafe::look(p, journal::FIX)
        .map_err(|e| Error::io(format!("cannot look at {}", p.display()), e))
}

/// After [`check`], just before the new run's records are created: the earlier results and journal
/// are moved aside as `<stem>.<UTC time>.csv` (and `.journal`). Returns where they went, if
/// there were any, for the command to say.
pub fn set_aside(out: &Path) -> Result<Option<std::path::PathBuf>, Error> {
    let journal_path = journal::path_for(out);
    let journal_meta = look(&journal_path)?;
    let results_meta = look(out)?;
    if journal_meta.is_none() && results_meta.is_none() {
        return Ok(None);
    }
    let stamp = [&results_meta, &journal_meta]
        .iter()
        .filter_map(|m| m.as_ref()?.modified().ok())
        .max()
        .map(utc_compact)
        .unwrap_or_else(|| utc_compact(SystemTime::now()));
    let aside = free_name(out, &stamp);
    if results_meta.is_some() {
        rename(out, &aside)?;
    }
    if journal_meta.is_some() {
        rename(&journal_path, &journal::path_for(&aside))?;
    }
    // The list of runs names the results path of the run they hold: it learns where they went.
    super::registry::moved(out, &aside);
    Ok(Some(aside))
}

fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("cannot move {} aside to {}", from.display(), to.display()),
            e,
        )
    })
}

/// `<stem>.<stamp>.csv` beside `out` (with `-2`, `-3`... if that is taken).
fn free_name(out: &Path, stamp: &str) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let ext = out
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let p = out.with_file_name(format!("{stem}.{stamp}{suffix}{ext}"));
        if std::fs::symlink_metadata(&p).is_err()
            && std::fs::symlink_metadata(journal::path_for(&p)).is_err()
        {
            return p;
        }
        n += 1;
    }
}

/// `2026-11-23T15:33:49Z`: the calendar is humantime's (a time before 1970 reads as 1970).
fn rfc3339(t: SystemTime) -> String {
    let t = t.max(SystemTime::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `20261123T153349Z`.
fn utc_compact(t: SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "")
}

/// `2026-11-23 15:33:49 UTC`.
pub(super) fn utc(t: SystemTime) -> String {
    format!("{} UTC", rfc3339(t).trim_end_matches('Z').replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_times_are_what_a_calendar_says() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_compact(t(0)), "19700101T000000Z");
        assert_eq!(utc_compact(t(1_795_448_029)), "20261123T153349Z");
        assert_eq!(utc(t(951_782_400)), "2000-02-29 00:00:00 UTC");
    }
}
