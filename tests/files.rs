//! Files are what they seem: the results, the journal, the undo file and the token cache are never
//! written through a symbolic link, into another name of the input or of another file, or into a
//! device; a refusal comes before anything is sent, and every error names the OS error once.
#![cfg(unix)]

mod common;

use common::*;
use std::path::Path;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn validate(input: &Path, out: &Path) -> Output {
    pcbulk()
        .arg("validate")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn an_error_line_names_the_os_error_once() {
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    let once = |out: &Output| {
        assert_eq!(code(out), 2, "{}", text(out));
        let err = stderr(out);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("pcbulk:")).collect();
        assert_eq!(lines.len(), 1, "one message: {err}");
        assert_eq!(lines[0].matches("(os error").count(), 1, "{err}");
    };
    // The results in a folder that does not exist.
    let missing = w.path("no-such-folder/out.csv");
    once(&validate(&input, &missing));
    once(
        &pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", "http://127.0.0.1:9", "--out"])
            .arg(&missing)
            .env("PCBULK_ACCESS_TOKEN", "x")
            .output()
            .unwrap(),
    );
    // undo with a journal but no results file beside it.
    w.write("gone.csv.journal", "");
    once(
        &pcbulk()
            .arg("undo")
            .arg(w.path("gone.csv"))
            .output()
            .unwrap(),
    );
}
