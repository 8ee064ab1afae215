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
use crate::plan::{target_key, Planner, Verdict};
use crate::report::Progress;
use crate::results::{encode_cells, encode_line, Outcome, Status, StreamWriter};
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

/// A fixed-size Bloom filter over target keys: a key it says was never seen is new for certain; one
/// it says may have been seen is checked exactly afterwards. Its 16 MB do not grow with the file.
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const BITS: u64 = 1 << 27;
    const HASHES: u64 = 7;

    fn new() -> Self {
        Bloom {
            bits: vec![0; (Self::BITS / 64) as usize],
        }
    }

    /// Adds a key; returns whether it may have been added before.
    fn insert(&mut self, key: u128) -> bool {
        let (h1, h2) = (key as u64, (key >> 64) as u64 | 1);
        let mut seen = true;
        for i in 0..Self::HASHES {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % Self::BITS;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if self.bits[word] & mask == 0 {
                seen = false;
                self.bits[word] |= mask;
            }
        }
        seen
    }
}

/// The in-order end of the pipeline: the duplicate check's first pass, the results file and the
/// counts. Every keyed row's (key, row, line) goes to a side file on disk, so the exact check that
/// follows, when there are candidates, needs memory only for them.
struct Sink {
    bloom: Bloom,
    candidates: std::collections::HashSet<u128>,
    keys: std::io::BufWriter<File>,
    out: StreamWriter,
    summary: Summary,
}

impl Sink {
    /// Writes a validated batch's lines, in order, and notes its targets.
    fn write_batch(&mut self, rows: &[StreamRow], checks: &mut [Checked]) -> anyhow::Result<()> {
        use std::io::Write as _;
        for (raw, c) in rows.iter().zip(checks.iter()) {
            if let Some(k) = c.key {
                if self.bloom.insert(k) {
                    self.candidates.insert(k);
                }
                self.keys.write_all(&k.to_le_bytes())?;
                self.keys.write_all(&(raw.row as u64).to_le_bytes())?;
                self.keys.write_all(&raw.line.to_le_bytes())?;
            }
            self.out.write_encoded(&c.line)?;
            self.summary.count(c.outcome.clone()); // cheap: a valid row's outcome holds empty strings
        }
        Ok(())
    }
}

/// The exact check over the side file, for candidate keys only: each duplicate row and the first
/// row (and line) that had its target.
fn confirm_duplicates(
    keys: &std::path::Path,
    candidates: &std::collections::HashSet<u128>,
) -> anyhow::Result<std::collections::HashMap<u64, (u64, u64)>> {
    let mut first: std::collections::HashMap<u128, (u64, u64)> = std::collections::HashMap::new();
    let mut dups = std::collections::HashMap::new();
    let mut r = std::io::BufReader::new(File::open(keys)?);
    let mut rec = [0u8; 32];
    while r.read_exact(&mut rec).is_ok() {
        let key = u128::from_le_bytes(rec[..16].try_into().expect("16 bytes"));
        if !candidates.contains(&key) {
            continue;
        }
        let row = u64::from_le_bytes(rec[16..24].try_into().expect("8 bytes"));
        let line = u64::from_le_bytes(rec[24..].try_into().expect("8 bytes"));
        match first.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                dups.insert(row, *e.get());
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((row, line));
            }
        }
    }
    Ok(dups)
}

/// Copies the results written so far to their final place, turning duplicate rows `invalid`.
fn rewrite_with_duplicates(
    part: &std::path::Path,
    out: &std::path::Path,
    planner: &Planner,
    dups: &std::collections::HashMap<u64, (u64, u64)>,
    summary: &mut Summary,
    width: usize,
    delimiter: u8,
) -> anyhow::Result<()> {
    let mut file = File::open(part)?;
    let mut bom = [0u8; 3];
    file.read_exact(&mut bom)?;
    let mut records = Records::new(std::io::BufReader::new(file), delimiter);
    let mut w = StreamWriter::create(out, &planner.headers, delimiter)?;
    let mut header = true;
    while let Some(rec) = records.next_record()? {
        if std::mem::take(&mut header) {
            continue;
        }
        let fields: Vec<&[u8]> = rec.fields().collect();
        let row: u64 = std::str::from_utf8(fields.get(width).copied().unwrap_or(b""))
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        let Some((first_row, first_line)) = dups.get(&row) else {
            w.write_encoded(&encode_cells(fields.iter().copied(), delimiter))?;
            continue;
        };
        let cells: Vec<&str> = fields[..width]
            .iter()
            .map(|f| std::str::from_utf8(f).unwrap_or(""))
            .collect();
        let line: u64 = std::str::from_utf8(fields[width + 1])
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        let target = match planner.plan_row(&cells) {
            Ok((_, Verdict::Ready(change))) => change.target(),
            _ => None,
        };
        let message = format!(
            "row {first_row} (line {first_line}) already changes the {}; only the first row is \
             applied: merge the two rows or remove one",
            target.as_deref().unwrap_or("same target")
        );
        let o = Outcome::unsent(
            row as usize,
            line,
            Status::Invalid,
            "duplicate_target",
            &message,
        );
        w.write_encoded(&encode_line(cells.iter().copied(), &o, delimiter)?)?;
        summary.recount(Status::Valid, o);
    }
    w.finish()?;
    Ok(())
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
    // Results go to a part file first: duplicates are only certain once the whole file is read.
    let part = cfg.out.with_extension("csv.part");
    let keys_path = cfg.out.with_extension("csv.keys");
    let out = StreamWriter::create(&part, &planner.headers, delimiter)
        .with_context(|| format!("cannot write the results file {}", part.display()))?;
    let keys = std::io::BufWriter::with_capacity(1 << 20, File::create(&keys_path)?);
    let progress = Progress::new(None, show_progress);
    let width = planner.headers.len();
    let (mut t_read, mut t_check, mut t_write) = (0.0, 0.0, 0.0);
    let mut to_read_from = 1;
    let mut reading = source.batch(to_read_from)?;
    let mut sink = Sink {
        bloom: Bloom::new(),
        candidates: std::collections::HashSet::new(),
        keys,
        out,
        summary: Summary::new(cfg.out.clone()),
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
        out,
        mut summary,
        candidates,
        keys,
        ..
    } = sink;
    out.finish().context("cannot write the results file")?;
    drop(keys.into_inner().map_err(|e| e.into_error())?);
    let dups = if candidates.is_empty() {
        Default::default()
    } else {
        confirm_duplicates(&keys_path, &candidates)?
    };
    if dups.is_empty() {
        std::fs::rename(&part, &cfg.out)
            .with_context(|| format!("cannot write the results file {}", cfg.out.display()))?;
    } else {
        rewrite_with_duplicates(
            &part,
            &cfg.out,
            &planner,
            &dups,
            &mut summary,
            width,
            delimiter,
        )?;
        let _ = std::fs::remove_file(&part);
    }
    let _ = std::fs::remove_file(&keys_path);
    progress.finish();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_candidate_is_a_duplicate_only_if_its_key_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mut f = File::create(&path).unwrap();
        for (key, row, line) in [(7u128, 1u64, 2u64), (9, 2, 3), (7, 3, 5), (11, 4, 6)] {
            f.write_all(&key.to_le_bytes()).unwrap();
            f.write_all(&row.to_le_bytes()).unwrap();
            f.write_all(&line.to_le_bytes()).unwrap();
        }
        drop(f);
        // 9 is a false alarm of the filter; 11 was never a candidate.
        let candidates = [7u128, 9].into_iter().collect();
        let dups = confirm_duplicates(&path, &candidates).unwrap();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[&3], (1, 2), "row 3 repeats row 1, line 2");
    }

    #[test]
    fn the_filter_never_forgets_a_key() {
        let mut b = Bloom::new();
        let keys: Vec<u128> = (0..50_000u128)
            .map(|i| crate::plan::target_key(&format!("subscription {i}")))
            .collect();
        assert!(
            keys.iter().all(|k| !b.insert(*k)),
            "new keys are new (no false alarm at this size)"
        );
        assert!(
            keys.iter().all(|k| b.insert(*k)),
            "every key added is seen again"
        );
    }
}
