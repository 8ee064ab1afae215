//! The checking pass every command starts with: the file is read in batches, each batch is planned
//! across all cores (rayon) while the next is read, and the rows' targets go to the duplicate
//! detector in order. `validate` writes its results from this pass; `apply` keeps only what it needs
//! to send (the duplicates, the counts, the file's hash) and reads the rows again as it sends them.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use super::source::{Charset, Fingerprint, RowsDigest, Source, StreamRow};
use crate::config::InputConfig;
use crate::csvfile::{self, Encoder};
use crate::duplicates::{self, Detector, Firsts};
use crate::error::Error;
use crate::fsafe::{self, Access};
use crate::journal::{Misfit, Replay};
use crate::planner::{Planner, Verdict};
use crate::report::progress::Progress;
use crate::report::summary::Summary;
use crate::results::{push_line, Outcome, Status, StreamWriter};

/// What the checking pass found, for `apply`.
pub struct Scan {
    /// The input, open: the sending pass reads it again from its start.
    pub file: File,
    /// The input's length and modification time when it was checked.
    pub fingerprint: Fingerprint,
    pub planner: Planner,
    pub delimiter: u8,
    /// Data rows in the file.
    pub rows: usize,
    /// Rows that will be sent (valid and not a duplicate).
    pub to_send: usize,
    /// Duplicate rows, with the first row of their target.
    pub dups: Firsts,
    /// SHA-256 of the bytes read: the sending pass must read the same.
    pub sha256: String,
    /// What the run's identity takes from the rows (see [`RowsDigest`]).
    pub rows_sha256: String,
    /// The workbook's sheet read, as the workbook names it; `None` for a text file.
    pub sheet: Option<String>,
    /// The operations of the rows to send.
    pub operations: Vec<&'static str>,
    /// How the whole file was decoded: the sending pass reads it the same way.
    pub charset: Charset,
    /// On a resume: the first journal record that does not fit the input (its earliest line).
    pub misfit: Option<Misfit>,
}

/// One row, checked on a worker thread.
struct Checked {
    outcome: Outcome,
    /// Where its results line (as it stands unless the row turns out to be a duplicate; validate
    /// only) ends in its piece's lines.
    line_end: usize,
    /// The duplicate index key of its target, if it has one.
    key: Option<u128>,
    op: Option<&'static str>,
    /// What the journal being resumed says about the row, if that does not fit it.
    misfit: Option<Misfit>,
}

/// Plans one row; with an encoder (validate), appends its results line to `lines`.
fn check_row(
    planner: &Planner,
    raw: &StreamRow,
    width: usize,
    encoder: Option<&mut Encoder>,
    journal: Option<&Replay>,
    lines: &mut Vec<u8>,
    digest: Option<&mut Vec<u8>>,
) -> Result<Checked, Error> {
    // The cells on the stack when they fit (nearly always): this runs once a row.
    let mut stack = [""; 32];
    let heap: Vec<&str>;
    let cells: &[&str] = if raw.len() <= stack.len() {
        for (slot, cell) in stack.iter_mut().zip(raw.cells()) {
            *slot = cell;
        }
        &stack[..raw.len()]
    } else {
        heap = raw.cells().collect();
        &heap
    };
    let (op, verdict) = planner.plan_row(cells)?;
    if let Some(buf) = digest {
        RowsDigest::encode_row(buf, planner.identity_cells(cells, op));
    }
    let change = match &verdict {
        Verdict::Ready(change) => Some(change.as_ref()),
        Verdict::Invalid { .. } => None,
    };
    let misfit = journal.and_then(|j| j.misfit_for_row(raw.row, raw.line, op, change));
    let (outcome, target) = match &verdict {
        Verdict::Ready(change) => (
            Outcome::unsent(raw.row, raw.line, Status::Valid, "", ""),
            change.target(),
        ),
        Verdict::Invalid { code, message } => (
            Outcome::unsent(raw.row, raw.line, Status::Invalid, code, message),
            None,
        ),
    };
    if let Some(enc) = encoder {
        let mut line = enc.line(lines);
        let plain = !line.must_quote(raw.text().as_bytes());
        push_line(&mut line, raw.trimmed(width), plain, &outcome);
    }
    Ok(Checked {
        key: target.as_deref().map(duplicates::target_key),
        op: op
            .filter(|_| outcome.status == Status::Valid)
            .map(|o| o.name),
        outcome,
        line_end: lines.len(),
        misfit,
    })
}

/// Rows per piece of a batch: each piece's results lines go end to end into one buffer (one
/// allocation, not one a row; a row's line was freed on another thread than took it, which is
/// the allocator's slow path).
const PIECE: usize = 256;

/// Some rows of a batch, checked, with their results lines end to end, and what the run's
/// identity takes from them (see [`RowsDigest`]; apply only).
struct Piece {
    rows: Vec<Checked>,
    lines: Vec<u8>,
    digest: Vec<u8>,
}

/// A batch's rows checked, in input order.
struct Checks(Vec<Piece>);

impl Checks {
    /// Each row checked, with its results line (empty unless validating).
    fn iter(&self) -> impl Iterator<Item = (&Checked, &[u8])> {
        self.0.iter().flat_map(|p| {
            let mut from = 0;
            p.rows.iter().map(move |c| {
                let line = &p.lines[from..c.line_end];
                from = c.line_end;
                (c, line)
            })
        })
    }

    /// Adds the batch's rows to the run's identity, in input order.
    fn add_to(&self, digest: &mut RowsDigest) {
        for p in &self.0 {
            digest.add(&p.digest, p.rows.len());
        }
    }
}

/// A batch checked across the cores in pieces, each written straight into its place (a `Result`
/// collected in parallel is gathered in parts and copied again as it grows). The first row, in
/// input order, that cannot be checked at all stops the pass.
fn check_batch(
    planner: &Planner,
    rows: &[StreamRow],
    width: usize,
    delimiter: Option<u8>,
    journal: Option<&Replay>,
    digest: bool,
) -> Result<Checks, Error> {
    let mut pieces: Vec<Result<Piece, Error>> = Vec::with_capacity(rows.len().div_ceil(PIECE));
    rows.par_chunks(PIECE)
        .map(|chunk| {
            // About as long as a support-contact row's line, so most pieces never regrow.
            let mut lines = Vec::with_capacity(if delimiter.is_some() {
                chunk.len() * 192
            } else {
                0
            });
            let mut encoded = Vec::new();
            let mut encoder = delimiter.map(Encoder::new);
            let rows = chunk
                .iter()
                .map(|raw| {
                    let digest = digest.then_some(&mut encoded);
                    let enc = encoder.as_mut();
                    check_row(planner, raw, width, enc, journal, &mut lines, digest)
                })
                .collect::<Result<Vec<Checked>, Error>>()?;
            Ok(Piece {
                rows,
                lines,
                digest: encoded,
            })
        })
        .collect_into_vec(&mut pieces);
    pieces
        .into_iter()
        .collect::<Result<Vec<Piece>, Error>>()
        .map(Checks)
}

/// Runs `f`, adding its wall time to `total` (for the debug log's stage times).
fn timed<T>(total: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    *total += t.elapsed().as_secs_f64();
    v
}

/// Opens the input (hashing it with `hashed`) and reads its header into a planner.
pub fn open(cfg: &InputConfig, hashed: bool) -> Result<(Source, Planner), Error> {
    let mut source = if hashed {
        Source::open_hashed(cfg)?
    } else {
        Source::open(cfg)?
    };
    let planner = planner_for(&mut source, cfg)?;
    Ok((source, planner))
}

/// Reads the input's header into a planner.
fn planner_for(source: &mut Source, cfg: &InputConfig) -> Result<Planner, Error> {
    let header = source.header(&cfg.input)?;
    Planner::mapped(&header, cfg.operation, &cfg.mapping)
        .map_err(|e| Error::Usage(format!("{} cannot be run: {}", cfg.input.display(), e.0)))
}

/// What the pass does beside checking each row.
#[derive(Clone, Copy)]
struct Work {
    /// Each row's results line is encoded on the workers (validate).
    encode: bool,
    /// What the run's identity takes from each row is encoded on the workers (apply).
    digest: bool,
}

/// The pass: reads, checks across cores, and hands each checked batch to `sink` in input order.
fn pass(
    source: &mut Source,
    planner: &Planner,
    work: Work,
    journal: Option<&Replay>,
    mut sink: impl FnMut(&[StreamRow], &Checks) -> Result<(), Error> + Send,
) -> Result<(), Error> {
    let width = planner.headers.len();
    let delimiter = work.encode.then_some(source.delimiter);
    let (mut t_read, mut t_check, mut t_write) = (0.0, 0.0, 0.0);
    let mut to_read_from = 1;
    let mut reading = source.batch(to_read_from)?;
    let first = reading.iter().map(|r| (r.row, r.line, r.cells().collect()));
    planner.guid_columns_hold_names(first)?;
    let mut checked: Option<(Vec<StreamRow>, Checks)> = None;
    // A written batch is freed by the reading step that follows, which has time to spare.
    let mut written_batch: Option<(Vec<StreamRow>, Checks)> = None;
    while !reading.is_empty() || checked.is_some() {
        // Ctrl-C stops the pass between batches; its caller removes the scratch files.
        crate::interrupt::check()?;
        let current = std::mem::take(&mut reading);
        to_read_from += current.len();
        let done = checked.take();
        let garbage = written_batch.take();
        let (next, (validated, written)) = rayon::join(
            || {
                drop(garbage);
                timed(&mut t_read, || source.batch(to_read_from))
            },
            || {
                rayon::join(
                    || {
                        timed(&mut t_check, || {
                            check_batch(planner, &current, width, delimiter, journal, work.digest)
                        })
                    },
                    || {
                        timed(&mut t_write, || match &done {
                            Some((rows, checks)) => sink(rows, checks),
                            None => Ok(()),
                        })
                    },
                )
            },
        );
        written?;
        written_batch = done;
        let validated = validated?;
        if !current.is_empty() {
            checked = Some((current, validated));
        }
        reading = next?;
    }
    tracing::debug!(t_read, t_check, t_write, "seconds per stage");
    Ok(())
}

/// `apply`'s first pass: no results, only what sending needs. The file is read again to send it,
/// so it must be a regular file (not a pipe or a device, which cannot be read twice).
///
/// On a resume, `journal` is the earlier run's, read back: each row's records are checked against
/// the row as it is planned here, and the first that does not fit is in [`Scan::misfit`].
pub fn scan(cfg: &InputConfig, journal: Option<&Replay>) -> Result<Scan, Error> {
    let io_err = |cause| crate::input::InputError::Io {
        path: cfg.input.display().to_string(),
        cause,
    };
    let file = open_regular(cfg)?;
    let fingerprint = Fingerprint::of(&file).map_err(io_err)?;
    let mut source = Source::from_file(cfg, file.try_clone().map_err(io_err)?, true, None)?;
    let planner = planner_for(&mut source, cfg)?;
    let (counted, dups) = count_rows(&mut source, &planner, cfg, journal)?;
    if Fingerprint::of(&file).map_err(io_err)? != fingerprint {
        return Err(Error::usage(format!(
            "{} changed while it was being checked; nothing was sent: run it again once it is \
             saved",
            cfg.input.display()
        )));
    }
    let rows = counted.rows;
    Ok(Scan {
        file,
        fingerprint,
        delimiter: source.delimiter,
        sha256: source.sha256(),
        rows_sha256: counted.digest.finish(),
        sheet: source.sheet().map(str::to_owned),
        charset: source.charset(),
        to_send: counted.valid - dups.len(),
        rows,
        dups,
        operations: counted.operations,
        planner,
        misfit: Misfit::first(counted.misfit, journal.and_then(|j| j.misfit_beyond(rows))),
    })
}

/// Opens the input for a pass that reads it twice: a regular file, looked at before it is opened
/// (opening a pipe would wait for a writer).
fn open_regular(cfg: &InputConfig) -> Result<File, Error> {
    let io_err = |cause| crate::input::InputError::Io {
        path: cfg.input.display().to_string(),
        cause,
    };
    crate::input::refuse_not_a_file(&cfg.input)?;
    let regular = std::fs::metadata(&cfg.input).map_err(io_err)?.is_file();
    let file = if regular {
        Some(File::open(&cfg.input).map_err(io_err)?)
    } else {
        None
    };
    file.filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| {
            Error::usage(format!(
                "{} is not a regular file: apply reads its input twice (once to check every row, \
                 once to send), so save it to a file first (validate reads any input once)",
                cfg.input.display()
            ))
        })
}

/// What apply's checking pass counts, row by row.
#[derive(Default)]
struct Counted {
    rows: usize,
    /// Rows valid (duplicates among them).
    valid: usize,
    operations: Vec<&'static str>,
    misfit: Option<Misfit>,
    digest: RowsDigest,
}

impl Counted {
    /// Counts a checked batch, and notes each row's target for the duplicate check.
    fn add<W: std::io::Write>(
        &mut self,
        raws: &[StreamRow],
        checks: &Checks,
        detector: &mut Detector<W>,
    ) -> Result<(), Error> {
        checks.add_to(&mut self.digest);
        for (raw, (c, _)) in raws.iter().zip(checks.iter()) {
            self.rows += 1;
            if c.misfit.is_some() {
                self.misfit = Misfit::first(self.misfit.take(), c.misfit.clone());
            }
            if let Some(k) = c.key {
                detector
                    .note(k, raw.row, raw.line)
                    .map_err(|e| Error::io("cannot write the duplicate index", e))?;
            }
            if let Some(op) = c.op {
                self.valid += 1;
                if !self.operations.contains(&op) {
                    self.operations.push(op);
                }
            }
        }
        Ok(())
    }
}

/// Runs apply's checking pass: the counts, and the duplicate rows. The targets' keys spill to a
/// scratch file beside the results (a million rows are 32 MB there, not in memory), removed
/// whatever happens.
fn count_rows(
    source: &mut Source,
    planner: &Planner,
    cfg: &InputConfig,
    journal: Option<&Replay>,
) -> Result<(Counted, Firsts), Error> {
    let (spill_path, spill) = scratch(&cfg.out, "keys", Access::Owner)?;
    let mut detector = Detector::new(std::io::BufWriter::with_capacity(1 << 20, spill));
    let mut counted = Counted::default();
    let work = Work {
        encode: false,
        digest: true,
    };
    let scanned = pass(source, planner, work, journal, |raws, checks| {
        counted.add(raws, checks, &mut detector)
    });
    let dups = scanned.and_then(|()| {
        let (candidates, spill) = detector.into_parts();
        confirm_duplicates(spill, &candidates)
    });
    remove_scratch(&spill_path);
    Ok((counted, dups?))
}

/// A new scratch file beside the results (see [`fsafe::fresh`]): no file or link already there is
/// reused.
/// A second Ctrl-C, which ends the process at once, removes it too.
pub fn scratch(
    out: &Path,
    suffix: &str,
    access: Access,
) -> Result<(std::path::PathBuf, File), Error> {
    let (path, file) = fsafe::fresh(out, suffix, access).map_err(|e| {
        Error::io(
            format!(
                "cannot write a scratch file beside the results file {}",
                out.display()
            ),
            e,
        )
    })?;
    crate::interrupt::keep_track(&path);
    Ok((path, file))
}

/// Removes a scratch file (if it is still there: one may have become the results file).
pub fn remove_scratch(path: &Path) {
    let _ = std::fs::remove_file(path);
    crate::interrupt::forget(path);
}

/// The exact duplicate check over the keys spilled to `spill`, read back through the same file.
fn confirm_duplicates(
    spill: std::io::BufWriter<File>,
    candidates: &std::collections::HashSet<u128>,
) -> Result<Firsts, Error> {
    if candidates.is_empty() {
        return Ok(Firsts::default());
    }
    let mut file = spill
        .into_inner()
        .map_err(|e| Error::io("cannot write the duplicate index", e.into_error()))?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| duplicates::confirm(file, candidates))
        .map_err(|e| Error::io("cannot read the duplicate index", e))
}

/// Copies the results written so far (`part`, positioned anywhere) to their final place, turning
/// duplicate rows `invalid`. The part is read back through the one CSV reader.
pub fn rewrite_with_duplicates(
    mut file: File,
    out: &Path,
    planner: &Planner,
    dups: &Firsts,
    summary: &mut Summary,
    delimiter: u8,
) -> Result<(), Error> {
    let width = planner.headers.len();
    let io = |e| crate::results::cannot_write(out, e);
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut part = csvfile::Reader::new(file, |_| Ok(delimiter)).map_err(io)?;
    let mut w = StreamWriter::create(out, &planner.headers, delimiter).map_err(io)?;
    let mut header = true;
    while let Some(rec) = part.next_record().map_err(|e| io(e.into()))? {
        if std::mem::take(&mut header) {
            continue;
        }
        let fields: Vec<&[u8]> = rec.fields().collect();
        let number = |i: usize| -> u64 {
            std::str::from_utf8(fields.get(i).copied().unwrap_or(b""))
                .unwrap_or("")
                .parse()
                .unwrap_or(0)
        };
        let row = number(width) as usize;
        if !dups.contains_key(&(row as u64)) {
            w.write_cells(fields.iter().copied()).map_err(io)?;
            continue;
        }
        let cells: Vec<&str> = fields
            .iter()
            .take(width)
            .map(|f| std::str::from_utf8(f).unwrap_or(""))
            .collect();
        let target = match planner.plan_row(&cells) {
            Ok((_, Verdict::Ready(change))) => change.target(),
            _ => None,
        };
        let o = duplicates::outcome(dups, row, number(width + 1), target.as_deref());
        if let Some(o) = o {
            w.write_line(cells.iter().copied(), &o).map_err(io)?;
            summary.recount(Status::Valid, o);
        }
    }
    w.finish().map_err(io)?;
    Ok(())
}

/// `validate`'s pass: every row's line to `part`, every row's target to `keys`. Returns the part
/// file, the duplicate rows and the counts.
pub fn check_all(
    source: &mut Source,
    planner: &Planner,
    part: File,
    keys: File,
    cfg: &InputConfig,
    show_progress: bool,
) -> Result<(File, Firsts, Summary), Error> {
    let cannot = |e| crate::results::cannot_write(&cfg.out, e);
    let mut out = StreamWriter::new(part, &planner.headers, source.delimiter).map_err(cannot)?;
    let mut detector = Detector::new(std::io::BufWriter::with_capacity(1 << 20, keys));
    let progress = Progress::new(None, show_progress);
    let mut summary = Summary::new(cfg.out.clone());
    let work = Work {
        encode: true,
        digest: false,
    };
    pass(source, planner, work, None, |raws, checks| {
        for (raw, (c, line)) in raws.iter().zip(checks.iter()) {
            if let Some(k) = c.key {
                detector
                    .note(k, raw.row, raw.line)
                    .map_err(|e| Error::io("cannot write the duplicate index", e))?;
            }
            out.write_encoded(line).map_err(cannot)?;
            summary.count(c.outcome.clone()); // cheap: a valid row's outcome holds empty strings
        }
        progress.rows_done(raws.len() as u64);
        Ok(())
    })?;
    tracing::debug!(encoding = source.charset().name(), "read");
    let part = out.finish().map_err(cannot)?;
    let (candidates, keys) = detector.into_parts();
    let dups = confirm_duplicates(keys, &candidates)?;
    progress.finish();
    Ok((part, dups, summary))
}
