//! Properties of the input reader: what the csv crate writes, pcbulk reads back cell for cell; and no
//! byte sequence makes the reader or the validator panic.

use pcbulk::input::{read_bytes, InputError, ReadOptions};
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

/// What the csv crate writes for a table, with CRLF or LF line ends.
fn written(header: &[String], rows: &[Vec<String>], crlf: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.into_inner().unwrap()
}

/// Lines in `bytes` as an editor counts them: `\r\n`, a lone `\r` and a lone `\n` each end one.
fn lines(bytes: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    text.matches('\n').count() as u64
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
        let bytes = written(&header, &rows, crlf);
        let t = read_bytes(&bytes, &ReadOptions::default()).unwrap();
        prop_assert_eq!(t.delimiter, b',');
        prop_assert_eq!(&t.headers, &header);
        let got: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        prop_assert_eq!(got, rows);
    }

    #[test]
    fn rows_then_a_quote_left_open_are_refused_where_it_opens(
        (header, rows) in table(),
        crlf in any::<bool>(),
        before in proptest::collection::vec(header_cell(), 0..4),
        open in cell(),
    ) {
        // Whatever the rows, a last line whose last value opens a quote that never closes (quotes
        // inside it doubled, line breaks and all) is an error naming that line and column.
        let mut bytes = written(&header, &rows, crlf);
        let line = lines(&bytes) + 1;
        for b in &before {
            bytes.extend_from_slice(b.as_bytes());
            bytes.push(b',');
        }
        bytes.push(b'"');
        bytes.extend_from_slice(open.replace('"', "\"\"").as_bytes());
        match read_bytes(&bytes, &ReadOptions::default()) {
            Err(InputError::UnclosedQuote { line: l, column }) => {
                prop_assert_eq!(l, line);
                prop_assert_eq!(column, before.len() + 1);
            }
            other => prop_assert!(false, "not refused: {:?}", other),
        }
    }

    #[test]
    fn utf8_rows_then_a_windows_1252_line_are_refused_naming_it(
        (header, rows) in table(),
        crlf in any::<bool>(),
        accented in proptest::string::string_regex("[a-z]{0,5}[éöåüñ][a-z]{0,5}").unwrap(),
    ) {
        // UTF-8 text, then the same accented word as Windows-1252 writes it: refused, naming the
        // line of the Windows-1252 bytes, whatever came before.
        let mut bytes = written(&header, &rows, crlf);
        bytes.extend_from_slice(accented.as_bytes());
        bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let line = lines(&bytes) + 1;
        let (legacy, _, _) = encoding_rs::WINDOWS_1252.encode(&accented);
        bytes.extend_from_slice(&legacy);
        match read_bytes(&bytes, &ReadOptions::default()) {
            Err(InputError::NotUtf8 { line: l, .. }) => prop_assert_eq!(l, line),
            other => prop_assert!(false, "not refused: {:?}", other),
        }
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

/// Found by the byte-soup property: `E0 A0 | 80 00` is not UTF-8 field by field, but its fields end
/// to end (`E0 A0 80 00`) are, so the row was taken for UTF-8 and cut inside a character (a panic).
#[test]
fn a_character_split_by_a_delimiter_is_refused_not_a_panic() {
    // The property's case, and the fuzzer's smallest ones (a header too, and a tab delimiter).
    let cases: [&[u8]; 6] = [
        &[0xe0, 0xa0, b'|', 0x80, 0x00],
        &[0x75, 0xca, 0x09, 0xbb],
        &[0xc2, 0x3b, 0x9d],
        &[0xcf, 0x09, 0x82],
        &[0x30, 0x7c, 0xc4, 0x7c, 0xb6],
        &[
            0x41, 0x3b, 0x3b, 0x3b, 0x3b, 0x3b, 0x3b, 0xef, 0xbb, 0x3b, 0xbf,
        ],
    ];
    for bytes in cases {
        let got = std::panic::catch_unwind(|| {
            pcbulk::input::read_bytes(bytes, &pcbulk::input::ReadOptions::default()).map(|_| ())
        });
        match got {
            Ok(Err(e)) => assert!(e.to_string().contains("not UTF-8"), "{bytes:x?}: {e}"),
            Ok(Ok(())) => panic!("{bytes:x?}: taken as text"),
            Err(_) => panic!("{bytes:x?}: panicked"),
        }
    }
}
