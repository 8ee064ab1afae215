//! An apply's records and pcbulk's list of finished runs: the same content applied again to the same
//! target is refused however the file is named and wherever its results go, unless --force; plans,
//! sandbox runs and other targets are not; a list that is corrupt or a link breaks nothing. Each
//! test gives its commands one state folder (`PCBULK_STATE_DIR`) of its own.

use std::path::Path;
use std::process::Stdio;

use crate::common::*;

const SUB_11: &str = "d0000001-0000-4000-8000-000000000011";
const SUB_12: &str = "d0000001-0000-4000-8000-000000000012";

fn two_contacts() -> String {
    format!(
        "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
         {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n\
         {CONTOSO},{SUB_12},{TREY_TENANT},4391507,Trey Research\n"
    )
}

fn list_lines(w: &Workdir) -> Vec<String> {
    runs_list(w).lines().map(str::to_owned).collect()
}

/// The list's lines that record a finished run.
fn finished_lines(w: &Workdir) -> Vec<String> {
    list_lines(w)
        .into_iter()
        .filter(|l| l.contains("\"finished\""))
        .collect()
}

#[test]
fn a_copy_of_an_applied_file_is_refused_saying_when_what_and_where() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("monday.csv", two_contacts());
    // A plan first: plans are never recorded, so the apply after it is not refused.
    let plan = run(&sb, &w, "plan", &input, &[]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    assert!(list_lines(&w).is_empty(), "a plan is not a finished apply");
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_eq!(finished_lines(&w).len(), 1);

    let copy = w.write("copy of monday.csv", std::fs::read(&input).unwrap());
    let calls = sb.stats()["total"].clone();
    let again = run(&sb, &w, "apply", &copy, &[]);
    let said = text(&again);
    assert_eq!(code(&again), 2, "{said}");
    assert!(said.contains("was already applied to"), "{said}");
    assert!(
        said.contains("monday.csv"),
        "names the run it matches: {said}"
    );
    assert!(said.contains("2 succeeded"), "what it did: {said}");
    assert!(said.contains(" UTC"), "when it finished: {said}");
    let first_results = std::path::absolute(w.path("monday.results.csv")).unwrap();
    assert!(
        said.contains(&first_results.display().to_string()),
        "where its results are: {said}"
    );
    assert!(said.contains("--force"), "{said}");
    assert_eq!(sb.stats()["total"], calls, "nothing sent");
    assert!(!w.path("copy of monday.results.csv").exists());
    assert!(!w.path("copy of monday.results.csv.journal").exists());
}

#[test]
fn the_same_file_with_another_out_is_refused_and_force_runs_it_keeping_every_record() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let a = w.path("a.csv");
    let first = run(&sb, &w, "apply", &input, &["--out", a.to_str().unwrap()]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let a_before = std::fs::read(&a).unwrap();
    assert_eq!(puts(&sb), 2);

    let b = w.path("b.csv");
    let calls = sb.stats()["total"].clone();
    let again = run(&sb, &w, "apply", &input, &["--out", b.to_str().unwrap()]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(text(&again).contains("a.csv"), "{}", text(&again));
    assert_eq!(sb.stats()["total"], calls, "nothing sent");
    assert!(!b.exists());

    let forced = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", b.to_str().unwrap(), "--force"],
    );
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    assert_eq!(
        statuses(&b),
        ["unchanged", "unchanged"],
        "read, nothing to write"
    );
    assert_eq!(puts(&sb), 2, "no row written twice");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        a_before,
        "the first run's records"
    );
    assert!(w.path("a.csv.journal").exists());
    assert_eq!(finished_lines(&w).len(), 2, "both runs are listed");
}

#[test]
fn the_same_file_to_another_target_is_not_refused() {
    let sb = Sandbox::start(&[]);
    let other = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let first = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", w.path("x").to_str().unwrap()],
    );
    assert_eq!(code(&first), 0, "{}", text(&first));
    let second = run(
        &other,
        &w,
        "apply",
        &input,
        &["--out", w.path("y").to_str().unwrap()],
    );
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(puts(&other), 2, "applied to the other tenant");
    assert_eq!(
        other.subscription(SUB_11)["supportContact"]["supportTenantId"],
        TREY_TENANT
    );
}

/// A finished run an earlier pcbulk recorded (by the file's bytes, with no identity) still stands
/// against the same file; a line of garbage stops the run (exit 2) naming the line, never a panic,
/// nothing sent and the list left as it was.
#[test]
fn a_run_an_earlier_pcbulk_recorded_stands_and_garbage_stops_the_run() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(std::fs::read(&input).unwrap()))
    };
    let old = serde_json::json!({
        "input_sha256": sha, "target": sb.url, "input": "old.csv", "results": "/tmp/old.csv",
        "finished": "2026-01-01 00:00:00 UTC", "rows": {"succeeded": 2},
    })
    .to_string();
    std::fs::create_dir_all(w.state()).unwrap();
    std::fs::write(w.state().join("runs.jsonl"), format!("{old}\n")).unwrap();
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("already applied"), "{}", text(&out));

    let mut junk = format!("{old}\n").into_bytes();
    junk.extend(b"\xff\xfe\x00garbage\n");
    junk.extend(std::iter::repeat_n(b'{', 3 << 20));
    junk.push(b'\n');
    std::fs::write(w.state().join("runs.jsonl"), &junk).unwrap();
    let other = w.write("other.csv", two_contacts().replace("Trey Research", "Trey"));
    let out = run(&sb, &w, "apply", &other, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("line 2"), "{}", text(&out));
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert_eq!(std::fs::read(w.state().join("runs.jsonl")).unwrap(), junk);
}

/// A list that is a symbolic link is neither read nor written through: the run goes on with a
/// warning naming it, and the file the link points to keeps its bytes.
#[cfg(unix)]
#[test]
fn a_list_of_finished_runs_that_is_a_link_is_not_written_through() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let precious = w.write("precious.txt", "keep me\n");
    std::fs::create_dir_all(w.state()).unwrap();
    std::os::unix::fs::symlink(&precious, w.state().join("runs.jsonl")).unwrap();
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me\n");
}

/// Two applies of one file started together on one results file: whichever comes second is refused
/// (the first holds the results file, or has finished it), and every row is written once.
#[test]
fn two_applies_at_once_on_one_results_file_apply_each_row_once() {
    let sb = Sandbox::start(&["--latency-ms", "50", "--subscriptions", "20"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(20));
    let start = || {
        pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", &sb.url, "--rate", "1000"])
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .env("PCBULK_STATE_DIR", w.state())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (start(), start());
    let outs = [
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    ];
    let mut codes: Vec<i32> = outs.iter().map(code).collect();
    codes.sort();
    assert_eq!(codes, [0, 2], "{}\n{}", text(&outs[0]), text(&outs[1]));
    assert_eq!(puts(&sb), 20, "each row written once: {}", sb.stats());
    assert_eq!(statuses(&w.path("in.results.csv")), vec!["succeeded"; 20]);
}

/// The sandbox's URL with its loopback address written another way.
fn spelled(sb: &Sandbox, how: &str) -> String {
    let port = sb.url.rsplit(':').next().unwrap().trim_end_matches('/');
    how.replace("PORT", port)
}

/// Found by an outside tester: the list compared targets as strings, so `localhost` for
/// `127.0.0.1`, an upper-case scheme or a default port let the same file through to the same
/// service a second time.
#[test]
fn the_same_service_named_another_way_is_the_same_target() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let first = run_at(
        &spelled(&sb, "http://127.0.0.1:PORT"),
        &w,
        "apply",
        &input,
        &[],
    );
    assert_eq!(code(&first), 0, "{}", text(&first));
    let calls = sb.stats()["total"].clone();
    for (i, how) in [
        "http://localhost:PORT",
        "HTTP://127.0.0.1:PORT",
        "http://LOCALHOST:PORT/",
        "http://[::1]:PORT",
    ]
    .into_iter()
    .enumerate()
    {
        let out_path = w.path(&format!("again{i}.csv"));
        let again = run_at(
            &spelled(&sb, how),
            &w,
            "apply",
            &input,
            &["--out", out_path.to_str().unwrap()],
        );
        assert_eq!(code(&again), 2, "{how}: {}", text(&again));
        assert!(text(&again).contains("already applied"), "{}", text(&again));
        assert!(!out_path.exists(), "{how}");
    }
    assert_eq!(sb.stats()["total"], calls, "nothing sent");
}

fn spawn_apply(sb: &Sandbox, w: &Workdir, input: &Path, args: &[&str]) -> std::process::Child {
    pcbulk()
        .arg("apply")
        .arg(input)
        .args(["--base-url", &sb.url])
        .args(args)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Found by an outside tester: two applies of one file started together with different --out both
/// ran (every note added twice). The check and the started line are one step under the list's
/// lock: exactly one runs.
#[test]
fn two_applies_at_once_with_different_outs_run_only_one() {
    let sb = Sandbox::start(&["--latency-ms", "50", "--subscriptions", "20"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(20));
    let (a, b) = (w.path("a.csv"), w.path("b.csv"));
    let args = |out: &Path| ["--rate", "1000", "--out", out.to_str().unwrap()].map(str::to_owned);
    let (args_a, args_b) = (args(&a), args(&b));
    let (one, two) = (
        spawn_apply(&sb, &w, &input, &args_a.each_ref().map(String::as_str)),
        spawn_apply(&sb, &w, &input, &args_b.each_ref().map(String::as_str)),
    );
    let outs = [
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    ];
    let said = format!("{}\n{}", text(&outs[0]), text(&outs[1]));
    let mut codes: Vec<i32> = outs.iter().map(code).collect();
    codes.sort();
    assert_eq!(codes, [0, 2], "{said}");
    let refused = &outs[usize::from(code(&outs[0]) == 0)];
    assert!(
        text(refused).contains("has not finished") || text(refused).contains("already applied"),
        "{said}"
    );
    assert_eq!(puts(&sb), 20, "each row written once: {}", sb.stats());
    let ran = if code(&outs[0]) == 0 { &a } else { &b };
    let other = if code(&outs[0]) == 0 { &b } else { &a };
    assert_eq!(statuses(ran), vec!["succeeded"; 20]);
    assert!(!other.exists(), "the refused run wrote no results");
}

/// Found by an outside tester: after an interrupted run, the same file with another --out (no
/// --resume) ran again (every note sent so far added twice). It is refused, saying when the run
/// started, where its results are and the command that finishes it; that command does.
#[cfg(unix)]
#[test]
fn an_interrupted_apply_is_resumed_not_run_again_with_another_out() {
    let sb = Sandbox::start(&["--latency-ms", "200", "--subscriptions", "16"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(16));
    let a = w.path("a.csv");
    let child = spawn_apply(
        &sb,
        &w,
        &input,
        &[
            "--rate",
            "1000",
            "--concurrency",
            "1",
            "--out",
            a.to_str().unwrap(),
        ],
    );
    wait_for_sends(&w.path("a.csv.journal"), 2);
    signal(&child, "-INT");
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(code(&stopped), 3, "{}", text(&stopped));
    let applied = puts(&sb);
    assert!(
        applied > 0 && applied < 16,
        "{applied} rows before the interrupt"
    );

    let fresh = w.path("fresh.csv");
    let calls = sb.stats()["total"].clone();
    let again = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", fresh.to_str().unwrap()],
    );
    let said = text(&again);
    assert_eq!(code(&again), 2, "{said}");
    assert!(said.contains("has not finished"), "{said}");
    assert!(said.contains(" UTC"), "when it started: {said}");
    let a_abs = std::path::absolute(&a).unwrap().display().to_string();
    assert!(said.contains(&a_abs), "where its results are: {said}");
    assert!(said.contains("--force"), "{said}");
    assert_eq!(sb.stats()["total"], calls, "nothing sent");
    assert!(!fresh.exists());

    // The command the refusal gives, as a user would paste it into a shell.
    let resume = said
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("a command in backticks: {said}"));
    assert!(resume.contains("--resume"), "{resume}");
    let bin = Path::new(env!("CARGO_BIN_EXE_pcbulk")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let resumed = std::process::Command::new("sh")
        .args(["-c", resume])
        .env("PATH", path)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&resumed), 0, "{resume}: {}", text(&resumed));
    assert_eq!(puts(&sb), 16, "every row once: {}", sb.stats());
    assert_eq!(statuses(&a).len(), 16);
    for i in 0..16 {
        assert_eq!(
            sb.subscription(&extra_subscription(i))["supportContact"]["supportMpnId"],
            "4391507"
        );
    }
    // Finished now: refused as a finished run.
    let after = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", fresh.to_str().unwrap()],
    );
    assert_eq!(code(&after), 2, "{}", text(&after));
    assert!(text(&after).contains("already applied"), "{}", text(&after));
}

/// Found by an outside tester: with no HOME and no PCBULK_STATE_DIR / XDG_STATE_HOME, the list of
/// runs was skipped without a word. The run goes on, saying the guard is off and how to turn it on.
#[test]
fn with_no_state_folder_apply_says_the_guard_is_off() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env_remove("PCBULK_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env_remove("LOCALAPPDATA")
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(
        said.contains("WARN") && said.contains("no state folder"),
        "{said}"
    );
    assert!(said.contains("will not be refused"), "{said}");
    assert!(said.contains("Set PCBULK_STATE_DIR"), "{said}");
    // A plan has no guard to speak of.
    let plan = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env_remove("PCBULK_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env_remove("LOCALAPPDATA")
        .output()
        .unwrap();
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    assert!(!text(&plan).contains("no state folder"), "{}", text(&plan));
}

/// Found on Windows, which sets none of PCBULK_STATE_DIR, XDG_STATE_HOME and HOME: every apply
/// warned that the guard was off. Its per-user application data folder (LOCALAPPDATA) holds the list.
#[test]
fn without_home_the_list_of_runs_lives_in_localappdata() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let appdata = w.path("AppData/Local");
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env_remove("PCBULK_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env("LOCALAPPDATA", &appdata)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(!said.contains("no state folder"), "{said}");
    let list = std::fs::read_to_string(appdata.join("pcbulk").join("runs.jsonl")).unwrap();
    assert!(list.lines().count() >= 2, "started and finished: {list}");
}

/// Found by an outside tester: once a run's records were moved aside (a new run took its --out),
/// the refusal still named the old path, which held another run. It names where they are now.
#[test]
fn a_refusal_names_where_the_earlier_runs_records_were_moved_aside() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let monday = w.write("monday.csv", two_contacts());
    let shared = w.path("shared.csv");
    let first = run(
        &sb,
        &w,
        "apply",
        &monday,
        &["--out", shared.to_str().unwrap()],
    );
    assert_eq!(code(&first), 0, "{}", text(&first));
    // Another file, the same --out: monday's records are moved aside.
    let other = w.write(
        "tuesday.csv",
        "service_request_id,note\n616122292874576,a note\n",
    );
    let second = run(
        &sb,
        &w,
        "apply",
        &other,
        &["--out", shared.to_str().unwrap()],
    );
    assert_eq!(code(&second), 0, "{}", text(&second));
    let aside: Vec<_> = std::fs::read_dir(w.path(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("shared.") && name.ends_with("Z.csv")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let aside = std::path::absolute(&aside[0]).unwrap();
    assert_eq!(
        results(&aside).len(),
        2,
        "monday's two rows are in the moved-aside file"
    );

    let again = run(
        &sb,
        &w,
        "apply",
        &monday,
        &["--out", w.path("x.csv").to_str().unwrap()],
    );
    let said = text(&again);
    assert_eq!(code(&again), 2, "{said}");
    assert!(
        said.contains(&format!("its results: {}", aside.display())),
        "names where monday's records are: {said}"
    );
}

/// Found by an outside tester: the refusal over another input's unfinished run said to run "the
/// same command with --resume", which was then refused as another input.
#[test]
fn the_refusal_over_another_input_s_unfinished_run_says_how_to_get_past_it() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let notes = |word: &str| {
        let mut csv = String::from("service_request_id,note\n");
        for i in 0..10 {
            csv.push_str(&format!("616122292874576,{word} {i}\n"));
        }
        csv
    };
    let input = w.write("notes.csv", notes("first"));
    let killed = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url, "--yes"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .env("PCBULK_CRASH_AT", "after-journal-append:8")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", text(&killed));
    std::fs::write(&input, notes("second")).unwrap();
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("of another input") && said.contains("another --out"),
        "{said}"
    );
}
