//! `pcbulk validate` (and `apply --dry-run`) as a stream: the file is read in batches, each batch is
//! validated across all cores (rayon) while the next is read, and results are written in order as
//! they come. Memory does not grow with the file, except for the duplicate-target index (a 128-bit
//! hash and a row number per target).

use std::fs::File;
use std::io::{Cursor, Read};
use std::time::Instant;

use anyhow::Context;
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;
use rayon::prelude::*;

use crate::cli::InputConfig;
use crate::input::records::Records;
use crate::input::{detect_delimiter, InputError};
use crate::plan::{target_key, Duplicates, Planner, Verdict};
use crate::report::Progress;
use crate::results::{encode_line, Outcome, Status, StreamWriter};
use crate::run::Summary;

/// Rows per batch: large enough to keep both cores busy, small enough to keep memory flat.
const BATCH: usize = 16 * 1024;
/// How much of the file is read to tell its encoding and delimiter.
const SNIFF: usize = 64 * 1024;

/// A streamed row: its cells in one string, with where each ends (two allocations, not one a cell).
struct StreamRow {
    row: usize,
    line: u64,
    text: String,
    ends: Vec<u32>,
}

impl StreamRow {
    fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        let mut from = 0usize;
        self.ends.iter().map(move |&to| {
            let c = &self.text[from..to as usize];
            from = to as usize;
            c
        })
    }

    /// The cells trimmed, as many as the header has (missing ones empty).
    fn trimmed(&self, width: usize) -> impl Iterator<Item = &str> + '_ {
        self.cells()
            .map(str::trim)
            .chain(std::iter::repeat(""))
            .take(width)
    }
}

/// An input opened for streaming.
struct Source {
    records: Records<Box<dyn Read + Send>>,
    /// Bytes are UTF-8 unless a record's are not, which is then read as Windows-1252.
    raw_utf8: bool,
    encoding: &'static str,
}

/// Tells the encoding (a BOM, else valid UTF-8, else Windows-1252; or `--encoding`) and the delimiter
/// from the start of the file, and opens a decoding stream over the whole of it.
fn open(cfg: &InputConfig) -> anyhow::Result<(Source, u8)> {
    let path = &cfg.input;
    let io_err = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut prefix = Vec::with_capacity(SNIFF);
    (&mut file)
        .take(SNIFF as u64)
        .read_to_end(&mut prefix)
        .map_err(io_err)?;
    let forced = match &cfg.read.encoding {
        Some(label) => Some(
            Encoding::for_label(label.as_bytes())
                .ok_or_else(|| InputError::UnknownEncoding(label.clone()))?,
        ),
        None => None,
    };
    let bom = Encoding::for_bom(&prefix);
    let encoding = forced.or(bom.map(|(e, _)| e)).unwrap_or_else(|| {
        match std::str::from_utf8(&prefix) {
            Ok(_) => UTF_8,
            // Cut off in the middle of a character by the sniff: still UTF-8.
            Err(e) if e.error_len().is_none() => UTF_8,
            Err(_) => WINDOWS_1252,
        }
    });
    let (sniffed, _) = encoding.decode_with_bom_removal(&prefix);
    let delimiter = cfg.read.delimiter.unwrap_or_else(|| {
        detect_delimiter(sniffed.lines().find(|l| !l.trim().is_empty()).unwrap_or(""))
    });
    let whole = Cursor::new(prefix).chain(file);
    let (reader, raw_utf8): (Box<dyn Read + Send>, bool) = if encoding == UTF_8 {
        // Raw bytes, without a BOM; records that are not UTF-8 fall back to Windows-1252.
        let mut r: Box<dyn Read + Send> = Box::new(whole);
        if bom.is_some_and(|(e, _)| e == UTF_8) {
            let mut skip = [0u8; 3];
            r.read_exact(&mut skip).map_err(io_err)?;
        }
        (r, forced.is_none())
    } else {
        let decoded = DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .bom_sniffing(true)
            .build(whole);
        (Box::new(decoded), false)
    };
    let source = Source {
        records: Records::new(reader, delimiter),
        raw_utf8,
        encoding: encoding.name(),
    };
    Ok((source, delimiter))
}

impl Source {
    /// The next non-blank record, with the line it starts on.
    fn next_row(&mut self, row: usize) -> anyhow::Result<Option<StreamRow>> {
        loop {
            let Some(rec) = self.records.next_record()? else {
                return Ok(None);
            };
            // The record's fields lie end to end: one check and one copy for the whole row. A row
            // that is not UTF-8 (in a file that otherwise is) is read as Windows-1252.
            let (text, ends) = match std::str::from_utf8(rec.bytes()) {
                Ok(t) => (t.to_owned(), rec.ends().iter().map(|&e| e as u32).collect()),
                Err(_) => {
                    let mut text = String::new();
                    let mut ends = Vec::with_capacity(rec.ends().len());
                    for f in rec.fields() {
                        if self.raw_utf8 {
                            text.push_str(&WINDOWS_1252.decode_without_bom_handling(f).0);
                        } else {
                            text.push_str(&String::from_utf8_lossy(f));
                        }
                        ends.push(text.len() as u32);
                    }
                    (text, ends)
                }
            };
            let r = StreamRow {
                row,
                line: rec.line,
                text,
                ends,
            };
            if r.cells().all(|c| c.trim().is_empty()) {
                continue;
            }
            return Ok(Some(r));
        }
    }

    fn batch(&mut self, first_row: usize) -> anyhow::Result<Vec<StreamRow>> {
        let mut rows = Vec::with_capacity(BATCH);
        while rows.len() < BATCH {
            let Some(r) = self.next_row(first_row + rows.len())? else {
                break;
            };
            rows.push(r);
        }
        Ok(rows)
    }
}

/// One row, checked on a worker thread.
struct Checked {
    outcome: Outcome,
    /// The results line as it stands unless the row turns out to be a duplicate.
    line: Vec<u8>,
    /// The duplicate index key of its target, if it has one.
    key: Option<u128>,
}

fn check_row(
    planner: &Planner,
    raw: &StreamRow,
    width: usize,
    delimiter: u8,
) -> anyhow::Result<Checked> {
    let cells: Vec<&str> = raw.cells().collect();
    let (_, verdict) = planner.plan_row(&cells)?;
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
    let line = encode_line(raw.trimmed(width), &outcome, delimiter)?;
    Ok(Checked {
        outcome,
        line,
        key: target.as_deref().map(target_key),
    })
}

/// Runs `f`, adding its wall time to `total` (for the debug log's stage times).
fn timed<T>(total: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    *total += t.elapsed().as_secs_f64();
    v
}

/// The in-order end of the pipeline: the duplicate index, the results file and the counts.
struct Sink<'p> {
    planner: &'p Planner,
    duplicates: Duplicates,
    out: StreamWriter,
    summary: Summary,
    width: usize,
    delimiter: u8,
}

impl Sink<'_> {
    /// Checks a validated batch for duplicates (in order: the first row of a target wins) and
    /// writes its lines.
    fn write_batch(&mut self, rows: &[StreamRow], checks: &mut [Checked]) -> anyhow::Result<()> {
        for (raw, c) in rows.iter().zip(checks.iter_mut()) {
            let first = c
                .key
                .and_then(|k| self.duplicates.first_of(k, raw.row, raw.line));
            if let Some((first_row, first_line)) = first {
                // Rare: plan the row again for its target's name.
                let cells: Vec<&str> = raw.cells().collect();
                let target = match self.planner.plan_row(&cells) {
                    Ok((_, Verdict::Ready(change))) => change.target(),
                    _ => None,
                };
                let message = format!(
                    "row {first_row} (line {first_line}) already changes the {}; only the first row \
                     is applied: merge the two rows or remove one",
                    target.as_deref().unwrap_or("same target")
                );
                c.outcome = Outcome::unsent(
                    raw.row,
                    raw.line,
                    Status::Invalid,
                    "duplicate_target",
                    &message,
                );
                c.line = encode_line(raw.trimmed(self.width), &c.outcome, self.delimiter)?;
            }
            self.out.write_encoded(&c.line)?;
            self.summary.count(c.outcome.clone()); // cheap: a valid row's outcome holds empty strings
        }
        Ok(())
    }
}

/// `pcbulk validate`: every row `valid` or `invalid`, streamed; no network at all.
pub fn validate(cfg: &InputConfig, show_progress: bool) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (mut source, delimiter) = open(cfg)?;
    let Some(header) = source.next_row(0)? else {
        return Err(InputError::NoHeader(cfg.input.display().to_string()).into());
    };
    let headers: Vec<String> = header.cells().map(str::to_owned).collect();
    let planner = Planner::new(&headers, cfg.operation)
        .with_context(|| format!("{} cannot be run", cfg.input.display()))?;
    for w in planner.warnings() {
        eprintln!("pcbulk: warning: {w}");
    }
    tracing::debug!(encoding = source.encoding, "validating as a stream");
    let out = StreamWriter::create(&cfg.out, &planner.headers, delimiter)
        .with_context(|| format!("cannot write the results file {}", cfg.out.display()))?;
    let progress = Progress::new(None, show_progress);
    let mut duplicates = Duplicates::default();
    let file_size = std::fs::metadata(&cfg.input).map(|m| m.len()).unwrap_or(0);
    let width = planner.headers.len();

    // A three-stage pipeline over batches: read batch k+2, validate batch k+1 (across the pool) and
    // write batch k (duplicates are checked here, in order), all at once.
    let (mut t_read, mut t_check, mut t_write) = (0.0, 0.0, 0.0);
    let mut to_read_from = 1;
    let mut reading = source.batch(to_read_from)?;
    // Size the duplicate index from the file's size and the first batch's bytes per row.
    if let (Some(first), Some(last)) = (reading.first(), reading.last()) {
        let bytes: usize = reading.iter().map(|r| r.text.len() + r.ends.len()).sum();
        let per_row = (bytes / reading.len()).max(1) as u64;
        let estimate = (file_size / per_row) as usize + 16;
        if last.row > first.row {
            duplicates = Duplicates::with_capacity(estimate.min(50_000_000));
        }
    }
    let mut sink = Sink {
        planner: &planner,
        duplicates,
        out,
        summary: Summary::new(cfg.out.clone()),
        width,
        delimiter,
    };
    let mut checked: Option<(Vec<StreamRow>, Vec<Checked>)> = None;
    // A written batch is freed by the reading step that follows, which has time to spare.
    let mut written_batch: Option<(Vec<StreamRow>, Vec<Checked>)> = None;
    while !reading.is_empty() || checked.is_some() {
        let current = std::mem::take(&mut reading);
        to_read_from += current.len();
        let mut done = checked.take();
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
                            current
                                .par_iter()
                                .map(|raw| check_row(&planner, raw, width, delimiter))
                                .collect::<anyhow::Result<Vec<Checked>>>()
                        })
                    },
                    || {
                        timed(&mut t_write, || match done.as_mut() {
                            Some((rows, checks)) => sink.write_batch(rows, checks),
                            None => Ok(()),
                        })
                    },
                )
            },
        );
        written?;
        written_batch = done;
        let validated =
            validated.with_context(|| format!("{} cannot be run", cfg.input.display()))?;
        progress.rows_done(current.len() as u64);
        if !current.is_empty() {
            checked = Some((current, validated));
        }
        reading = next?;
    }
    tracing::debug!(t_read, t_check, t_write, "seconds per stage");
    let Sink {
        out, mut summary, ..
    } = sink;
    out.finish().context("cannot write the results file")?;
    progress.finish();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
