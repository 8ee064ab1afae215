//! Reading the input file: bytes → text (encoding) → cells (delimiter, quoting) → rows with line numbers.
//!
//! This layer does no trimming and knows no column names: it returns exactly what the file holds, so
//! it can be checked against a CSV conformance suite. Header matching lives in [`header`].

pub mod header;
pub mod records;
pub mod row;

use std::path::Path;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use thiserror::Error;

/// A parsed input file: the header cells and every non-blank data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<RawRow>,
    /// The encoding the file was read as (for messages).
    pub encoding: &'static str,
    pub delimiter: u8,
}

/// One data row as it stands in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based index among data rows (header and blank lines not counted).
    pub row: usize,
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub cells: Vec<String>,
}

#[derive(Debug, Error)]
pub enum InputError {
    /// The OS error is in the message, so not a `#[source]` (see `crate::error`).
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{0} has no header row: the first non-blank line must name the columns")]
    NoHeader(String),
    #[error("unknown encoding {0:?}: use utf-8, utf-16le, utf-16be or windows-1252")]
    UnknownEncoding(String),
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
}

/// How to read a file; `None` means detect.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub encoding: Option<String>,
    pub delimiter: Option<u8>,
}

/// Reads and parses a file.
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<Table, InputError> {
    let bytes = std::fs::read(path).map_err(|cause| InputError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    let table = read_bytes(&bytes, opts)?;
    if table.headers.is_empty() {
        return Err(InputError::NoHeader(path.display().to_string()));
    }
    Ok(table)
}

/// Parses bytes already in memory (used by tests and by `read_path`).
pub fn read_bytes(bytes: &[u8], opts: &ReadOptions) -> Result<Table, InputError> {
    let forced = match &opts.encoding {
        Some(label) => Some(
            Encoding::for_label(label.as_bytes())
                .ok_or_else(|| InputError::UnknownEncoding(label.clone()))?,
        ),
        None => None,
    };
    let (text, encoding) = decode(bytes, forced);
    let delimiter = opts
        .delimiter
        .unwrap_or_else(|| detect_delimiter(first_line(&text)));
    let (headers, rows) = parse(&text, delimiter)?;
    Ok(Table {
        headers,
        rows,
        encoding: encoding.name(),
        delimiter,
    })
}

/// Decodes the file: a BOM wins (UTF-8, UTF-16LE/BE), then valid UTF-8, else Windows-1252, which is
/// what Excel writes as "CSV" on western European machines.
pub fn decode(bytes: &[u8], forced: Option<&'static Encoding>) -> (String, &'static Encoding) {
    if let Some(enc) = forced {
        let (text, _, _) = enc.decode(bytes); // decode() also strips a matching BOM
        return (text.into_owned(), enc);
    }
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return (text.into_owned(), enc);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), UTF_8),
        Err(_) => {
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            (text.into_owned(), WINDOWS_1252)
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Picks the delimiter that occurs most often outside quotes in the header line: `,` `;` tab `|`.
pub fn detect_delimiter(header_line: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut in_quotes = false;
    for b in header_line.bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            for (d, n) in counts.iter_mut() {
                if *d == b {
                    *n += 1;
                }
            }
        }
    }
    // Stable: on a tie the earlier (more common) delimiter wins; with none at all, a comma.
    let mut best = counts[0];
    for c in counts.iter().skip(1) {
        if c.1 > best.1 {
            best = *c;
        }
    }
    best.0
}

/// Splits text into header and rows. Blank lines, and lines whose every cell is empty (what Excel
/// writes for an empty row: `;;;`), are skipped and do not count as rows.
pub fn parse(text: &str, delimiter: u8) -> Result<(Vec<String>, Vec<RawRow>), InputError> {
    let mut records = records::Records::new(text.as_bytes(), delimiter);
    let mut headers: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    while let Some(rec) = records.next_record().map_err(|e| InputError::Csv {
        line: 0,
        message: e.to_string(),
    })? {
        // The text is UTF-8 and fields split at ASCII delimiters, so each field is UTF-8 too.
        let cells: Vec<String> = rec
            .fields()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match headers {
            None => headers = Some(cells),
            Some(_) => rows.push(RawRow {
                row: rows.len() + 1,
                line: rec.line,
                cells,
            }),
        }
    }
    Ok((headers.unwrap_or_default(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Table {
        read_bytes(bytes, &ReadOptions::default()).unwrap()
    }

    #[test]
    fn semicolon_windows_1252_crlf_as_excel_writes_in_france() {
        let bytes = b"customer_id;name\r\n1;Soci\xe9t\xe9 G\xe9n\xe9rale\r\n";
        let t = read(bytes);
        assert_eq!(t.delimiter, b';');
        assert_eq!(t.encoding, "windows-1252");
        assert_eq!(t.rows[0].cells, vec!["1", "Société Générale"]);
    }

    #[test]
    fn utf8_bom_is_not_part_of_the_first_header() {
        let t = read("\u{feff}a,b\n1,2\n".as_bytes());
        assert_eq!(t.headers, vec!["a", "b"]);
    }

    #[test]
    fn utf16le_with_bom() {
        let text = "a\tb\r\nx\tÅsa\r\n";
        let mut bytes = vec![0xff, 0xfe];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let t = read(&bytes);
        assert_eq!(t.delimiter, b'\t');
        assert_eq!(t.rows[0].cells, vec!["x", "Åsa"]);
    }

    #[test]
    fn blank_and_all_empty_lines_are_skipped_but_lines_are_counted() {
        let t = read(b"a,b\n\n1,2\n,\n\n3,4\n");
        let got: Vec<(usize, u64)> = t.rows.iter().map(|r| (r.row, r.line)).collect();
        assert_eq!(got, vec![(1, 3), (2, 6)]);
    }

    #[test]
    fn quoted_newline_keeps_row_start_line() {
        let t = read(b"a,b\n\"x\ny\",2\n3,4\n");
        assert_eq!(t.rows[0].cells[0], "x\ny");
        assert_eq!(t.rows[1].line, 4);
    }

    #[test]
    fn delimiter_inside_quotes_in_header_is_not_counted() {
        assert_eq!(detect_delimiter("\"a;b;c\",d,e"), b',');
        assert_eq!(detect_delimiter("a|b|c"), b'|');
        assert_eq!(detect_delimiter("single"), b',');
    }

    #[test]
    fn lone_cr_line_endings_count_as_lines() {
        let t = read(b"a,b\r1,2\r\r3,4\r");
        let got: Vec<(usize, u64)> = t.rows.iter().map(|r| (r.row, r.line)).collect();
        assert_eq!(got, vec![(1, 2), (2, 4)]);
    }

    #[test]
    fn ragged_rows_are_kept_as_they_are() {
        let t = read(b"a,b\n1\n1,2,3\n");
        assert_eq!(t.rows[0].cells.len(), 1);
        assert_eq!(t.rows[1].cells.len(), 3);
    }
}
