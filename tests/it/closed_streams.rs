//! A run whose stdout or stderr is closed (`pcbulk apply ... | head -1`, a dead logger, a `tee`
//! killed by Ctrl-C) finishes as if it were open: its exit code, results, summary JSON and report
//! are what they would have been. The real binary against `--sandbox`, with the reading end of a
//! stream closed before pcbulk writes anything to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/support-contacts.csv");

/// The sample's data rows, counted with the csv crate.
fn sample_rows() -> usize {
    csv::Reader::from_path(SAMPLE).unwrap().records().count()
}

/// The sample copied into `w`, and an apply of it to the sandbox that writes a summary JSON and a
/// report there, progress lines and row logs included, with `extra` flags.
fn apply_sample(w: &Workdir, extra: &[&str]) -> (PathBuf, Command) {
    let input = w.write("contacts.csv", std::fs::read(SAMPLE).unwrap());
    let mut cmd = pcbulk();
    cmd.args(["apply", input.to_str().unwrap(), "--sandbox", "-v"])
        .args(["--report", w.path("report.html").to_str().unwrap()])
        .args(extra)
        .env("PCBULK_PROGRESS_EVERY_MS", "10");
    (input, cmd)
}

/// Which of a child's streams is closed before it writes anything.
#[derive(Clone, Copy, PartialEq)]
enum Closed {
    Stdout,
    Stderr,
    Both,
}

/// `cmd` run with its stdout and stderr piped and the `closed` ones closed at once: its exit code
/// and what the open streams said, read to their end.
fn run_closed(cmd: &mut Command, closed: Closed) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if closed != Closed::Stderr {
        drop(child.stdout.take());
    }
    if closed != Closed::Stdout {
        drop(child.stderr.take());
    }
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status
            .code()
            .unwrap_or_else(|| panic!("ended by a signal: {said}")),
        said,
    )
}

/// What the run leaves on disk: one result per row, a summary JSON that parses, a report.
fn assert_records(w: &Workdir, input: &Path, summary: Option<&Path>) {
    let rows = results(&input.with_file_name("contacts.results.csv"));
    assert_eq!(rows.len(), sample_rows());
    assert!(rows.iter().all(|r| !r["status"].is_empty()));
    if let Some(path) = summary {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("the summary JSON is written"))
                .expect("the summary JSON parses");
        assert_eq!(doc["exit_code"], 1);
        let counted: u64 = doc["rows"]
            .as_object()
            .expect("rows by status")
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(counted, sample_rows() as u64);
    }
    let report = std::fs::read_to_string(w.path("report.html")).expect("the report is written");
    assert!(report.contains("</html>"));
}

/// The sample applied with a summary JSON written to a file and `closed` streams closed ends as
/// it would with them open (exit 1, every record written); what the open streams said.
fn finishes_with(closed: Closed) -> String {
    let w = Workdir::new();
    let summary = w.path("summary.json");
    let (input, mut cmd) = apply_sample(&w, &["--summary-json", summary.to_str().unwrap()]);
    let (code, said) = run_closed(&mut cmd, closed);
    assert_eq!(code, 1, "{said}");
    assert_records(&w, &input, Some(&summary));
    said
}

#[test]
fn a_closed_stdout_panicked_with_exit_101_and_lost_the_summary() {
    let said = finishes_with(Closed::Stdout);
    assert!(said.contains("report: "), "{said}");
}

#[test]
fn a_closed_stderr_panicked_with_exit_101_at_the_first_line_it_said() {
    let said = finishes_with(Closed::Stderr);
    // The text summary still reaches the stream that is open.
    assert!(said.contains("results: "), "{said}");
}

#[test]
fn a_summary_json_to_a_closed_stdout_is_said_lost_and_the_run_ends_as_it_would() {
    let w = Workdir::new();
    let (input, mut cmd) = apply_sample(&w, &["--summary-json", "-"]);
    let (code, said) = run_closed(&mut cmd, Closed::Stdout);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("cannot write the summary JSON"), "{said}");
    assert_records(&w, &input, None);
}

#[test]
fn both_streams_closed_the_run_still_finishes() {
    finishes_with(Closed::Both);
}

#[test]
fn completions_to_a_closed_stdout_panicked() {
    let (code, said) = run_closed(pcbulk().args(["completions", "bash"]), Closed::Stdout);
    assert_ne!(code, 101, "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
