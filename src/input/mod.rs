//! Reading the input file: bytes → text (encoding) → cells (delimiter, quoting) → rows with line numbers.
//!
//! This layer does no trimming and knows no column names: it returns exactly what the file holds, so
//! it can be checked against a CSV conformance suite. Header matching lives in [`header`].

pub mod encoding;
pub mod header;
pub mod reader;
pub mod row;
pub mod xlsx;

use std::path::Path;

use thiserror::Error;

use self::encoding::Utf8At;
use self::reader::Reader;

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
    /// The OS error is in the message, so not a `#[source]` (see the `error` module).
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{0} has no header row: the first non-blank line must name the columns")]
    NoHeader(String),
    /// A file that is UTF-8 in places and not in others, with no byte-order mark or `--encoding`
    /// to say which it is.
    #[error("{}", encoding::not_utf8(*line, *byte, *utf8))]
    NotUtf8 { line: u64, byte: u8, utf8: Utf8At },
    /// Bytes that are no text in the encoding a byte-order mark or `--encoding` says the file is
    /// in: read anyway, they would be U+FFFD, and stored and sent as that.
    #[error("{}", encoding::not_in_encoding(*line, encoding, bytes))]
    NotInEncoding {
        line: u64,
        encoding: &'static str,
        bytes: Vec<u8>,
    },
    #[error(
        "line {line}: the quote that opens the value in column {column} is never closed, so the \
         value would run to the end of the file: close the quote (and double any quote that is \
         part of the value: \"\")"
    )]
    UnclosedQuote { line: u64, column: usize },
    /// An Excel workbook that cannot be read as it is (see [`xlsx`]): the whole message.
    #[error("{0}")]
    Workbook(String),
    /// A folder, or `-`, where a file is read: the whole message (see [`refuse_not_a_file`]).
    #[error("{0}")]
    NotAFile(String),
}

/// What a cell holds to clear its field: Excel's "no value", as text or as its error cell. The
/// reader keeps it as text (a workbook's `#N/A` cell too); an empty cell leaves the field as it is.
pub const CLEAR: &str = "#N/A";

/// How many of a folder's entries are looked at to name the files in it.
const FOLDER_LOOK: usize = 1000;
/// How many files of a folder a message names.
const FOLDER_NAMED: usize = 3;

/// Refuses, with what to give instead, an input that names a folder or standard input (`-`):
/// every command reads its rows from a file, and says so the same way.
pub fn refuse_not_a_file(path: &Path) -> Result<(), InputError> {
    const WHAT: &str = "give the path of a CSV or Excel (.xlsx) file";
    if path.as_os_str() == "-" {
        return Err(InputError::NotAFile(format!(
            "- is standard input, not a file: pcbulk reads its rows from a file, so save them to \
             one and {WHAT} (a file named - is given as ./-)"
        )));
    }
    if !std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let inside = files_in(path);
    let holds = match inside.as_slice() {
        [] => "it holds no .csv or .xlsx file".to_owned(),
        names => format!(
            "for example {}",
            names
                .iter()
                .map(|n| crate::term::escape(&path.join(n).display().to_string()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(InputError::NotAFile(format!(
        "{} is a folder, not a file: {WHAT} ({holds})",
        crate::term::escape(&path.display().to_string())
    )))
}

/// The first few .csv, .txt and .xlsx files of a folder, by name (a look, bounded).
fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .take(FOLDER_LOOK)
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            [".csv", ".txt", ".xlsx"].iter().any(|x| n.ends_with(x))
        })
        .collect();
    names.sort();
    names.truncate(FOLDER_NAMED);
    names
}

/// How to read a file; `None` means detect.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `--encoding`: read the file as this (a byte-order mark still wins), refusing bytes that are
    /// not text in it.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    pub delimiter: Option<u8>,
    /// `--sheet`: the sheet of a workbook to read (else its first).
    pub sheet: Option<String>,
}

/// Reads and parses a file, streaming it through the one reader.
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<Table, InputError> {
    let file = std::fs::File::open(path).map_err(|cause| InputError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    let table = read(Reader::new(file, opts, None, path.display().to_string())?)?;
    if table.headers.is_empty() {
        return Err(InputError::NoHeader(path.display().to_string()));
    }
    Ok(table)
}

/// Parses bytes already in memory (used by tests and fuzzing) with the reader every command uses.
pub fn read_bytes(bytes: &[u8], opts: &ReadOptions) -> Result<Table, InputError> {
    read(Reader::new(bytes, opts, None, "the input".to_owned())?)
}

/// Every row of a reader: the first non-blank one is the header; blank lines, and lines whose
/// every cell is empty (what Excel writes for an empty row: `;;;`), are skipped and do not count as
/// rows.
fn read(mut reader: Reader<'_>) -> Result<Table, InputError> {
    let cells = |r: &row::StreamRow| r.cells().map(str::to_owned).collect::<Vec<_>>();
    let headers = reader.next_row(0)?.map(|h| cells(&h)).unwrap_or_default();
    let mut rows = Vec::new();
    while let Some(r) = reader.next_row(rows.len() + 1)? {
        rows.push(RawRow {
            row: r.row,
            line: r.line,
            cells: cells(&r),
        });
    }
    Ok(Table {
        headers,
        rows,
        encoding: reader.charset().name(),
        delimiter: reader.delimiter(),
    })
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

#[cfg(test)]
mod tests {
    use encoding_rs::WINDOWS_1252;

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

    fn refused(bytes: &[u8]) -> InputError {
        read_bytes(bytes, &ReadOptions::default()).expect_err("refused")
    }

    /// `n` rows of ASCII, over the first 64 KiB the start of a file was once judged by.
    fn ascii_rows(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..n {
            v.extend_from_slice(
                format!("{i},plain ascii text to fill the start of a file\n").as_bytes(),
            );
        }
        v
    }

    #[test]
    fn a_file_mixing_utf8_and_windows_1252_is_refused_naming_the_first_line() {
        let e = refused(b"id,city\n1,G\xc3\xb6teborg\n\n2,Stockholm\n3,Malm\xf6\n");
        assert!(
            matches!(
                e,
                InputError::NotUtf8 {
                    line: 5,
                    byte: 0xf6,
                    ..
                }
            ),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(message.starts_with("line 5 is not UTF-8"), "{message}");
        assert!(message.contains("though line 2 is"), "{message}");
        assert!(message.contains("--encoding windows-1252"), "{message}");
        // The other way round: the first line that is not UTF-8 is named, wherever UTF-8 comes.
        let mut bytes = b"id,city\n1,Malm\xf6\n".to_vec();
        bytes.extend(ascii_rows(2000));
        bytes.extend_from_slice("2,Göteborg\n".as_bytes());
        let e = refused(&bytes);
        assert!(matches!(e, InputError::NotUtf8 { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("though line 2003 is"), "{e}");
    }

    #[test]
    fn a_mix_past_the_start_of_the_file_is_refused_too() {
        let mut bytes = b"id,city\n".to_vec();
        bytes.extend(ascii_rows(2000));
        bytes.extend_from_slice(b"1,G\xc3\xb6teborg\n2,\"Malm\xf6\n\"\n");
        assert!(bytes.len() > 64 * 1024);
        let e = refused(&bytes);
        assert!(matches!(e, InputError::NotUtf8 { line: 2003, .. }), "{e:?}");
    }

    #[test]
    fn a_windows_1252_file_whose_first_accent_is_far_down_is_windows_1252() {
        let mut bytes = b"id,city\n".to_vec();
        bytes.extend(ascii_rows(2000));
        bytes.extend_from_slice(b"1,Malm\xf6\n2,\xc5re\n");
        let t = read(&bytes);
        assert_eq!(t.encoding, "windows-1252");
        assert_eq!(t.rows[2000].cells, vec!["1", "Malmö"]);
        assert_eq!(t.rows[2001].cells, vec!["2", "Åre"]);
    }

    #[test]
    fn with_encoding_given_a_mixed_file_is_read_as_told() {
        let bytes = b"id,city\n1,Malm\xf6\n2,G\xc3\xb6teborg\n";
        let told = |e| ReadOptions {
            encoding: Some(e),
            ..ReadOptions::default()
        };
        let t = read_bytes(bytes, &told(WINDOWS_1252)).unwrap();
        assert_eq!(t.rows[0].cells[1], "Malmö");
        assert_eq!(t.rows[1].cells[1], "GÃ¶teborg", "as told");
    }

    fn utf16le(text: &str) -> Vec<u8> {
        let mut v = vec![0xff, 0xfe];
        for u in text.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn utf8_told_onto_windows_1252_bytes_was_read_as_replacement_characters() {
        let told = ReadOptions {
            encoding: Some(encoding_rs::UTF_8),
            ..ReadOptions::default()
        };
        let e = read_bytes(b"id,city\n1,Oslo\n\n2,\"Malm\xf6\"\n", &told).unwrap_err();
        match &e {
            InputError::NotInEncoding {
                line: 4,
                encoding: "UTF-8",
                bytes,
            } => assert_eq!(bytes, &[0xf6]),
            other => panic!("{other:?}"),
        }
        let message = e.to_string();
        assert!(
            message.starts_with("line 4 is not UTF-8 (the byte 0xF6)"),
            "{message}"
        );
        assert!(message.contains("--encoding"), "{message}");
    }

    #[test]
    fn a_lone_utf16_surrogate_was_read_as_a_replacement_character() {
        let mut bytes = utf16le("id,city\r\n1,Oslo\r\n2,");
        bytes.extend_from_slice(&0xd800u16.to_le_bytes());
        bytes.extend_from_slice(&utf16le("x\r\n")[2..]);
        match refused(&bytes) {
            InputError::NotInEncoding {
                line: 3,
                encoding: "UTF-16LE",
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        // Past the first chunk decoded, on the line it is on.
        let mut text = String::from("id,city\n");
        for i in 0..5000 {
            text.push_str(&format!("{i},a city far down the file\n"));
        }
        let mut bytes = utf16le(&text);
        bytes.extend_from_slice(&0xdc00u16.to_le_bytes());
        assert!(bytes.len() > 2 * 64 * 1024);
        assert!(matches!(
            refused(&bytes),
            InputError::NotInEncoding { line: 5002, .. }
        ));
    }

    /// A U+FFFD the file holds as a character is the user's, not a decoding's: it is kept.
    #[test]
    fn a_replacement_character_written_in_the_file_is_kept() {
        for bytes in [
            "id,city\n1,a\u{fffd}b\n".as_bytes().to_vec(),
            utf16le("id,city\n1,a\u{fffd}b\n"),
        ] {
            assert_eq!(read(&bytes).rows[0].cells[1], "a\u{fffd}b");
        }
    }

    /// The five bytes Windows-1252 leaves undefined are read as the C1 controls of the same
    /// number (WHATWG), never as U+FFFD; a terminal sees them escaped (`crate::term`).
    #[test]
    fn windows_1252_reads_every_byte_as_a_character() {
        let told = ReadOptions {
            encoding: Some(WINDOWS_1252),
            ..ReadOptions::default()
        };
        for opts in [ReadOptions::default(), told] {
            let t = read_bytes(b"id,city\n1,\x81\x8d\x8f\x90\x9d\xf6\n", &opts).unwrap();
            assert_eq!(t.rows[0].cells[1], "\u{81}\u{8d}\u{8f}\u{90}\u{9d}ö");
        }
    }

    #[test]
    fn a_utf8_bom_then_a_line_that_is_not_utf8_is_refused() {
        let e = refused(b"\xef\xbb\xbfid,city\n1,Malm\xf6\n");
        assert!(matches!(e, InputError::NotUtf8 { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("byte-order mark"), "{e}");
    }

    #[test]
    fn an_unterminated_quote_at_the_end_is_an_error_not_a_merged_row() {
        let e = refused(b"id,note\n1,\"first note\n2,second note\n");
        assert!(
            matches!(e, InputError::UnclosedQuote { line: 2, column: 2 }),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(message.starts_with("line 2:"), "{message}");
        assert!(message.contains("column 2"), "{message}");
        assert!(message.contains("close the quote"), "{message}");
        // In a UTF-16 file too, where the quote is found after decoding.
        let mut utf16 = vec![0xff, 0xfe];
        for u in "a\tb\r\n\"x\r\ny\tz\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert!(matches!(
            refused(&utf16),
            InputError::UnclosedQuote { line: 2, column: 1 }
        ));
    }

    #[test]
    fn ragged_rows_are_kept_as_they_are() {
        let t = read(b"a,b\n1\n1,2,3\n");
        assert_eq!(t.rows[0].cells.len(), 1);
        assert_eq!(t.rows[1].cells.len(), 3);
    }
}
