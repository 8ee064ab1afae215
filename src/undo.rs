//! `pcbulk undo RESULTS`: a CSV, in the input format, that puts back every before-value of the rows
//! a run changed. Applying it restores the tenant, except what cannot be undone: notes added to
//! service requests (Partner Center cannot remove them) and fields that were empty before (an empty
//! cell means "leave as it is"); both are listed, not silently dropped.
//!
//! An undo file is marked as pcbulk's own by a [`MARKER`] column. Its cells are neutralised for
//! spreadsheets like a results file's, and so is a cell that starts with `'`: then exactly one
//! leading `'` is pcbulk's, and when pcbulk reads a marked file it takes that `'` off again
//! ([`unescape`]), so a before-value such as `=Old Name` or `+1 425 555 0199` goes back exactly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::input::header::{canonical, normalize};
use crate::journal;
use crate::ops::{self, OpSpec};
use crate::results::{neutralize, unneutralize};

/// The header of the column that marks a file as an undo file pcbulk wrote; each of its cells is
/// the row of the results file that the line puts back.
pub const MARKER: &str = "pcbulk_undo";

/// Whether a header cell is the [`MARKER`] (spelt any way a header may be).
pub fn is_marker(header: &str) -> bool {
    normalize(header) == normalize(MARKER)
}

/// An undo file's cell: neutralised like a results cell, and a cell that starts with `'` gets one
/// more, so that one leading `'` before `= + - @ ' tab CR` is always pcbulk's.
pub fn escape(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(_) => format!("'{cell}").into(),
        None => neutralize(cell),
    }
}

/// The value a cell of a marked undo file stands for: [`escape`] undone. A `'` before anything
/// else is not pcbulk's, and stays.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
    }
}

/// What undo wrote and what it could not.
#[derive(Debug, Default)]
pub struct UndoReport {
    pub out: PathBuf,
    pub rows: usize,
    /// Rows whose only change was a note.
    pub notes_left_out: Vec<usize>,
    /// (row, column): values that were empty before and cannot be put back by a CSV.
    pub empty_before: Vec<(usize, String)>,
    /// Rows that succeeded with no before-values in the journal (nothing could be read first).
    pub no_before: Vec<usize>,
}

/// `in.results.csv` → `in.undo.csv`.
pub fn default_out(results: &Path) -> PathBuf {
    let name = results.file_name().unwrap_or_default().to_string_lossy();
    let stem = name
        .strip_suffix(".results.csv")
        .or_else(|| name.strip_suffix(".csv"))
        .unwrap_or(&name);
    results.with_file_name(format!("{stem}.undo.csv"))
}

/// What to do about an undo path pcbulk refuses to write (see [`crate::fsafe`]).
const FIX: &str = "give --out another path";

/// Refuses an undo path that is the run's own record, or that pcbulk must not write.
fn refuse_unsafe_out(out: &Path, results: &Path, journal: &Path) -> anyhow::Result<()> {
    for (record, what) in [(results, "results file"), (journal, "journal")] {
        if crate::config::same_file(out, record) {
            bail!(
                "--out {} is the run's {what}; the undo file must go elsewhere",
                out.display()
            );
        }
    }
    let journal = journal::path_for(out);
    if std::fs::symlink_metadata(&journal).is_ok() {
        bail!(
            "--out {} is the results file of another run (its journal is beside it); the undo file \
             must go elsewhere",
            out.display()
        );
    }
    crate::fsafe::look(out, FIX)
        .with_context(|| format!("cannot write the undo file {}", out.display()))?;
    Ok(())
}

pub fn write_undo(results: &Path, out: Option<&Path>) -> anyhow::Result<UndoReport> {
    let journal_path = journal::path_for(results);
    if !journal_path.exists() {
        bail!(
            "there is no journal {} beside the results: undo needs the before-values a run records \
             there",
            journal_path.display()
        );
    }
    let out = out
        .map(Path::to_owned)
        .unwrap_or_else(|| default_out(results));
    refuse_unsafe_out(&out, results, &journal_path)?;
    let replay = match journal::read(&journal_path) {
        Ok(r) => r,
        Err(journal::ReadError::Io(e)) => {
            return Err(e)
                .with_context(|| format!("cannot read the journal {}", journal_path.display()))
        }
        Err(journal::ReadError::Misfit(m)) => bail!(
            "refusing to write an undo file: the journal {} line {}: {}. It is not a journal \
             pcbulk wrote (it may be damaged or edited), so its before-values cannot be trusted",
            journal_path.display(),
            m.line,
            m.what
        ),
    };
    if replay.job.as_ref().is_some_and(|j| j.plan) {
        bail!(
            "{} is a plan: it read what applying would change and changed nothing, so there is \
             nothing to undo. Give the results file of an apply (<input stem>.results.csv)",
            results.display()
        );
    }
    // The run's input (as its journal names it, beside the results or as given) is not written.
    if let Some(job) = &replay.job {
        let input = std::path::Path::new(&job.input);
        let beside = results.with_file_name(input.file_name().unwrap_or_default());
        if crate::config::same_file(&out, input) || crate::config::same_file(&out, &beside) {
            bail!(
                "--out {} is the run's input file; the undo file must go elsewhere",
                out.display()
            );
        }
    }

    // The results file holds each row's input cells and final status; read it as any input (it may
    // have a BOM, and the input's delimiter).
    let table = crate::input::read_path(results, &crate::input::ReadOptions::default()).map_err(
        |e| match e {
            // Already "cannot read <path>: <why>".
            crate::input::InputError::Io { .. } => anyhow::Error::new(e),
            _ => anyhow::Error::new(e).context(format!(
                "cannot read the results file {}",
                results.display()
            )),
        },
    )?;
    let headers = &table.headers;
    let known = ops::all_columns();
    // The results file's cells are neutralised: a header such as `-Customer ID` is written
    // `'-Customer ID`. A header that names a column as written wins over one that does once its
    // `'` is taken off.
    let as_written: Vec<Option<&'static str>> =
        headers.iter().map(|h| canonical(h, &known)).collect();
    let column_of: Vec<Option<&'static str>> = headers
        .iter()
        .zip(&as_written)
        .map(|(h, c)| {
            c.or_else(|| {
                canonical(unneutralize(h), &known).filter(|c| !as_written.contains(&Some(c)))
            })
        })
        .collect();
    let row_index = headers
        .iter()
        .position(|h| h == "row")
        .context("the results file has no row column")?;
    let status_index = headers
        .iter()
        .position(|h| h == "status")
        .context("the results file has no status column")?;

    let mut report = UndoReport {
        out,
        ..UndoReport::default()
    };
    // (results row, op, columns → value) per undo row, in input order.
    let mut undo_rows: Vec<(usize, &'static OpSpec, BTreeMap<&'static str, String>)> = Vec::new();
    for raw in &table.rows {
        let rec = &raw.cells;
        let row: usize = rec
            .get(row_index)
            .map(String::as_str)
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        if rec.get(status_index).map(String::as_str) != Some("succeeded") {
            continue;
        }
        let Some(before) = replay.before.get(&row) else {
            report.no_before.push(row);
            continue;
        };
        if before.values.is_empty() {
            report.notes_left_out.push(row);
            continue;
        }
        let mut cells: BTreeMap<&'static str, String> = BTreeMap::new();
        for key in before.op.undo_keys {
            // A key a row succeeded with is a GUID or letters and digits, so a `'` before a formula
            // character can only be the results file's own.
            let value = column_of
                .iter()
                .position(|c| c == &Some(*key))
                .and_then(|i| rec.get(i))
                .map(|v| unneutralize(v))
                .unwrap_or("");
            cells.insert(key, value.to_owned());
        }
        for (column, value) in &before.values {
            let Some(col) = known.iter().find(|k| **k == column.as_str()) else {
                continue;
            };
            // Only what the row changed was read before: a before-value for a column the row
            // left empty is not one pcbulk journaled.
            let changed = column_of
                .iter()
                .position(|c| c == &Some(*col))
                .and_then(|i| rec.get(i))
                .is_some_and(|v| !v.trim().is_empty());
            if !changed {
                bail!(
                    "refusing to write an undo file: the journal {} line {}: a before-value for {col} \
                     of row {row}, which that row of {} did not change. It is not a journal pcbulk \
                     wrote for these results (it may be damaged or edited)",
                    journal_path.display(),
                    before.line,
                    results.display()
                );
            }
            if value.is_empty() {
                report.empty_before.push((row, column.clone()));
            } else {
                cells.insert(col, value.clone());
            }
        }
        undo_rows.push((row, before.op, cells));
    }

    // One operation: its own columns; several: an operation column and all of theirs.
    let mut ops_used: Vec<&str> = undo_rows.iter().map(|(_, op, _)| op.name).collect();
    ops_used.dedup();
    ops_used.sort_unstable();
    ops_used.dedup();
    let mixed = ops_used.len() > 1;
    let mut columns: Vec<&'static str> = Vec::new();
    if mixed {
        columns.push("operation");
    }
    for op in ops::OPERATIONS
        .iter()
        .filter(|o| ops_used.contains(&o.name))
    {
        for c in op.columns() {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
    }
    columns.push(MARKER);
    let cannot = || format!("cannot write the undo file {}", report.out.display());
    let mut file = crate::fsafe::create(&report.out, FIX).with_context(cannot)?;
    // Like the results: UTF-8 with a BOM (Excel reads it as UTF-8 then) and the input's delimiter.
    std::io::Write::write_all(&mut file, b"\xef\xbb\xbf").with_context(cannot)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(table.delimiter)
        .from_writer(file);
    w.write_record(&columns).with_context(cannot)?;
    for (row, op, cells) in &undo_rows {
        w.write_record(columns.iter().map(|c| match *c {
            "operation" => op.name.to_owned(),
            MARKER => row.to_string(),
            c => escape(cells.get(c).map_or("", String::as_str)).into_owned(),
        }))
        .with_context(cannot)?;
    }
    w.flush().with_context(cannot)?;
    report.rows = undo_rows.len();
    Ok(report)
}

/// What `pcbulk undo` prints.
pub fn report_text(r: &UndoReport) -> String {
    let mut s = format!(
        "pcbulk: wrote {} to {}\n",
        crate::report::count(r.rows, "undo row"),
        r.out.display()
    );
    if !r.notes_left_out.is_empty() {
        s.push_str(&format!(
            "  left out: notes added by rows {:?}: Partner Center cannot remove a note\n",
            r.notes_left_out
        ));
    }
    if !r.empty_before.is_empty() {
        let list: Vec<String> = r
            .empty_before
            .iter()
            .map(|(row, c)| format!("row {row} {c}"))
            .collect();
        s.push_str(&format!(
            "  cannot put back (they were empty before, and an empty cell means \"leave as it is\"): \
             {}; clear them by hand\n",
            list.join(", ")
        ));
    }
    if !r.no_before.is_empty() {
        s.push_str(&format!(
            "  cannot put back rows {:?}: there was nothing to read before they were changed\n",
            r.no_before
        ));
    }
    s.push_str("  check it with `pcbulk validate`, then apply it like any other file\n");
    s.push_str(&format!(
        "  cells that look like formulas carry a leading ' for spreadsheets, which pcbulk takes off \
         when it reads the file: keep its {MARKER} column if you edit it\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undo_cell_is_safe_in_a_spreadsheet_and_reads_back_as_it_was() {
        for value in [
            "=Old Name",
            "+1 425 555 0199",
            "-Reseller",
            "@Old",
            "\tx",
            "\rx",
            "'",
            "'=already quoted",
            "''",
            "'plain",
            "Trey Research",
            "",
        ] {
            let cell = escape(value);
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{value:?} → {cell:?}"
            );
            assert_eq!(unescape(&cell), value, "{value:?} → {cell:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn unescape_undoes_escape(value in "['=+@\\-\t\r]{0,3}.{0,8}") {
            let cell = escape(&value);
            proptest::prop_assert_eq!(unescape(&cell), value.as_str());
        }
    }

    #[test]
    fn a_quote_before_anything_else_is_not_pcbulk_s() {
        assert_eq!(unescape("'plain"), "'plain");
        assert_eq!(unescape("'=x"), "=x");
    }

    #[test]
    fn the_marker_is_recognised_spelt_any_way_a_header_may_be() {
        assert!(is_marker("pcbulk_undo"));
        assert!(is_marker(" PCBulk Undo "));
        assert!(!is_marker("undo"));
    }
}
