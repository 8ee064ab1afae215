//! `pcbulk undo RESULTS`: a CSV, in the input format, that puts back every before-value of the rows
//! a run changed. Applying it restores the tenant, except what cannot be undone: notes added to
//! service requests (Partner Center cannot remove them) and fields that were empty before (an empty
//! cell means "leave as it is"); both are listed, not silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::input::header::canonical;
use crate::journal;
use crate::ops;

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

pub fn write_undo(results: &Path, out: Option<&Path>) -> anyhow::Result<UndoReport> {
    let journal_path = journal::path_for(results);
    if !journal_path.exists() {
        bail!(
            "there is no journal {} beside the results: undo needs the before-values a run records \
             there",
            journal_path.display()
        );
    }
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

    // The results file holds each row's input cells and final status; read it as any input (it may
    // have a BOM, and the input's delimiter).
    let table = crate::input::read_path(results, &crate::input::ReadOptions::default())
        .with_context(|| format!("cannot read the results file {}", results.display()))?;
    let headers = &table.headers;
    let known = ops::all_columns();
    let column_of: Vec<Option<&'static str>> =
        headers.iter().map(|h| canonical(h, &known)).collect();
    let row_index = headers
        .iter()
        .position(|h| h == "row")
        .context("the results file has no row column")?;
    let status_index = headers
        .iter()
        .position(|h| h == "status")
        .context("the results file has no status column")?;

    let mut report = UndoReport {
        out: out
            .map(Path::to_owned)
            .unwrap_or_else(|| default_out(results)),
        ..UndoReport::default()
    };
    // (op, columns → value) per undo row, in input order.
    let mut undo_rows: Vec<(String, BTreeMap<&'static str, String>)> = Vec::new();
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
            let value = column_of
                .iter()
                .position(|c| c == &Some(*key))
                .and_then(|i| rec.get(i))
                .map(String::as_str)
                .unwrap_or("");
            cells.insert(key, value.to_owned());
        }
        for (column, value) in &before.values {
            let Some(col) = known.iter().find(|k| **k == column.as_str()) else {
                continue;
            };
            if value.is_empty() {
                report.empty_before.push((row, column.clone()));
            } else {
                cells.insert(col, value.clone());
            }
        }
        undo_rows.push((before.op.name.to_owned(), cells));
    }

    // One operation: its own columns; several: an operation column and all of theirs.
    let mut ops_used: Vec<&str> = undo_rows.iter().map(|(op, _)| op.as_str()).collect();
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
    let mut w = csv::Writer::from_path(&report.out)
        .with_context(|| format!("cannot write {}", report.out.display()))?;
    w.write_record(&columns)?;
    for (op, cells) in &undo_rows {
        w.write_record(columns.iter().map(|c| {
            if *c == "operation" {
                op.clone()
            } else {
                cells.get(c).cloned().unwrap_or_default()
            }
        }))?;
    }
    w.flush()?;
    report.rows = undo_rows.len();
    Ok(report)
}

/// What `pcbulk undo` prints.
pub fn report_text(r: &UndoReport) -> String {
    let mut s = format!(
        "pcbulk: wrote {} undo rows to {}\n",
        r.rows,
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
    s
}
