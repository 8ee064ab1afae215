//! Properties of the input reader: what the csv crate writes, pcbulk reads back cell for cell; and no
//! byte sequence makes the reader or the validator panic.

use pcbulk::input::{read_bytes, ReadOptions};
use pcbulk::planner::plan;
use proptest::prelude::*;

/// Header cells: names a spreadsheet might have (no delimiter characters, so detection is certain).
fn header_cell() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z _]{0,12}"
}

/// Any text a cell can hold, quotes, commas, line breaks, accents and emoji included (but not a
/// byte-order mark, which a reader strips from the start of a file by design).
fn cell() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[^\u{feff}\u{0}]{0,20}").unwrap()
}

fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    (1usize..6).prop_flat_map(|width| {
        (
            proptest::collection::vec(header_cell(), width),
            // Rows with at least one non-blank cell: blank rows are skipped by design.
            proptest::collection::vec(
                proptest::collection::vec(cell(), width)
                    .prop_filter("not blank", |r| r.iter().any(|c| !c.trim().is_empty())),
                0..8,
            ),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_the_csv_crate_writes_reads_back_cell_for_cell((header, rows) in table(), crlf in any::<bool>()) {
        let mut w = csv::WriterBuilder::new()
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        w.write_record(&header).unwrap();
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let t = read_bytes(&bytes, &ReadOptions::default()).unwrap();
        prop_assert_eq!(t.delimiter, b',');
        prop_assert_eq!(&t.headers, &header);
        let got: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        prop_assert_eq!(got, rows);
    }

    #[test]
    fn byte_soup_gives_rows_or_a_clean_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(t) = read_bytes(&bytes, &ReadOptions::default()) {
            let _ = plan(&t, None);
            for op in pcbulk::ops::OPERATIONS {
                let _ = plan(&t, Some(op));
            }
        }
    }

    #[test]
    fn csv_shaped_soup_with_real_column_names_never_panics(
        cells in proptest::collection::vec(proptest::string::string_regex("[-{}a-fA-F0-9@., ;\"\n]{0,40}").unwrap(), 0..30)
    ) {
        let mut text = String::from("operation,customer_id,subscription_id,support_tenant_id,partner_id,name,service_request_id,note,new_status,email,country\n");
        text.push_str(&cells.join(","));
        if let Ok(t) = read_bytes(text.as_bytes(), &ReadOptions::default()) {
            let p = plan(&t, None);
            if let Ok(p) = p {
                prop_assert_eq!(p.rows.len(), t.rows.len(), "one verdict per row");
            }
        }
    }
}
