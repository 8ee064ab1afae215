//! `pcbulk undo RESULTS`: a CSV in the input's format that puts back what a run changed.

use std::path::Path;

use crate::error::{exit, Error};

pub fn run(results: &Path, out: Option<&Path>) -> Result<u8, Error> {
    let report =
        crate::undo::write_undo(results, out).map_err(|e| Error::Usage(format!("{e:#}")))?;
    print!("{}", crate::undo::report_text(&report));
    Ok(exit::OK)
}
