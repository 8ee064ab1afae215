//! `pcbulk template OP`: a header and an example row to start a file from.

use crate::error::{exit, Error};
use crate::ops::OpSpec;

pub fn print(op: &OpSpec) -> Result<u8, Error> {
    let failed = |e: csv::Error| Error::io("cannot write to standard output", e.into());
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record(op.example.iter().map(|(c, _)| *c))
        .map_err(failed)?;
    w.write_record(op.example.iter().map(|(_, v)| *v))
        .map_err(failed)?;
    w.flush()
        .map_err(|e| Error::io("cannot write to standard output", e))?;
    Ok(exit::OK)
}
