//! What pcbulk prints never acts on the user's terminal: escape sequences and other controls in a
//! header cell, a value or a file name are shown as `\u{1b}`, never sent raw. The real binary.

use std::process::Output;

use crate::common::*;

const ESC: u8 = 0x1b;
/// Clears the screen and sets the window title: what a hostile file would send a terminal.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}";

/// Whether stdout and stderr hold no raw control but line breaks, and show the escape as text.
fn assert_escaped(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !bytes.contains(&ESC),
            "raw ESC on {name}: {}",
            text.escape_debug()
        );
        assert!(
            !text.chars().any(|c| c != '\n' && c.is_control()),
            "a raw control on {name}: {}",
            text.escape_debug()
        );
    }
    assert!(text(out).contains("\\u{1b}[2J"), "{}", text(out));
}

#[test]
fn an_escape_sequence_in_a_header_cell_reached_the_terminal_raw() {
    let w = Workdir::new();
    let mut csv = contacts_csv(0).trim_end().to_owned();
    csv.push_str(&format!(",note {HOSTILE}\n"));
    csv.push_str(&format!(
        "{CONTOSO},d0000001-0000-4000-8000-000000000011,{TREY_TENANT},4391507,Trey Research,x\n"
    ));
    let input = w.write("contacts.csv", csv);
    let out = pcbulk()
        .args(["apply", input.to_str().unwrap(), "--sandbox", "-v"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_escaped(&out);
}

#[test]
fn an_escape_sequence_in_a_file_name_reached_the_terminal_raw() {
    let w = Workdir::new();
    let input = w.write(&format!("contacts{HOSTILE}.csv"), contacts_csv(1));
    let out = pcbulk()
        .args(["validate", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_escaped(&out);
    // And in the message that says the file is missing.
    let out = pcbulk()
        .args([
            "validate",
            w.path(&format!("gone{HOSTILE}.csv")).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert_escaped(&out);
}
