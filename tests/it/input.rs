//! The input means one thing, against the sandbox: a file is read in one encoding from its first line
//! to its last, so an accented value is stored as written or the file is refused before anything is
//! sent; and a quote left open at the end is an error, not the rows after it merged into one value.
//! `validate` and `apply` read every file the same way.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// Rows a contact file has before its last line, enough to pass the first 64 KiB of the file that
/// its encoding was once judged by.
const FILLER: usize = 600;

/// A support-contact file: Contoso's extra subscription `i` to Trey Research under `names[i]`
/// (bytes as a file holds them), for every name given.
fn contacts(names: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = b"customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n".to_vec();
    for (i, name) in names.iter().enumerate() {
        let row = format!("{CONTOSO},{},{TREY_TENANT},4391507,", extra_subscription(i));
        bytes.extend_from_slice(row.as_bytes());
        bytes.extend_from_slice(name);
        bytes.push(b'\n');
    }
    bytes
}

/// `first`, then [`FILLER`] plain names, then `last`: `first` on line 2, `last` on line
/// `FILLER + 3`.
fn names(first: &[u8], last: &[u8]) -> Vec<Vec<u8>> {
    let mut v = vec![first.to_vec()];
    v.extend((0..FILLER).map(|i| format!("Trey Research {i}").into_bytes()));
    v.push(last.to_vec());
    v
}

fn validate(input: &Path, extra: &[&str]) -> std::process::Output {
    pcbulk()
        .arg("validate")
        .arg(input)
        .args(extra)
        .output()
        .expect("run pcbulk")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The contact name stored on Contoso's extra subscription `i`.
fn contact_name(sb: &Sandbox, i: usize) -> serde_json::Value {
    sb.subscription(&extra_subscription(i))["supportContact"]["name"].clone()
}

#[test]
fn a_file_mixing_utf8_and_windows_1252_is_refused_naming_the_first_line() {
    let sb = Sandbox::start(&["--subscriptions", "700"]);
    let w = Workdir::new();
    let last_line = FILLER + 3;
    let stored_before = contact_name(&sb, FILLER + 1);
    // UTF-8 on line 2, and a line pasted from a Windows-1252 file far down, past the file's start.
    let utf8_first = w.write(
        "utf8-first.csv",
        contacts(&names("Trey Göteborg AB".as_bytes(), b"Trey Malm\xf6 AB")),
    );
    // The other way round: Windows-1252 on line 2, UTF-8 far down.
    let legacy_first = w.write(
        "legacy-first.csv",
        contacts(&names(b"Trey Malm\xf6 AB", "Trey Göteborg AB".as_bytes())),
    );
    for (input, bad, good) in [(&utf8_first, last_line, 2), (&legacy_first, 2, last_line)] {
        for out in [sb.apply(input, &[]), validate(input, &[])] {
            assert_eq!(code(&out), 2, "{}", text(&out));
            let err = stderr(&out);
            assert!(
                err.contains(&format!("line {bad} is not UTF-8 (it has the byte 0xF6)")),
                "{err}"
            );
            assert!(err.contains(&format!("though line {good} is")), "{err}");
            assert!(
                err.contains("save the file as UTF-8") || err.contains("Save the file as UTF-8"),
                "{err}"
            );
            assert!(err.contains("--encoding windows-1252"), "{err}");
        }
    }
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
    assert_eq!(contact_name(&sb, FILLER + 1), stored_before);
    for name in ["utf8-first", "legacy-first"] {
        for kind in ["results", "validation"] {
            assert!(!w.path(&format!("{name}.{kind}.csv")).exists());
        }
    }
}

#[test]
fn with_encoding_given_a_mixed_file_is_read_as_told() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    // Contoso's line in Windows-1252 (ö is the byte 0xF6), Fabrikam's in UTF-8.
    let mut bytes = format!("Customer ID,City\n{CONTOSO},Malm").into_bytes();
    bytes.push(0xf6);
    bytes.extend_from_slice(format!("\n{FABRIKAM},Göteborg\n").as_bytes());
    let input = w.write("billing.csv", bytes);

    let city = |id| sb.customer(id)["billingProfile"]["defaultAddress"]["city"].clone();
    assert_eq!(city(CONTOSO), "Redmond", "the seed");
    let refused = sb.apply(&input, &[]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        stderr(&refused).contains("line 2 is not UTF-8"),
        "{}",
        text(&refused)
    );
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
    assert_eq!(city(CONTOSO), "Redmond");

    let out = validate(&input, &["--encoding", "windows-1252"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("billing.validation.csv"));
    assert_eq!(rows[0]["City"], "Malmö");
    assert_eq!(rows[0]["status"], "valid");

    let out = sb.apply(&input, &["--encoding", "windows-1252"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(city(CONTOSO), "Malmö", "exactly, not garbled");
    assert_eq!(
        city(FABRIKAM),
        "GÃ¶teborg",
        "the UTF-8 line read as the Windows-1252 it was said to be"
    );
    let rows = results(&w.path("billing.results.csv"));
    assert_eq!(rows[0]["City"], "Malmö");
    assert_eq!(rows[0]["status"], "succeeded");
}

#[test]
fn validate_and_apply_decode_one_file_the_same_way() {
    let sb = Sandbox::start(&["--subscriptions", "700"]);
    let w = Workdir::new();
    // Windows-1252 whose first accent comes after the file's first 64 KiB, which are plain ASCII.
    let bytes = contacts(&names(b"Trey Research", b"Malm\xf6 Support AB"));
    assert!(bytes.len() > 64 * 1024);
    let input = w.write("contacts.csv", bytes);

    let out = validate(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let validated = results(&w.path("contacts.validation.csv"));

    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let applied = results(&w.path("contacts.results.csv"));

    assert_eq!(validated.len(), FILLER + 2);
    assert_eq!(validated[FILLER + 1]["name"], "Malmö Support AB");
    let names = |rows: &[BTreeMap<String, String>]| -> Vec<String> {
        rows.iter().map(|r| r["name"].clone()).collect()
    };
    assert_eq!(names(&validated), names(&applied));
    assert_eq!(contact_name(&sb, FILLER + 1), "Malmö Support AB");
}

#[test]
fn an_unterminated_quote_at_the_end_is_an_error_not_a_merged_row() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let notes_before = sb.note_counts();
    // The first note's closing quote was lost: read to the end, it would swallow the next row.
    let input = w.write(
        "notes.csv",
        "service_request_id,note\n\
         616122292874576,\"Called the customer\n\
         616122292874577,Sent the invoice again\n",
    );
    for out in [sb.apply(&input, &[]), validate(&input, &[])] {
        assert_eq!(code(&out), 2, "{}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("line 2: the quote that opens the value in column 2 is never closed"),
            "{err}"
        );
        assert!(err.contains("close the quote"), "{err}");
    }
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
    assert_eq!(sb.note_counts(), notes_before);
    assert!(!w.path("notes.results.csv").exists());
    assert!(!w.path("notes.validation.csv").exists());
}

/// Found by an outside test: `validate /dev/zero` grew without bound (539 MB and rising). A row
/// that never ends is cut off at a bound with a clean error.
#[test]
fn an_endless_input_is_refused_at_a_bound_not_read_into_memory() {
    let w = Workdir::new();
    let out = pcbulk()
        .args(["validate", "/dev/zero", "--out"])
        .arg(w.path("z.csv"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("without ending"), "{}", text(&out));
}

/// Bytes that are not text in the encoding the file is read as were read as U+FFFD, and the row
/// was `valid` and sent: `--encoding utf-8` on Windows-1252 bytes, a lone UTF-16 surrogate.
#[test]
fn a_replacement_character_from_decoding_was_sent_as_a_valid_value() {
    let sb = Sandbox::start(&["--subscriptions", "4"]);
    let w = Workdir::new();
    let forced = w.write(
        "forced.csv",
        contacts(&[b"Trey Research".to_vec(), b"Trey Malm\xf6 AB".to_vec()]),
    );
    // The second name holds a high surrogate with no low one after it.
    let head = contacts(&[b"Trey Research".to_vec(), b"Trey ".to_vec()]);
    let head = String::from_utf8(head).unwrap();
    let mut utf16 = vec![0xff, 0xfe];
    let units = head.trim_end().encode_utf16().chain([0xd800]);
    for u in units.chain("AB\n".encode_utf16()) {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let lone = w.write("lone.csv", utf16);
    for (input, extra, said) in [
        (
            &forced,
            &["--encoding", "utf-8"][..],
            "line 3 is not UTF-8 (the byte 0xF6)",
        ),
        (&lone, &[][..], "line 3 is not UTF-16LE"),
    ] {
        for out in [sb.apply(input, extra), validate(input, extra)] {
            assert_eq!(code(&out), 2, "{}", text(&out));
            assert!(stderr(&out).contains(said), "{}", text(&out));
            assert!(!text(&out).contains('\u{fffd}'), "{}", text(&out));
        }
    }
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
}
