//! The undo file's format, shared by the command that writes it (`commands::undo`) and the
//! planner that reads it back: the [`MARKER`] column and the escaping of its cells.
//!
//! Its cells are neutralised for spreadsheets like a results file's, and so is a cell that starts
//! with `'`: then exactly one leading `'` is pcbulk's, and when pcbulk reads a marked file it takes
//! that `'` off again ([`unescape`]), so a before-value such as `=Old Name` or `+1 425 555 0199`
//! goes back exactly.

use std::borrow::Cow;

use crate::csvfile::neutralize;
use crate::input::header::normalize;

/// The header of the column that marks a file as an undo file pcbulk wrote; each of its cells is
/// the row of the results file that the line puts back.
pub const MARKER: &str = "pcbulk_undo";

/// The header of the column that marks a file as an export pcbulk wrote (`pcbulk export`): its
/// cells are escaped as an undo file's, so the values it holds go back exactly.
pub const EXPORT_MARKER: &str = "pcbulk_export";

/// Whether a header cell is the [`MARKER`] or the [`EXPORT_MARKER`] (spelt any way a header may
/// be).
pub fn is_marker(header: &str) -> bool {
    let n = normalize(header);
    n == normalize(MARKER) || n == normalize(EXPORT_MARKER)
}

/// An undo file's cell: neutralised like a results cell, and a cell that starts with `'` gets one
/// more, so that one leading `'` before `= + - @ ' tab CR` is always pcbulk's. A value that is
/// the text `#N/A` becomes `'#N/A`: bare, the cell would clear its field. A value with white space
/// at either end gets a `'` too: a cell is trimmed when read, but what follows pcbulk's `'` is
/// read to the cell's end, white space and all.
pub fn escape(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(_) => format!("'{cell}").into(),
        None if cell == crate::input::CLEAR || padded(cell) => format!("'{cell}").into(),
        None => neutralize(cell),
    }
}

/// Whether a value has white space at either end.
fn padded(value: &str) -> bool {
    value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace)
}

/// The value a cell of a marked undo file stands for: [`escape`] undone. A `'` before anything
/// else is not pcbulk's, and stays. `cell` is trimmed at its start only when it starts with `'`
/// (see [`read`]).
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        Some(rest) if rest == crate::input::CLEAR || padded(rest) => rest,
        _ => cell,
    }
}

/// The value a marked file's raw cell stands for: trimmed as every cell is, except that a cell
/// escaped by pcbulk (one that starts with `'`) runs to its end, so a value's own white space at
/// either end comes back.
pub fn read(raw: &str) -> &str {
    let trimmed = crate::input::row::trim(raw);
    match trimmed.starts_with('\'') {
        true => unescape(raw.trim_start()),
        false => unescape(trimmed),
    }
}

/// Whether a cell of a marked file is the text `#N/A` itself (escaped), not a request to clear.
pub fn is_literal_clear(cell: &str) -> bool {
    cell.strip_prefix('\'') == Some(crate::input::CLEAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undo_cell_is_safe_in_a_spreadsheet_and_reads_back_as_it_was() {
        for value in [
            "=Old Name",
            "+1 425 555 0199",
            "-Reseller",
            "@Old",
            "\tx",
            "\rx",
            "'",
            "'=already quoted",
            "''",
            "'plain",
            "#N/A",
            "'#N/A",
            "Trey Research",
            "",
        ] {
            let cell = escape(value);
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{value:?} → {cell:?}"
            );
            assert_eq!(unescape(&cell), value, "{value:?} → {cell:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn unescape_undoes_escape(value in "['=+@\\-\t\r]{0,3}.{0,8}") {
            let cell = escape(&value);
            proptest::prop_assert_eq!(unescape(&cell), value.as_str());
        }

        /// Found by an outside tester: a value the service held with spaces at its end
        /// (`São Paulo  `) was trimmed when the export was read back, and applying the export
        /// unchanged wrote the trimmed value.
        #[test]
        fn a_read_back_cell_is_the_value_white_space_at_its_ends_and_all(
            value in "[ \t]{0,2}['=+@\\-#]{0,2}[a-zé /A]{0,6}[ \t]{0,2}"
        ) {
            let cell = escape(&value);
            proptest::prop_assert_eq!(read(&cell), value.as_str());
            let indented = format!("  {cell}");
            proptest::prop_assert_eq!(read(&indented), value.as_str(), "indented");
        }
    }

    #[test]
    fn a_quote_before_anything_else_is_not_pcbulk_s() {
        assert_eq!(unescape("'plain"), "'plain");
        assert_eq!(unescape("'=x"), "=x");
    }
}
