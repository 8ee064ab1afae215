//! From a parsed table to a verdict per row: which operation, which columns, valid or not, and no
//! two rows changing the same thing. Nothing here touches the network.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::UsageError;
use crate::input::header::{canonical, normalize, ColumnMap};
use crate::input::Table;
use crate::ops::{self, Change, OpSpec, Problem, Row};

pub enum Verdict {
    Ready(Box<dyn Change>),
    Invalid { code: String, message: String },
}

pub struct PlannedRow {
    pub row: usize,
    pub line: u64,
    /// The input cells, trimmed, one per header column.
    pub cells: Vec<String>,
    pub op: Option<&'static OpSpec>,
    pub verdict: Verdict,
}

pub struct Plan {
    pub headers: Vec<String>,
    pub rows: Vec<PlannedRow>,
    /// Things worth telling the user that do not stop the run (a header that looks like a typo).
    pub warnings: Vec<String>,
    /// The input's delimiter, which the results file uses too.
    pub delimiter: u8,
}

/// A header that names no known column but is close to one.
struct NearMiss {
    header: String,
    column: &'static str,
}

impl NearMiss {
    fn sentence(&self) -> String {
        format!(
            "column \"{}\" is not one pcbulk reads (it is kept and echoed to the results); did you \
             mean {}?",
            self.header, self.column
        )
    }
}

/// Headers that name no column but are within a typo or two of one: one of `op`'s, when the
/// operation is known (a `Notes` column in a billing file is the admin's own, not a typo of a
/// service request's `note`), else any.
fn near_misses(
    headers: &[String],
    columns: &[Option<&'static str>],
    op: Option<&OpSpec>,
) -> Vec<NearMiss> {
    let known: Vec<&'static str> = match op {
        Some(op) => op.columns().collect(),
        None => ops::all_columns(),
    };
    headers
        .iter()
        .zip(columns)
        .filter(|(h, c)| c.is_none() && !crate::undo_file::is_marker(h))
        // A typo of a column name is short: a long header cell (a binary file, say) is no typo,
        // and comparing it with every column would take time in its length squared.
        .filter(|(h, _)| h.len() <= 64)
        .filter_map(|(h, _)| {
            let n = normalize(h);
            let (dist, column) = known
                .iter()
                .map(|k| (strsim::osa_distance(&n, &normalize(k)), *k))
                .min()?;
            let allowed = (n.len() / 4).clamp(1, 3);
            (dist <= allowed && !columns.contains(&Some(column))).then(|| NearMiss {
                header: h.clone(),
                column,
            })
        })
        .collect()
}

/// Other names for a column that are only unambiguous for some operations: "Tenant ID" is the
/// customer's tenant in a billing file, but could be either tenant in a support-contact one.
pub(crate) fn op_alias(op: &OpSpec, header: &str) -> Option<&'static str> {
    let n = normalize(header);
    let names_customer = matches!(
        n.as_str(),
        "tenantid" | "tenant" | "customer" | "customertenant"
    );
    let has = |c: &str| op.columns().any(|k| k == c);
    (names_customer && has("customer_id") && !has("support_tenant_id")).then_some("customer_id")
}

/// The columns the headers name, for one operation (with its own aliases) or for any. `fixed` is
/// what `--map` says, one entry a header: a mapping wins, and a header that would name a column a
/// mapping gives to another header names nothing (it is carried).
fn resolve(
    headers: &[String],
    op: Option<&OpSpec>,
    fixed: &[Option<&'static str>],
) -> Vec<Option<&'static str>> {
    let known = ops::all_columns();
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| match fixed.get(i).copied().flatten() {
            Some(c) => Some(c),
            None => canonical(h, &known)
                .or_else(|| op.and_then(|o| op_alias(o, h)))
                .filter(|c| !fixed.contains(&Some(*c))),
        })
        .collect()
}

/// The `--map` flags bound to the header: the column each header cell is mapped to, if any. A
/// mapping whose header the file lacks, or that two header cells match, and two mappings of one
/// header or to one column, are refused.
fn bind(
    headers: &[String],
    mapping: &[ColumnMap],
) -> Result<Vec<Option<&'static str>>, UsageError> {
    let mut fixed = vec![None; headers.len()];
    for m in mapping {
        let flag = ColumnMap::flag(&m.header, m.column);
        let at: Vec<usize> = (0..headers.len())
            .filter(|i| m.names(&headers[*i]))
            .collect();
        let i = match at.as_slice() {
            [i] => *i,
            [] => {
                return Err(UsageError(format!(
                    "{flag}: the file has no column \"{}\"; its columns are {}",
                    m.header,
                    echo_header(headers)
                )))
            }
            [a, b, ..] => {
                return Err(UsageError(format!(
                    "{flag}: the file has two columns of that name (\"{}\" and \"{}\"); \
                     rename one of them",
                    headers[*a].trim(),
                    headers[*b].trim()
                )))
            }
        };
        if let Some(other) = fixed[i].filter(|c| *c != m.column) {
            return Err(UsageError(format!(
                "--map gives \"{}\" two columns, {other} and {}: give one",
                headers[i].trim(),
                m.column
            )));
        }
        if let Some(j) = fixed
            .iter()
            .position(|c| *c == Some(m.column))
            .filter(|j| *j != i)
        {
            return Err(UsageError(format!(
                "--map gives {} to two columns, \"{}\" and \"{}\": give one",
                m.column,
                headers[j].trim(),
                headers[i].trim()
            )));
        }
        fixed[i] = Some(m.column);
    }
    Ok(fixed)
}

/// Columns whose cells are GUIDs: a column of names read as one of them is refused (see
/// [`Planner::guid_columns_hold_names`]).
const GUID_COLUMNS: &[&str] = &["customer_id", "subscription_id", "support_tenant_id"];

/// The rows looked at for a GUID column holding names: the first of the file, which the checking
/// pass reads in its first batch anyway.
pub const SAMPLE_ROWS: usize = 50;

/// A cell that is text rather than a GUID gone wrong: it has a character no GUID has (a GUID with
/// a digit missing, or a typo in a hex digit, is that row's `invalid_guid`).
fn is_name(cell: &str) -> bool {
    crate::ops::check::guid("customer_id", cell).is_err()
        && cell
            .chars()
            .any(|c| !(c.is_ascii_hexdigit() || matches!(c, '-' | '{' | '}')))
}

/// How the operation is chosen for each row.
enum Choice {
    One(&'static OpSpec),
    /// Mixed file: the `operation` column (its index) names each row's.
    PerRow(usize),
}

/// Plans rows against one header: built once, then used for every row (from any thread).
pub struct Planner {
    choice: Choice,
    columns: Vec<Option<&'static str>>,
    /// The columns `--map` gives, one entry a header (see [`bind`]).
    fixed: Vec<Option<&'static str>>,
    /// The header cells, trimmed.
    pub headers: Vec<String>,
    near: Vec<NearMiss>,
    /// How the operation was chosen, for the banner.
    chosen_by: &'static str,
    /// The file is an undo file pcbulk wrote (it has the marker column): its cells carry pcbulk's
    /// own `'` before formula characters, taken off here (see `undo::unescape`).
    undo: bool,
    /// The columns the operation reads (a mixed file's: every column pcbulk reads, the operation
    /// column among them), by index, in the order of their names: what a run's identity is made of (see [`Planner::identity_cells`]).
    own: Vec<(usize, &'static str)>,
    /// A mixed file's partner-wide rows planned so far (see [`Planner::partner_wide_rows`]).
    partner_wide_seen: AtomicUsize,
    /// The `expected_<column>` columns: (index, column) (see [`crate::ops::expect`]).
    expects: Vec<(usize, &'static str)>,
}

impl Planner {
    /// Reads the header: which operation(s), which columns; a missing column is a usage error.
    pub fn new(headers: &[String], forced: Option<&'static OpSpec>) -> Result<Self, UsageError> {
        Planner::mapped(headers, forced, &[])
    }

    /// [`Planner::new`], with the `--map` flags given: each names the column one header holds.
    pub fn mapped(
        headers: &[String],
        forced: Option<&'static OpSpec>,
        mapping: &[ColumnMap],
    ) -> Result<Self, UsageError> {
        let fixed = bind(headers, mapping)?;
        let (choice, columns) = choose(headers, forced, &fixed)?;
        let headers: Vec<String> = headers.iter().map(|h| h.trim().to_owned()).collect();
        same_meaning(&headers, &columns)?;
        let op = match choice {
            Choice::One(op) => Some(op),
            Choice::PerRow(_) => None,
        };
        let near = near_misses(&headers, &columns, op);
        let expects = precondition_columns(&headers, &choice)?;
        if let Choice::One(op) = choice {
            mapped_unread(op, &headers, &fixed)?;
            partner_wide_alone(op, &headers, &columns)?;
            check_columns(op, &columns, &near)?;
        }
        let chosen_by = match (&choice, forced) {
            (Choice::One(_), Some(_)) => "--operation",
            (Choice::One(_), None) => "the header",
            (Choice::PerRow(_), _) => "the operation column",
        };
        let undo = headers.iter().any(|h| crate::undo_file::is_marker(h));
        let mut own: Vec<(usize, &'static str)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c)))
            .filter(|(_, c)| match choice {
                Choice::One(op) => op.columns().any(|k| k == *c),
                Choice::PerRow(_) => true,
            })
            .collect();
        own.sort_by_key(|(_, c)| *c);
        Ok(Planner {
            choice,
            columns,
            fixed,
            headers,
            near,
            chosen_by,
            undo,
            own,
            partner_wide_seen: AtomicUsize::new(0),
            expects,
        })
    }

    /// One cell as the operation reads it: trimmed, and an undo file's `'` taken off.
    fn cell<'a>(&self, cells: &[&'a str], i: usize) -> &'a str {
        let raw = cells.get(i).copied().unwrap_or("");
        if self.undo {
            crate::undo_file::read(raw)
        } else {
            crate::input::row::trim(raw)
        }
    }

    /// Whether a marked file's cell is the text `#N/A` itself (`'#N/A`), not a request to clear.
    fn is_literal_clear(&self, cells: &[&str], i: usize) -> bool {
        // Trimmed at its start only: `'#N/A` and a line end is the text with its line end.
        let raw = cells.get(i).map(|c| c.trim_start());
        raw.is_some_and(crate::undo_file::is_literal_clear)
    }

    /// The indices of the columns the operation reads (a mixed file's: every column pcbulk reads),
    /// in the order of their names: the cells a plan is held to (see `apply --from-plan`).
    pub fn own_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.own.iter().map(|(i, _)| *i)
    }

    /// The columns a reviewed plan is held to: the operation's own and its `expected_<column>`
    /// preconditions (an edited precondition is an edited plan), by index.
    pub fn held_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.own_columns()
            .chain(self.expects.iter().map(|(i, _)| *i))
    }

    /// What a row applies, for a run's identity: the row's operation (`row_op`, when it could be
    /// told) and the cells of that operation's columns, in the order of their names, empty cells
    /// left out. The same rows with or without an `operation` column, however its cells spell the
    /// operation, are the same content. A row whose operation cannot be told is its own cells as
    /// read.
    pub fn identity_cells<'a>(
        &'a self,
        cells: &'a [&'a str],
        row_op: Option<&'static OpSpec>,
    ) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        let named = row_op.map(|op| ("operation", op.name));
        let own = self
            .own
            .iter()
            .filter(move |(_, c)| match row_op {
                Some(op) => *c != "operation" && op.columns().any(|k| k == *c),
                None => true,
            })
            .map(|(i, c)| (*c, self.cell(cells, *i)))
            .filter(|(_, v)| !v.is_empty());
        named.into_iter().chain(own)
    }

    /// The operation a run applies, as its identity names it: the operation's name, or `per-row`
    /// when an operation column names each row's (the rows' own cells say which).
    pub fn identity_operation(&self) -> &'static str {
        match self.choice {
            Choice::One(op) => op.name,
            Choice::PerRow(_) => "per-row",
        }
    }

    fn choice_op(&self) -> Option<&'static OpSpec> {
        match self.choice {
            Choice::One(op) => Some(op),
            Choice::PerRow(_) => None,
        }
    }

    /// The operation, and how it was chosen: `("support-contact", "the header")`.
    pub fn operation(&self) -> (&'static str, &'static str) {
        match self.choice {
            Choice::One(op) => (op.name, self.chosen_by),
            Choice::PerRow(_) => ("each row's own", self.chosen_by),
        }
    }

    /// Header typos: worth a warning. Columns the operation does not read are not: they are
    /// carried (see [`Planner::carried`]).
    pub fn warnings(&self) -> Vec<String> {
        self.near.iter().map(NearMiss::sentence).collect()
    }

    /// Whether the operation reads the column at header index `i`.
    fn reads(&self, i: usize) -> bool {
        match (self.choice_op(), self.columns.get(i).copied().flatten()) {
            (_, None) => false,
            (Some(op), Some(c)) => c == "operation" || op.columns().any(|k| k == c),
            (None, Some(_)) => true,
        }
    }

    /// The header cells of the columns the operation does not read, as the file has them: the
    /// admin's own columns, echoed to the results. Unnamed columns, the undo marker and header
    /// typos (named in a warning of their own) are left out.
    pub fn carried(&self) -> Vec<&str> {
        (0..self.headers.len())
            .filter(|i| !self.reads(*i))
            .map(|i| self.headers[i].as_str())
            .filter(|h| !h.is_empty() && !crate::undo_file::is_marker(h))
            .filter(|h| crate::ops::expect::named(h).is_none())
            .filter(|h| !self.near.iter().any(|n| n.header == *h))
            .collect()
    }

    /// The banner's one line about carried columns, if there are any:
    /// `carried: Customer, Notes (echoed to the results)`.
    pub fn carried_line(&self) -> Option<String> {
        const SHOWN: usize = 12;
        let carried = self.carried();
        if carried.is_empty() {
            return None;
        }
        let mut names: Vec<String> = carried.iter().take(SHOWN).map(|h| short(h)).collect();
        if carried.len() > SHOWN {
            names.push(format!("and {} more", carried.len() - SHOWN));
        }
        Some(format!(
            "carried: {} (echoed to the results)",
            names.join(", ")
        ))
    }

    /// The banner's lines about the input's columns: the `--map` flags in force (given, or taken
    /// from the plan or the run resumed), and the columns carried unread.
    pub fn column_lines(&self) -> Vec<String> {
        let mapping = self.given_mapping();
        let mapped = (!mapping.is_empty()).then(|| format!("mapped: {}", mapping.join(", ")));
        mapped.into_iter().chain(self.carried_line()).collect()
    }

    /// The mapping as a run's identity records it: `header=column` for each `--map` that reads
    /// the file otherwise than header matching would (`--map 'Customer ID=customer_id'` changes
    /// nothing, and a run with it is the run without it), the header as the file has it, sorted
    /// (see `journal::Identity::mapping`).
    pub fn mapping(&self) -> Vec<String> {
        let unmapped = resolve(&self.headers, self.choice_op(), &[]);
        let mut m: Vec<String> = (self.headers.iter().zip(&self.fixed).zip(&unmapped))
            .filter_map(|((h, c), was)| c.filter(|c| *was != Some(*c)).map(|c| (h, c)))
            .map(|(h, c)| ColumnMap::recorded(h, c))
            .collect();
        m.sort();
        m
    }

    /// The `--map` flags given, as `header=column` with the header as the file has it: the
    /// banner's, which names even those that change nothing.
    fn given_mapping(&self) -> Vec<String> {
        (self.headers.iter().zip(&self.fixed))
            .filter_map(|(h, c)| c.map(|c| ColumnMap::recorded(h, c)))
            .collect()
    }

    /// A column that must hold GUIDs but holds names (a `Customer` column of company names taken
    /// as `customer_id`, say) is one mistake, not one invalid row per row: refused here, naming
    /// the column, a row and, when a column pcbulk does not read holds GUIDs, the `--map` that
    /// takes it instead. `rows` are the file's first rows (at most [`SAMPLE_ROWS`] are looked at,
    /// the ones the checking pass reads first): (row, line, cells). A column whose cells are
    /// mostly GUIDs passes, and its odd cell is that row's `invalid_guid`.
    pub fn guid_columns_hold_names<'a>(
        &self,
        rows: impl Iterator<Item = (usize, u64, Vec<&'a str>)>,
    ) -> Result<(), UsageError> {
        let sample: Vec<(usize, u64, Vec<&str>)> = rows.take(SAMPLE_ROWS).collect();
        let cells_of = |i: usize| {
            sample
                .iter()
                .map(move |(row, line, cells)| (*row, *line, self.cell(cells, i)))
                .filter(|(_, _, c)| !c.is_empty())
        };
        for (i, col) in self.columns.iter().enumerate() {
            let Some(col) = col.filter(|c| GUID_COLUMNS.contains(c) && self.reads(i)) else {
                continue;
            };
            let filled = cells_of(i).count();
            let names: Vec<(usize, u64, &str)> =
                cells_of(i).filter(|(_, _, c)| is_name(c)).collect();
            let Some((row, line, example)) = names.first().copied() else {
                continue;
            };
            if names.len() * 2 <= filled {
                continue;
            }
            let guids = (0..self.headers.len()).filter(|j| {
                !self.reads(*j)
                    && cells_of(*j).next().is_some()
                    && cells_of(*j).all(|(_, _, c)| crate::ops::check::guid(col, c).is_ok())
            });
            let instead: String = guids
                .map(|j| {
                    format!(
                        "; the column \"{}\" holds GUIDs: if it is the {col}, say so with {}",
                        short(&self.headers[j]),
                        ColumnMap::flag(&self.headers[j], col)
                    )
                })
                .collect();
            return Err(UsageError(format!(
                "the column \"{}\" is read as {col}, which holds GUIDs, but it holds names (row \
                 {row}, line {line}: {:?}; {} of its first {filled} cells){instead}; nothing \
                 was sent",
                short(&self.headers[i]),
                short(example),
                names.len(),
            )));
        }
        Ok(())
    }

    /// A mixed file's partner-wide row: counted (see [`Planner::partner_wide_rows`]), and refused
    /// when it fills in a column that names a customer's or subscription's row (the header may
    /// have that column for the file's other rows).
    fn partner_wide_row(&self, op: &OpSpec, cells: &[&str]) -> Result<(), UsageError> {
        if !op.partner_wide {
            return Ok(());
        }
        self.partner_wide_seen.fetch_add(1, Ordering::Relaxed);
        // Only the columns the row fills in: an empty cell names nothing.
        let filled = |i: usize| !self.cell(cells, i).is_empty();
        let columns: Vec<Option<&'static str>> = (self.columns.iter().enumerate())
            .map(|(i, c)| c.filter(|_| filled(i)))
            .collect();
        let headers: Vec<String> = (self.headers.iter().enumerate())
            .map(|(i, h)| if filled(i) { h.clone() } else { String::new() })
            .collect();
        partner_wide_alone(op, &headers, &columns)
    }

    /// A partner-wide operation changes one thing for every customer, so its file holds exactly
    /// one data row (a mixed file: one row of it). `rows` is the file's data rows; read once the
    /// checking pass has planned them all. A file of one row per customer run as the
    /// partner-wide operation is refused here, before anything is sent.
    pub fn partner_wide_rows(&self, rows: usize) -> Result<(), UsageError> {
        let (op, n) = match self.choice {
            Choice::One(op) if op.partner_wide => (op, rows),
            Choice::One(_) => return Ok(()),
            Choice::PerRow(_) => {
                let n = self.partner_wide_seen.load(Ordering::Relaxed);
                match ops::OPERATIONS.iter().find(|op| op.partner_wide) {
                    Some(op) if n > 1 => (*op, n),
                    _ => return Ok(()),
                }
            }
        };
        if n == 1 {
            return Ok(());
        }
        let has = match self.choice {
            Choice::One(_) => crate::text::count(n, "data row"),
            Choice::PerRow(_) => format!("{n} {} rows", op.name),
        };
        Err(UsageError(format!(
            "{0} changes the partner's own {0} for every customer, so a file holds exactly one \
             {0} row, and this one has {has}. Keep the one row with the values to set (pcbulk \
             template {0} prints one); nothing was sent",
            op.name
        )))
    }

    /// The operation's columns the header has, in the operation's order: what a row of it sets.
    pub fn columns_read(&self) -> Vec<&'static str> {
        match self.choice {
            Choice::One(op) => op
                .columns()
                .filter(|c| self.columns.contains(&Some(c)))
                .collect(),
            Choice::PerRow(_) => Vec::new(),
        }
    }

    /// The header's name for a column, as the user wrote it.
    fn label(&self, col: &str) -> String {
        self.columns
            .iter()
            .position(|c| *c == Some(col))
            .map(|i| self.headers[i].clone())
            .unwrap_or_else(|| col.to_owned())
    }

    /// One row's operation and verdict; `cells` as in the file. Duplicates are not looked at here
    /// (see `pipeline::duplicates`). A mixed file's row whose operation needs a column the header lacks is a
    /// usage error.
    pub fn plan_row(
        &self,
        cells: &[&str],
    ) -> Result<(Option<&'static OpSpec>, Verdict), UsageError> {
        let want = self.headers.len();
        let cell = |i: usize| self.cell(cells, i);
        let ragged = ragged(cells, want);
        let op = match self.choice {
            Choice::One(op) => Ok(op),
            Choice::PerRow(i) => row_op(cell(i), &self.label("operation")),
        };
        let op_ok = op.as_ref().ok().copied();
        let verdict = match (ragged, op) {
            (Some(message), _) => Verdict::Invalid {
                code: "ragged_row".into(),
                message,
            },
            (None, Err(message)) => Verdict::Invalid {
                code: "invalid_operation".into(),
                message,
            },
            (None, Ok(op)) => {
                if matches!(self.choice, Choice::PerRow(_)) {
                    self.partner_wide_row(op, cells)?;
                    check_columns(op, &self.columns, &self.near)?;
                    self.row_expects(op, cells)?;
                }
                let mut row = Row::with_capacity(self.columns.len());
                for (i, col) in self.columns.iter().enumerate() {
                    if let Some(col) = col {
                        if self.undo && self.is_literal_clear(cells, i) {
                            row.set_literal(col, cell(i));
                        } else if self.undo {
                            // Trimmed before its `'` came off: a tab or space after it is the
                            // value's own.
                            row.set_exact(col, cell(i));
                        } else {
                            row.set(col, cell(i));
                        }
                    }
                }
                match (op.plan)(&row) {
                    Ok(change) => self
                        .expected_without_value(cells)
                        .unwrap_or(Verdict::Ready(change)),
                    Err(problems) => invalid(&problems, &|c| self.label(c)),
                }
            }
        };
        Ok((op_ok, verdict))
    }
}

/// `expected_<column>` preconditions (see [`crate::ops::expect`]): read here, checked where a row
/// reads its target.
impl Planner {
    /// A row's preconditions: its filled `expected_<column>` cells, with its own value of each.
    pub fn preconditions(&self, cells: &[&str]) -> Vec<crate::ops::expect::Precondition> {
        self.expects
            .iter()
            .filter(|(i, _)| !self.cell(cells, *i).is_empty())
            .map(|(i, column)| crate::ops::expect::Precondition {
                column,
                expected: self.cell(cells, *i).to_owned(),
                row_value: self.own_value(cells, column).to_owned(),
            })
            .collect()
    }

    fn own_value<'a>(&self, cells: &[&'a str], column: &str) -> &'a str {
        match self.columns.iter().position(|c| *c == Some(column)) {
            Some(i) => self.cell(cells, i),
            None => "",
        }
    }

    /// A mixed file's row whose operation cannot hold a column it has an expected cell for.
    fn row_expects(&self, op: &OpSpec, cells: &[&str]) -> Result<(), UsageError> {
        let refused = self
            .expects
            .iter()
            .filter(|(i, _)| !self.cell(cells, *i).is_empty())
            .find_map(|(i, c)| crate::ops::expect::refused(op, c, &self.headers[*i]));
        refused.map_or(Ok(()), |why| Err(UsageError(why)))
    }

    /// A row that expects a value in a column it does not set: what the target holds there is not
    /// read, so it cannot be compared.
    fn expected_without_value(&self, cells: &[&str]) -> Option<Verdict> {
        let (i, column) = self.expects.iter().find(|(i, c)| {
            !self.cell(cells, *i).is_empty() && self.own_value(cells, c).is_empty()
        })?;
        Some(Verdict::Invalid {
            code: "invalid_expected".into(),
            message: format!(
                "column \"{}\" holds a value, but the row leaves {} empty: only a column the row \
                 sets is read before writing. Fill in {1} or empty the expected cell",
                self.headers[*i],
                self.label(column)
            ),
        })
    }
}

/// The header's `expected_<column>` columns, each naming a column the operation (a mixed file's:
/// some operation) reads back before writing, once. Anything else is a usage error.
fn precondition_columns(
    headers: &[String],
    choice: &Choice,
) -> Result<Vec<(usize, &'static str)>, UsageError> {
    use crate::ops::expect::{named, refused, Named};
    let mut found: Vec<(usize, &'static str)> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let column = match named(h) {
            None => continue,
            Some(Named::Column(c)) => c,
            Some(Named::Unknown(rest)) => {
                return Err(UsageError(format!(
                    "column \"{h}\": {rest:?} is no column pcbulk reads; an expected_<column> \
                     column holds the value one of the operation's columns must still have. \
                     Remove or rename it; nothing was sent"
                )))
            }
        };
        let why = match choice {
            Choice::One(op) => refused(op, column, h),
            Choice::PerRow(_) => ops::OPERATIONS
                .iter()
                .map(|o| refused(o, column, h))
                .reduce(|a, b| a.and(b))
                .flatten(),
        };
        if let Some(why) = why {
            return Err(UsageError(why));
        }
        if let Some((j, _)) = found.iter().find(|(_, c)| *c == column) {
            return Err(UsageError(format!(
                "columns \"{}\" and \"{h}\" both expect {column}: keep one of them",
                headers[*j]
            )));
        }
        found.push((i, column));
    }
    Ok(found)
}

/// Plans every row of an in-memory `table` (tests, fuzzing); `forced` is `--operation`. Commands
/// stream instead (see `pipeline`); both find duplicates with the same detector.
pub fn plan(table: &Table, forced: Option<&'static OpSpec>) -> Result<Plan, UsageError> {
    use crate::duplicates::{self, Detector};
    let planner = Planner::new(&table.headers, forced)?;
    let mut detector = Detector::new(Vec::new());
    let mut rows = Vec::with_capacity(table.rows.len());
    for raw in &table.rows {
        let cells: Vec<&str> = raw.cells.iter().map(String::as_str).collect();
        let (op, verdict) = planner.plan_row(&cells)?;
        if let Verdict::Ready(change) = &verdict {
            if let Some(t) = change.target() {
                let noted = detector.note(duplicates::target_key(&t), raw.row, raw.line);
                noted.expect("writing to memory cannot fail");
            }
        }
        let mut trimmed: Vec<String> = cells.iter().map(|c| c.trim().to_owned()).collect();
        trimmed.resize(planner.headers.len(), String::new());
        rows.push(PlannedRow {
            row: raw.row,
            line: raw.line,
            cells: trimmed,
            op,
            verdict,
        });
    }
    let (candidates, spill) = detector.into_parts();
    let dups = duplicates::confirm(&spill[..], &candidates).expect("reading memory cannot fail");
    for r in &mut rows {
        let Verdict::Ready(change) = &r.verdict else {
            continue;
        };
        let target = change.target();
        if let Some(o) = duplicates::outcome(&dups, r.row, r.line, target.as_deref()) {
            r.verdict = Verdict::Invalid {
                code: o.error_code,
                message: o.error_message,
            };
        }
    }
    Ok(Plan {
        warnings: planner.warnings(),
        headers: planner.headers,
        rows,
        delimiter: table.delimiter,
    })
}

fn row_op(value: &str, label: &str) -> Result<&'static OpSpec, String> {
    if value.is_empty() {
        return Err(format!(
            "column \"{label}\" is empty; name the operation for this row: {}",
            ops::names()
        ));
    }
    // Worded as `--operation` words it: one mistake, one sentence, wherever it is made.
    ops::by_name(value).ok_or_else(|| format!("column \"{label}\": {}", ops::unknown(value)))
}

/// A row with more cells than the header (other than trailing empty ones) or fewer.
fn ragged(cells: &[&str], want: usize) -> Option<String> {
    let n = cells.len();
    let extra_filled = cells
        .iter()
        .skip(want)
        .any(|c| !crate::input::row::trim(c).is_empty());
    if n < want || extra_filled {
        Some(format!(
            "the row has {} but the header has {want}; check for a value with an unquoted \
             delimiter or a missing one (put values that contain the delimiter in double quotes)",
            crate::text::count(n, "cell")
        ))
    } else {
        None
    }
}

fn choose(
    headers: &[String],
    forced: Option<&'static OpSpec>,
    fixed: &[Option<&'static str>],
) -> Result<(Choice, Vec<Option<&'static str>>), UsageError> {
    if let Some(op) = forced {
        return Ok((Choice::One(op), resolve(headers, Some(op), fixed)));
    }
    let columns = resolve(headers, None, fixed);
    if let Some(i) = columns.iter().position(|c| *c == Some("operation")) {
        return Ok((Choice::PerRow(i), columns));
    }
    match fitting(headers, fixed).as_slice() {
        [op] if op.partner_wide => Err(UsageError(format!(
            "the header fits {0}, which changes the partner's own {0} for every customer: pcbulk \
             never takes that from a header alone. If that is what you mean, give --operation {0} \
             (or an \"operation\" column); otherwise these are the columns of each operation:\n{1}",
            op.name,
            expected_columns()
        ))),
        [op] => Ok((Choice::One(op), resolve(headers, Some(op), fixed))),
        [] => Err(fits_none(headers, &columns, fixed)),
        many => Err(UsageError(format!(
            "the header fits more than one operation ({}); give --operation OP",
            many.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The operations a header fits: those whose columns it has and nothing else; failing that, the
/// SPEC's rule for a file that also has columns of another operation (an admin's own `Name` or
/// `Note`): those whose required columns are all there, the other columns then carried. A
/// partner-wide operation is never taken from a header: it only stands when nothing else fits.
fn fitting(headers: &[String], fixed: &[Option<&'static str>]) -> Vec<&'static OpSpec> {
    let present = |op: &OpSpec| -> Vec<&'static str> {
        resolve(headers, Some(op), fixed)
            .into_iter()
            .flatten()
            .collect()
    };
    let has_required = |op: &OpSpec, present: &[&str]| {
        op.required.iter().all(|c| present.contains(c))
            && (op.one_of.is_empty() || op.one_of.iter().any(|c| present.contains(c)))
    };
    let fits = |op: &&OpSpec| {
        let present = present(op);
        has_required(op, &present) && present.iter().all(|c| op.columns().any(|k| k == *c))
    };
    let fits_required = |op: &&OpSpec| {
        let present = present(op);
        has_required(op, &present)
            && (!op.needs_an_optional || op.optional.iter().any(|c| present.contains(c)))
    };
    let customer_ops = |m: &[&'static OpSpec]| -> Vec<&'static OpSpec> {
        m.iter().copied().filter(|o| !o.partner_wide).collect()
    };
    let mut matching: Vec<&'static OpSpec> = ops::OPERATIONS.iter().copied().filter(fits).collect();
    if customer_ops(&matching).is_empty() {
        let loose: Vec<&'static OpSpec> = ops::OPERATIONS
            .iter()
            .copied()
            .filter(fits_required)
            .collect();
        if !customer_ops(&loose).is_empty() {
            matching = loose;
        }
    }
    if !customer_ops(&matching).is_empty() {
        matching = customer_ops(&matching);
    }
    matching
}

/// The refusal of a header that fits no operation: the near misses, the closest operation, and
/// every operation's columns.
fn fits_none(
    headers: &[String],
    columns: &[Option<&'static str>],
    fixed: &[Option<&'static str>],
) -> UsageError {
    let hints: Vec<String> = near_misses(headers, columns, None)
        .iter()
        .map(NearMiss::sentence)
        .collect();
    let hints = if hints.is_empty() {
        String::new()
    } else {
        format!("\n{}", hints.join("\n"))
    };
    UsageError(format!(
        "cannot tell which operation the file is for: its header ({}) matches none.\
         {}{hints}\nGive --operation OP, or an \"operation\" column, or these columns \
         (your own headers say which with --map 'YOUR HEADER=column', repeatable):\n{}",
        echo_header(headers),
        closest(headers, fixed),
        expected_columns()
    ))
}

/// The header as the file has it, for a message: each cell quoted, long ones and long headers cut.
fn echo_header(headers: &[String]) -> String {
    const CELLS: usize = 12;
    let mut cells: Vec<String> = headers
        .iter()
        .take(CELLS)
        .map(|h| {
            let h = h.trim();
            match h.char_indices().nth(40) {
                Some((cut, _)) => format!("{:?}...", &h[..cut]),
                None => format!("{h:?}"),
            }
        })
        .collect();
    if headers.len() > CELLS {
        cells.push(format!("and {} more", headers.len() - CELLS));
    }
    cells.join(", ")
}

/// A header cell for a message: trimmed, and cut after 40 characters (`...` says so).
fn short(h: &str) -> String {
    let h = h.trim();
    match h.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &h[..cut]),
        None => h.to_owned(),
    }
}

/// Two header cells that name the same column: which one the user meant is not pcbulk's guess,
/// and the error gives the `--map` that says it (the other is then carried).
fn same_meaning(headers: &[String], columns: &[Option<&'static str>]) -> Result<(), UsageError> {
    for (i, col) in columns.iter().enumerate() {
        let Some(col) = col else { continue };
        if let Some(j) = columns[..i].iter().position(|c| c == &Some(*col)) {
            return Err(UsageError(format!(
                "columns \"{}\" and \"{}\" both mean {col}: say which with {} (or {}); the \
                 other is then carried, echoed to the results and not read",
                headers[j],
                headers[i],
                ColumnMap::flag(&headers[i], col),
                ColumnMap::flag(&headers[j], col),
            )));
        }
    }
    Ok(())
}

/// A `--map` to a column the chosen operation does not read would silently read nothing.
fn mapped_unread(
    op: &OpSpec,
    headers: &[String],
    fixed: &[Option<&'static str>],
) -> Result<(), UsageError> {
    let unread = (headers.iter().zip(fixed))
        .find_map(|(h, c)| c.filter(|c| !op.columns().any(|k| k == *c)).map(|c| (h, c)));
    match unread {
        Some((h, c)) => Err(UsageError(format!(
            "{}: {} does not read {c}; its columns are:\n{}",
            ColumnMap::flag(h, c),
            op.name,
            describe_columns(op)
        ))),
        None => Ok(()),
    }
}

/// The operation the header comes closest to (the most of its columns present), with what it
/// lacks: " The closest is billing-profile, which needs customer_id (missing) ...".
fn closest(headers: &[String], fixed: &[Option<&'static str>]) -> String {
    let best = ops::OPERATIONS
        .iter()
        .map(|op| {
            let present: Vec<&str> = resolve(headers, Some(op), fixed)
                .into_iter()
                .flatten()
                .filter(|c| op.columns().any(|k| k == *c))
                .collect();
            (present.len(), op, present)
        })
        .filter(|(n, _, _)| *n > 0)
        .max_by_key(|(n, _, _)| *n);
    let Some((_, op, present)) = best else {
        return String::new();
    };
    let missing: Vec<&str> = op
        .required
        .iter()
        .copied()
        .filter(|c| !present.contains(c))
        .collect();
    let mut s = format!(
        "\nThe closest is {}, whose columns are:\n{}",
        op.name,
        describe_columns(op)
    );
    if !missing.is_empty() {
        s.push_str(&format!("\nthe file lacks {}", missing.join(", ")));
    } else if !op.one_of.is_empty() && !op.one_of.iter().any(|c| present.contains(c)) {
        s.push_str(&format!(
            "\nthe file lacks one of {}",
            op.one_of.join(" / ")
        ));
    }
    s
}

/// Every operation's columns, one line each, for messages and `template`.
pub fn expected_columns() -> String {
    ops::OPERATIONS
        .iter()
        .map(|op| describe_columns(op))
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_columns(op: &OpSpec) -> String {
    let mut s = format!("  {}: {}", op.name, op.required.join(", "));
    if !op.one_of.is_empty() {
        if !op.required.is_empty() {
            s.push_str(", ");
        }
        s.push_str(&format!("at least one of {}", op.one_of.join(" / ")));
    }
    if !op.optional.is_empty() {
        s.push_str(&format!(" (optional: {})", op.optional.join(", ")));
    }
    s
}

/// A partner-wide operation's file must not carry a column another operation uses to name its
/// target (`customer_id`, ...): such a file is one row per customer, made for that operation, and
/// run as the partner-wide one it would set the partner's own values from a customer's row.
fn partner_wide_alone(
    op: &OpSpec,
    headers: &[String],
    columns: &[Option<&'static str>],
) -> Result<(), UsageError> {
    if !op.partner_wide {
        return Ok(());
    }
    let targets = ops::OPERATIONS
        .iter()
        .filter(|o| !o.partner_wide)
        .flat_map(|o| o.undo_keys.iter());
    // A header another operation reads as its target through an alias of its own (`Tenant ID`,
    // `Customer` for a billing profile's customer_id) names a customer's row too.
    let other_ops = ops::OPERATIONS.iter().filter(|o| !o.partner_wide);
    let columns: Vec<Option<&'static str>> = headers
        .iter()
        .zip(columns)
        .map(|(h, c)| c.or_else(|| other_ops.clone().find_map(|o| op_alias(o, h))))
        .collect();
    let carried: Vec<String> = headers
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_some_and(|c| targets.clone().any(|t| *t == c)))
        .map(|(h, c)| match c {
            Some(c) if h != c => format!("\"{h}\" ({c})"),
            _ => format!("\"{h}\""),
        })
        .collect();
    if carried.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "{0} changes the partner's own {0} for every customer, but the file has {1}, which names \
         one customer's or subscription's row: it looks made for another operation. Run it with \
         that operation (or without --operation, to let its header choose), or give {0} a file \
         of one row with only its own columns ({2}); nothing was sent",
        op.name,
        if carried.len() == 1 {
            format!("the column {}", carried[0])
        } else {
            format!("the columns {}", carried.join(", "))
        },
        op.columns().collect::<Vec<_>>().join(", ")
    )))
}

fn check_columns(
    op: &OpSpec,
    columns: &[Option<&'static str>],
    near: &[NearMiss],
) -> Result<(), UsageError> {
    let has = |c: &str| columns.contains(&Some(c));
    let mut missing: Vec<String> = op
        .required
        .iter()
        .filter(|c| !has(c))
        .map(|c| c.to_string())
        .collect();
    if !op.one_of.is_empty() && !op.one_of.iter().any(|c| has(c)) {
        missing.push(format!("one of {}", op.one_of.join(" / ")));
    }
    if op.needs_an_optional && !op.optional.iter().any(|c| has(c)) {
        missing.push("at least one field to change".into());
    }
    if missing.is_empty() {
        return Ok(());
    }
    let hints: String = near
        .iter()
        .filter(|m| missing.iter().any(|c| c == m.column))
        .map(|m| format!("\n{}", m.sentence()))
        .collect();
    Err(UsageError(format!(
        "the file has no column for {} which {} needs.{hints}\nExpected columns:\n{}",
        missing.join(", "),
        op.name,
        describe_columns(op)
    )))
}

fn invalid(problems: &[Problem], label: &dyn Fn(&str) -> String) -> Verdict {
    let message = problems
        .iter()
        .map(|p| match p.column {
            Some(c) => format!("column \"{}\": {}", label(c), p.message),
            None => p.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Verdict::Invalid {
        code: problems[0].code.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{read_bytes, ReadOptions};

    fn planned(csv: &str, forced: Option<&'static str>) -> Result<Plan, UsageError> {
        let t = read_bytes(csv.as_bytes(), &ReadOptions::default()).unwrap();
        plan(&t, forced.map(|f| ops::by_name(f).unwrap()))
    }

    fn verdicts(p: &Plan) -> Vec<String> {
        p.rows
            .iter()
            .map(|r| match &r.verdict {
                Verdict::Ready(_) => "ready".to_string(),
                Verdict::Invalid { code, .. } => code.clone(),
            })
            .collect()
    }

    const SC: &str = "Customer ID,Subscription ID,Support Tenant ID,Partner ID,Name\n";
    const C1: &str = "0c39d6d5-c70d-4c55-bc02-f620844f3fd1";
    const T1: &str = "3b33e682-00c3-41ee-9dd2-a548adf56438";

    #[test]
    fn operation_inferred_from_header_and_duplicates_name_the_first_row() {
        let s1 = "c8d8fbab-6a62-44dc-be50-b7c74e43a296";
        let csv = format!(
            "{SC}{C1},{s1},{T1},4391507,Trey\n{C1},{{{}}},{T1},4391507,Trey\n",
            s1.to_uppercase()
        );
        let p = planned(&csv, None).unwrap();
        assert_eq!(p.rows[0].op.unwrap().name, "support-contact");
        assert_eq!(verdicts(&p), vec!["ready", "duplicate_target"]);
        let Verdict::Invalid { message, .. } = &p.rows[1].verdict else {
            panic!()
        };
        assert!(message.contains("row 1 (line 2)"), "{message}");
    }

    #[test]
    fn two_columns_that_mean_the_same_are_an_error_not_last_wins() {
        let err = planned(
            &format!("Customer ID,customer_id,email\n{C1},{C1},a@b.example\n"),
            None,
        )
        .err()
        .expect("refused");
        assert!(
            err.0
                .contains("\"Customer ID\" and \"customer_id\" both mean customer_id"),
            "{}",
            err.0
        );
    }

    #[test]
    fn missing_required_column_is_a_usage_error_naming_the_columns() {
        let err = planned(
            "customer_id,subscription_id,name\nx,y,z\n",
            Some("support-contact"),
        )
        .err()
        .unwrap();
        assert!(
            err.0.contains("support_tenant_id, support_mpn_id"),
            "{}",
            err.0
        );
    }

    #[test]
    fn billing_file_with_email_is_not_mistaken_for_support_profile() {
        let p = planned(&format!("customer_id,email\n{C1},a@b.com\n"), None).unwrap();
        assert_eq!(p.rows[0].op.unwrap().name, "billing-profile");
        let p = planned("Email\na@b.com\n", Some("support-profile")).unwrap();
        assert_eq!(p.rows[0].op.unwrap().name, "support-profile");
    }

    #[test]
    fn the_partner_wide_support_profile_is_never_guessed_from_a_header() {
        for header in ["Email", "Client,Email", "email,telephone,website"] {
            let Err(e) = planned(&format!("{header}\n{}\n", "x,".repeat(3)), None) else {
                panic!("{header}: taken for an operation");
            };
            assert!(e.0.contains("--operation support-profile"), "{}", e.0);
        }
    }

    #[test]
    fn a_customer_file_run_as_support_profile_is_refused_naming_its_target_column() {
        let billing = format!("customer_id,email\n{C1},a@b.example\n");
        let Err(e) = planned(&billing, Some("support-profile")) else {
            panic!("a billing file was taken for the partner's support profile");
        };
        assert!(e.0.contains("the column \"customer_id\""), "{}", e.0);
        assert!(e.0.contains("nothing was sent"), "{}", e.0);
        let mixed = format!("operation,Customer ID,email\nsupport-profile,{C1},a@b.example\n");
        let Err(e) = planned(&mixed, None) else {
            panic!("a support-profile row naming a customer was taken");
        };
        assert!(e.0.contains("\"Customer ID\" (customer_id)"), "{}", e.0);
        for header in ["service_request_id,email", "subscription_id,website"] {
            assert!(
                planned(&format!("{header}\nx,y\n"), Some("support-profile")).is_err(),
                "{header}"
            );
        }
    }

    /// Found by an outside tester: billing's own names for customer_id (`Customer`, `Tenant ID`)
    /// slipped past the guard, and the partner's support e-mail was set from a customer's row.
    #[test]
    fn a_billing_alias_for_the_customer_is_a_customer_s_row_to_the_partner_wide_guard() {
        for header in ["Customer,email", "Tenant ID,email"] {
            let file = format!("{header}\n{C1},a@b.example\n");
            let Err(e) = planned(&file, Some("support-profile")) else {
                panic!("{header}: taken for the partner's support profile");
            };
            assert!(e.0.contains("(customer_id)"), "{header}: {}", e.0);
        }
        let mixed = format!("operation,Tenant ID,email\nsupport-profile,{C1},a@b.example\n");
        assert!(planned(&mixed, None).is_err(), "a mixed file's row");
    }

    /// Found by an outside tester: an admin's own `Note` or `Name` column in a billing file made
    /// its header fit no operation, though every column billing needs was there.
    #[test]
    fn a_column_of_another_operation_is_carried_when_one_operation_has_all_it_needs() {
        for extra in ["Note", "Name"] {
            let file = format!("Customer ID,Phone Number,{extra}\n{C1},4255550111,Contoso\n");
            let p = planned(&file, None).unwrap_or_else(|e| panic!("{extra}: {}", e.0));
            assert_eq!(p.rows[0].op.unwrap().name, "billing-profile", "{extra}");
        }
        let p = planned(&format!("Tenant ID,email\n{C1},a@b.example\n"), None).unwrap();
        assert_eq!(
            p.rows[0].op.unwrap().name,
            "billing-profile",
            "never the partner-wide one"
        );
    }

    #[test]
    fn support_profile_takes_exactly_one_data_row() {
        let t = read_bytes(b"email\na@b.example\n", &ReadOptions::default()).unwrap();
        let one = Planner::new(&t.headers, ops::by_name("support-profile")).unwrap();
        assert!(one.partner_wide_rows(1).is_ok());
        let e = one.partner_wide_rows(2).unwrap_err();
        assert!(
            e.0.contains("exactly one support-profile row") && e.0.contains("2 data rows"),
            "{}",
            e.0
        );
        assert!(one.partner_wide_rows(0).is_err());
        assert_eq!(one.columns_read(), ["email"]);
    }

    #[test]
    fn a_mixed_file_holds_one_support_profile_row_with_no_customer_in_it() {
        let header = |h: &str| h.split(',').map(str::to_owned).collect::<Vec<_>>();
        let mixed = Planner::new(&header("operation,customer_id,email"), None).unwrap();
        let sp = ["support-profile", "", "a@b.example"];
        assert!(mixed.plan_row(&sp).is_ok());
        assert!(mixed
            .plan_row(&["billing-profile", C1, "c@d.example"])
            .is_ok());
        assert!(
            mixed.partner_wide_rows(2).is_ok(),
            "one support-profile row"
        );
        assert!(mixed.plan_row(&sp).is_ok());
        let e = mixed.partner_wide_rows(3).unwrap_err();
        assert!(e.0.contains("2 support-profile rows"), "{}", e.0);
        let e = mixed
            .plan_row(&["support-profile", C1, "a@b.example"])
            .err()
            .expect("a support-profile row naming a customer");
        assert!(e.0.contains("\"customer_id\""), "{}", e.0);
    }

    #[test]
    fn a_column_that_matches_nothing_is_carried_not_warned_about() {
        let p = Planner::new(
            &header("Client,Email,,Notes"),
            ops::by_name("support-profile"),
        )
        .unwrap();
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert_eq!(p.carried(), ["Client", "Notes"]);
        assert_eq!(
            p.carried_line().as_deref(),
            Some("carried: Client, Notes (echoed to the results)")
        );
        let all_read = Planner::new(&header("Email"), ops::by_name("support-profile")).unwrap();
        assert_eq!(all_read.carried_line(), None);
    }

    fn header(h: &str) -> Vec<String> {
        h.split([',', ';']).map(str::to_owned).collect()
    }

    fn maps(flags: &[&str]) -> Vec<ColumnMap> {
        let known = ops::all_columns();
        flags
            .iter()
            .map(|f| ColumnMap::parse(f, &known).unwrap())
            .collect()
    }

    const ADMIN: &str = "Customer;Tenant ID;Abo;Support Tenant;MPN;Name";
    const ADMIN_MAP: &[&str] = &[
        "tenant id=customer_id",
        "Abo=subscription_id",
        "Support Tenant=support_tenant_id",
        "MPN=Partner ID",
    ];

    #[test]
    fn a_mapping_reads_the_admin_s_headers_and_carries_the_rest() {
        let p = Planner::mapped(&header(ADMIN), None, &maps(ADMIN_MAP)).unwrap();
        assert_eq!(p.operation(), ("support-contact", "the header"));
        assert_eq!(p.carried(), ["Customer"]);
        assert_eq!(
            p.mapping(),
            [
                "Abo=subscription_id",
                "MPN=support_mpn_id",
                "Support Tenant=support_tenant_id",
                "Tenant ID=customer_id",
            ],
            "the file's header as written, sorted"
        );
        let cells = [
            "Contoso Ltd",
            C1,
            "c8d8fbab-6a62-44dc-be50-b7c74e43a296",
            T1,
            "4391507",
            "Trey",
        ];
        let (_, verdict) = p.plan_row(&cells).unwrap();
        assert!(matches!(verdict, Verdict::Ready(_)));
        assert_eq!(Planner::new(&header(ADMIN), None).ok().map(|_| ()), None);
        let no_op = Planner::mapped(
            &header("Customer ID,City"),
            None,
            &maps(&["customer id=customer_id"]),
        )
        .unwrap();
        assert!(no_op.mapping().is_empty(), "the same reading as without it");
    }

    #[test]
    fn a_mapping_wins_over_header_matching_and_the_displaced_header_is_carried() {
        // Billing: "Customer" alone would be read as customer_id; the mapping says otherwise.
        let p = Planner::mapped(
            &header("Customer,Tenant ID,City"),
            None,
            &maps(&["Tenant ID=customer_id"]),
        )
        .unwrap();
        assert_eq!(p.operation().0, "billing-profile");
        assert_eq!(p.carried(), ["Customer"]);
        let p = Planner::mapped(
            &header("Customer ID,Kunden-Nr,City"),
            None,
            &maps(&["Kunden-Nr=customer_id"]),
        )
        .unwrap();
        assert_eq!(p.carried(), ["Customer ID"]);
    }

    #[test]
    fn two_headers_meaning_one_column_name_the_map_that_settles_it() {
        let e = Planner::new(&header("Customer,Tenant ID,City"), None)
            .err()
            .expect("two customer columns");
        assert!(
            e.0.contains("\"Customer\" and \"Tenant ID\" both mean customer_id")
                && e.0.contains("--map 'Tenant ID=customer_id'")
                && e.0.contains("--map 'Customer=customer_id'")
                && e.0.contains("carried"),
            "{}",
            e.0
        );
    }

    #[test]
    fn a_mapping_the_file_or_the_operation_cannot_take_is_refused() {
        let h = header(ADMIN);
        let e = Planner::mapped(&h, None, &maps(&["Kunde=customer_id"]))
            .err()
            .unwrap();
        assert!(
            e.0.contains("no column \"Kunde\"") && e.0.contains("\"Tenant ID\""),
            "{}",
            e.0
        );
        let two = maps(&["Abo=subscription_id", "abo=customer_id"]);
        assert!(Planner::mapped(&h, None, &two).is_err());
        let twice = maps(&["Abo=customer_id", "Tenant ID=customer_id"]);
        let e = Planner::mapped(&h, None, &twice).err().unwrap();
        assert!(e.0.contains("gives customer_id to two columns"), "{}", e.0);
        let mut unread = maps(ADMIN_MAP);
        unread.extend(maps(&["Customer=city"]));
        let e = Planner::mapped(&h, ops::by_name("support-contact"), &unread)
            .err()
            .unwrap();
        assert!(
            e.0.contains("support-contact does not read city"),
            "{}",
            e.0
        );
    }

    #[test]
    fn a_guid_column_of_names_is_one_usage_error_naming_the_guid_column_instead() {
        let p = Planner::new(&header("Customer,Kunden GUID,City"), None).unwrap();
        let rows = [
            ["Contoso Ltd", C1, "Lund"],
            ["Fabrikam GmbH", T1, "Köln"],
            ["", C1, "Malmö"],
        ];
        let sample = || {
            rows.iter()
                .enumerate()
                .map(|(i, r)| (i + 1, i as u64 + 2, r.to_vec()))
        };
        let e = p.guid_columns_hold_names(sample()).expect_err("names");
        assert!(
            e.0.contains("\"Customer\" is read as customer_id")
                && e.0.contains("row 1, line 2: \"Contoso Ltd\"")
                && e.0.contains("\"Kunden GUID\" holds GUIDs")
                && e.0.contains("--map 'Kunden GUID=customer_id'"),
            "{}",
            e.0
        );
        // One name among GUIDs is that row's mistake, not the column's.
        let p = Planner::new(&header("Customer,City"), None).unwrap();
        let mostly = [[C1, "a"], [T1, "b"], ["Contoso", "c"]];
        let rows = mostly
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, 0, r.to_vec()));
        assert!(p.guid_columns_hold_names(rows).is_ok());
        let typos = [["0c39d6d5-c70d-4c55-bc02", "a"]];
        let rows = typos.iter().map(|r| (1, 2, r.to_vec()));
        assert!(
            p.guid_columns_hold_names(rows).is_ok(),
            "a cut GUID is no name"
        );
    }

    #[test]
    fn a_typo_in_a_header_gets_a_did_you_mean() {
        let err = planned(
            &format!(
                "Custmer ID,Subscription ID,Support Tenant ID,Partner ID,Name\n{C1},x,y,1,n\n"
            ),
            Some("support-contact"),
        )
        .err()
        .unwrap();
        assert!(
            err.0.contains("\"Custmer ID\"") && err.0.contains("did you mean customer_id"),
            "{}",
            err.0
        );
        let p = planned(
            &format!("{}Commnet\n", SC.trim_end().to_owned() + ","),
            None,
        )
        .unwrap();
        assert!(
            p.warnings.is_empty(),
            "no close column: a user's own column is carried: {:?}",
            p.warnings
        );
        let p = planned(&format!("customer_id,emial,city\n{C1},a@b.co,Lund\n"), None).unwrap();
        assert!(
            p.warnings[0].contains("did you mean email"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn tenant_id_names_the_customer_only_where_that_is_unambiguous() {
        let p = planned(&format!("Tenant ID,City\n{C1},Lund\n"), None).unwrap();
        assert_eq!(p.rows[0].op.unwrap().name, "billing-profile");
        assert!(matches!(p.rows[0].verdict, Verdict::Ready(_)));
        let err = planned(
            "Tenant ID,Subscription ID,Partner ID,Name\nx,y,1,n\n",
            Some("support-contact"),
        )
        .err()
        .unwrap();
        assert!(err.0.contains("customer_id"), "{}", err.0);
    }

    #[test]
    fn a_header_matching_nothing_is_a_usage_error() {
        assert!(planned("foo,bar\n1,2\n", None).is_err());
    }

    #[test]
    fn mixed_file_takes_each_rows_operation_and_refuses_unknown_ones() {
        let csv = format!(
            "operation,service_request_id,note,customer_id,city\n\
             service-request,616122292874576,hello,,\n\
             Billing Profile,,,{C1},Lund\n\
             teleport,,,,\n"
        );
        let p = planned(&csv, None).unwrap();
        assert_eq!(verdicts(&p), vec!["ready", "ready", "invalid_operation"]);
        assert_eq!(p.rows[1].op.unwrap().name, "billing-profile");
    }

    #[test]
    fn ragged_rows_are_invalid_with_the_counts_and_trailing_empties_are_fine() {
        let csv = format!("customer_id,city\n{C1},Lund,extra\n{C1}\n{C1},Lund,,\n");
        let p = planned(&csv, None).unwrap();
        assert_eq!(verdicts(&p), vec!["ragged_row", "ragged_row", "ready"]);
        let Verdict::Invalid { message, .. } = &p.rows[0].verdict else {
            panic!()
        };
        assert!(
            message.contains("3 cells but the header has 2"),
            "{message}"
        );
    }

    #[test]
    fn invalid_message_names_the_column_as_the_user_wrote_it() {
        let csv =
            format!("{SC}not-a-guid,c8d8fbab-6a62-44dc-be50-b7c74e43a296,{T1},4391507,Trey\n");
        let p = planned(&csv, None).unwrap();
        let Verdict::Invalid { code, message } = &p.rows[0].verdict else {
            panic!()
        };
        assert_eq!(code, "invalid_guid");
        assert!(message.starts_with("column \"Customer ID\""), "{message}");
    }

    #[test]
    fn a_marked_undo_file_s_own_quote_comes_off_and_a_user_s_file_keeps_its_own() {
        let contact = |name: &str, marker: &str| {
            let csv = format!(
                "customer_id,subscription_id,support_tenant_id,support_mpn_id,name{marker}\n\
                 c0000001-0000-4000-8000-000000000001,d0000001-0000-4000-8000-000000000011,\
                 e0000001-0000-4000-8000-000000000001,4391507,{name}{}\n",
                if marker.is_empty() { "" } else { ",1" }
            );
            let plan = planned(&csv, None).unwrap();
            match &plan.rows[0].verdict {
                Verdict::Ready(change) => format!("{change:?}"),
                Verdict::Invalid { message, .. } => panic!("{message}"),
            }
        };
        assert!(contact("'=Old Name", ",pcbulk_undo").contains(r#"name: "=Old Name""#));
        assert!(contact("''-x", ",pcbulk_undo").contains(r#"name: "'-x""#));
        assert!(contact("'plain", ",pcbulk_undo").contains(r#"name: "'plain""#));
        assert!(contact("'=Old Name", "").contains(r#"name: "'=Old Name""#));
        let plan = planned(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name,pcbulk_undo\n",
            None,
        )
        .unwrap();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    // `expected_<column>` cells (ops::expect) as the planner sees them.
    #[test]
    fn an_expected_cell_for_a_column_the_row_leaves_empty_makes_the_row_invalid() {
        let p = planned(
            &format!(
                "customer_id,city,email,expected_email\n{C1},Lund,,a@b.example\n{C1},Lund,,\n"
            ),
            None,
        )
        .unwrap();
        let codes: Vec<String> = p
            .rows
            .iter()
            .map(|r| match &r.verdict {
                Verdict::Ready(_) => "ready".into(),
                Verdict::Invalid { code, .. } => code.clone(),
            })
            .collect();
        assert_eq!(codes, ["invalid_expected", "ready"]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_mixed_file_s_row_expecting_a_column_its_operation_cannot_hold_is_a_usage_error() {
        let header = "operation,service_request_id,new_status,customer_id,city,expected_city\n";
        let ok =
            format!("{header}billing-profile,,,{C1},Lund,Malmo\nservice-request,6,closed,,,\n");
        assert!(planned(&ok, None).is_ok());
        let bad = format!("{header}service-request,6,closed,,,Malmo\n");
        let e = planned(&bad, None).err().expect("refused");
        assert!(
            e.0.contains("service-request has no column city"),
            "{}",
            e.0
        );
    }
}
