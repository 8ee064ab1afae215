//! `pcbulk template OP`: every column of an operation and an example row to start a file from.

use crate::csvfile::Writer;
use crate::error::{exit, Error};
use crate::ops::OpSpec;

/// The header and the example row: every column the operation reads (optional ones with no
/// example left empty, which means "leave as it is").
pub fn rows(op: &OpSpec) -> [Vec<&'static str>; 2] {
    // A partner-wide operation is never taken from a header: its file names it in each row.
    let named = op.partner_wide.then_some(("operation", op.name));
    let example = |c: &str| {
        op.example
            .iter()
            .find(|(k, _)| *k == c)
            .map_or("", |(_, v)| *v)
    };
    let cells: Vec<(&'static str, &'static str)> = named
        .into_iter()
        .chain(op.columns().map(|c| (c, example(c))))
        .collect();
    [
        cells.iter().map(|(c, _)| *c).collect(),
        cells.iter().map(|(_, v)| *v).collect(),
    ]
}

/// Writes the template to standard output (through the one CSV writer, without a BOM: it is
/// meant to be redirected or piped).
pub fn print(op: &OpSpec) -> Result<u8, Error> {
    let failed = |e| Error::io("cannot write to standard output", e);
    let mut w = Writer::plain(std::io::stdout().lock(), b',');
    for r in rows(op) {
        w.record(r).map_err(failed)?;
    }
    w.flush().map_err(failed)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_every_column_of_the_operation() {
        for op in crate::ops::OPERATIONS {
            let [header, example] = rows(op);
            assert_eq!(header.len(), example.len());
            for c in op.columns() {
                assert!(header.contains(&c), "{}: {c} missing", op.name);
            }
            for (c, _) in op.example {
                assert!(header.contains(c), "{}: example {c} not a column", op.name);
            }
        }
    }
}
