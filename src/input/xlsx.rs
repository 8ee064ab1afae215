//! Excel workbooks (`.xlsx`) read directly, so a partner admin applies the sheet they edited without
//! saving it as CSV first: one sheet (the first, or `--sheet NAME`), its cells as Excel shows them.
//!
//! - Text cells are taken as they are (leading zeros kept); numbers are written without a trailing
//!   `.0` and to the 15 significant digits Excel shows; dates are ISO 8601 (`2026-11-23`, with
//!   ` hh:mm:ss` when the cell has a time; a time alone is `hh:mm:ss`); TRUE/FALSE as Excel writes
//!   them.
//! - A formula counts as the value Excel saved for it. A formula with no saved value, and a cell
//!   showing an error (`#N/A`, `#REF!`, ...), stop the read (exit 2) naming the cell: a row is never
//!   sent with a value the user did not see.
//! - Each row's `line` is its row number in the sheet (what Excel shows at the left); blank rows
//!   are skipped and not counted as rows, as blank lines in a CSV are.
//!
//! A workbook is hostile until checked: its size is bounded before it is opened ([`MAX_FILE`]),
//! and every part of the zip is unpacked once into nothing, counting, before calamine reads it
//! ([`MAX_UNPACKED`]), so a zip bomb is refused instead of filling memory. The sheet is then
//! streamed cell by cell on a thread of its own, a bounded channel away: memory holds the shared
//! strings and a few hundred rows, never the whole grid (a sheet whose one cell sits at XFD1048576
//! costs nothing).

use std::io::{Cursor, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use calamine::{DataRef, Reader as _, Xlsx, XlsxError};

use super::row::StreamRow;
use super::InputError;

/// The largest workbook file read (Excel's own limit of 1,048,576 rows fits well below it).
pub const MAX_FILE: u64 = 64 << 20;
/// The most bytes all the parts of a workbook may unpack to.
pub const MAX_UNPACKED: u64 = 512 << 20;
/// The rightmost column a value may sit in (AMJ): far beyond any bulk file, and it bounds a row.
pub const MAX_COLUMNS: u32 = 1024;
/// The most parts a workbook's zip may hold.
const MAX_ENTRIES: usize = 10_000;
/// Rows read ahead of the pipeline.
const AHEAD: usize = 256;

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: CSV and its kin.
    Text,
    /// A zip, or a file named `.xlsx` / `.xlsm`: read as a workbook.
    Workbook,
    /// An OLE compound file: an Excel 97-2003 `.xls`, or a password-protected workbook.
    Compound,
}

/// Tells a workbook from text by its first bytes and its name.
pub fn kind(path: &std::path::Path, first: &[u8]) -> Kind {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if first.starts_with(b"PK\x03\x04") || matches!(ext.as_deref(), Some("xlsx" | "xlsm")) {
        Kind::Workbook
    } else if first.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        Kind::Compound
    } else {
        Kind::Text
    }
}

/// What the open file at `path` is, from its first bytes; the file is left at its start.
pub fn sniff_file(path: &std::path::Path, file: &mut std::fs::File) -> Result<Kind, InputError> {
    use std::io::{Seek, SeekFrom};
    let io = |cause| InputError::Io {
        path: path.display().to_string(),
        cause,
    };
    // A pipe is read once and cannot be looked into first: its name says.
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(kind(path, &[]));
    }
    let start = file.stream_position().map_err(io)?;
    let mut first = Vec::with_capacity(8);
    (&mut *file).take(8).read_to_end(&mut first).map_err(io)?;
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    Ok(kind(path, &first))
}

fn refused(path: &str, why: impl std::fmt::Display) -> InputError {
    InputError::Workbook(format!("{path}: {why}"))
}

/// Why a compound file is not read.
pub fn compound(path: &str) -> InputError {
    refused(
        path,
        "this is an Excel 97-2003 workbook (.xls) or a password-protected one, which pcbulk does \
         not read: in Excel, save it as \"Excel Workbook (*.xlsx)\" without a password, or as \
         \"CSV UTF-8\"",
    )
}

/// Reads a workbook file's bytes (at most [`MAX_FILE`]) from `src`.
pub fn read_bounded(src: impl Read, path: &str) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    src.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|cause| InputError::Io {
            path: path.to_owned(),
            cause,
        })?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(refused(
            path,
            format!(
                "the workbook is over {} MiB, more than pcbulk reads from a workbook: split it, or \
                 save it as CSV (a CSV of any size is streamed)",
                MAX_FILE >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// Unpacks every part of the zip into nothing, counting, and refuses an archive that is not a zip,
/// holds too many parts, or unpacks to more than `limit` bytes (whatever its directory claims).
pub fn check_zip(bytes: &[u8], path: &str, limit: u64) -> Result<(), InputError> {
    let not_xlsx = |why: String| {
        refused(
            path,
            format!(
                "this is not an Excel workbook ({why}): if it is a CSV, give it a .csv name; if \
                 it is a workbook, save it again from Excel as \"Excel Workbook (*.xlsx)\""
            ),
        )
    };
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| not_xlsx(format!("not a readable zip: {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(not_xlsx(format!("{} parts in its zip", zip.len())));
    }
    let too_big = || {
        refused(
            path,
            format!(
                "the workbook unpacks to more than {} MiB, more than pcbulk reads from a \
                 workbook (a real sheet of that size is better saved as CSV; a small file that \
                 unpacks to that much is a zip bomb)",
                limit >> 20
            ),
        )
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut part = zip
            .by_index(i)
            .map_err(|e| not_xlsx(format!("part {} of its zip cannot be read: {e}", i + 1)))?;
        total = total.saturating_add(part.size());
        if total > limit {
            return Err(too_big());
        }
        let left = limit - (total - part.size());
        let n = std::io::copy(&mut (&mut part).take(left + 1), &mut std::io::sink())
            .map_err(|e| not_xlsx(format!("part {} of its zip cannot be unpacked: {e}", i + 1)))?;
        if n > left {
            return Err(too_big());
        }
        total = total - part.size() + n;
    }
    Ok(())
}

/// Column letters of a 0-based column index: 0 → `A`, 27 → `AB`.
pub fn column_letters(mut col: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A number as Excel shows it in a General cell: at most 15 significant digits, no `.0`.
pub fn number_text(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    format!("{rounded}")
}

/// One row of the sheet: its 1-based row number and its cells.
struct SheetRow {
    line: u64,
    cells: Vec<String>,
}

/// What the reading thread sends: a row, or the end of the sheet, or why it stopped.
type Sent = Result<Option<SheetRow>, InputError>;

/// The rows of one sheet, streamed from a thread that owns the workbook.
pub struct SheetRows {
    rows: Receiver<Sent>,
    /// The end of the sheet came: no more rows.
    ended: bool,
    path: String,
    /// The sheet's name, as the workbook has it.
    name: String,
}

impl std::fmt::Debug for SheetRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SheetRows")
    }
}

impl SheetRows {
    /// Opens a workbook from its bytes (already bounded and checked with [`check_zip`]): the
    /// sheet named `sheet`, or the first.
    pub fn open(bytes: Vec<u8>, sheet: Option<&str>, path: &str) -> Result<SheetRows, InputError> {
        check_zip(&bytes, path, MAX_UNPACKED)?;
        // A reader that fails on a hostile file by panicking is a refusal like any other.
        let opened = std::panic::catch_unwind(|| Xlsx::new(Cursor::new(bytes))).map_err(|_| {
            refused(
                path,
                "the workbook cannot be read: save it again from Excel",
            )
        })?;
        let mut book = opened.map_err(|e| {
            refused(
                path,
                format!(
                    "the workbook cannot be read ({e}): open it in Excel and save it again as \
                     \"Excel Workbook (*.xlsx)\", or save it as CSV"
                ),
            )
        })?;
        let names = book.sheet_names();
        // The sheets a person sees in Excel; a hidden one is read only when asked for by name.
        let shown: Vec<String> = book
            .sheets_metadata()
            .iter()
            .filter(|s| s.visible == calamine::SheetVisible::Visible)
            .map(|s| s.name.clone())
            .collect();
        let hidden: Vec<String> = names
            .iter()
            .filter(|n| !shown.contains(n))
            .cloned()
            .collect();
        let name = match sheet {
            Some(want) => names
                .iter()
                .find(|n| n.as_str() == want)
                .or_else(|| {
                    names
                        .iter()
                        .find(|n| n.trim().eq_ignore_ascii_case(want.trim()))
                })
                .cloned()
                .ok_or_else(|| {
                    refused(
                        path,
                        format!(
                            "the workbook has no sheet {want:?}; its sheets are: {}{}",
                            quoted(&names),
                            if hidden.is_empty() {
                                String::new()
                            } else {
                                format!(" (hidden: {})", quoted(&hidden))
                            }
                        ),
                    )
                })?,
            None => shown.first().cloned().ok_or_else(|| {
                refused(
                    path,
                    "the workbook has no visible sheet: unhide the one to read in Excel, or name \
                     it with --sheet",
                )
            })?,
        };
        let (tx, rx) = sync_channel(AHEAD);
        let named = path.to_owned();
        let sheet = name.clone();
        std::thread::Builder::new()
            .name("xlsx".into())
            .spawn(move || {
                let mut stream = Stream {
                    tx,
                    path: named,
                    sheet: name.clone(),
                    header: None,
                };
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    stream.run(&mut book, &name)
                }));
                let last = match ran {
                    Ok(Ok(())) => Ok(None),
                    Ok(Err(e)) => Err(e),
                    // Without an end sent, the reading side says the read stopped short.
                    Err(_) => return,
                };
                let _ = stream.tx.send(last);
            })
            .map_err(|cause| InputError::Io {
                path: "a thread to read the workbook".into(),
                cause,
            })?;
        Ok(SheetRows {
            rows: rx,
            ended: false,
            path: path.to_owned(),
            name: sheet,
        })
    }

    /// The sheet read, as the workbook names it (part of a run's identity).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next row with a cell that is not blank, numbered `row`, its `line` its sheet row.
    pub fn next_row(&mut self, row: usize) -> Result<Option<StreamRow>, InputError> {
        if self.ended {
            return Ok(None);
        }
        // The thread sends the end of the sheet, or its error, last: a channel closed before
        // either is a read that stopped short, never the end of the rows.
        let r = self.rows.recv().map_err(|_| {
            refused(
                &self.path,
                "the workbook's sheet could not be read to its end: open it in Excel and save it \
                 again, or save the sheet as CSV",
            )
        })??;
        let Some(r) = r else {
            self.ended = true;
            return Ok(None);
        };
        let mut text = String::new();
        let mut ends = Vec::with_capacity(r.cells.len());
        for c in &r.cells {
            text.push_str(c);
            ends.push(text.len() as u32);
        }
        Ok(Some(StreamRow::new(row, r.line, text, ends)))
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reading thread's state.
struct Stream {
    tx: SyncSender<Sent>,
    path: String,
    sheet: String,
    /// The header row's cells, once read, to name a bad cell's column.
    header: Option<Vec<String>>,
}

impl Stream {
    fn run(&mut self, book: &mut Xlsx<Cursor<Vec<u8>>>, name: &str) -> Result<(), InputError> {
        let mut cells = book
            .worksheet_cells_reader(name)
            .map_err(|e| self.unreadable(e))?;
        let mut current: Option<SheetRow> = None;
        while let Some(cell) = cells
            .next_cell_with_formula_metadata()
            .map_err(|e| self.unreadable(e))?
        {
            let (r, c) = cell.pos;
            let line = u64::from(r) + 1;
            if current.as_ref().is_some_and(|cur| cur.line != line) {
                let done = current.take().unwrap_or_else(|| unreachable!());
                if line < done.line {
                    return Err(self.cell_error(
                        r,
                        c,
                            &format!(
                            "comes after row {} in the file: the sheet's rows are out of order, \
                             which Excel never writes; open the workbook in Excel and save it again",
                            done.line
                        ),
                    ));
                }
                if !self.send(done) {
                    return Ok(());
                }
            }
            let text = self.text(r, c, &cell.value, cell.formula.is_some())?;
            let row = current.get_or_insert_with(|| SheetRow {
                line,
                cells: Vec::new(),
            });
            if text.is_empty() {
                continue;
            }
            if c >= MAX_COLUMNS {
                return Err(self.cell_error(
                    r,
                    c,
                    &format!(
                        "holds a value beyond column {}, further right than pcbulk reads: delete \
                         what is there, or move the data to the first columns",
                        column_letters(MAX_COLUMNS - 1)
                    ),
                ));
            }
            let c = c as usize;
            if c < row.cells.len() {
                return Err(self.cell_error(
                    r,
                    c as u32,
                    "appears twice in the sheet, which Excel never writes; open the workbook in \
                     Excel and save it again",
                ));
            }
            row.cells.resize(c, String::new());
            row.cells.push(text);
        }
        if let Some(done) = current {
            self.send(done);
        }
        Ok(())
    }

    /// Sends a row on, unless it is blank; false once nobody reads any more.
    fn send(&mut self, row: SheetRow) -> bool {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            return true;
        }
        let mut row = row;
        match &self.header {
            None => self.header = Some(row.cells.clone()),
            // Excel stores no cell for an empty one at the end of a row: the row is as wide as
            // its header, its last cells empty.
            Some(h) if row.cells.len() < h.len() => row.cells.resize(h.len(), String::new()),
            Some(_) => {}
        }
        self.tx.send(Ok(Some(row))).is_ok()
    }

    fn unreadable(&self, e: XlsxError) -> InputError {
        refused(
            &self.path,
            format!(
                "sheet {:?} cannot be read ({e}): open the workbook in Excel and save it again, \
                 or save the sheet as CSV",
                self.sheet
            ),
        )
    }

    /// "sheet "Feuil1", cell C4 (column "Email") <what>".
    fn cell_error(&self, r: u32, c: u32, what: &str) -> InputError {
        let column = self
            .header
            .as_ref()
            .and_then(|h| h.get(c as usize))
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!(" (column {:?})", h.trim()))
            .unwrap_or_default();
        refused(
            &self.path,
            format!(
                "sheet {:?}, cell {}{}{column} {what}",
                self.sheet,
                column_letters(c),
                u64::from(r) + 1
            ),
        )
    }

    /// A cell as Excel shows it.
    fn text(&self, r: u32, c: u32, v: &DataRef<'_>, formula: bool) -> Result<String, InputError> {
        Ok(match v {
            DataRef::Empty if formula => {
                return Err(self.cell_error(
                    r,
                    c,
                    "holds a formula with no saved value, so pcbulk cannot know what it shows: \
                     open the workbook in Excel and save it (Excel saves every formula's value), \
                     or copy the column and paste it as values",
                ))
            }
            DataRef::Empty => String::new(),
            DataRef::String(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_owned(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Float(f) => number_text(*f),
            DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
            DataRef::DateTime(d) => {
                let serial = d.as_f64();
                if !(0.0..2_958_466.0).contains(&serial) {
                    return Err(self.cell_error(
                        r,
                        c,
                        "is formatted as a date but holds a number no date has (Excel shows \
                         #####): give it a date, or format the cell as text or a number",
                    ));
                }
                let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
                if d.is_duration() {
                    let secs = (serial * 86_400.0).round() as u64;
                    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
                } else if serial < 1.0 {
                    // A time of day with no date.
                    format!("{h:02}:{mi:02}:{s:02}")
                } else if (h, mi, s) == (0, 0, 0) {
                    format!("{y:04}-{mo:02}-{day:02}")
                } else {
                    format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{s:02}")
                }
            }
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::Error(e) => {
                return Err(self.cell_error(
                    r,
                    c,
                    &format!(
                        "shows the error {e}, not a value: correct the cell (or the formula \
                         behind it) in Excel, save, and run again"
                    ),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(number_text(42.0), "42");
        assert_eq!(number_text(-3.0), "-3");
        assert_eq!(number_text(33_612_345_678.0), "33612345678");
        assert_eq!(number_text(0.1 + 0.2), "0.3");
        assert_eq!(number_text(2.5), "2.5");
        assert_eq!(number_text(1e20), "100000000000000000000");
    }

    #[test]
    fn column_letters_count_like_excel() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(1023), "AMJ");
        assert_eq!(column_letters(16383), "XFD");
    }

    #[test]
    fn a_workbook_is_told_by_its_bytes_or_its_name() {
        use std::path::Path;
        assert_eq!(kind(Path::new("a.csv"), b"PK\x03\x04rest"), Kind::Workbook);
        assert_eq!(kind(Path::new("a.XLSX"), b"id,name"), Kind::Workbook);
        assert_eq!(kind(Path::new("a.csv"), b"id,name"), Kind::Text);
        assert_eq!(
            kind(
                Path::new("a.xls"),
                &[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]
            ),
            Kind::Compound
        );
    }

    /// A zip whose one part is `n` zero bytes.
    fn zeros(n: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        std::io::Write::write_all(&mut w, &vec![0u8; n]).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_that_unpacks_past_the_limit_is_a_zip_bomb() {
        let bytes = zeros(1 << 20);
        assert!(bytes.len() < 10 << 10, "compresses well");
        assert!(check_zip(&bytes, "b.xlsx", 2 << 20).is_ok());
        let e = check_zip(&bytes, "b.xlsx", 512 << 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zip bomb"), "{e}");
        assert!(e.starts_with("b.xlsx: "), "{e}");
    }

    #[test]
    fn a_zip_whose_directory_understates_a_part_is_still_counted() {
        let mut bytes = zeros(1 << 20);
        // Patch every record of the uncompressed size (1 MiB) down to 1 KiB: the local header, and
        // the central directory's.
        let real = (1u32 << 20).to_le_bytes();
        let claimed = 1024u32.to_le_bytes();
        let mut patched = 0;
        for i in 0..bytes.len() - 4 {
            if bytes[i..i + 4] == real {
                bytes[i..i + 4].copy_from_slice(&claimed);
                patched += 1;
            }
        }
        assert!(patched >= 2, "{patched}");
        match check_zip(&bytes, "b.xlsx", 512 << 10) {
            Err(e) => assert!(
                e.to_string().contains("zip bomb") || e.to_string().contains("cannot be unpacked"),
                "{e}"
            ),
            Ok(()) => panic!("a lying directory passed"),
        }
    }

    #[test]
    fn text_that_is_no_zip_is_refused_as_no_workbook() {
        let e = check_zip(b"id,name\n1,x\n", "x.xlsx", MAX_UNPACKED)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an Excel workbook"), "{e}");
        assert!(e.contains(".csv name"), "{e}");
    }
}
