//! Ctrl-C before anything is sent: while the file is checked, or at the production prompt. The run
//! ends with exit 2 and outcome `interrupted`, nothing sent, nothing recorded, and no scratch file
//! left beside the results (a million rows' duplicate index is 130 MB of them).

#![cfg(unix)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::*;

/// The hidden files beside `dir`'s results (scratch files start with a dot).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Waits until a hidden scratch file stands in `dir` (the checking pass has begun).
fn wait_for_scratch(dir: &Path, child: &mut Child) {
    loop {
        if hidden(dir).iter().any(|n| n.ends_with(".keys")) {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the check ended before it was seen"
        );
        std::thread::yield_now();
    }
}

/// The run ended as an interrupted one before sending: exit 2, said so, no scratch file left, and
/// its JSON summary's outcome `interrupted`.
fn ended_interrupted(child: Child, w: &Workdir, json: &Path) {
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        hidden(&w.path("")),
        Vec::<String>::new(),
        "scratch files left"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json).expect("summary written")).unwrap();
    assert_eq!(s["exit_code"], 2);
    assert_eq!(s["outcome"], "interrupted", "{s}");
}

#[test]
fn ctrl_c_while_validate_checks_ended_by_the_signal_and_left_scratch_files() {
    let w = Workdir::new();
    let fifo = w.path("in.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = w.path("out.csv");
    let json = w.path("summary.json");
    let mut child = pcbulk()
        .arg("validate")
        .arg(&fifo)
        .arg("--out")
        .arg(&out)
        .arg("--summary-json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The header and a first batch; the pass waits for more while its scratch files stand.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let rows = contacts_csv(20_000);
    writer.write_all(rows.as_bytes()).unwrap();
    wait_for_scratch(w.path("").as_path(), &mut child);
    signal(&child, "-INT");
    // More rows: the pass reads on to its next batch, where it looks.
    let more = contacts_csv(40_000);
    let _ = writer.write_all(more.split_once('\n').unwrap().1.as_bytes());
    drop(writer);
    ended_interrupted(child, &w, &json);
    assert!(!out.exists(), "no results file from an interrupted check");
}

#[test]
fn ctrl_c_while_apply_checks_sent_nothing_and_recorded_nothing() {
    let sb = Sandbox::start(&["--subscriptions", "300"]);
    let w = Workdir::new();
    let input = w.path("in.csv");
    // A big file: rows past the first 300 repeat targets (duplicates), all checked.
    let mut big = contacts_csv(300);
    let body: String = big.split_once('\n').unwrap().1.to_owned();
    for _ in 0..300 {
        big.push_str(&body);
    }
    std::fs::write(&input, big).unwrap();
    let json = w.path("summary.json");
    let mut child = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .arg("--summary-json")
        .arg(&json)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_scratch(w.path("").as_path(), &mut child);
    signal(&child, "-INT");
    ended_interrupted(child, &w, &json);
    assert_eq!(sb.stats()["total"], 0, "nothing was sent: {}", sb.stats());
    assert!(!w.path("in.results.csv.journal").exists(), "no journal");

    // Nothing recorded: the same command runs (it is not "unfinished" nor "already applied").
    let again = sb.apply(&input, &["--max-errors", "100%"]);
    assert!(matches!(code(&again), 0 | 1), "{}", text(&again));
}
