//! One input row as the pipeline carries it.

/// `str::trim`, answering the common cell (one that starts and ends with a printable ASCII
/// character, so with no white space at either end) without decoding characters: cells are
/// trimmed several times a row on the checking path.
#[inline]
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if (b'!'..=b'~').contains(&f) && (b'!'..=b'~').contains(&l) => s,
        _ => s.trim(),
    }
}

/// A streamed row: its cells in one string, with where each ends (two allocations, not one a cell).
#[derive(Debug, Clone)]
pub struct StreamRow {
    /// 1-based among data rows.
    pub row: usize,
    /// The line of the file it starts on.
    pub line: u64,
    text: String,
    ends: Vec<u32>,
}

impl StreamRow {
    /// A row from its cells laid end to end in `text`, each ending where `ends` says.
    pub fn new(row: usize, line: u64, text: String, ends: Vec<u32>) -> Self {
        StreamRow {
            row,
            line,
            text,
            ends,
        }
    }

    pub fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        let mut from = 0usize;
        self.ends.iter().map(move |&to| {
            let c = &self.text[from..to as usize];
            from = to as usize;
            c
        })
    }

    /// All the cells' text, one after another.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many cells the row has.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the row has no cell at all.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The cells trimmed, as many as the header has (missing ones empty).
    pub fn trimmed(&self, width: usize) -> impl Iterator<Item = &str> + '_ {
        self.cells()
            .map(trim)
            .chain(std::iter::repeat(""))
            .take(width)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_quick_trim_trims_exactly_as_str_trim() {
        for s in [
            "",
            " ",
            "x",
            " x ",
            "\tx\r\n",
            "\u{b}x\u{c}",
            "\u{1c}x\u{1f}",
            "\u{a0}x\u{a0}",
            "\u{3000}Malmö\u{2003}",
            "x\u{85}",
            "é",
            "~ ~",
            "!",
            "\u{7f}x",
        ] {
            assert_eq!(super::trim(s), s.trim(), "{s:?}");
        }
    }
}
