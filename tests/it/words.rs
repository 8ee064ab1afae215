//! What pcbulk says: a plan's progress counts reads, a resume counts the rows left, a stopped run
//! says why once, and an input that is no file gets one clear message from every command.

use std::process::Stdio;

use crate::common::*;

/// Found by a new user: a plan (reads only) showed "4 succeeded" while it read rows.
#[test]
fn a_plan_s_progress_counts_planned_rows_not_succeeded_ones() {
    let sb = Sandbox::start(&["--latency-ms", "150", "--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(4));
    let out = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &sb.url, "--concurrency", "1", "--rate", "200"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_PROGRESS_EVERY_MS", "10")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("/4 rows (")).collect();
    assert!(!progress.is_empty(), "no progress line: {err}");
    for l in progress {
        assert!(l.contains(" planned · ") && !l.contains("succeeded"), "{l}");
    }
}

/// A run stopped by --max-errors, then resumed: the stop's reason is said once, and the resume's
/// banner counts the rows it has left, not all the file's rows.
#[test]
fn a_stopped_run_says_why_once_and_its_resume_counts_the_rows_left() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    // No such subscriptions in the demo tenant: every row fails.
    let input = w.write("in.csv", contacts_csv(6));
    let args = ["--max-errors", "2", "--concurrency", "1"];
    let out = run(&sb, &w, "apply", &input, &args);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let said = text(&out).matches("reaching --max-errors").count();
    assert_eq!(said, 1, "{}", text(&out));
    let finished = results(&w.path("in.results.csv"))
        .iter()
        .filter(|r| r["status"] != "skipped")
        .count();
    assert!((2..6).contains(&finished), "{finished}");

    let out = run(
        &sb,
        &w,
        "apply",
        &input,
        &[&args[..], &["--resume"]].concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let left = format!(
        "{} rows left to send ({finished} finished by the earlier run)",
        6 - finished
    );
    assert!(err.contains(&left), "{left}: {err}");
}

/// Found by a new user: `apply DIR` blamed reading twice and sent to validate, which said "Is a
/// directory (os error 21)"; `validate -` said "No such file".
#[test]
fn a_folder_or_standard_input_gets_one_clear_message_from_every_command() {
    let w = Workdir::new();
    let folder = w.path("rows");
    std::fs::create_dir(&folder).unwrap();
    w.write("rows/contacts.csv", contacts_csv(1));
    for cmd in ["apply", "plan", "validate"] {
        let mut c = pcbulk();
        c.arg(cmd).arg(&folder);
        if cmd != "validate" {
            c.arg("--sandbox");
        }
        let out = c.output().unwrap();
        assert_eq!(code(&out), 2, "{cmd}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "{} is a folder, not a file: give the path of a CSV or Excel (.xlsx) file (for \
             example {})",
            folder.display(),
            folder.join("contacts.csv").display()
        );
        assert!(err.contains(&want), "{cmd}: {err}");

        let mut c = pcbulk();
        c.arg(cmd).arg("-").stdin(Stdio::piped());
        if cmd != "validate" {
            c.arg("--sandbox");
        }
        let out = c.output().unwrap();
        assert_eq!(code(&out), 2, "{cmd} -: {}", text(&out));
        assert!(
            text(&out).contains("- is standard input, not a file"),
            "{cmd} -: {}",
            text(&out)
        );
    }
}
