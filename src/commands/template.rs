//! `pcbulk template OP`: a header and an example row to start a file from.

use crate::error::{exit, Error};
use crate::ops::OpSpec;

pub fn print(op: &OpSpec) -> Result<u8, Error> {
    let failed = |e: csv::Error| Error::io("cannot write to standard output", e.into());
    let mut w = csv::Writer::from_writer(std::io::stdout());
    // A partner-wide operation is never taken from a header: its file names it in each row.
    let named = op.partner_wide.then_some(("operation", op.name));
    let cells = || named.into_iter().chain(op.example.iter().copied());
    w.write_record(cells().map(|(c, _)| c)).map_err(failed)?;
    w.write_record(cells().map(|(_, v)| v)).map_err(failed)?;
    w.flush()
        .map_err(|e| Error::io("cannot write to standard output", e))?;
    Ok(exit::OK)
}
