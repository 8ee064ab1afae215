//! Hopeless runs (SPEC: Unattended runs): a file whose every row fails, such as another tenant's
//! ids, stops once its first 50 rows sent have all failed (exit 3, resumable, outcome
//! `max_errors`), naming what they share; an explicit `--max-errors` replaces the rule.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr};

use crate::common::*;
use serde_json::Value;

/// A customer the sandbox does not know: every call for it fails (403, code 20002).
const STRANGER: &str = "c0000099-0000-4000-8000-000000000099";

/// `n` support-contact rows for [`STRANGER`]'s subscriptions, numbered from `from`.
fn strangers_contacts(from: usize, n: usize) -> String {
    let mut csv =
        String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n");
    for i in from..from + n {
        csv.push_str(&format!(
            "{STRANGER},{},{TREY_TENANT},4391507,Trey Research\n",
            extra_subscription(i)
        ));
    }
    csv
}

/// Applies `input` with `extra` and a summary JSON, returning the output and the summary.
fn apply(sb: &Sandbox, w: &Workdir, input: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let json = w.path("run.json");
    let _ = std::fs::remove_file(&json);
    let mut args = vec!["--summary-json", json.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = sb.apply(input, &args);
    let summary = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (out, summary)
}

fn count(statuses: &[String], status: &str) -> usize {
    statuses.iter().filter(|s| *s == status).count()
}

#[test]
fn a_file_whose_first_fifty_rows_all_fail_stops_naming_the_customer_they_share() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("others.csv", strangers_contacts(0, 60));

    let (out, json) = apply(&sb, &w, &input, &["--concurrency", "1"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(json["outcome"], "max_errors", "{json}");
    let aborted = json["aborted"].as_str().unwrap_or_default();
    assert!(
        aborted.contains(&format!("all for customer {STRANGER}")),
        "{aborted}"
    );
    assert!(aborted.contains("all with error code 20002"), "{aborted}");
    assert!(json["resume_command"].is_string(), "resumable: {json}");

    let first = statuses(&w.path("others.results.csv"));
    assert_eq!(first.len(), 60, "one outcome per row: {first:?}");
    let (failed, skipped) = (count(&first, "failed"), count(&first, "skipped"));
    assert!(failed >= 50 && skipped >= 1, "{first:?}");
    assert_eq!(failed + skipped, 60, "{first:?}");

    // The run is resumable: with --max-errors the rest are sent too, and the earlier rows not again.
    let (out, json) = apply(&sb, &w, &input, &["--resume", "--max-errors", "100%"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(json["outcome"], "completed_with_errors", "{json}");
    let statuses = statuses(&w.path("others.results.csv"));
    assert_eq!(count(&statuses, "failed"), 60, "{statuses:?}");
}

#[test]
fn an_explicit_max_errors_replaces_the_rule_of_the_first_fifty_rows() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("others.csv", strangers_contacts(0, 60));

    let (out, json) = apply(&sb, &w, &input, &["--max-errors", "100%"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(json["outcome"], "completed_with_errors", "{json}");
    assert!(json["aborted"].is_null(), "{json}");
    let statuses = statuses(&w.path("others.results.csv"));
    assert_eq!(count(&statuses, "failed"), 60, "{statuses:?}");
}

#[test]
fn a_row_that_succeeds_among_the_first_fifty_keeps_a_failing_run_going() {
    let sb = Sandbox::start(&["--subscriptions", "1"]);
    let w = Workdir::new();
    let mut csv = contacts_csv(1);
    csv.push_str(strangers_contacts(1, 59).split_once('\n').unwrap().1);
    let input = w.write("mixed.csv", csv);

    let (out, json) = apply(&sb, &w, &input, &["--concurrency", "1"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(json["outcome"], "completed_with_errors", "{json}");
    let statuses = statuses(&w.path("mixed.results.csv"));
    assert_eq!(count(&statuses, "failed"), 59, "{statuses:?}");
    assert_eq!(count(&statuses, "succeeded"), 1, "{statuses:?}");
}

/// `pcbulk apply` of `rows` Contoso support-contact rows against a sandbox answering after
/// 150 ms, stderr piped (off a terminal), progress lines every 100 ms.
fn piped_run(rows: usize, extra: &[&str]) -> (Child, BufReader<ChildStderr>, Sandbox, Workdir) {
    let sb = Sandbox::start(&["--latency-ms", "150", "--subscriptions", &rows.to_string()]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(rows));
    let mut child = spawn_with_progress(&sb, &input, extra);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, stderr, sb, w)
}

#[test]
fn progress_lines_off_a_terminal_carry_an_eta() {
    let (mut child, stderr, _sb, _w) = piped_run(8, &[]);
    let lines: Vec<String> = stderr.lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{lines:?}");
    let progress: Vec<&String> = lines.iter().filter(|l| l.contains("/8 rows (")).collect();
    assert!(
        progress.iter().any(|l| l.contains(" · ETA ")),
        "once a row is done, a line says how long the rest take: {lines:?}"
    );
}

#[test]
fn a_run_over_ten_minutes_at_its_rate_says_so_in_the_banner() {
    let (mut child, stderr, _sb, _w) = piped_run(40, &["--rate", "0.1"]);
    let line = stderr
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("this takes about"))
        .expect("an estimate before the first row");
    // Seen: the run is not needed any further.
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("at --rate 0.1 (2 calls a row)"), "{line}");
    assert!(
        line.contains("about 13 min") && line.contains("raise --rate"),
        "{line}"
    );
}
