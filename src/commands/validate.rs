//! `pcbulk validate`: every row `valid` or `invalid`, streamed through the checking pass; no
//! network at all.

use std::path::Path;
use std::time::Instant;

use crate::config::InputConfig;
use crate::error::Error;
use crate::fsafe::Access;
use crate::pipeline::check::{check_all, open, remove_scratch, rewrite_with_duplicates, scratch};
use crate::report::summary::Summary;

pub fn validate(cfg: &InputConfig, output: &crate::report::Output) -> Result<Summary, Error> {
    let quiet = output.progress == crate::report::progress::Mode::Quiet;
    let started = std::time::SystemTime::now();
    let mut summary = check_file(cfg, !quiet)?;
    summary.about.command = "validate";
    summary.about.input = Some(cfg.input.clone());
    summary.about.started = started;
    summary.about.finished = Some(std::time::SystemTime::now());
    Ok(summary)
}

/// An apply's results file (one with its journal beside it, maybe of a run still going) is its
/// record: validate never writes over it.
fn refuse_an_apply_s_records(out: &Path) -> Result<(), Error> {
    let journal = crate::journal::path_for(out);
    if std::fs::symlink_metadata(&journal).is_ok() {
        return Err(Error::usage(format!(
            "{} is an apply's results file (its journal {} is beside it): validate never writes \
             over an apply's records; give --out another path",
            out.display(),
            journal.display()
        )));
    }
    Ok(())
}

/// Every row `valid` or `invalid`, streamed through the checking pass into the validation file.
pub(super) fn check_file(cfg: &InputConfig, show_progress: bool) -> Result<Summary, Error> {
    let started = Instant::now();
    let (mut source, planner) = open(cfg, false)?;
    for w in planner.warnings() {
        eprintln!("pcbulk: warning: {}", crate::term::escape(&w));
    }
    for line in planner.column_lines() {
        eprintln!("pcbulk: {}", crate::term::escape(&line));
    }
    tracing::debug!(delimiter = source.delimiter, "validating as a stream");
    crate::results::refuse_unsafe(&cfg.out)?;
    refuse_an_apply_s_records(&cfg.out)?;
    // Results go to a part file first: duplicates are only certain once the whole file is read.
    let (part, part_file) = scratch(&cfg.out, "part", Access::Default)?;
    let finished = scratch(&cfg.out, "keys", Access::Owner).and_then(|(keys_path, keys)| {
        let delimiter = source.delimiter;
        let checked = check_all(&mut source, &planner, part_file, keys, cfg, show_progress);
        remove_scratch(&keys_path);
        let (part_file, dups, mut summary) = checked?;
        // A partner-wide operation takes exactly one row, as apply refuses it (nothing written).
        planner
            .partner_wide_rows(summary.rows())
            .map_err(|e| Error::Usage(format!("{} cannot be run: {}", cfg.input.display(), e.0)))?;
        if dups.is_empty() {
            // Looked at again: the rename replaces whatever is at that path now.
            crate::results::refuse_unsafe(&cfg.out)?;
            std::fs::rename(&part, &cfg.out)
                .map_err(|e| crate::results::cannot_write(&cfg.out, e))?;
        } else {
            rewrite_with_duplicates(
                part_file,
                &cfg.out,
                &planner,
                &dups,
                &mut summary,
                delimiter,
            )?;
        }
        Ok(summary)
    });
    remove_scratch(&part);
    let mut summary = finished?;
    summary.elapsed = started.elapsed();
    // The operation as the banner names it: the flag's, the header's, or each row's own.
    summary.about.operation = Some(planner.operation().0.to_owned());
    Ok(summary)
}
