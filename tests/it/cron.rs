//! Unattended runs (SPEC: Resume): one `--resume --yes` line, run by cron whatever state the job is
//! in, starts the run, continues it or reports it already finished, and says which in the summary
//! JSON's `outcome`; a run in which nothing succeeded never blocks the next attempt.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value;

const SRS: [&str; 4] = [
    "616122292874576",
    "616122292874577",
    "616122292874578",
    "616122292874579",
];
/// A service request the sandbox does not have: a note to it fails (404).
const NO_SUCH_SR: &str = "616122299999999";

/// A month's notes, `n` of them, spread over the sandbox's service requests.
fn notes(month: &str, n: usize) -> String {
    let mut csv = String::from("service_request_id,note\n");
    for i in 0..n {
        csv.push_str(&format!("{},{month} note {i}\n", SRS[i % SRS.len()]));
    }
    csv
}

/// Notes to service requests that do not exist: every row fails.
fn hopeless(n: usize) -> String {
    let mut csv = String::from("service_request_id,note\n");
    for i in 0..n {
        csv.push_str(&format!("{NO_SUCH_SR},lost note {i}\n"));
    }
    csv
}

/// The cron line: `pcbulk apply FILE --resume --yes --summary-json run.json`, plus `extra`.
fn cron_line(
    sb: &Sandbox,
    w: &Workdir,
    input: &Path,
    extra: &[&str],
) -> (std::process::Output, Value) {
    let json = w.path("run.json");
    let _ = std::fs::remove_file(&json);
    let mut args = vec![
        "--resume",
        "--yes",
        "--summary-json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run(sb, w, "apply", input, &args);
    let summary = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (out, summary)
}

fn calls(sb: &Sandbox) -> Value {
    sb.stats()["total"].clone()
}

/// Files beside `w`'s results path that an earlier run's records were moved aside to.
fn moved_aside(w: &Workdir, stem: &str) -> Vec<PathBuf> {
    std::fs::read_dir(w.path(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&format!("{stem}.")) && name.ends_with("Z.csv")
        })
        .collect()
}

#[test]
fn one_resume_line_starts_a_run_continues_it_after_a_kill_and_then_reports_it_already_finished() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("notes.csv", notes("march", 8));

    // No journal yet: the line starts the run.
    let (first, json) = cron_line(&sb, &w, &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_eq!(json["outcome"], "completed", "{json}");
    // Found by an outside tester: the banner spoke of an earlier run that did not exist.
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains("pcbulk: apply ") && said.contains("8 rows to send"),
        "{said}"
    );
    assert!(!said.contains("earlier run"), "{said}");

    // Next month's file in the same place: March's finished records are moved aside, and the run
    // is killed midway.
    std::fs::write(&input, notes("april", 8)).unwrap();
    let (killed, _) = cron_line_crashing(&sb, &w, &input);
    assert!(!killed.status.success(), "{}", text(&killed));
    assert_eq!(
        moved_aside(&w, "notes.results").len(),
        1,
        "March's records kept"
    );
    let april = sb
        .note_counts()
        .keys()
        .filter(|k| k.starts_with("april"))
        .count();
    assert!(april < 8, "killed midway: {april} April notes");

    let (second, json) = cron_line(&sb, &w, &input, &[]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(json["outcome"], "completed", "{json}");
    assert_eq!(statuses(&w.path("notes.results.csv")), vec!["succeeded"; 8]);

    let before = calls(&sb);
    let (third, json) = cron_line(&sb, &w, &input, &[]);
    let said = text(&third);
    assert_eq!(code(&third), 0, "{said}");
    assert_eq!(json["outcome"], "already_finished", "{json}");
    assert_eq!(json["exit_code"], 0, "{json}");
    assert!(said.contains("already applied"), "says so: {said}");
    assert!(said.contains("Nothing was sent"), "{said}");
    assert!(
        !said.contains("to send"),
        "no banner of rows to send: {said}"
    );
    assert_eq!(calls(&sb), before, "nothing sent");
    assert_eq!(statuses(&w.path("notes.results.csv")), vec!["succeeded"; 8]);

    let counts = sb.note_counts();
    for month in ["march", "april"] {
        for i in 0..8 {
            let note = format!("{month} note {i}");
            assert_eq!(counts.get(&note), Some(&1), "{note} once in {counts:?}");
        }
    }
}

/// The cron line, its process aborted (as a power cut would) after a few journal records.
fn cron_line_crashing(sb: &Sandbox, w: &Workdir, input: &Path) -> (std::process::Output, ()) {
    let out = pcbulk()
        .arg("apply")
        .arg(input)
        .args(["--base-url", &sb.url, "--rate", "200", "--timeout", "1"])
        .args(["--resume", "--yes"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .env("PCBULK_CRASH_AT", "after-journal-append:8")
        .output()
        .unwrap();
    (out, ())
}

#[test]
fn a_copy_of_a_finished_input_resumed_with_another_out_sends_nothing_and_exits_0() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("notes.csv", notes("may", 4));
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));

    let copy = w.write("copy.csv", notes("may", 4));
    let other = w.path("other.csv");
    let before = calls(&sb);
    let (again, json) = cron_line(&sb, &w, &copy, &["--out", other.to_str().unwrap()]);
    let said = text(&again);
    assert_eq!(code(&again), 0, "{said}");
    assert_eq!(json["outcome"], "already_finished", "{json}");
    let first_results = std::path::absolute(w.path("notes.results.csv")).unwrap();
    assert!(
        said.contains(&first_results.display().to_string()),
        "names where its results are: {said}"
    );
    assert_eq!(calls(&sb), before, "nothing sent");
    assert!(!other.exists(), "nothing written");
    assert!(!w.path("other.csv.journal").exists());
}

#[test]
fn a_resume_refuses_an_unfinished_run_of_another_input_and_records_nothing() {
    let sb = Sandbox::start(&["--latency-ms", "50"]);
    let w = Workdir::new();
    let input = w.write("notes.csv", notes("june", 8));
    let (killed, _) = cron_line_crashing(&sb, &w, &input);
    assert!(!killed.status.success(), "{}", text(&killed));
    let journal = w.path("notes.results.csv.journal");
    let journal_before = std::fs::read(&journal).unwrap();
    let list_before = runs_list(&w);

    std::fs::write(&input, notes("july", 8)).unwrap();
    let before = calls(&sb);
    let (refused, json) = cron_line(&sb, &w, &input, &[]);
    let said = text(&refused);
    assert_eq!(code(&refused), 2, "{said}");
    assert_eq!(json["outcome"], "refused", "{json}");
    assert!(said.contains("unfinished run of another input"), "{said}");
    assert_eq!(calls(&sb), before, "nothing sent");
    assert_eq!(std::fs::read(&journal).unwrap(), journal_before);
    assert_eq!(runs_list(&w), list_before, "nothing recorded");
    assert!(moved_aside(&w, "notes.results").is_empty());
}

#[test]
fn a_run_in_which_every_row_failed_can_be_run_again_without_force() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("lost.csv", hopeless(3));
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 1, "{}", text(&first));
    assert_eq!(statuses(&w.path("lost.results.csv")), vec!["failed"; 3]);

    let elsewhere = w.path("elsewhere.csv");
    for out in [None, Some(elsewhere.to_str().unwrap())] {
        let before = calls(&sb);
        let args: Vec<&str> = match out {
            Some(o) => vec!["--out", o],
            None => vec![],
        };
        let again = run(&sb, &w, "apply", &input, &args);
        let said = text(&again);
        assert_eq!(code(&again), 1, "{out:?}: tried again, not refused: {said}");
        assert!(!said.contains("--force"), "{said}");
        assert_ne!(calls(&sb), before, "{out:?}: sent again");
    }
    assert_eq!(
        moved_aside(&w, "lost.results").len(),
        1,
        "the first records kept"
    );
}

#[test]
fn retry_failed_is_never_refused_as_already_applied() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "mixed.csv",
        format!(
            "service_request_id,note\n{},kept note\n{NO_SUCH_SR},lost note\n",
            SRS[0]
        ),
    );
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 1, "{}", text(&first));

    // Where the run's records are: the failed row is tried again, the other is not.
    let before = calls(&sb);
    let retry = run(&sb, &w, "apply", &input, &["--retry-failed"]);
    let said = text(&retry);
    assert_eq!(code(&retry), 1, "{said}");
    assert!(!said.contains("already applied"), "{said}");
    assert_ne!(calls(&sb), before, "the failed row was tried again");
    assert_eq!(sb.note_counts().get("kept note"), Some(&1));

    // With another --out there is nothing to retry there: it says where the run's records are.
    let copy = w.write("copy.csv", std::fs::read(&input).unwrap());
    let before = calls(&sb);
    let x = w.path("x.csv");
    let elsewhere = run(
        &sb,
        &w,
        "apply",
        &copy,
        &["--retry-failed", "--out", x.to_str().unwrap()],
    );
    let said = text(&elsewhere);
    assert_eq!(code(&elsewhere), 0, "{said}");
    assert!(said.contains("--retry-failed"), "says how: {said}");
    assert!(said.contains("mixed.results.csv"), "{said}");
    assert_eq!(calls(&sb), before, "nothing sent twice");
    assert_eq!(sb.note_counts().get("kept note"), Some(&1));
}

/// A run killed after its journal's end but before the list of runs learned it finished, its
/// records then moved aside by another input's run at the same path, was applied a second time by
/// `--resume` (found by tests/seams.rs).
#[test]
fn a_run_killed_after_its_journal_ended_is_not_applied_again_once_its_records_are_moved_aside() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let out = w.path("shared.csv");
    let out_arg = ["--out", out.to_str().unwrap()];
    // How many records a whole run of it writes, the last being its end.
    let probe = Workdir::new();
    let probe_in = probe.write("a.csv", notes("probe", 4));
    assert_eq!(code(&run(&sb, &probe, "apply", &probe_in, &[])), 0);
    let records = std::fs::read_to_string(probe.path("a.results.csv.journal"))
        .unwrap()
        .lines()
        .count();

    let a = w.write("a.csv", notes("august", 4));
    let killed = pcbulk()
        .arg("apply")
        .arg(&a)
        .args(["--base-url", &sb.url, "--rate", "200", "--timeout", "1"])
        .args(out_arg)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .env("PCBULK_CRASH_AT", format!("after-journal-append:{records}"))
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", text(&killed));
    let b = w.write("b.csv", notes("september", 4));
    let (other, json) = cron_line(&sb, &w, &b, &out_arg);
    assert_eq!(json["outcome"], "completed", "{}", text(&other));

    let (again, json) = cron_line(&sb, &w, &a, &out_arg);
    assert_eq!(json["outcome"], "already_finished", "{}", text(&again));
    let counts = sb.note_counts();
    for i in 0..4 {
        let note = format!("august note {i}");
        assert_eq!(counts.get(&note), Some(&1), "{note} once in {counts:?}");
    }
}
