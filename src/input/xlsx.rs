//! Excel workbooks (`.xlsx`) read directly, so a partner admin applies the sheet they edited without
//! saving it as CSV first: one sheet (the first, or `--sheet NAME`), its cells as Excel shows them.
//!
//! - Text cells are taken as they are (leading zeros kept); numbers go through their cell's
//!   number format ([`numfmt`]): `00000` shows 2134 as `02134`, General and Text show at most the
//!   15 significant digits Excel shows, without a trailing `.0`; dates are ISO 8601 (`2026-11-23`,
//!   `2026-11-23T09:30:00` when the format shows a time, `09:30:00` for a time alone); TRUE/FALSE
//!   as Excel writes them. A number in a format that cannot be shown exactly stops the read (exit
//!   2) naming the cell and its format.
//! - A formula counts as the value Excel saved for it. A formula with no saved value, and a cell
//!   showing an error (`#REF!`, `#VALUE!`, ...), stop the read (exit 2) naming the cell: a row is
//!   never sent with a value the user did not see. `#N/A` is the exception: it reads as the text
//!   `#N/A`, which clears its field (Excel's own "no value", as `=NA()` gives it).
//! - Each row's `line` is its row number in the sheet (what Excel shows at the left); blank rows
//!   are skipped and not counted as rows, as blank lines in a CSV are.
//!
//! A workbook is hostile until checked: its size is bounded before it is opened ([`MAX_FILE`]),
//! and every part of the zip is unpacked once into nothing, counting, before it is read
//! ([`MAX_UNPACKED`]), so a zip bomb is refused instead of filling memory. The parts are then read
//! with a streaming XML parser of this module's own ([`parts`]) rather than a workbook library,
//! which would load every shared string whether the sheet uses it or not (29 million empty ones, a
//! 1.2 MB file, took 0.9 GB) and gives no cell's number format: a first pass over the sheet marks
//! the shared strings its cells use, one bit each, and only those are kept. The sheet is then
//! streamed cell by cell on a thread of its own, a bounded channel away: memory holds those
//! strings and a few hundred rows, never the whole grid (a sheet whose one cell sits at
//! XFD1048576 costs nothing).

use std::io::{Cursor, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

mod numfmt;
mod parts;

use parts::{CellFormat, Xml, Zip};
use quick_xml::events::Event;

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
    numfmt::general(v)
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
    /// Opens a workbook from its bytes (already bounded with [`read_bounded`]): the sheet named
    /// `sheet`, or the first visible one.
    pub fn open(bytes: Vec<u8>, sheet: Option<&str>, path: &str) -> Result<SheetRows, InputError> {
        check_zip(&bytes, path, MAX_UNPACKED)?;
        let unreadable = |why: String| {
            refused(
                path,
                format!(
                    "the workbook cannot be read ({why}): open it in Excel and save it again as \
                     \"Excel Workbook (*.xlsx)\", or save it as CSV"
                ),
            )
        };
        let mut zip =
            zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
        let book = parts::book(&mut zip).map_err(unreadable)?;
        let entry = pick_sheet(&book.sheets, sheet, path)?;
        let (tx, rx) = sync_channel(AHEAD);
        let sheet = entry.name.clone();
        let mut stream = Stream {
            tx,
            path: path.to_owned(),
            sheet: entry.name.clone(),
            header: None,
            styles: Vec::new(),
            shared: Default::default(),
            date1904: book.date1904,
        };
        std::thread::Builder::new()
            .name("xlsx".into())
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    stream.run(&mut zip, &book, &entry.part)
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

/// The sheet named `want` (exactly, else ignoring case and surrounding spaces), or the first
/// sheet a person sees in Excel: a hidden one is read only when asked for by name.
fn pick_sheet(
    sheets: &[parts::SheetEntry],
    want: Option<&str>,
    path: &str,
) -> Result<parts::SheetEntry, InputError> {
    let names: Vec<String> = sheets.iter().map(|s| s.name.clone()).collect();
    let hidden: Vec<String> = sheets
        .iter()
        .filter(|s| s.hidden)
        .map(|s| s.name.clone())
        .collect();
    let found = match want {
        Some(want) => sheets
            .iter()
            .find(|s| s.name == want)
            .or_else(|| {
                sheets
                    .iter()
                    .find(|s| s.name.trim().eq_ignore_ascii_case(want.trim()))
            })
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
        None => sheets.iter().find(|s| !s.hidden).ok_or_else(|| {
            refused(
                path,
                "the workbook has no visible sheet: unhide the one to read in Excel, or name it \
                 with --sheet",
            )
        })?,
    };
    Ok(found.clone())
}

/// One cell as the sheet stores it.
struct RawCell {
    row: u32,
    col: u32,
    /// Its style's index in the workbook's cell formats.
    style: usize,
    /// Its type (`t`): `s` shared string, `str`, `inlineStr`, `b`, `e`, `d`, or a number.
    kind: String,
    /// Its stored (or saved formula) value.
    value: Option<String>,
    formula: bool,
}

/// The cells of a sheet part, in the order the file holds them.
struct Cells<'a> {
    xml: Xml<'a>,
    buf: Vec<u8>,
    /// Where a cell without a reference sits: after the one before it.
    row: u32,
    col: u32,
}

/// A cell reference (`B7`) as 0-based row and column; `None` past Excel's grid.
fn cell_ref(r: &str) -> Option<(u32, u32)> {
    let split = r.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = r.split_at(split);
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return None;
    }
    let col = letters.bytes().fold(0u32, |n, b| {
        n * 26 + u32::from(b.to_ascii_uppercase() - b'A' + 1)
    });
    let row: u32 = digits.parse().ok()?;
    ((1..=1_048_576).contains(&row) && col <= 16_384).then_some((row - 1, col - 1))
}

impl<'a> Cells<'a> {
    fn new(xml: Xml<'a>) -> Cells<'a> {
        Cells {
            xml,
            buf: Vec::new(),
            row: 0,
            col: 0,
        }
    }

    /// The next cell, or `None` at the end of the sheet's data.
    fn next(&mut self) -> Result<Option<RawCell>, String> {
        loop {
            let (e, empty) = match parts::next(&mut self.xml, &mut self.buf)? {
                Event::Start(e) => (e.into_owned(), false),
                Event::Empty(e) => (e.into_owned(), true),
                Event::End(e) if e.local_name().as_ref() == "sheetData" => return Ok(None),
                Event::Eof => return Ok(None),
                _ => continue,
            };
            match e.local_name().as_ref() {
                "row" => {
                    if let Some(r) = parts::attr(&e, "r") {
                        let r: u32 = r.parse().map_err(|_| format!("has a row numbered {r:?}"))?;
                        self.row = r.saturating_sub(1);
                    }
                    self.col = 0;
                }
                "c" => return self.cell(&e, empty).map(Some),
                _ => {}
            }
        }
    }

    fn cell(
        &mut self,
        e: &quick_xml::events::BytesStart<'_>,
        empty: bool,
    ) -> Result<RawCell, String> {
        if let Some(r) = parts::attr(e, "r") {
            let (row, col) = cell_ref(&r).ok_or_else(|| format!("has a cell reference {r:?}"))?;
            (self.row, self.col) = (row, col);
        }
        let mut cell = RawCell {
            row: self.row,
            col: self.col,
            style: parts::attr(e, "s")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            kind: parts::attr(e, "t").unwrap_or_else(|| "n".into()),
            value: None,
            formula: false,
        };
        self.col = self.col.saturating_add(1);
        if empty {
            return Ok(cell);
        }
        loop {
            let (name, start) = match parts::next(&mut self.xml, &mut self.buf)? {
                Event::Start(e) => (e.local_name().as_ref().to_owned(), true),
                Event::Empty(e) => (e.local_name().as_ref().to_owned(), false),
                Event::End(e) if e.local_name().as_ref() == "c" => return Ok(cell),
                Event::Eof => return Err("ends inside a cell".into()),
                _ => continue,
            };
            match (name.as_str(), start) {
                ("v" | "is", true) => cell.value = Some(parts::text_of(&mut self.xml, &name)?),
                ("f", true) => {
                    parts::text_of(&mut self.xml, "f")?;
                    cell.formula = true;
                }
                ("f", false) => cell.formula = true,
                _ => {}
            }
        }
    }
}

/// The reading thread's state.
struct Stream {
    tx: SyncSender<Sent>,
    path: String,
    sheet: String,
    /// The header row's cells, once read, to name a bad cell's column.
    header: Option<Vec<String>>,
    /// Each cell style's number format.
    styles: Vec<CellFormat>,
    /// The shared strings the sheet uses, by index.
    shared: std::collections::HashMap<u32, String>,
    date1904: bool,
}

impl Stream {
    fn run(&mut self, zip: &mut Zip, book: &parts::Book, part: &str) -> Result<(), InputError> {
        self.styles = parts::styles(zip, book.styles.as_deref()).map_err(|e| self.unreadable(e))?;
        if let Some(sst) = &book.shared_strings {
            let wanted = self.shared_wanted(zip, sst, part)?;
            self.shared = parts::read_shared(zip, sst, &wanted).map_err(|e| self.unreadable(e))?;
        }
        let xml = self.sheet_part(zip, part)?;
        self.rows(Cells::new(xml))
    }

    fn sheet_part<'z>(&self, zip: &'z mut Zip, part: &str) -> Result<Xml<'z>, InputError> {
        parts::open(zip, part)
            .map_err(|e| self.unreadable(e))?
            .ok_or_else(|| self.unreadable(format!("its part {part} is missing")))
    }

    /// A first pass over the sheet marks the shared strings its cells use (one bit for each of
    /// the table's strings): only those are kept.
    fn shared_wanted(&self, zip: &mut Zip, sst: &str, part: &str) -> Result<Vec<u64>, InputError> {
        let n = parts::count_shared(zip, sst).map_err(|e| self.unreadable(e))?;
        let mut wanted = vec![0u64; (n as usize).div_ceil(64)];
        let mut cells = Cells::new(self.sheet_part(zip, part)?);
        while let Some(c) = cells.next().map_err(|e| self.unreadable(e))? {
            let index = c
                .value
                .as_deref()
                .and_then(|v| v.trim().parse::<u32>().ok());
            if let (Some(i), "s") = (index, c.kind.as_str()) {
                if let Some(w) = wanted.get_mut(i as usize / 64) {
                    *w |= 1 << (i % 64);
                }
            }
        }
        Ok(wanted)
    }

    fn rows(&mut self, mut cells: Cells<'_>) -> Result<(), InputError> {
        let mut current: Option<SheetRow> = None;
        while let Some(cell) = cells.next().map_err(|e| self.unreadable(e))? {
            let (r, c) = (cell.row, cell.col);
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
            let text = self.text(&cell)?;
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

    fn unreadable(&self, why: String) -> InputError {
        refused(
            &self.path,
            format!(
                "sheet {:?} cannot be read (the workbook {why}): open the workbook in Excel and \
                 save it again, or save the sheet as CSV",
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
    fn text(&self, cell: &RawCell) -> Result<String, InputError> {
        let fail = |what: &str| self.cell_error(cell.row, cell.col, what);
        let value =
            match (&cell.value, cell.kind.as_str()) {
                (Some(v), _) if !(v.is_empty() && cell.formula) => v,
                (_, "inlineStr") if !cell.formula => return Ok(String::new()),
                (_, _) if cell.formula => return Err(fail(
                    "holds a formula with no saved value, so pcbulk cannot know what it shows: \
                     open the workbook in Excel and save it (Excel saves every formula's value), \
                     or copy the column and paste it as values",
                )),
                _ => return Ok(String::new()),
            };
        Ok(match cell.kind.as_str() {
            "s" => {
                let text = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .and_then(|i| self.shared.get(&i));
                text.cloned().ok_or_else(|| {
                    fail("refers to a shared string the workbook does not have; open it in Excel and save it again")
                })?
            }
            "str" | "inlineStr" | "d" => value.clone(),
            "b" => match value.trim() {
                "1" | "true" => "TRUE".into(),
                "0" | "false" => "FALSE".into(),
                _ => return Err(fail(&format!("holds {value:?} as a TRUE/FALSE value"))),
            },
            "e" if value.trim() == super::CLEAR => super::CLEAR.into(),
            "e" => {
                return Err(fail(&format!(
                    "shows the error {value}, not a value: correct the cell (or the formula \
                     behind it) in Excel, save, and run again"
                )))
            }
            _ => self.number(cell, value)?,
        })
    }

    /// A number cell through its style's number format.
    fn number(&self, cell: &RawCell, value: &str) -> Result<String, InputError> {
        let fail = |what: &str| self.cell_error(cell.row, cell.col, what);
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| fail(&format!("holds {value:?} where a number belongs")))?;
        let format = match self.styles.get(cell.style) {
            Some(f) => f,
            None if cell.style == 0 => &Ok(numfmt::Format::General),
            None => return Err(fail("uses a cell style the workbook does not have")),
        };
        let format = format.as_ref().map_err(|(code, why)| {
            fail(&format!(
                "holds a number formatted {code:?}, which {why}, so pcbulk cannot show it exactly \
                 as Excel does: in Excel, format the column as Text (or with a simpler number \
                 format such as 0 or 00000) and save, or save the sheet as CSV"
            ))
        })?;
        format.number(v, self.date1904).map_err(|why| fail(&why))
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
