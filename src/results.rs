//! The results file: one line per input row, in input order, written as rows finish (rows finish in
//! input order: see `pipeline::engine`). Lines are encoded on any thread and appended as bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::input::header::normalize;

/// The columns pcbulk adds after the input's own, in this order (SPEC: Results CSV).
pub const RESULT_COLUMNS: &[&str] = &[
    "row",
    "line",
    "status",
    "http_status",
    "error_code",
    "error_message",
    "attempts",
    "correlation_id",
    "request_id",
    "duration_ms",
    "change",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Unchanged,
    Invalid,
    Failed,
    Skipped,
    Valid,
    /// `plan`: applying the row would change what its `change` column says.
    Planned,
}

impl Status {
    /// Every status, in declaration order (so `status as usize` indexes it).
    pub const ALL: [Status; 7] = [
        Status::Succeeded,
        Status::Unchanged,
        Status::Invalid,
        Status::Failed,
        Status::Skipped,
        Status::Valid,
        Status::Planned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Unchanged => "unchanged",
            Status::Invalid => "invalid",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Valid => "valid",
            Status::Planned => "planned",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one input row ended (also a journal record: see `journal::Record::Row`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub row: usize,
    pub line: u64,
    pub status: Status,
    pub http_status: Option<u16>,
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    pub correlation_id: String,
    pub request_id: String,
    pub duration_ms: u64,
    /// What a succeeded row changed: `field: "before" → "after"`, joined with `; `.
    #[serde(default)]
    pub change: String,
}

impl Outcome {
    /// An outcome for a row that was never sent.
    pub fn unsent(row: usize, line: u64, status: Status, code: &str, message: &str) -> Self {
        Outcome {
            row,
            line,
            status,
            http_status: None,
            error_code: code.to_owned(),
            error_message: message.to_owned(),
            attempts: 0,
            correlation_id: String::new(),
            request_id: String::new(),
            duration_ms: 0,
            change: String::new(),
        }
    }
}

/// Makes a cell safe to open in a spreadsheet: one that would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or CR) gets a leading apostrophe, which spreadsheets show as text.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    // The first byte is one of these exactly when the first character is: they are ASCII.
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A results cell as it was before [`neutralize`]: a `'` before a formula character comes off. Exact
/// for every cell but one that itself started with `'` and a formula character (which results files
/// cannot tell apart). pcbulk reads back from a results file only header names (where a name as
/// written wins) and row keys, which are GUIDs or letters and digits.
pub fn unneutralize(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// The results header: the input's own names (a name that matches a results column becomes
/// `input_<name>`), then [`RESULT_COLUMNS`].
pub fn header(input_headers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = input_headers
        .iter()
        .map(|h| {
            let h = h.trim();
            match RESULT_COLUMNS.iter().find(|c| normalize(c) == normalize(h)) {
                Some(c) => format!("input_{c}"),
                None => h.to_owned(),
            }
        })
        .collect();
    out.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
    out
}

/// Written first: Excel reads a CSV without it in the machine's legacy code page, and accents come out
/// garbled; with it, as UTF-8. Readers that know CSV (Python's `utf-8-sig`, the csv crate, pcbulk) skip it.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A results file written in order as rows stream past (validate): nothing is held in memory.
/// Lines are encoded by [`encode_line`] (on any thread) and appended here as bytes.
pub struct StreamWriter {
    out: std::io::BufWriter<File>,
}

/// What to do about a results path pcbulk refuses to write (see [`crate::fsafe`]).
pub const FIX: &str = "give --out another path";

/// Refuses a results path pcbulk must not write (a link, not a regular file, a file with other
/// names), before anything is read or sent.
pub fn refuse_unsafe(path: &Path) -> Result<(), crate::error::Error> {
    crate::fsafe::look(path, FIX)
        .map(drop)
        .map_err(|e| cannot_write(path, e))
}

/// The error for a results file that cannot be written.
pub fn cannot_write(path: &Path, e: io::Error) -> crate::error::Error {
    crate::error::Error::io(
        format!("cannot write the results file {}", path.display()),
        e,
    )
}

impl StreamWriter {
    /// Creates (or empties) the results file at `path`, refusing one pcbulk must not write.
    pub fn create(path: &Path, input_headers: &[String], delimiter: u8) -> io::Result<Self> {
        Self::new(crate::fsafe::create(path, FIX)?, input_headers, delimiter)
    }

    /// Starts a results file in `file`, which pcbulk has just made.
    pub fn new(mut file: File, input_headers: &[String], delimiter: u8) -> io::Result<Self> {
        file.write_all(BOM)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let header: Vec<String> = header(input_headers)
            .iter()
            .map(|h| neutralize(h).into_owned())
            .collect();
        out.write_all(&encode_cells(
            header.iter().map(|h| h.as_bytes()),
            delimiter,
        ))?;
        Ok(StreamWriter { out })
    }

    pub fn write_encoded(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)
    }

    /// Hands what is buffered to the OS.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, and waits until the file is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }

    /// Flushes, and hands back the file.
    pub fn finish(self) -> io::Result<File> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Whether a field must be quoted: it holds the delimiter, a quote or a line break. Also asked of
/// a whole row's text at once (see [`encode_line_of`]): no cell of it needs quotes if it does not.
pub fn needs_quotes(field: &[u8], delimiter: u8) -> bool {
    // Most results fields are a few bytes (a row number, a status): looked at byte by byte, which
    // costs less than setting up a search.
    if field.len() < 16 {
        return field
            .iter()
            .any(|&b| matches!(b, b'"' | b'\n' | b'\r') || b == delimiter);
    }
    memchr::memchr3(b'"', b'\n', b'\r', field).is_some()
        || memchr::memchr(delimiter, field).is_some()
}

/// Appends one CSV field: quoted (quotes doubled) when it holds the delimiter, a quote or a line
/// break, as the csv crate writes it.
fn push_field(buf: &mut Vec<u8>, field: &[u8], delimiter: u8, first: bool) {
    if !first {
        buf.push(delimiter);
    }
    if field.is_empty() {
        return;
    }
    if !needs_quotes(field, delimiter) {
        buf.extend_from_slice(field);
        return;
    }
    buf.push(b'"');
    for &b in field {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

/// A line of cells exactly as given (already neutralised), CSV-encoded.
pub fn encode_cells<'c>(cells: impl IntoIterator<Item = &'c [u8]>, delimiter: u8) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    for (i, c) in cells.into_iter().enumerate() {
        push_field(&mut buf, c, delimiter, i == 0);
    }
    buf.push(b'\n');
    buf
}

/// A results line, CSV-encoded: the row's input cells, then the outcome's columns. The same bytes as
/// the csv crate would write, without its per-writer buffers (this runs once a row, on any thread).
pub fn encode_line<'c>(
    inputs: impl IntoIterator<Item = &'c str>,
    o: &Outcome,
    delimiter: u8,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    encode_line_into(&mut buf, inputs, false, o, delimiter);
    buf
}

/// [`encode_line`], appended to `buf` (the checking pass encodes many rows into one buffer), and
/// told whether the input cells are `plain`: known to hold nothing that needs quotes (the checking
/// pass asks that of a row's whole text at once, which is much cheaper than asking each cell). The
/// bytes written are the same either way.
pub fn encode_line_into<'c>(
    buf: &mut Vec<u8>,
    inputs: impl IntoIterator<Item = &'c str>,
    plain: bool,
    o: &Outcome,
    delimiter: u8,
) {
    // `'` is what neutralising adds: plain cells stay plain unless it is the delimiter.
    let plain = plain && delimiter != b'\'';
    let mut first = true;
    for c in inputs {
        let c = neutralize(c);
        // A neutralised cell has one more byte, a `'`, which needs no quotes either.
        if plain {
            if !std::mem::take(&mut first) {
                buf.push(delimiter);
            }
            buf.extend_from_slice(c.as_bytes());
        } else {
            push_field(buf, c.as_bytes(), delimiter, std::mem::take(&mut first));
        }
    }
    let mut field = |buf: &mut Vec<u8>, bytes: &[u8]| {
        push_field(buf, bytes, delimiter, first);
        first = false;
    };
    let mut n = itoa::Buffer::new();
    field(buf, n.format(o.row).as_bytes());
    field(buf, n.format(o.line).as_bytes());
    field(buf, o.status.as_str().as_bytes());
    match o.http_status {
        Some(h) => field(buf, n.format(h).as_bytes()),
        None => field(buf, b""),
    }
    field(buf, neutralize(&o.error_code).as_bytes());
    field(buf, neutralize(&o.error_message).as_bytes());
    field(buf, n.format(o.attempts).as_bytes());
    field(buf, o.correlation_id.as_bytes());
    field(buf, o.request_id.as_bytes());
    field(buf, n.format(o.duration_ms).as_bytes());
    field(buf, neutralize(&o.change).as_bytes());
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The csv crate's encoding, to compare with.
    fn encode<S: AsRef<[u8]>>(cells: &[S], delimiter: u8) -> io::Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::with_capacity(256));
        w.write_record(cells)?;
        w.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }

    /// One results line: the row's input cells (neutralised), then the outcome's columns.
    fn line<S: AsRef<str>>(inputs: &[S], o: &Outcome) -> Vec<String> {
        let mut cells: Vec<String> = inputs
            .iter()
            .map(|c| neutralize(c.as_ref()).into_owned())
            .collect();
        cells.extend([
            o.row.to_string(),
            o.line.to_string(),
            o.status.to_string(),
            o.http_status.map(|s| s.to_string()).unwrap_or_default(),
            neutralize(&o.error_code).into_owned(),
            neutralize(&o.error_message).into_owned(),
            o.attempts.to_string(),
            o.correlation_id.clone(),
            o.request_id.clone(),
            o.duration_ms.to_string(),
            neutralize(&o.change).into_owned(),
        ]);
        cells
    }

    #[test]
    fn formula_cells_are_neutralised_and_others_left_alone() {
        for bad in ["=1+1", "+46 8 555", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(bad), format!("'{bad}"));
        }
        for ok in ["Trey Research", "4391507", "", "a=b"] {
            assert_eq!(neutralize(ok), ok);
        }
    }

    #[test]
    fn header_cells_are_neutralised_like_data_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let w = StreamWriter::create(&path, &["=HYPERLINK(1)".into(), "name".into()], b',');
        w.unwrap().finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.trim_start_matches('\u{feff}').lines().next().unwrap();
        assert!(header.starts_with("'=HYPERLINK(1),name,row,"), "{header}");
    }

    #[test]
    fn input_columns_that_clash_with_results_columns_are_renamed() {
        let h = header(&["Customer ID".into(), "Status".into(), "error-code".into()]);
        assert_eq!(
            &h[..3],
            &["Customer ID", "input_status", "input_error_code"]
        );
        assert_eq!(&h[3..], RESULT_COLUMNS);
    }

    #[test]
    fn a_row_found_plain_as_a_whole_encodes_as_each_cell_would() {
        let o = Outcome::unsent(7, 9, Status::Valid, "", "");
        // Cells a whole-row look finds plain, a formula among them (neutralised with a `'`).
        let inputs = [
            "0c39d6d5-c70d-4c55-bc02-f620844f3fd1",
            "=SUM(1)",
            "",
            "Trey Research",
        ];
        for delimiter in [b',', b';', b'\t', b'|'] {
            assert!(!needs_quotes(inputs.concat().as_bytes(), delimiter));
            let mut plain = b"before\n".to_vec();
            encode_line_into(&mut plain, inputs, true, &o, delimiter);
            let mut want = b"before\n".to_vec();
            want.extend(encode_line(inputs, &o, delimiter));
            assert_eq!(plain, want);
        }
        // With `'` as the delimiter the neutralising `'` needs quotes after all.
        let mut quoted = Vec::new();
        encode_line_into(&mut quoted, inputs, true, &o, b'\'');
        assert_eq!(quoted, encode(&line(&inputs, &o), b'\'').unwrap());
    }

    #[test]
    fn fields_long_and_short_are_quoted_exactly_when_they_must_be() {
        for len in [0usize, 1, 15, 16, 17, 300] {
            for special in [None, Some(b'"'), Some(b'\n'), Some(b'\r'), Some(b';')] {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    let mut f = vec![b'x'; len];
                    if let (Some(s), true) = (special, len > 0) {
                        f[at] = s;
                    }
                    let want = len > 0 && special.is_some();
                    assert_eq!(needs_quotes(&f, b';'), want, "{len} {special:?} {at}");
                }
            }
        }
    }

    #[test]
    fn encode_line_writes_what_the_csv_crate_writes() {
        let o = Outcome {
            row: 3,
            line: 4,
            status: Status::Invalid,
            http_status: Some(400),
            error_code: "x".into(),
            error_message: "a \"quoted\", two-line\nmessage".into(),
            attempts: 2,
            correlation_id: "c".into(),
            request_id: "r".into(),
            duration_ms: 17,
            change: "name: \"Old\" → \"=New\"".into(),
        };
        let inputs = ["plain", "semi;colon", "=SUM(1)", "", "comma,here"];
        for delimiter in [b',', b';', b'\t'] {
            let want = encode(&line(&inputs, &o), delimiter).unwrap();
            assert_eq!(
                encode_line(inputs, &o, delimiter),
                want,
                "{}",
                delimiter as char
            );
        }
    }
}
