use proptest::prelude::*;

use super::*;

/// What the csv crate's writer writes for `records`.
fn csv_crate(records: &[Vec<String>], delimiter: u8) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::new());
    for r in records {
        w.write_record(r).unwrap();
    }
    w.into_inner().unwrap()
}

/// What the codec's writer writes for `records`, with the BOM a file gets.
fn ours(records: &[Vec<String>], delimiter: u8) -> Vec<u8> {
    let mut w = Writer::with_bom(Vec::new(), delimiter).unwrap();
    for r in records {
        w.record(r).unwrap();
    }
    w.finish().unwrap()
}

/// Every record `bytes` holds, read back as text through [`Reader`].
fn read_back(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    let mut r = Reader::new(bytes, |_| Ok(delimiter)).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(
            rec.texts()
                .unwrap()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        );
    }
    out
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Cells that break a naive writer: every delimiter pcbulk reads, quotes, line breaks of each kind,
/// formulas, empty cells, and a field longer than any buffer's first size.
fn hostile() -> Vec<Vec<String>> {
    let long = format!("{}\"{}", "x".repeat(700), ";".repeat(300));
    vec![
        strings(&["plain", "a,b", "a;b", "a\tb", "a|b", "say \"hi\"", "\""]),
        strings(&[
            "line\nbreak",
            "cr\rreturn",
            "crlf\r\nend",
            "",
            "=SUM(A1)",
            "+1",
            "-2",
        ]),
        strings(&[
            "@cmd",
            "'quoted",
            " padded ",
            "\u{feff}bom",
            "naïve ✓",
            "\0nul",
        ]),
        strings(&[""]),
        strings(&["", ""]),
        vec![long.clone(), long],
        strings(&["one"]),
    ]
}

#[test]
fn the_writer_writes_the_csv_crate_s_bytes_for_hostile_cells() {
    let records = hostile();
    for delimiter in [b',', b';', b'\t', b'|', b'\''] {
        let mut want = BOM.to_vec();
        want.extend(csv_crate(&records, delimiter));
        assert_eq!(ours(&records, delimiter), want, "{}", delimiter as char);
    }
}

#[test]
fn lines_encoded_end_to_end_into_one_buffer_are_each_the_csv_crate_s() {
    // As the checking pass encodes a piece: one encoder, one buffer, many lines.
    let records = hostile();
    let mut enc = Encoder::new(b';');
    let mut buf = b"before\n".to_vec();
    for r in &records {
        enc.record(&mut buf, r);
    }
    let mut want = b"before\n".to_vec();
    want.extend(csv_crate(&records, b';'));
    assert_eq!(buf, want);
}

#[test]
fn a_record_of_one_empty_cell_is_written_so_it_reads_back() {
    // A bare line break would read as a blank line, and be skipped.
    let records = vec![strings(&["a"]), strings(&[""]), strings(&["b"])];
    let bytes = ours(&records, b',');
    assert_eq!(&bytes[BOM.len()..], b"a\n\"\"\nb\n");
    assert_eq!(read_back(&bytes, b','), records);
}

#[test]
fn the_reader_passes_over_the_bom_and_picks_the_delimiter_from_the_header() {
    let bytes = b"\xef\xbb\xbfa;b,c\n1;2\n";
    let mut r = Reader::new(&bytes[..], |head| {
        assert!(head.starts_with(b"a;b"), "the BOM is passed over");
        Ok(b';')
    })
    .unwrap();
    assert_eq!(r.delimiter(), b';');
    let rec = r.next_record().unwrap().unwrap();
    assert_eq!(rec.texts().unwrap(), ["a", "b,c"]);
    assert_eq!(r.next_record().unwrap().unwrap().line, 2);
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn a_field_that_is_not_utf8_is_refused_as_text() {
    let mut r = Reader::new(&b"ok,\xff\n"[..], |_| Ok(b',')).unwrap();
    assert!(r.next_record().unwrap().unwrap().texts().is_err());
}

#[test]
fn formula_cells_are_neutralised_and_others_left_alone() {
    for bad in ["=1+1", "+46 8 555", "-2", "@SUM(A1)", "\tx", "\rx"] {
        assert_eq!(neutralize(bad), format!("'{bad}"));
        assert_eq!(unneutralize(&neutralize(bad)), bad);
    }
    for ok in ["Trey Research", "4391507", "", "a=b", "'plain"] {
        assert_eq!(neutralize(ok), ok);
        assert_eq!(unneutralize(ok), ok);
    }
}

/// A cell made mostly of the bytes that matter to CSV, and some text.
fn cell() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(",".to_owned()),
            Just(";".to_owned()),
            Just("\t".to_owned()),
            Just("|".to_owned()),
            Just("\"".to_owned()),
            Just("\r".to_owned()),
            Just("\n".to_owned()),
            Just("=".to_owned()),
            "\\PC{0,6}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn the_reader_reads_back_what_the_writer_wrote(
        records in proptest::collection::vec(proptest::collection::vec(cell(), 1..6), 0..8),
        delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(b'|')],
    ) {
        let bytes = ours(&records, delimiter);
        let mut want = BOM.to_vec();
        want.extend(csv_crate(&records, delimiter));
        prop_assert_eq!(&bytes, &want);
        prop_assert_eq!(read_back(&bytes, delimiter), records);
    }

    #[test]
    fn a_neutralised_cell_is_safe_and_reads_back(c in cell()) {
        let safe = neutralize(&c);
        prop_assert!(!safe.starts_with(FORMULA_STARTS));
        if !c.starts_with('\'') {
            prop_assert_eq!(unneutralize(&safe), c.as_str());
        }
    }
}
