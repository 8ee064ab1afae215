//! The rows of a finished run, as the report tells them: identical changes grouped with a count,
//! rows not applied grouped by error code, a few example rows of each named by the admin's own
//! columns.
//!
//! Read from the results file once the run is over, not gathered from the run's events: the file
//! is on disk, complete and in input order, and holds each row's own cells (carried names among
//! them), so only a run with `--report` pays for it, after the run. It is streamed a record at a
//! time, and what is kept is bounded whatever the file's size: at most [`MAX_GROUPS`] distinct
//! changes and [`MAX_CODES`] error codes (the rest are counted, not told apart), and at most a few
//! example rows per group.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use super::headline::{cut, parse_change, FieldChange};
use super::summary::{About, Summary};
use crate::csvfile::unneutralize;
use crate::input::header::{canonical, normalize};
use crate::ops::{self, OpSpec};
use crate::results::{Status, RESULT_COLUMNS};

/// How many distinct changes are told apart; rows with any other change are counted together.
pub const MAX_GROUPS: usize = 1000;
/// How many distinct error codes are told apart; the rest count as `other`.
pub const MAX_CODES: usize = 1000;
/// How many example rows a group of identical changes keeps.
pub const CHANGE_EXAMPLES: usize = 3;
/// How many rows a group of rows not applied keeps to list.
pub const PROBLEM_ROWS: usize = 10;
/// How long a change may be to be grouped by its whole text (a longer one by its start).
const CHANGE_CHARS: usize = 2000;
/// How long a message is kept.
const MESSAGE_CHARS: usize = 1000;
/// How long a carried name or id may be in a row's label.
const LABEL_CELL_CHARS: usize = 80;
/// How many carried columns name a row at most.
const NAME_COLUMNS: usize = 3;

/// One operation's rows that changed, or were already as asked.
#[derive(Debug)]
pub struct OpRows {
    /// `None`: rows whose operation could not be told.
    pub op: Option<&'static OpSpec>,
    pub changed: usize,
    pub unchanged: usize,
    /// The column changes every changed row shares (`None` before the first).
    pub common: Option<Vec<FieldChange>>,
    /// How many distinct changes are in groups.
    pub kinds: usize,
    /// Some rows' changes are beyond [`MAX_GROUPS`]: there are more distinct changes than `kinds`.
    pub more_kinds: bool,
}

/// Rows that made one and the same change.
#[derive(Debug)]
pub struct ChangeGroup {
    /// Index into [`Tally::ops`].
    pub op: usize,
    pub change: String,
    pub count: usize,
    pub first_row: usize,
    /// The first rows, as [`Naming::label`] names them.
    pub rows: Vec<String>,
}

/// Rows not applied (invalid, failed, skipped) with one error code.
#[derive(Debug)]
pub struct ProblemGroup {
    pub code: String,
    pub count: usize,
    /// The first row's message: it says what is wrong and what to do.
    pub message: String,
    pub http_status: Option<u16>,
    /// Rows by status, indexed as [`Status::ALL`].
    pub statuses: [usize; Status::ALL.len()],
    pub first_row: usize,
    pub rows: Vec<ProblemRow>,
}

/// One row not applied, as listed.
#[derive(Debug)]
pub struct ProblemRow {
    pub label: String,
    pub status: Status,
    /// Its message, when it is not the group's.
    pub message: Option<String>,
}

/// One row of the results, as [`Tally::add`] counts it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub row: usize,
    pub status: Status,
    /// Index into [`Tally::ops`].
    pub op: usize,
    pub change: &'a str,
    pub code: &'a str,
    pub message: &'a str,
    pub http_status: Option<u16>,
}

/// What the report says about a run's rows.
#[derive(Debug, Default)]
pub struct Tally {
    pub ops: Vec<OpRows>,
    changes: HashMap<(usize, String), ChangeGroup>,
    /// Rows whose change is not in a group: distinct changes beyond [`MAX_GROUPS`].
    pub changes_over: usize,
    problems: HashMap<String, ProblemGroup>,
    /// Invalid, failed and skipped rows.
    pub not_applied: usize,
    /// Rows `validate` found valid.
    pub valid: usize,
    /// The carried columns that name the rows listed.
    pub named_by: Vec<String>,
    /// Why rows are shown only in part (the results file could not be read), if they are.
    pub partial: Option<String>,
}

impl Tally {
    /// A tally of rows of these operations (a file of one operation: one).
    pub fn new(ops: Vec<Option<&'static OpSpec>>) -> Self {
        Tally {
            ops: ops.into_iter().map(OpRows::new).collect(),
            ..Tally::default()
        }
    }

    /// The index of an operation's rows, added on first sight.
    pub fn op_index(&mut self, op: Option<&'static OpSpec>) -> usize {
        let same = |o: &OpRows| o.op.map(|x| x.name) == op.map(|x| x.name);
        match self.ops.iter().position(same) {
            Some(i) => i,
            None => {
                self.ops.push(OpRows::new(op));
                self.ops.len() - 1
            }
        }
    }

    /// Counts one row; `label` names it, and is asked only when the row is kept as an example.
    pub fn add(&mut self, l: Line, label: impl FnOnce() -> String) {
        match l.status {
            Status::Succeeded | Status::Planned => self.add_change(l, label),
            Status::Unchanged => self.ops[l.op].unchanged += 1,
            Status::Valid => self.valid += 1,
            Status::Invalid | Status::Failed | Status::Skipped => self.add_problem(l, label),
        }
    }

    fn add_change(&mut self, l: Line, label: impl FnOnce() -> String) {
        let change = cut(l.change, CHANGE_CHARS);
        let o = &mut self.ops[l.op];
        o.changed += 1;
        let key = (l.op, change);
        if let Some(g) = self.changes.get_mut(&key) {
            g.count += 1;
            if g.rows.len() < CHANGE_EXAMPLES {
                g.rows.push(label());
            }
            return;
        }
        o.share(l.change);
        if self.changes.len() >= MAX_GROUPS {
            // Not told apart: whether it is a change seen before is not known.
            self.changes_over += 1;
            o.more_kinds = true;
            return;
        }
        o.kinds += 1;
        let g = ChangeGroup {
            op: l.op,
            change: key.1.clone(),
            count: 1,
            first_row: l.row,
            rows: vec![label()],
        };
        self.changes.insert(key, g);
    }

    fn add_problem(&mut self, l: Line, label: impl FnOnce() -> String) {
        self.not_applied += 1;
        let code = match (l.code, l.http_status) {
            ("", Some(h)) => format!("http_{h}"),
            ("", None) => "no_code".to_owned(),
            (c, _) if self.problems.len() >= MAX_CODES && !self.problems.contains_key(c) => {
                "other".to_owned()
            }
            (c, _) => c.to_owned(),
        };
        let g = self
            .problems
            .entry(code)
            .or_insert_with_key(|code| ProblemGroup {
                code: code.clone(),
                count: 0,
                message: cut(l.message, MESSAGE_CHARS),
                http_status: l.http_status,
                statuses: [0; Status::ALL.len()],
                first_row: l.row,
                rows: Vec::new(),
            });
        g.count += 1;
        g.statuses[l.status as usize] += 1;
        if g.rows.len() < PROBLEM_ROWS {
            let message = cut(l.message, MESSAGE_CHARS);
            g.rows.push(ProblemRow {
                label: label(),
                status: l.status,
                message: (message != g.message).then_some(message),
            });
        }
    }

    /// Groups of identical changes, the most rows first (then by first row).
    pub fn change_groups(&self) -> Vec<&ChangeGroup> {
        let mut v: Vec<&ChangeGroup> = self.changes.values().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_row.cmp(&b.first_row)));
        v
    }

    /// Rows not applied by error code, the most rows first (then by first row).
    pub fn problem_groups(&self) -> Vec<&ProblemGroup> {
        let mut v: Vec<&ProblemGroup> = self.problems.values().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_row.cmp(&b.first_row)));
        v
    }

    /// Rows that changed, in all.
    pub fn changed(&self) -> usize {
        self.ops.iter().map(|o| o.changed).sum()
    }
}

impl OpRows {
    fn new(op: Option<&'static OpSpec>) -> Self {
        OpRows {
            op,
            changed: 0,
            unchanged: 0,
            common: None,
            kinds: 0,
            more_kinds: false,
        }
    }

    /// Keeps of [`OpRows::common`] only what `change` shares (a change not in the usual form
    /// shares nothing).
    fn share(&mut self, change: &str) {
        if self.common.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        let parsed = parse_change(change).unwrap_or_default();
        match &mut self.common {
            None => self.common = Some(parsed),
            Some(c) => c.retain(|f| parsed.contains(f)),
        }
    }
}

/// What the report knows of a run's rows: read from its results file, or, when that cannot be
/// read, the first rows the run kept in its summary (said so in [`Tally::partial`]).
pub fn tally(s: &Summary) -> Tally {
    if s.rows() == 0 {
        return from_summary(s, None);
    }
    match read_results(&s.results, &s.about) {
        Ok(t) => t,
        Err(e) => from_summary(
            s,
            Some(format!(
                "the results file {} could not be read ({e}): the rows below are the first the \
                 run kept",
                s.results.display()
            )),
        ),
    }
}

/// The run's operation as its summary names it; `None` for a mixed file's (names joined with
/// `,`) or one not known.
fn op_of(about: &About) -> Option<&'static OpSpec> {
    about.operation.as_deref().and_then(ops::by_name)
}

/// The rows the summary kept: the first changes, the first rows of each error code, and counts.
fn from_summary(s: &Summary, partial: Option<String>) -> Tally {
    let mut t = Tally::new(vec![op_of(&s.about)]);
    t.partial = partial;
    for o in &s.changes {
        let l = Line {
            row: o.row,
            status: o.status,
            op: 0,
            change: &o.change,
            code: "",
            message: "",
            http_status: None,
        };
        t.add(l, || format!("row {}", o.row));
    }
    t.changes_over += s.changes_total.saturating_sub(s.changes.len());
    if t.changes_over > 0 {
        // Rows not seen may share nothing with those seen.
        t.ops[0].common = Some(Vec::new());
        t.ops[0].more_kinds = true;
    }
    t.ops[0].changed = s.count_of(Status::Succeeded) + s.count_of(Status::Planned);
    t.ops[0].unchanged = s.count_of(Status::Unchanged);
    t.valid = s.count_of(Status::Valid);
    for g in s.errors() {
        for o in &g.rows {
            let l = Line {
                row: o.row,
                status: o.status,
                op: 0,
                change: "",
                code: &g.code,
                message: &o.error_message,
                http_status: o.http_status,
            };
            t.add(l, || format!("row {}", o.row));
        }
        if let Some(kept) = t.problems.get_mut(&g.code) {
            kept.count = g.count;
        }
    }
    let skipped = s.count_of(Status::Skipped);
    if skipped > 0 {
        t.problems.insert(
            "skipped".into(),
            ProblemGroup {
                code: "skipped".into(),
                count: skipped,
                message: "see the results file for why".into(),
                http_status: None,
                statuses: [0; Status::ALL.len()],
                first_row: usize::MAX,
                rows: Vec::new(),
            },
        );
    }
    t.not_applied = s.count_of(Status::Invalid) + s.count_of(Status::Failed) + skipped;
    t
}

/// The delimiter of a results file, from its header line: the one before its last column,
/// `change`.
fn sniff(head: &[u8]) -> io::Result<u8> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    [b',', b';', b'\t', b'|']
        .into_iter()
        .find(|d| line.ends_with(&[&[*d][..], b"change"].concat()))
        .ok_or_else(|| io::Error::other("its header is not a results file's"))
}

/// Reads a results file a record at a time into a [`Tally`], through the one CSV reader (its BOM
/// passed over, its delimiter found from its header).
fn read_results(path: &Path, about: &About) -> io::Result<Tally> {
    let mut rdr = crate::csvfile::Reader::new(std::fs::File::open(path)?, sniff)?;
    let header: Vec<String> = match rdr.next_record()? {
        Some(rec) => rec.fields().map(lossy).collect(),
        None => Vec::new(),
    };
    let at = header
        .len()
        .checked_sub(RESULT_COLUMNS.len())
        .filter(|n| header[*n..] == *RESULT_COLUMNS)
        .ok_or_else(|| io::Error::other("its header does not end with pcbulk's columns"))?;
    let input = &header[..at];
    let naming = Naming::new(input, about.read_columns.as_deref());
    let op_column = input
        .iter()
        .position(|h| canonical(h, &["operation"]).is_some());
    let mut t = Tally::new(match op_column {
        Some(_) => Vec::new(),
        None => vec![op_of(about)],
    });
    let mut naming = naming;
    while let Some(rec) = rdr.next_record()? {
        let rec: Vec<&[u8]> = rec.fields().collect();
        let cell = |i: usize| lossy(rec.get(i).copied().unwrap_or_default());
        let (Ok(row), Some(status)) = (cell(at).parse::<usize>(), status_of(&cell(at + 2))) else {
            continue;
        };
        let op = match op_column {
            Some(i) => t.op_index(ops::by_name(&cell(i))),
            None => 0,
        };
        let (change, code, message) = (cell(at + 10), cell(at + 4), cell(at + 5));
        let l = Line {
            row,
            status,
            op,
            change: unneutralize(&change),
            code: unneutralize(&code),
            message: unneutralize(&message),
            http_status: cell(at + 3).parse().ok(),
        };
        let row_op = t.ops[op].op;
        t.add(l, || naming.label(row, row_op, &rec));
    }
    t.named_by = naming.used();
    Ok(t)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn status_of(cell: &str) -> Option<Status> {
    Status::ALL.into_iter().find(|s| s.as_str() == cell)
}

/// How the rows listed are named.
///
/// By the admin's own *carried* columns where the file has them: the columns no operation reads
/// (per the run's header matching, or, when the run did not say, any header that names no
/// pcbulk column), other than pcbulk's own (an undo file's marker and `expected_` columns), whose
/// header suggests a name: one that holds `name`, `customer`, `company`, `subscription`,
/// `organi[sz]ation`, `account`, `client`, `reseller`, `tenant` or `offer`, or is `abo`, `kunde`
/// or `firma`. At most three such columns, in the file's order. A cell that is a GUID names
/// nothing (a displaced `Tenant ID` column holds ids, not names): a row without a name is
/// named by its row number and the cells of its operation's key columns (`customer_id`,
/// `subscription_id`, ...), or by its row number alone.
pub struct Naming {
    /// (index, header) of the name columns, and whether one named a row listed.
    names: Vec<(usize, String, bool)>,
    input: Vec<String>,
}

/// Words in a header that suggest it holds names (see [`Naming`]).
const NAME_WORDS: &[&str] = &[
    "name",
    "customer",
    "company",
    "subscription",
    "organisation",
    "organization",
    "account",
    "client",
    "reseller",
    "tenant",
    "offer",
];
/// Whole headers that do (German ones admins use).
const NAME_HEADERS: &[&str] = &["abo", "kunde", "firma"];

impl Naming {
    /// `read`: the indices of the columns the run's operations read, if the run said.
    pub fn new(input: &[String], read: Option<&[usize]>) -> Self {
        let known = ops::all_columns();
        let is_read = |i: usize, h: &str| match read {
            Some(r) => r.contains(&i),
            None => canonical(h, &known).is_some(),
        };
        let names = input
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                let n = normalize(h);
                let ours = crate::undo_file::is_marker(h) || n.starts_with("expected");
                let nameish =
                    NAME_WORDS.iter().any(|w| n.contains(w)) || NAME_HEADERS.contains(&n.as_str());
                nameish && !ours && !is_read(*i, h) && canonical(h, &known).is_none()
            })
            .take(NAME_COLUMNS)
            .map(|(i, h)| (i, h.clone(), false))
            .collect();
        Naming {
            names,
            input: input.to_vec(),
        }
    }

    /// A row's label: `row 12 · Contoso Ltd · Office 365 E3`, or `row 12 · customer_id …`.
    pub fn label(&mut self, row: usize, op: Option<&OpSpec>, rec: &[&[u8]]) -> String {
        let cell = |i: usize| lossy(rec.get(i).copied().unwrap_or_default());
        let shown = |v: &str| cut(unneutralize(v.trim()), LABEL_CELL_CHARS);
        let mut parts = vec![format!("row {row}")];
        for (i, _, used) in &mut self.names {
            let v = cell(*i);
            let v = v.trim();
            if !v.is_empty() && ops::check::guid("", v).is_err() {
                parts.push(shown(v));
                *used = true;
            }
        }
        if parts.len() == 1 {
            let keys = op.map_or(&[][..], |op| op.undo_keys);
            for (i, h) in self.input.iter().enumerate() {
                let v = cell(i);
                match canonical(h, keys) {
                    Some(k) if !v.trim().is_empty() => parts.push(format!("{k} {}", shown(&v))),
                    _ => {}
                }
            }
        }
        parts.join(" · ")
    }

    /// The headers of the name columns that named a row listed.
    pub fn used(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, _, used)| *used)
            .map(|(_, h, _)| h.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(row: usize, status: Status, change: &'static str, code: &'static str) -> Line<'static> {
        Line {
            row,
            status,
            op: 0,
            change,
            code,
            message: "m",
            http_status: None,
        }
    }

    #[test]
    fn identical_changes_are_one_group_with_a_count_and_a_few_examples() {
        let mut t = Tally::new(vec![ops::by_name("support-contact")]);
        for row in 1..=291 {
            t.add(
                line(row, Status::Succeeded, "name: \"A\" → \"B\"", ""),
                || format!("row {row}"),
            );
        }
        t.add(
            line(292, Status::Succeeded, "name: \"C\" → \"B\"", ""),
            || "row 292".into(),
        );
        let g = t.change_groups();
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].count, g[0].first_row), (291, 1));
        assert_eq!(g[0].rows, ["row 1", "row 2", "row 3"]);
        assert_eq!(t.ops[0].kinds, 2);
        assert_eq!(t.ops[0].common.as_ref().unwrap().len(), 0);
    }

    #[test]
    fn a_file_of_a_million_distinct_changes_keeps_a_bounded_number_of_groups() {
        let mut t = Tally::new(vec![ops::by_name("support-contact")]);
        let mut labels = 0;
        for row in 0..MAX_GROUPS + 500 {
            let change = format!("name: \"a{row}\" → \"b\"");
            let l = Line {
                change: &change,
                ..line(row, Status::Succeeded, "", "")
            };
            t.add(l, || {
                labels += 1;
                String::new()
            });
        }
        for row in 0..MAX_CODES + 50 {
            let code = format!("c{row}");
            let l = Line {
                code: &code,
                ..line(row, Status::Invalid, "", "")
            };
            t.add(l, String::new);
        }
        assert_eq!(t.change_groups().len(), MAX_GROUPS);
        assert_eq!(t.changes_over, 500);
        assert_eq!((t.ops[0].kinds, t.ops[0].more_kinds), (MAX_GROUPS, true));
        assert_eq!(labels, MAX_GROUPS, "a label is made only for a row kept");
        assert_eq!(t.problem_groups().len(), MAX_CODES + 1);
        assert_eq!(t.problem_groups()[0].code, "other");
        assert_eq!(t.not_applied, MAX_CODES + 50);
    }

    #[test]
    fn rows_not_applied_are_grouped_by_code_with_each_row_s_own_message_when_it_differs() {
        let mut t = Tally::new(vec![None]);
        t.add(line(1, Status::Failed, "", "drifted"), || "row 1".into());
        let other = Line {
            message: "other",
            ..line(2, Status::Skipped, "", "drifted")
        };
        t.add(other, || "row 2".into());
        let g = &t.problem_groups()[0];
        assert_eq!((g.count, g.message.as_str()), (2, "m"));
        assert_eq!(g.rows[0].message, None);
        assert_eq!(g.rows[1].message.as_deref(), Some("other"));
        assert_eq!(g.statuses[Status::Skipped as usize], 1);
    }

    fn bytes<'a>(cells: &[&'a str]) -> Vec<&'a [u8]> {
        cells.iter().map(|c| c.as_bytes()).collect()
    }

    #[test]
    fn rows_are_named_by_carried_name_columns_and_not_by_ids_or_pcbulk_s_own_columns() {
        let headers: Vec<String> = [
            "customer_id",
            "Customer",
            "Tenant ID",
            "expected_name",
            "Notes",
            "subscription_id",
        ]
        .map(String::from)
        .to_vec();
        let mut n = Naming::new(&headers, Some(&[0, 5]));
        let op = ops::by_name("support-contact");
        let rec = bytes(&[
            "c1",
            "Contoso Ltd",
            "e0000001-0000-4000-8000-000000000001",
            "x",
            "a note",
            "d1",
        ]);
        assert_eq!(n.label(7, op, &rec), "row 7 · Contoso Ltd");
        let rec = bytes(&[
            "c1",
            "",
            "e0000001-0000-4000-8000-000000000001",
            "x",
            "a note",
            "d1",
        ]);
        assert_eq!(
            n.label(8, op, &rec),
            "row 8 · customer_id c1 · subscription_id d1"
        );
        assert_eq!(n.used(), ["Customer"]);
    }

    #[test]
    fn a_mixed_file_s_results_are_read_by_each_row_s_operation_whatever_the_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut text = String::from("\u{feff}operation;Company;email;customer_id;");
        text.push_str(&RESULT_COLUMNS.join(";"));
        text.push('\n');
        text.push_str(
            "support-profile;;a@x;;1;2;succeeded;200;;;1;;;3;\"email: \"\"b@x\"\" → \"\"a@x\"\"\"\n\
             billing-profile;'=Evil Ltd;;c1;2;3;failed;412;drifted;'=changed since;1;;;3;\n",
        );
        std::fs::write(&path, text).unwrap();
        let mut about = Summary::new(path.clone()).about;
        about.operation = Some("support-profile,billing-profile".into());
        let t = read_results(&path, &about).unwrap();
        assert_eq!(t.ops.len(), 2);
        assert_eq!(t.ops[0].op.map(|o| o.name), Some("support-profile"));
        assert_eq!(t.change_groups()[0].change, "email: \"b@x\" → \"a@x\"");
        let p = &t.problem_groups()[0];
        assert_eq!(
            (p.code.as_str(), p.message.as_str()),
            ("drifted", "=changed since")
        );
        assert_eq!(p.rows[0].label, "row 2 · =Evil Ltd");
        assert_eq!(t.named_by, ["Company"]);
    }

    #[test]
    fn without_its_results_file_the_report_shows_the_rows_the_summary_kept_and_says_so() {
        let mut s = Summary::new("/nonexistent/r.csv".into());
        s.about.operation = Some("support-contact".into());
        let mut ok = crate::results::Outcome::unsent(1, 2, Status::Succeeded, "", "");
        ok.change = "name: \"A\" → \"B\"".into();
        s.count(ok);
        s.count(crate::results::Outcome::unsent(
            2,
            3,
            Status::Skipped,
            "aborted",
            "stop",
        ));
        let t = tally(&s);
        assert!(t.partial.as_deref().unwrap().contains("could not be read"));
        assert_eq!((t.changed(), t.not_applied), (1, 1));
        assert_eq!(t.problem_groups()[0].code, "skipped");
    }

    #[test]
    fn a_results_header_s_delimiter_is_the_one_before_change() {
        assert_eq!(sniff(b"a;b;row;change\r\nx").unwrap(), b';');
        assert_eq!(sniff(b"a,b,row,change\n").unwrap(), b',');
        assert!(sniff(b"a,b\n").is_err());
    }
}
