//! An apply's records and pcbulk's list of finished runs: the same content applied again to the same
//! target is refused however the file is named and wherever its results go, unless --force; plans,
//! sandbox runs and other targets are not; a list that is corrupt or a link breaks nothing. Each
//! test gives its commands one state folder (`PCBULK_STATE_DIR`) of its own.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::*;

const SUB_11: &str = "d0000001-0000-4000-8000-000000000011";
const SUB_12: &str = "d0000001-0000-4000-8000-000000000012";

fn two_contacts() -> String {
    format!(
        "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
         {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n\
         {CONTOSO},{SUB_12},{TREY_TENANT},4391507,Trey Research\n"
    )
}

/// `pcbulk <cmd> INPUT --base-url <sandbox> ARGS` with the work dir's state folder.
fn run(sb: &Sandbox, w: &Workdir, cmd: &str, input: &Path, args: &[&str]) -> Output {
    pcbulk()
        .arg(cmd)
        .arg(input)
        .args(["--base-url", &sb.url, "--rate", "200"])
        .args(args)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .output()
        .expect("run pcbulk")
}

fn list_lines(w: &Workdir) -> Vec<String> {
    String::from_utf8_lossy(&std::fs::read(w.state().join("runs.jsonl")).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect()
}

fn puts(sb: &Sandbox) -> u64 {
    sb.stats()["calls"]["PUT supportcontact 200"]
        .as_u64()
        .unwrap_or(0)
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
    assert_eq!(list_lines(&w).len(), 1);

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
    assert_eq!(list_lines(&w).len(), 2, "both runs are listed");
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

/// A list of finished runs full of garbage (binary bytes, a line of megabytes, a torn line, lines
/// with a field of the wrong type or an escape code, all for this very file and target) is read
/// without a panic, refuses nothing, and still records the run, whose next apply is refused.
#[test]
fn a_corrupt_list_of_finished_runs_does_not_break_apply() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", two_contacts());
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(std::fs::read(&input).unwrap()))
    };
    let line = |results: &str| {
        serde_json::json!({
            "input_sha256": sha, "target": sb.url, "input": "old.csv", "results": results,
            "finished": "2026-01-01 00:00:00 UTC", "rows": {"succeeded": 2},
        })
        .to_string()
    };
    let mut junk = b"\xff\xfe\x00garbage\n".to_vec();
    junk.extend(std::iter::repeat_n(b'{', 3 << 20));
    junk.push(b'\n');
    junk.extend(line("/tmp/\u{1b}]0;owned\u{7}x.csv").into_bytes());
    junk.push(b'\n');
    junk.extend(
        line("/tmp/r.csv")
            .replace("\"rows\":{\"succeeded\":2}", "\"rows\":[1]")
            .into_bytes(),
    );
    junk.push(b'\n');
    junk.extend(
        line("/tmp/r.csv")
            .replace(&sha, &"g".repeat(64))
            .into_bytes(),
    );
    junk.push(b'\n');
    let torn = line("/tmp/torn.csv");
    junk.extend(&torn.as_bytes()[..torn.len() - 5]);
    std::fs::create_dir_all(w.state()).unwrap();
    std::fs::write(w.state().join("runs.jsonl"), &junk).unwrap();

    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(puts(&sb), 2);
    // The garbage lines named this very content and target: they were ignored, not missed.
    let recorded = list_lines(&w).pop().unwrap();
    assert!(
        recorded.contains(&sha) && recorded.contains(&sb.url),
        "{recorded}"
    );
    let out = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", w.path("again.csv").to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "the run was recorded: {}", text(&out));
    assert!(!text(&out).contains('\u{1b}'), "{}", text(&out));
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
