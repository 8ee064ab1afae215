//! `pcbulk undo RESULTS`: a CSV, in the input format, that puts back every before-value of the rows
//! a run changed. Applying it restores the tenant, except what cannot be undone: notes added to
//! service requests (Partner Center cannot remove them) and fields that were empty before (an empty
//! cell means "leave as it is"); both are listed, not silently dropped.
//!
//! An undo file is marked as pcbulk's own by a [`MARKER`](crate::undo_file::MARKER) column. Its cells are neutralised for
//! spreadsheets like a results file's, and so is a cell that starts with `'`: then exactly one
//! leading `'` is pcbulk's, and when pcbulk reads a marked file it takes that `'` off again
//! ([`unescape`](crate::undo_file::unescape)), so a before-value such as `=Old Name` or `+1 425 555 0199` goes back exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::csvfile::{unneutralize, Writer};
use crate::error::{exit, Error};
use crate::input::header::canonical;
use crate::journal;
use crate::ops::check::CLEAR;
use crate::ops::{self, OpSpec};
use crate::results::RESULT_COLUMNS;
use crate::undo_file::{escape, is_marker, MARKER};

pub fn run(results: &Path, out: Option<&Path>) -> Result<u8, Error> {
    let report = write_undo(results, out).map_err(|e| Error::Usage(format!("{e:#}")))?;
    print!("{}", report_text(&report));
    Ok(exit::OK)
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
        if crate::fsafe::same_file(out, record) {
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

/// Writes the undo file of the run whose results are at `results`: the journal beside them is read
/// and checked, the results file is read (each row's cells and final status), each succeeded row
/// becomes an undo line, and the lines are written.
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
    let replay = read_journal(&journal_path)?;
    refuse_plan_or_input(&replay, results, &out)?;
    let table = read_results(results)?;
    let run = Run {
        results,
        journal: &journal_path,
        columns: ResultsColumns::of(&table.headers, &replay)?,
        replay: &replay,
    };
    let mut report = UndoReport {
        out,
        ..UndoReport::default()
    };
    let mut undo_rows: Vec<UndoRow> = Vec::new();
    for raw in &table.rows {
        if let Some(undo) = run.undo_row(&raw.cells, &mut report)? {
            undo_rows.push(undo);
        }
    }
    report.rows = undo_rows.len();
    write_rows(&report, &table, &run.columns.column_of, &undo_rows)?;
    Ok(report)
}

/// The journal beside the results, read back; one pcbulk did not write is refused (its
/// before-values cannot be trusted).
fn read_journal(path: &Path) -> anyhow::Result<journal::Replay> {
    match journal::read(path) {
        Ok(r) => Ok(r),
        Err(journal::ReadError::Io(e)) => {
            Err(e).with_context(|| format!("cannot read the journal {}", path.display()))
        }
        Err(journal::ReadError::Misfit(m)) => bail!(
            "refusing to write an undo file: the journal {} line {}: {}. It is not a journal \
             pcbulk wrote (it may be damaged or edited), so its before-values cannot be trusted",
            path.display(),
            m.line,
            m.what
        ),
    }
}

/// Refuses the results of a plan (nothing was changed), and an `out` that is the run's input (as
/// its journal names it, beside the results or as given).
fn refuse_plan_or_input(
    replay: &journal::Replay,
    results: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let Some(job) = &replay.job else {
        return Ok(());
    };
    if job.plan {
        bail!(
            "{} is a plan: it read what applying would change and changed nothing, so there is \
             nothing to undo. Give the results file of an apply (<input stem>.results.csv)",
            results.display()
        );
    }
    let input = Path::new(&job.input);
    let beside = results.with_file_name(input.file_name().unwrap_or_default());
    if crate::fsafe::same_file(out, input) || crate::fsafe::same_file(out, &beside) {
        bail!(
            "--out {} is the run's input file; the undo file must go elsewhere",
            out.display()
        );
    }
    Ok(())
}

/// The results file, read as any input through the one reader (it may have a BOM, and the input's
/// delimiter): each row's input cells and final status.
fn read_results(results: &Path) -> anyhow::Result<crate::input::Table> {
    crate::input::read_path(results, &crate::input::ReadOptions::default()).map_err(|e| match e {
        // Already "cannot read <path>: <why>".
        crate::input::InputError::Io { .. } => anyhow::Error::new(e),
        _ => anyhow::Error::new(e).context(format!(
            "cannot read the results file {}",
            results.display()
        )),
    })
}

/// Where the results file holds what undo reads.
struct ResultsColumns {
    /// The operation column each results column is (see [`resolve_columns`]).
    column_of: Vec<Option<&'static str>>,
    row: usize,
    status: usize,
    change: Option<usize>,
    /// Whether the run's input was a file pcbulk marked (an export or an undo file): its cells,
    /// echoed in the results, are escaped as pcbulk escapes them.
    marked: bool,
}

impl ResultsColumns {
    /// Read as the run read its input: with its mapping, and its one operation's own names for a
    /// column (a billing file's `Tenant ID`; none for a file whose operation column names each
    /// row's).
    fn of(headers: &[String], replay: &journal::Replay) -> anyhow::Result<Self> {
        let identity = replay.job.as_ref().and_then(|j| j.identity.as_ref());
        let mapping = identity.map_or(&[][..], |i| &i.mapping[..]);
        let run_op = identity.and_then(|i| ops::by_name(&i.operation));
        let named = |name: &str| headers.iter().position(|h| h == name);
        Ok(ResultsColumns {
            column_of: resolve_columns(headers, mapping, run_op),
            row: named("row").context("the results file has no row column")?,
            status: named("status").context("the results file has no status column")?,
            change: named("change"),
            marked: headers.iter().any(|h| crate::undo_file::is_marker(h)),
        })
    }

    /// A carried cell's value: a marked input's escape taken off (or a `'` added again at each
    /// undo would grow the cell), a results file's own `'` otherwise.
    fn carried(&self, cell: &str) -> String {
        match self.marked {
            true => crate::undo_file::read(cell).to_owned(),
            false => unneutralize(cell).to_owned(),
        }
    }

    /// A row's cell in the results column that is operation column `col`.
    fn cell<'r>(&self, rec: &'r [String], col: &str) -> Option<&'r String> {
        let i = self.column_of.iter().position(|c| *c == Some(col))?;
        rec.get(i)
    }
}

/// What undo reads a run from: its results, its journal and where the results hold what.
struct Run<'a> {
    results: &'a Path,
    journal: &'a Path,
    replay: &'a journal::Replay,
    columns: ResultsColumns,
}

impl Run<'_> {
    /// The undo line of one results row: its keys, and each before-value with what the run set
    /// beside it. A row that did not succeed has none; one that changed only a note or read nothing
    /// first has none either, and is listed in `report`.
    fn undo_row(&self, rec: &[String], report: &mut UndoReport) -> anyhow::Result<Option<UndoRow>> {
        let text = |i: usize| rec.get(i).map_or("", String::as_str);
        let row: usize = text(self.columns.row).parse().unwrap_or(0);
        if text(self.columns.status) != "succeeded" {
            return Ok(None);
        }
        let Some(before) = self.replay.before.get(&row) else {
            report.no_before.push(row);
            return Ok(None);
        };
        if before.values.is_empty() {
            report.notes_left_out.push(row);
            return Ok(None);
        }
        let cell = |col: &str| self.columns.cell(rec, col);
        let mut undo = UndoRow {
            row,
            op: before.op,
            cells: BTreeMap::new(),
            expected: BTreeMap::new(),
            carried: rec.iter().map(|c| self.columns.carried(c)).collect(),
        };
        for key in before.op.undo_keys {
            // A key a row succeeded with is a GUID or letters and digits, so a `'` before a formula
            // character can only be the results file's own.
            let value = cell(key).map(|v| unneutralize(v)).unwrap_or("");
            undo.cells.insert(key, value.to_owned());
        }
        self.put_back(&mut undo, rec, before, report)?;
        Ok(Some(undo))
    }

    /// Adds a row's before-values to its undo line, each with what the run set beside it (as the
    /// row's `change` cell says; unknown, so not checked, without one). A value that was empty is
    /// listed in `report` instead: an empty cell means "leave as it is".
    fn put_back(
        &self,
        undo: &mut UndoRow,
        rec: &[String],
        before: &journal::Before,
        report: &mut UndoReport,
    ) -> anyhow::Result<()> {
        let cell = |col: &str| self.columns.cell(rec, col);
        let set = self
            .columns
            .change
            .and_then(|i| rec.get(i))
            .map(|c| after_values(unneutralize(c)))
            .filter(|set| !set.is_empty());
        for (column, value) in &before.values {
            let Some(col) = ops::all_columns().into_iter().find(|k| *k == column) else {
                continue;
            };
            // Only what the row changed was read before, and what was kept beside it.
            if cell(col).is_none_or(|v| v.trim().is_empty()) {
                let sets = |c: &str| cell(c).is_some_and(|v| !v.trim().is_empty());
                let mut kept = before.op.kept_beside.iter();
                if kept.any(|(by, k)| *k == col && sets(by)) {
                    continue;
                }
                return Err(self.foreign_before(col, undo.row, before.line));
            }
            if value.is_empty() {
                report.empty_before.push((undo.row, column.clone()));
                continue;
            }
            undo.cells.insert(col, value.clone());
            if let Some(set) = &set {
                // A column the change does not name kept its value: the run left it as it was.
                let after = set.get(col).unwrap_or(value);
                let expected = if after.is_empty() { CLEAR } else { after };
                undo.expected.insert(col, expected.to_owned());
            }
        }
        Ok(())
    }

    /// The refusal of a before-value for a column the row left empty: not one pcbulk journaled.
    fn foreign_before(&self, col: &str, row: usize, line: usize) -> anyhow::Error {
        anyhow::anyhow!(
            "refusing to write an undo file: the journal {} line {line}: a before-value for {col} \
             of row {row}, which that row of {} did not change. It is not a journal pcbulk wrote \
             for these results (it may be damaged or edited)",
            self.journal.display(),
            self.results.display()
        )
    }
}

/// One line of an undo file: the row of the results it puts back, its operation, the values to
/// put back and the values the run set (by column), and the results line's cells (for the carried
/// columns).
struct UndoRow {
    row: usize,
    op: &'static OpSpec,
    cells: BTreeMap<&'static str, String>,
    expected: BTreeMap<&'static str, String>,
    carried: Vec<String>,
}

/// The column each results header names: the run's mapping first (`HEADER=column`, the header as
/// written, trimmed), else the header's own name unless a mapping displaced it. The results file's
/// cells are neutralised: a header such as `-Customer ID` is written `'-Customer ID`. A header that
/// names a column as written wins over one that does once its `'` is taken off.
fn resolve_columns(
    headers: &[String],
    mapping: &[String],
    op: Option<&'static OpSpec>,
) -> Vec<Option<&'static str>> {
    let known = ops::all_columns();
    let mapped: Vec<(&str, &'static str)> = mapping
        .iter()
        .filter_map(|m| {
            let (header, column) = m.rsplit_once('=')?;
            Some((header.trim(), *known.iter().find(|k| **k == column.trim())?))
        })
        .collect();
    let by_mapping = |h: &str| {
        let h = h.trim();
        mapped
            .iter()
            .find(|(m, _)| *m == h || *m == unneutralize(h))
            .map(|(_, c)| *c)
    };
    let displaced = |c: &&str| mapped.iter().any(|(_, m)| m == c);
    let as_written: Vec<Option<&'static str>> = headers
        .iter()
        .map(|h| canonical(h, &known).filter(|c| !displaced(c)))
        .collect();
    let mut columns: Vec<Option<&'static str>> = headers
        .iter()
        .zip(&as_written)
        .map(|(h, c)| {
            by_mapping(h).or(*c).or_else(|| {
                canonical(unneutralize(h), &known)
                    .filter(|c| !displaced(c) && !as_written.contains(&Some(c)))
            })
        })
        .collect();
    // The operation's own names (`Tenant ID`, `Customer` for a billing profile's customer_id),
    // as the planner read them: only for a column no header names otherwise.
    if let Some(op) = op {
        for i in 0..headers.len() {
            let alias = crate::planner::op_alias(op, unneutralize(&headers[i]));
            if let Some(c) = alias.filter(|c| columns[i].is_none() && !displaced(c)) {
                if !columns.contains(&Some(c)) {
                    columns[i] = Some(c);
                }
            }
        }
    }
    columns
}

/// The after-values a results `change` cell names, by column: `column: "before" → "after"`,
/// joined with `; `, values quoted as Rust's `{:?}` quotes them. A note (`note: + "text"`) is
/// passed over; anything else ends the reading (a trailing warning, say).
pub fn after_values(change: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = change;
    while let Some((column, tail)) = rest.split_once(": ") {
        let tail = match tail.strip_prefix("+ ") {
            Some(note) => match quoted(note) {
                Some((_, after)) => after,
                None => break,
            },
            None => {
                let Some((_, tail)) = quoted(tail) else { break };
                let Some(tail) = tail.strip_prefix(" → ") else {
                    break;
                };
                let Some((after, tail)) = quoted(tail) else {
                    break;
                };
                out.insert(column.to_owned(), after);
                tail
            }
        };
        match tail.strip_prefix("; ") {
            Some(next) => rest = next,
            None => break,
        }
    }
    out
}

/// A string as `{:?}` writes it, at the start of `s`: its value, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                't' => value.push('\t'),
                '0' => value.push('\0'),
                'u' => {
                    let from = i + 3;
                    let to = from + body[from..].find('}')?;
                    let code = u32::from_str_radix(body.get(from..to)?, 16).ok()?;
                    value.push(char::from_u32(code)?);
                    while chars.next()?.1 != '}' {}
                }
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// The results columns the undo file's operations (`used`) do not read (the admin's own: a
/// customer's name, a note to self, a column named like another operation's, such as `note` in a
/// support-contact file), by index: copied into the undo file under their names, so rows can be
/// chosen by them. A column whose name the undo file would read as one of its operations' is left
/// out.
fn carried_columns(
    headers: &[String],
    column_of: &[Option<&'static str>],
    used: &[&'static OpSpec],
    single: Option<&'static OpSpec>,
) -> Vec<usize> {
    let mut known: Vec<&'static str> = vec!["operation"];
    for op in used {
        known.extend(
            op.columns()
                .filter(|c| !known.contains(c))
                .collect::<Vec<_>>(),
        );
    }
    let inputs = match headers.len().checked_sub(RESULT_COLUMNS.len()) {
        Some(n) if headers[n..].iter().eq(RESULT_COLUMNS.iter()) => n,
        _ => return Vec::new(),
    };
    (0..inputs)
        .filter(|i| column_of[*i].is_none_or(|c| !known.contains(&c)))
        .filter(|i| {
            let h = unneutralize(&headers[*i]);
            !h.trim().is_empty()
                && canonical(h, &known).is_none()
                && crate::ops::expect::named(h).is_none()
                && !is_marker(h)
                && single.is_none_or(|op| read_alone(op, h))
        })
        .collect()
}

/// Whether `header`, beside `op`'s columns, is a column of its own to the planner (not another
/// name for one of them).
fn read_alone(op: &'static OpSpec, header: &str) -> bool {
    let mut with: Vec<String> = op.columns().map(str::to_owned).collect();
    with.push(header.to_owned());
    let planner = crate::planner::Planner::new(&with, Some(op));
    planner.is_ok_and(|p| p.columns_read().len() == op.columns().count())
}

/// Writes the undo file: `operation` (several operations, a partner-wide one that no header
/// chooses, or a carried column that another operation reads), the carried columns, each operation column with its `expected_` column beside
/// those that are put back, and the [`MARKER`].
fn write_rows(
    report: &UndoReport,
    table: &crate::input::Table,
    column_of: &[Option<&'static str>],
    undo_rows: &[UndoRow],
) -> anyhow::Result<()> {
    let mut ops_used: Vec<&'static OpSpec> = Vec::new();
    for op in ops::OPERATIONS {
        if undo_rows.iter().any(|u| u.op.name == op.name) {
            ops_used.push(op);
        }
    }
    let single = match ops_used[..] {
        [op] if !op.partner_wide => Some(op),
        _ => None,
    };
    let carried = carried_columns(&table.headers, column_of, &ops_used, single);
    // A carried column that another operation reads (`city` beside support-contact's columns)
    // could make the header fit that operation too: the `operation` column says which it is.
    let known = ops::all_columns();
    let fits_another = carried
        .iter()
        .any(|i| canonical(unneutralize(&table.headers[*i]), &known).is_some());
    let mut columns: Vec<Column> = Vec::new();
    if (single.is_none() || fits_another) && !ops_used.is_empty() {
        columns.push(Column::Operation);
    }
    columns.extend(carried.iter().map(|i| Column::Carried(*i)));
    for op in &ops_used {
        for c in op.columns() {
            if !columns.contains(&Column::Op(c)) {
                columns.push(Column::Op(c));
                if ops_used.iter().any(|o| o.undoable.contains(&c)) {
                    columns.push(Column::Expected(c));
                }
            }
        }
    }
    columns.push(Column::Marker);
    let cannot = || format!("cannot write the undo file {}", report.out.display());
    // Like the results: UTF-8 with a BOM (Excel reads it as UTF-8 then) and the input's delimiter.
    let mut w = Writer::create(&report.out, FIX, table.delimiter).with_context(cannot)?;
    w.record(columns.iter().map(|c| c.header(&table.headers)))
        .with_context(cannot)?;
    for undo in undo_rows {
        w.record(columns.iter().map(|c| c.cell(undo)))
            .with_context(cannot)?;
    }
    w.finish().with_context(cannot)?;
    Ok(())
}

/// A column of an undo file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    Operation,
    /// The results column at this index.
    Carried(usize),
    Op(&'static str),
    Expected(&'static str),
    Marker,
}

impl Column {
    fn header(&self, results: &[String]) -> String {
        match self {
            Column::Operation => "operation".to_owned(),
            Column::Carried(i) => results[*i].clone(),
            Column::Op(c) => (*c).to_owned(),
            Column::Expected(c) => format!("{}{c}", crate::ops::expect::PREFIX),
            Column::Marker => MARKER.to_owned(),
        }
    }

    fn cell(&self, undo: &UndoRow) -> String {
        let value = |cells: &BTreeMap<&'static str, String>, c: &str| {
            escape(cells.get(c).map_or("", String::as_str)).into_owned()
        };
        match self {
            Column::Operation => undo.op.name.to_owned(),
            Column::Carried(i) => {
                escape(undo.carried.get(*i).map_or("", String::as_str)).into_owned()
            }
            Column::Op(c) => value(&undo.cells, c),
            Column::Expected(c) => value(&undo.expected, c),
            Column::Marker => undo.row.to_string(),
        }
    }
}

/// What `pcbulk undo` prints.
pub fn report_text(r: &UndoReport) -> String {
    let mut s = format!(
        "pcbulk: wrote {} to {}\n",
        crate::text::count(r.rows, "undo row"),
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
    s.push_str(
        "  beside each value it puts back, an expected_<column> column holds what the run set: \
         a row whose target holds something else by then is left as it is (failed, drifted; \
         --force puts it back anyway)\n",
    );
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
    fn the_after_values_are_read_from_a_change_cell_as_it_quotes_them() {
        let change =
            r#"name: "Adatum" → "Trey; \"R\" \u{1f600}\\"; support_mpn_id: "1" → "4391507""#;
        let after = after_values(change);
        assert_eq!(after["name"], "Trey; \"R\" \u{1f600}\\");
        assert_eq!(after["support_mpn_id"], "4391507");
        let sr = after_values(r#"note: + "a; b: \"c\""; new_status: "open" → "closed""#);
        assert_eq!(sr.len(), 1, "{sr:?}");
        assert_eq!(sr["new_status"], "closed");
        let cleared = after_values(r#"phone_number: "+1 425" → """#);
        assert_eq!(cleared["phone_number"], "");
        let warned = after_values(
            r#"country: "US" → "DE"; warning: state "WA" is kept, but DE addresses have no state"#,
        );
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(after_values("").is_empty());
        assert!(after_values(r#"name: "unterminated"#).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn after_values_reads_back_what_describe_changes_writes(
            a in "\\PC{0,12}", b in "\\PC{0,12}", c in "[ -~]{0,8}"
        ) {
            let before = [("name".to_owned(), c.clone())].into_iter().collect();
            let change = crate::ops::describe_changes(&before, [("name", a.as_str()), ("city", b.as_str())]);
            let after = after_values(&change);
            if a != c {
                proptest::prop_assert_eq!(after.get("name"), Some(&a));
            }
            if !b.is_empty() {
                proptest::prop_assert_eq!(after.get("city"), Some(&b));
            }
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn the_run_s_mapping_says_which_results_columns_are_the_operation_s_own() {
        let mut headers = strings(&[
            "Customer",
            "Kunde",
            "customer_id",
            "subscription_id",
            "Tenant",
            "support_mpn_id",
            "name",
        ]);
        headers.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
        // As a run with `--map 'Kunde=customer_id' --map 'Tenant=support_tenant_id'` records it.
        let identity = crate::journal::Identity {
            operation: "support-contact".into(),
            target: "http://127.0.0.1:1".into(),
            sheet: None,
            mapping: strings(&["Kunde=customer_id", "Tenant=support_tenant_id"]),
            rows_sha256: "e".repeat(64),
        };
        let columns = resolve_columns(&headers, &identity.mapping, None);
        assert_eq!(
            &columns[..7],
            [
                None,
                Some("customer_id"),
                None,
                Some("subscription_id"),
                Some("support_tenant_id"),
                Some("support_mpn_id"),
                Some("name")
            ],
            "a mapped header is its column; the header it displaced is carried"
        );
        let sc = ops::by_name("support-contact").unwrap();
        let carried = carried_columns(&headers, &columns, &[sc], Some(sc));
        assert_eq!(
            carried,
            [0],
            "Customer is carried; the displaced customer_id would be read as pcbulk's in the undo \
             file, so it is left out"
        );
        let unmapped = resolve_columns(&headers, &[], None);
        assert_eq!(unmapped[2], Some("customer_id"));
        assert_eq!(unmapped[1], None);
    }

    #[test]
    fn a_carried_column_the_operation_would_read_as_one_of_its_own_is_left_out() {
        let mut headers = strings(&["Customer", "Tenant ID", "Notes", "customer_id", "city"]);
        headers.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
        let columns = resolve_columns(&headers, &[], None);
        let billing = ops::by_name("billing-profile").unwrap();
        let names: Vec<&str> = carried_columns(&headers, &columns, &[billing], Some(billing))
            .into_iter()
            .map(|i| headers[i].as_str())
            .collect();
        assert_eq!(
            names,
            ["Notes"],
            "Customer and Tenant ID name the customer in a billing file"
        );
        let sc = ops::by_name("support-contact").unwrap();
        let names: Vec<&str> = carried_columns(&headers, &columns, &[sc], Some(sc))
            .into_iter()
            .map(|i| headers[i].as_str())
            .collect();
        assert_eq!(
            names,
            ["Customer", "Tenant ID", "Notes", "city"],
            "a billing column is the admin's own in a support-contact file"
        );
    }

    #[test]
    fn the_marker_is_recognised_spelt_any_way_a_header_may_be() {
        assert!(is_marker("pcbulk_undo"));
        assert!(is_marker(" PCBulk Undo "));
        assert!(!is_marker("undo"));
    }
}
