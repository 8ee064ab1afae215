//! One input row as the pipeline carries it.

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

    /// The cells trimmed, as many as the header has (missing ones empty).
    pub fn trimmed(&self, width: usize) -> impl Iterator<Item = &str> + '_ {
        self.cells()
            .map(str::trim)
            .chain(std::iter::repeat(""))
            .take(width)
    }
}
