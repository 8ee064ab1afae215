//! The results file: one line per input row, in input order, written as rows finish (rows finish in
//! input order: see `pipeline::engine`). Lines are encoded by the one CSV codec ([`crate::csvfile`])
//! on any thread and appended as bytes.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::csvfile::{neutralize, Encoder, Line, Writer};
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

/// A results file written in order as rows stream past: nothing is held in memory. Lines are
/// encoded by [`push_line`] (on any thread, into any buffer) and appended here, or encoded here by
/// [`StreamWriter::write_line`].
pub struct StreamWriter {
    out: Writer<File>,
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

    /// Starts a results file in `file`, which pcbulk has just made: the BOM, then the header.
    pub fn new(file: File, input_headers: &[String], delimiter: u8) -> io::Result<Self> {
        let mut out = Writer::with_bom(file, delimiter)?;
        let header = header(input_headers);
        out.write_with(|line| {
            for h in &header {
                line.field(neutralize(h).as_bytes());
            }
        })?;
        Ok(StreamWriter { out })
    }

    /// Appends lines encoded by [`push_line`] with the file's delimiter.
    pub fn write_encoded(&mut self, lines: &[u8]) -> io::Result<()> {
        self.out.write_encoded(lines)
    }

    /// Appends a row's line: its input cells, then the outcome's columns.
    pub fn write_line<'c>(
        &mut self,
        inputs: impl IntoIterator<Item = &'c str>,
        o: &Outcome,
    ) -> io::Result<()> {
        self.out
            .write_with(|line| push_line(line, inputs, false, o))
    }

    /// Appends a line's cells exactly as given (already neutralised).
    pub fn write_cells<'c>(&mut self, cells: impl IntoIterator<Item = &'c [u8]>) -> io::Result<()> {
        self.out.record(cells)
    }

    /// Hands what is buffered to the OS.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, and waits until the file is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.sync()
    }

    /// Flushes, and hands back the file.
    pub fn finish(self) -> io::Result<File> {
        self.out.finish()
    }
}

/// A results line, CSV-encoded on its own (see [`push_line`]).
pub fn encode_line<'c>(
    inputs: impl IntoIterator<Item = &'c str>,
    o: &Outcome,
    delimiter: u8,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    push_line(
        &mut Encoder::new(delimiter).line(&mut buf),
        inputs,
        false,
        o,
    );
    buf
}

/// A results line's fields: the row's input cells (neutralised), then the outcome's columns.
/// `plain`: the input cells are known to need no quotes (the checking pass asks that of a row's
/// whole text at once, which costs less than asking each cell); the bytes are the same either way.
pub fn push_line<'c>(
    line: &mut Line<'_>,
    inputs: impl IntoIterator<Item = &'c str>,
    plain: bool,
    o: &Outcome,
) {
    // The `'` neutralising adds keeps a plain cell plain unless it is the delimiter.
    let plain = plain && !line.must_quote(b"'");
    for c in inputs {
        match plain {
            true => line.plain_field(neutralize(c).as_bytes()),
            false => line.field(neutralize(c).as_bytes()),
        }
    }
    let mut n = itoa::Buffer::new();
    line.field(n.format(o.row).as_bytes());
    line.field(n.format(o.line).as_bytes());
    line.field(o.status.as_str().as_bytes());
    match o.http_status {
        Some(h) => line.field(n.format(h).as_bytes()),
        None => line.field(b""),
    }
    line.field(neutralize(&o.error_code).as_bytes());
    line.field(neutralize(&o.error_message).as_bytes());
    line.field(n.format(o.attempts).as_bytes());
    line.field(o.correlation_id.as_bytes());
    line.field(o.request_id.as_bytes());
    line.field(n.format(o.duration_ms).as_bytes());
    line.field(neutralize(&o.change).as_bytes());
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
    fn line_cells<S: AsRef<str>>(inputs: &[S], o: &Outcome) -> Vec<String> {
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
        for delimiter in [b',', b';', b'\t', b'|', b'\''] {
            let mut enc = Encoder::new(delimiter);
            let mut plain = b"before\n".to_vec();
            let mut line = enc.line(&mut plain);
            let found_plain = !line.must_quote(inputs.concat().as_bytes());
            assert!(found_plain, "{}", delimiter as char);
            push_line(&mut line, inputs, found_plain, &o);
            drop(line);
            let mut want = b"before\n".to_vec();
            want.extend(encode(&line_cells(&inputs, &o), delimiter).unwrap());
            assert_eq!(plain, want, "{}", delimiter as char);
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
        let inputs = [
            "plain",
            "semi;colon",
            "=SUM(1)",
            "",
            "comma,here",
            "pipe|here",
        ];
        for delimiter in [b',', b';', b'\t', b'|', b'\''] {
            let want = encode(&line_cells(&inputs, &o), delimiter).unwrap();
            assert_eq!(
                encode_line(inputs, &o, delimiter),
                want,
                "{}",
                delimiter as char
            );
        }
    }

    #[test]
    fn a_written_line_is_the_encoded_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let o = Outcome::unsent(1, 2, Status::Invalid, "=x", "a;b");
        let mut w = StreamWriter::create(&path, &["h".into()], b';').unwrap();
        w.write_line(["=1;2"], &o).unwrap();
        w.write_encoded(&encode_line(["=1;2"], &o, b';')).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], lines[1]);
        assert!(
            lines[0].starts_with("\"'=1;2\";1;2;invalid;;'=x;\"a;b\";"),
            "{}",
            lines[0]
        );
    }
}
