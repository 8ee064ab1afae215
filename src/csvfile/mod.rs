//! The one CSV codec, on the csv crate's engine (csv-core): every CSV file pcbulk writes (results,
//! plans, validation results, undo files, templates) is encoded by [`Encoder`], and every CSV file
//! it reads (inputs, plans, results files read back, undo files) is split into records by
//! [`Records`]. Cells that a spreadsheet would run as formulas are made safe by [`neutralize`],
//! the one function that does it.
//!
//! It stands at the bottom of the layers: it knows bytes and cells, not results or rows.

mod read;
mod write;

pub(crate) use read::count_breaks;
pub use read::{Reader, Record, RecordError, Records, MAX_CELLS, MAX_ROW};
pub use write::{Encoder, Line, Writer};

use std::borrow::Cow;

/// Written first in every file pcbulk writes for people: Excel reads a CSV without it in the
/// machine's legacy code page, and accents come out garbled; with it, as UTF-8. Readers that know
/// CSV (Python's `utf-8-sig`, the csv crate, pcbulk) skip it.
pub const BOM: &[u8] = b"\xef\xbb\xbf";

/// The first characters that make a spreadsheet run a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Makes a cell safe to open in a spreadsheet: one that would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or CR) gets a leading apostrophe, which spreadsheets show as text.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    // The first byte is one of these exactly when the first character is: they are ASCII.
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A cell as it was before [`neutralize`]: a `'` before a formula character comes off. Exact for
/// every cell but one that itself started with `'` and a formula character (which a file cannot
/// tell apart). pcbulk reads back from its results files only header names (where a name as
/// written wins), row keys (GUIDs or letters and digits) and its own columns.
pub fn unneutralize(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests;
