//! A journal read back, as the hostile file it may be: lines are read with a bound, each record is
//! checked on its own as it is read ([`read`]), and on `--resume` each row's records are checked
//! against that row of the input ([`Replay::misfit_for_row`], [`Replay::misfit_beyond`]) before
//! anything they say is used. A journal that fails is refused, naming its line; nothing is sent.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;
use uuid::Uuid;

use super::{Record, SentCall, MAX_LINE};
use crate::api::error::clean;
use crate::api::{Method, Request};
use crate::ops::{Change, OpSpec, Pending};
use crate::results::{Outcome, Status};

/// The error code of a row whose write may or may not have been applied.
const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// The longest path a journaled write may have (pcbulk's are under 200 characters).
const MAX_PATH: usize = 2048;

/// Something in a journal that pcbulk will not use, and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    pub line: usize,
    pub what: String,
}

impl Misfit {
    fn new(line: usize, what: impl Into<String>) -> Self {
        Misfit {
            line,
            what: what.into(),
        }
    }

    /// The earlier of two misfits (the first line is the one to report).
    pub fn first(a: Option<Misfit>, b: Option<Misfit>) -> Option<Misfit> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.line < a.line { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// Why a journal could not be read back.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Misfit(Misfit),
}

/// A row's journaled before-values.
#[derive(Debug, Clone)]
pub struct Before {
    /// The journal line they are on.
    pub line: usize,
    pub op: &'static OpSpec,
    pub values: BTreeMap<String, String>,
    pub extra: BTreeMap<String, Value>,
}

/// A journaled write with no answer: the call to settle.
#[derive(Debug, Clone)]
pub struct Unanswered {
    /// The journal line it is on.
    pub line: usize,
    pub correlation_id: Uuid,
    pub pending: Pending,
}

/// A journal read back: the job and what each row got to.
#[derive(Debug, Default)]
pub struct Replay {
    pub job: Option<super::Job>,
    pub done: bool,
    /// The last final outcome of each row, with its journal line.
    pub outcomes: BTreeMap<usize, (usize, Outcome)>,
    /// Writes sent with no answer recorded, per row (the last one).
    pub unanswered: BTreeMap<usize, Unanswered>,
    pub before: BTreeMap<usize, Before>,
    /// Writes answered with success, per row (the last one): the row's last call went through.
    pub answered_ok: BTreeMap<usize, (String, u16)>,
    /// Per row, its last journaled write: the line and the MS-RequestId (answers must match it).
    sent: BTreeMap<usize, (usize, Uuid)>,
    /// Rows whose write was sent again while an earlier copy's outcome was unknown: that copy may
    /// have been applied, so a refusal of a later one does not settle the write.
    copy_out: std::collections::BTreeSet<usize>,
    /// The highest row any record names, and the first line that names it.
    highest_row: Option<(usize, usize)>,
    /// Records read so far (the first must be the run's header).
    records: usize,
}

impl Replay {
    /// The outcome of a row an earlier run finished, if it did: a final status (`failed` only
    /// without `retry_failed`), or a successful answer to its write with the row's line lost.
    pub fn finished(&self, row: usize, line: u64, retry_failed: bool) -> Option<Outcome> {
        if let Some((_, o)) = self.outcomes.get(&row) {
            let final_status = match o.status {
                Status::Succeeded | Status::Unchanged | Status::Invalid => true,
                // A write that may or may not have been applied is tried again only by settling
                // it (looking first): without its journaled call, it stays as it is.
                Status::Failed if o.error_code == OUTCOME_UNKNOWN => {
                    !retry_failed || !self.unanswered.contains_key(&row)
                }
                Status::Failed => !retry_failed,
                Status::Skipped | Status::Valid | Status::Planned => false,
            };
            if final_status {
                return Some(Outcome { line, ..o.clone() });
            }
        }
        // No final line, but the row's write was answered with success: its last call went through.
        let (request_id, status) = self.answered_ok.get(&row)?;
        Some(Outcome {
            row,
            line,
            status: Status::Succeeded,
            http_status: Some(*status),
            error_code: String::new(),
            error_message: String::new(),
            attempts: 1,
            correlation_id: String::new(),
            request_id: request_id.clone(),
            duration_ms: 0,
            change: String::new(),
        })
    }

    /// Whether what the journal says about `row` fits that row as the input has it: its operation
    /// (`op`), and its change when the row is valid. The misfit on the earliest line, if any.
    pub fn misfit_for_row(
        &self,
        row: usize,
        line: u64,
        op: Option<&'static OpSpec>,
        change: Option<&dyn Change>,
    ) -> Option<Misfit> {
        let before = self.before_misfit(row, op, change);
        let write = self.write_misfit(row, change);
        let outcome = self.outcome_misfit(row, line, change);
        Misfit::first(Misfit::first(before, write), outcome)
    }

    /// Journaled before-values that the row as the input has it would not have read: another
    /// operation's, values its change cannot take, or any for a row that is now invalid.
    fn before_misfit(
        &self,
        row: usize,
        op: Option<&'static OpSpec>,
        change: Option<&dyn Change>,
    ) -> Option<Misfit> {
        let b = self.before.get(&row)?;
        let what = match (op, change) {
            (Some(op), Some(c)) if op.name == b.op.name => {
                let e = c.check_extra(&b.extra).err()?;
                format!("row {row}'s before-values: {e}")
            }
            (Some(op), Some(_)) => format!(
                "before-values of a {} row, but row {row} of the input is a {} row",
                b.op.name, op.name
            ),
            _ => format!("before-values for row {row}, which the input has as invalid"),
        };
        Some(Misfit::new(b.line, what))
    }

    /// A journaled write the row as the input has it would not make: any write for a row now
    /// invalid, or an unanswered write that is not the row's call (settling it would look for
    /// the wrong thing).
    fn write_misfit(&self, row: usize, change: Option<&dyn Change>) -> Option<Misfit> {
        let mut found = None;
        if let (Some((l, _)), None) = (self.sent.get(&row), change) {
            let what = format!("a write for row {row}, which the input has as invalid");
            found = Some(Misfit::new(*l, what));
        }
        if let (Some(u), Some(c)) = (self.unanswered.get(&row), change) {
            if let Err(e) = c.check_write(&u.pending.request) {
                let r = &u.pending.request;
                let what = format!(
                    "the write {} {} for row {row} is not the call that row makes: {e}",
                    r.method.as_str(),
                    shown(&r.path)
                );
                found = Misfit::first(found, Some(Misfit::new(u.line, what)));
            }
        }
        found
    }

    /// A journaled outcome that belongs to another input: the row on another line, or a status
    /// only a valid row can have for a row the input has as invalid.
    fn outcome_misfit(&self, row: usize, line: u64, change: Option<&dyn Change>) -> Option<Misfit> {
        let (l, o) = self.outcomes.get(&row)?;
        let mut found = None;
        if o.line != 0 && o.line != line {
            let what = format!(
                "row {row} is on line {line} of the input, not on line {}",
                o.line
            );
            found = Some(Misfit::new(*l, what));
        }
        if change.is_none() && !matches!(o.status, Status::Invalid | Status::Skipped) {
            let what = format!(
                "row {row} {}, but the input has it as invalid",
                o.status.as_str()
            );
            found = Misfit::first(found, Some(Misfit::new(*l, what)));
        }
        found
    }

    /// A record naming a row the input does not have.
    pub fn misfit_beyond(&self, rows: usize) -> Option<Misfit> {
        let (row, line) = self.highest_row.filter(|(row, _)| *row > rows)?;
        Some(Misfit::new(
            line,
            format!("row {row}, but the input has {rows} rows"),
        ))
    }

    /// Takes in one record read from line `line`, checking what can be checked without the input.
    fn take(&mut self, line: usize, record: Record) -> Result<(), String> {
        self.records += 1;
        let first = self.records == 1;
        match record {
            Record::Run(job) if first => self.job = Some(job),
            Record::Run(_) => return Err("a second run header: only the first line has one".into()),
            _ if first => return Err("the first record is not the run's header".into()),
            Record::Resume { .. } => self.done = false,
            Record::Done => self.done = true,
            Record::Before {
                row,
                op,
                values,
                extra,
            } => {
                self.row(row, line)?;
                let before = before(line, &op, values, extra)?;
                self.before.insert(row, before);
            }
            Record::Send {
                row,
                correlation_id,
                call,
            } => {
                self.row(row, line)?;
                self.take_send(row, line, &correlation_id, call)?;
            }
            Record::Answer {
                row,
                request_id,
                status,
            } => {
                self.row(row, line)?;
                self.take_answer(row, &request_id, status)?;
            }
            Record::Row(o) => {
                self.row(o.row, line)?;
                let o = outcome(o)?;
                self.outcomes.insert(o.row, (line, o));
            }
        }
        Ok(())
    }

    /// A write about to go out: unanswered until its answer is read.
    fn take_send(
        &mut self,
        row: usize,
        line: usize,
        correlation_id: &str,
        call: SentCall,
    ) -> Result<(), String> {
        let correlation_id = guid("correlation id", correlation_id)?;
        let pending = pending(call)?;
        if self.unanswered.contains_key(&row) {
            self.copy_out.insert(row);
        }
        self.sent.insert(row, (line, pending.request_id));
        self.unanswered.insert(
            row,
            Unanswered {
                line,
                correlation_id,
                pending,
            },
        );
        Ok(())
    }

    /// The answer to the row's last write, which the journal must hold before it.
    fn take_answer(
        &mut self,
        row: usize,
        request_id: &str,
        status: Option<u16>,
    ) -> Result<(), String> {
        let id = guid("MS-RequestId", request_id)?;
        if self.sent.get(&row).map(|(_, sent)| *sent) != Some(id) {
            return Err(format!(
                "an answer to a call for row {row} that the journal does not have before it"
            ));
        }
        if let Some(s) = status.filter(|s| !(100..=599).contains(s)) {
            return Err(format!("HTTP status {s} is not one"));
        }
        self.answered_ok.remove(&row);
        match status {
            Some(s @ 200..=299) => {
                self.unanswered.remove(&row);
                self.copy_out.remove(&row);
                self.answered_ok.insert(row, (id.to_string(), s));
            }
            // Such an answer does not say whether the write was applied (a gateway may give it
            // after the service did): the write is still to settle, and goes again, if at all,
            // under a new MS-RequestId. So is a refusal while an earlier copy may have been
            // applied (a stale ETag may be that copy's doing); a resume looks for it.
            Some(408 | 500..=599) => self.answered(row),
            Some(_) if self.copy_out.contains(&row) => self.answered(row),
            // Not sent after all: an earlier copy, if any, is still to settle.
            None if self.copy_out.contains(&row) => {}
            _ => {
                self.unanswered.remove(&row);
            }
        }
        Ok(())
    }

    /// The row's last write was answered: sent again, it goes under a new MS-RequestId.
    fn answered(&mut self, row: usize) {
        if let Some(u) = self.unanswered.get_mut(&row) {
            u.pending.answered = true;
        }
    }

    /// Rows are numbered from 1; the highest is kept to check against the input's length.
    fn row(&mut self, row: usize, line: usize) -> Result<(), String> {
        if row == 0 {
            return Err("row 0: rows are numbered from 1".into());
        }
        if self.highest_row.is_none_or(|(highest, _)| row > highest) {
            self.highest_row = Some((row, line));
        }
        Ok(())
    }
}

/// A text from the journal, fit for a message: cleaned, and at most 200 characters.
fn shown(text: &str) -> String {
    let mut s = clean(text, &[]);
    if s.chars().count() > 200 {
        s = s.chars().take(200).collect::<String>() + "…";
    }
    format!("{s:?}")
}

/// A row's before-values, of an operation pcbulk knows and only in the columns it changes.
fn before(
    line: usize,
    op: &str,
    values: BTreeMap<String, String>,
    extra: BTreeMap<String, Value>,
) -> Result<Before, String> {
    let op = crate::ops::OPERATIONS
        .iter()
        .copied()
        .find(|o| o.name == op)
        .ok_or_else(|| format!("{} is not an operation pcbulk knows", shown(op)))?;
    if let Some(c) = values.keys().find(|c| !op.undoable.contains(&c.as_str())) {
        return Err(format!(
            "a before-value for {}, which {} rows do not change",
            shown(c),
            op.name
        ));
    }
    Ok(Before {
        line,
        op,
        values,
        extra,
    })
}

/// A GUID as pcbulk writes them (8-4-4-4-12 hex digits).
fn guid(what: &str, text: &str) -> Result<Uuid, String> {
    let ok = text.len() == 36
        && text.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| Uuid::parse_str(text).ok())
        .flatten()
        .ok_or_else(|| format!("{what} {} is not a GUID", shown(text)))
}

/// A journaled write, checked for what any write pcbulk sends looks like: PUT or PATCH, a plain
/// path, a JSON object body, an ETag fit for a header, a GUID for its MS-RequestId.
fn pending(call: SentCall) -> Result<Pending, String> {
    let method = match call.method.as_str() {
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        other => return Err(format!("{} is not a write pcbulk sends", shown(other))),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.');
    let path_ok = call.path.len() <= MAX_PATH
        && call.path.starts_with('/')
        && call.path.chars().all(plain)
        && !call.path.split('/').any(|s| s == "." || s == "..");
    if !path_ok {
        return Err(format!(
            "the path {} is not one pcbulk sends",
            shown(&call.path)
        ));
    }
    if !call.body.as_ref().is_some_and(Value::is_object) {
        return Err("a write whose body is not a JSON object".into());
    }
    if let Some(etag) = &call.if_match {
        if etag.len() > 256 || !etag.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
            return Err(format!("the ETag {} is not one", shown(etag)));
        }
    }
    Ok(Pending {
        answered: false,
        // A hostile time is no time (a sum past what the clock holds would panic).
        sent_at: call
            .at_ms
            .and_then(|ms| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))),
        request_id: guid("MS-RequestId", &call.request_id)?,
        request: Request {
            method,
            path: call.path,
            body: call.body,
            if_match: call.if_match,
            continuation: None,
        },
    })
}

/// A journaled outcome, made fit for the results file: ids are GUIDs or empty, the status an HTTP
/// one, and the words cleaned like a service's (the results writer neutralises formulas).
fn outcome(mut o: Outcome) -> Result<Outcome, String> {
    for (what, id) in [
        ("correlation id", &o.correlation_id),
        ("MS-RequestId", &o.request_id),
    ] {
        if !id.is_empty() {
            guid(what, id)?;
        }
    }
    if let Some(s) = o.http_status.filter(|s| !(100..=599).contains(s)) {
        return Err(format!("HTTP status {s} is not one"));
    }
    o.error_code = clean(&o.error_code, &[]);
    o.error_message = clean(&o.error_message, &[]);
    o.change = clean(&o.change, &[]);
    Ok(o)
}

/// One line of the journal, read with a bound: `None` at the end of the file.
enum Line {
    /// A line, its bytes (without the newline) in the buffer.
    Text,
    /// Longer than [`MAX_LINE`]: not read further.
    TooLong,
}

fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<Line>> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.len() > MAX_LINE {
        return Ok(Some(Line::TooLong));
    }
    Ok(Some(Line::Text))
}

/// Reads a journal, checking each record as it comes. A last line torn by a crash is ignored (also
/// when a resumed run's records follow it: the run that crashed wrote no more); a line that does not
/// read anywhere else, a line over [`MAX_LINE`], or a record that is not one pcbulk writes is a
/// [`Misfit`] naming its line.
pub fn read(path: &Path) -> Result<Replay, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut r = Replay::default();
    let mut buf = Vec::new();
    // A line that did not read: torn, if nothing but a resumed run's records follow it.
    let mut torn: Option<(usize, String)> = None;
    let mut number = 0;
    while let Some(line) = next_line(&mut reader, &mut buf).map_err(ReadError::Io)? {
        number += 1;
        if let Line::TooLong = line {
            return Err(ReadError::Misfit(Misfit::new(
                number,
                format!(
                    "a line longer than {} MiB, which pcbulk never writes",
                    MAX_LINE >> 20
                ),
            )));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Result<Record, _> = serde_json::from_slice(&buf);
        if let Some((at, why)) = torn.take() {
            if !matches!(parsed, Ok(Record::Resume { .. })) {
                return Err(ReadError::Misfit(Misfit::new(
                    at,
                    format!("not a journal record ({why}), and not the last line either"),
                )));
            }
        }
        match parsed {
            Ok(record) => r
                .take(number, record)
                .map_err(|what| ReadError::Misfit(Misfit::new(number, what)))?,
            Err(e) => torn = Some((number, shown(&e.to_string()))),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RID: &str = "0b0e0ac1-9f30-4ac6-9d7b-2d4b81f7a001";
    const CID: &str = "0b0e0ac1-9f30-4ac6-9d7b-2d4b81f7a002";

    fn header() -> String {
        r#"{"t":"run","input_sha256":"ab","input":"in.csv","operation":null,"target":"x"}"#.into()
    }

    fn send(row: usize, path: &str) -> String {
        format!(
            r#"{{"t":"send","row":{row},"correlation_id":"{CID}","call":{{"method":"PATCH","path":"{path}","body":{{"NewNote":{{"Text":"x"}}}},"request_id":"{RID}"}}}}"#
        )
    }

    fn read_lines(lines: &[String]) -> Result<Replay, ReadError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(&p, lines.join("\n")).unwrap();
        read(&p)
    }

    fn misfit(lines: &[String]) -> Misfit {
        match read_lines(lines) {
            Err(ReadError::Misfit(m)) => m,
            other => panic!("read: {other:?}"),
        }
    }

    #[test]
    fn garbage_in_the_middle_of_the_journal_is_refused_but_a_torn_last_line_is_not() {
        let torn = r#"{"t":"answer","row":1,"requ"#.to_string();
        let r = read_lines(&[header(), send(1, "/servicerequests/1"), torn.clone()]).unwrap();
        assert_eq!(r.unanswered[&1].pending.request_id.to_string(), RID);

        let resume = r#"{"t":"resume","retry_failed":false}"#.to_string();
        let r = read_lines(&[
            header(),
            send(1, "/servicerequests/1"),
            torn.clone(),
            resume,
            String::new(),
        ])
        .unwrap();
        assert_eq!(r.unanswered.len(), 1, "a crashed run's torn line, resumed");

        let m = misfit(&[
            header(),
            torn,
            send(1, "/servicerequests/1"),
            r#"{"t":"done"}"#.into(),
        ]);
        assert_eq!(m.line, 2, "{m:?}");
        assert!(m.what.contains("not the last line"), "{m:?}");
    }

    #[test]
    fn an_oversized_journal_line_is_refused() {
        let huge = format!(
            r#"{{"t":"before","row":1,"op":"support-contact","values":{{"name":"{}"}}}}"#,
            "x".repeat(MAX_LINE)
        );
        let m = misfit(&[header(), huge]);
        assert_eq!(m.line, 2);
        assert!(m.what.contains("longer than 1 MiB"), "{m:?}");
    }

    #[test]
    fn records_pcbulk_does_not_write_are_refused_naming_their_line() {
        let cases = [
            (send(0, "/servicerequests/1"), "row 0"),
            (send(1, "/servicerequests/../x"), "not one pcbulk sends"),
            (send(1, "/servicerequests/1?x=1"), "not one pcbulk sends"),
            (
                send(1, "/servicerequests/1").replace(RID, "not-a-guid"),
                "is not a GUID",
            ),
            (
                send(1, "/servicerequests/1").replace("PATCH", "DELETE"),
                "not a write pcbulk sends",
            ),
            (
                r#"{"t":"before","row":1,"op":"format-disk","values":{}}"#.into(),
                "not an operation pcbulk knows",
            ),
            (
                r#"{"t":"before","row":1,"op":"support-contact","values":{"email":"x"}}"#.into(),
                "which support-contact rows do not change",
            ),
            (
                r#"{"t":"before","row":1,"op":"support-contact","values":{"subscription_id":"x"}}"#
                    .into(),
                "which support-contact rows do not change",
            ),
            (
                format!(r#"{{"t":"answer","row":1,"request_id":"{RID}","status":200}}"#),
                "does not have before it",
            ),
            (header(), "a second run header"),
        ];
        for (record, want) in cases {
            let m = misfit(&[header(), r#"{"t":"done"}"#.into(), record.clone()]);
            assert_eq!(m.line, 3, "{record}");
            assert!(m.what.contains(want), "{record}: {m:?}");
        }
        let m = misfit(&[send(1, "/servicerequests/1")]);
        assert!(m.what.contains("run's header"), "{m:?}");
    }

    #[test]
    fn journaled_outcomes_are_cleaned_for_the_results_file() {
        let row = r#"{"t":"row","row":1,"line":2,"status":"failed","http_status":400,"error_code":"=1+1","error_message":"bad\u001b[31m\nnews","attempts":1,"correlation_id":"","request_id":"","duration_ms":3}"#;
        let r = read_lines(&[header(), row.into()]).unwrap();
        let o = &r.outcomes[&1].1;
        assert_eq!(o.error_message, "bad\\u{1b}[31m\\u{a}news");
        let line = crate::results::encode_line([], o, b',');
        assert!(
            String::from_utf8(line).unwrap().contains(",'=1+1,"),
            "neutralised"
        );
        let bad = row.replace(r#""request_id":"""#, r#""request_id":"x""#);
        assert!(misfit(&[header(), bad]).what.contains("not a GUID"));
    }

    #[test]
    fn a_journal_row_beyond_the_input_is_found_with_its_first_line() {
        let r = read_lines(&[
            header(),
            send(7, "/servicerequests/1"),
            send(3, "/servicerequests/1"),
        ])
        .unwrap();
        assert_eq!(r.misfit_beyond(7), None);
        let m = r.misfit_beyond(6).unwrap();
        assert_eq!(m.line, 2);
        assert!(m.what.contains("row 7, but the input has 6 rows"), "{m:?}");
    }

    /// Row 1 of a support-contact file, planned: its operation and change.
    fn contact_row(name: &str) -> (&'static OpSpec, Box<dyn Change>) {
        let op = crate::ops::by_name("support-contact").unwrap();
        let row = crate::ops::Row::new()
            .with("customer_id", "c0000001-0000-4000-8000-000000000001")
            .with("subscription_id", "d0000001-0000-4000-8000-000000000011")
            .with("support_tenant_id", "e0000001-0000-4000-8000-000000000001")
            .with("support_mpn_id", "4391507")
            .with("name", name);
        (op, (op.plan)(&row).unwrap())
    }

    fn contact_send(path: &str, name: &str) -> String {
        let body = serde_json::json!({
            "SupportTenantId": "e0000001-0000-4000-8000-000000000001",
            "SupportMpnId": "4391507", "Name": name,
            "Attributes": {"ObjectType": "SupportContact"},
        });
        format!(
            r#"{{"t":"send","row":1,"correlation_id":"{CID}","call":{{"method":"PUT","path":"{path}","body":{body},"request_id":"{RID}"}}}}"#
        )
    }

    const CONTACT: &str = "/customers/c0000001-0000-4000-8000-000000000001/subscriptions/d0000001-0000-4000-8000-000000000011/supportcontact";

    #[test]
    fn a_write_the_row_does_not_make_does_not_fit_it() {
        let (op, change) = contact_row("Trey Research");
        let fits = |lines: &[String]| {
            read_lines(lines)
                .unwrap()
                .misfit_for_row(1, 2, Some(op), Some(change.as_ref()))
        };
        assert_eq!(
            fits(&[header(), contact_send(CONTACT, "Trey Research")]),
            None
        );

        let other = CONTACT.replace("c0000001", "c0000002");
        let m = fits(&[header(), contact_send(&other, "Trey Research")]).unwrap();
        assert_eq!(m.line, 2);
        assert!(m.what.contains("not the call that row makes"), "{m:?}");

        let m = fits(&[header(), contact_send(CONTACT, "Evil")]).unwrap();
        assert!(m.what.contains("body is not the contact"), "{m:?}");

        let patch = contact_send(CONTACT, "Trey Research").replace("PUT", "PATCH");
        assert!(fits(&[header(), patch]).is_some(), "another method");
    }

    #[test]
    fn records_for_a_row_the_input_has_as_invalid_or_as_another_operation_do_not_fit() {
        let (op, change) = contact_row("Trey Research");
        let r = read_lines(&[header(), contact_send(CONTACT, "Trey Research")]).unwrap();
        let m = r.misfit_for_row(1, 2, Some(op), None).unwrap();
        assert!(m.what.contains("which the input has as invalid"), "{m:?}");

        let before = r#"{"t":"before","row":1,"op":"service-request","values":{}}"#;
        let r = read_lines(&[header(), before.into()]).unwrap();
        let m = r
            .misfit_for_row(1, 2, Some(op), Some(change.as_ref()))
            .unwrap();
        assert!(m.what.contains("a service-request row"), "{m:?}");

        let extra = r#"{"t":"before","row":1,"op":"support-contact","values":{},"extra":{"x":1}}"#;
        let r = read_lines(&[header(), extra.into()]).unwrap();
        assert!(r
            .misfit_for_row(1, 2, Some(op), Some(change.as_ref()))
            .is_some());

        let row = r#"{"t":"row","row":1,"line":9,"status":"succeeded","http_status":200,"error_code":"","error_message":"","attempts":1,"correlation_id":"","request_id":"","duration_ms":3}"#;
        let r = read_lines(&[header(), row.into()]).unwrap();
        let m = r
            .misfit_for_row(1, 2, Some(op), Some(change.as_ref()))
            .unwrap();
        assert!(m.what.contains("not on line 9"), "{m:?}");
        let m = r.misfit_for_row(1, 9, Some(op), None).unwrap();
        assert!(
            m.what
                .contains("row 1 succeeded, but the input has it as invalid"),
            "{m:?}"
        );
    }

    /// A note's write for row 1 under MS-RequestId `id`.
    fn send_as(id: &str) -> String {
        send(1, "/servicerequests/1").replace(RID, id)
    }

    fn answer(id: &str, status: u16) -> String {
        format!(r#"{{"t":"answer","row":1,"request_id":"{id}","status":{status}}}"#)
    }

    const RID2: &str = "0b0e0ac1-9f30-4ac6-9d7b-2d4b81f7a003";

    #[test]
    fn of_several_writes_of_a_row_the_newest_is_the_one_to_settle() {
        // Answered 503, then sent again under a new id with no answer: the new one is unsettled.
        let r = read_lines(&[header(), send_as(RID), answer(RID, 503), send_as(RID2)]).unwrap();
        let u = &r.unanswered[&1];
        assert_eq!(u.pending.request_id.to_string(), RID2);
        assert!(!u.pending.answered);
        // The newest answered with success: nothing to settle.
        let r = read_lines(&[header(), send_as(RID), send_as(RID2), answer(RID2, 200)]).unwrap();
        assert!(r.unanswered.is_empty());
        assert_eq!(r.answered_ok[&1].0, RID2);
        // An answer to an id that is not the newest send is not one pcbulk writes.
        let m = misfit(&[header(), send_as(RID), send_as(RID2), answer(RID, 200)]);
        assert!(m.what.contains("does not have before it"), "{m:?}");
    }

    #[test]
    fn a_note_answered_5xx_or_408_is_still_to_settle_under_a_new_request_id() {
        for status in [500, 503, 504, 408] {
            let r = read_lines(&[header(), send_as(RID), answer(RID, status)]).unwrap();
            let u = &r.unanswered[&1];
            assert!(u.pending.answered, "{status}");
        }
        for status in [400, 404, 409, 429] {
            let r = read_lines(&[header(), send_as(RID), answer(RID, status)]).unwrap();
            assert!(r.unanswered.is_empty(), "{status}: known not applied");
        }
    }

    #[test]
    fn a_write_refused_after_an_earlier_copy_may_have_landed_is_still_to_settle() {
        let resume = r#"{"t":"resume","retry_failed":false}"#.to_string();
        // Sent, the run killed; sent again by the resume and refused (a stale ETag, say, the
        // first copy's doing): still to settle, under a new MS-RequestId.
        let r = read_lines(&[
            header(),
            send_as(RID),
            resume.clone(),
            send_as(RID),
            answer(RID, 412),
        ])
        .unwrap();
        assert!(r.unanswered[&1].pending.answered);
        // Answered 503, sent again under a new id and refused: the first may have been applied.
        let r = read_lines(&[
            header(),
            send_as(RID),
            answer(RID, 503),
            send_as(RID2),
            answer(RID2, 412),
        ])
        .unwrap();
        assert!(r.unanswered.contains_key(&1));
        // Sent again, then not sent after all: the first copy is still to settle.
        let r = read_lines(&[header(), send_as(RID), resume, send_as(RID), unsent(RID)]).unwrap();
        assert!(r.unanswered.contains_key(&1));
        // Refused with no copy before it: known not applied.
        let r = read_lines(&[header(), send_as(RID), answer(RID, 412)]).unwrap();
        assert!(r.unanswered.is_empty());
        // A copy landed, answered 200: done.
        let r = read_lines(&[header(), send_as(RID), send_as(RID), answer(RID, 200)]).unwrap();
        assert!(r.unanswered.is_empty());
    }

    fn unsent(id: &str) -> String {
        format!(r#"{{"t":"answer","row":1,"request_id":"{id}","status":null}}"#)
    }

    fn failed_row(code: &str) -> String {
        format!(
            r#"{{"t":"row","row":1,"line":2,"status":"failed","http_status":null,"error_code":"{code}","error_message":"x","attempts":1,"correlation_id":"","request_id":"","duration_ms":3}}"#
        )
    }

    #[test]
    fn retry_failed_settles_an_outcome_unknown_row_and_never_applies_it_afresh() {
        let with_write = read_lines(&[header(), send_as(RID), failed_row("outcome_unknown")]);
        let r = with_write.unwrap();
        assert!(
            r.finished(1, 2, false).is_some(),
            "a resume keeps it failed"
        );
        assert!(
            r.finished(1, 2, true).is_none(),
            "--retry-failed settles it"
        );
        assert!(r.unanswered.contains_key(&1));
        // Without the write it went with, it cannot be settled: it stays failed.
        let r = read_lines(&[header(), failed_row("outcome_unknown")]).unwrap();
        assert!(r.finished(1, 2, true).is_some());
        // Another failure is tried again.
        let r = read_lines(&[header(), failed_row("timeout")]).unwrap();
        assert!(r.finished(1, 2, true).is_none());
    }

    #[test]
    fn a_line_is_read_up_to_the_bound_and_no_further() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.push(b'\n');
        let mut reader = io::Cursor::new(data);
        let mut buf = Vec::new();
        assert!(matches!(
            next_line(&mut reader, &mut buf).unwrap(),
            Some(Line::TooLong)
        ));
        assert!(buf.len() <= MAX_LINE + 1, "read no further than the bound");
    }
}
