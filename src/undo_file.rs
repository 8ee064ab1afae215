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

/// Whether a header cell is the [`MARKER`] (spelt any way a header may be).
pub fn is_marker(header: &str) -> bool {
    normalize(header) == normalize(MARKER)
}

/// An undo file's cell: neutralised like a results cell, and a cell that starts with `'` gets one
/// more, so that one leading `'` before `= + - @ ' tab CR` is always pcbulk's.
pub fn escape(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(_) => format!("'{cell}").into(),
        None => neutralize(cell),
    }
}

/// The value a cell of a marked undo file stands for: [`escape`] undone. A `'` before anything
/// else is not pcbulk's, and stays.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
    }
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
    }

    #[test]
    fn a_quote_before_anything_else_is_not_pcbulk_s() {
        assert_eq!(unescape("'plain"), "'plain");
        assert_eq!(unescape("'=x"), "=x");
    }
}
