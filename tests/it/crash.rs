//! Crash safety: runs killed at random moments (SIGKILL) and at crash points, then resumed, against a
//! sandbox with latency, throttling and dropped responses. The sandbox's own state must show every row
//! applied exactly once; the results file must have one line per row; undo must put the tenant back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;

const SRS: [&str; 4] = [
    "616122292874576",
    "616122292874577",
    "616122292874578",
    "616122292874579",
];
const NOTES: usize = 24;
const CONTACTS: usize = 16;
const BILLING: usize = 6;
const ROWS: usize = NOTES + CONTACTS + BILLING;

fn mixed_input() -> String {
    let mut csv = String::from(
        "operation,service_request_id,note,customer_id,subscription_id,support_tenant_id,support_mpn_id,name,company_name\n",
    );
    for i in 0..NOTES {
        csv.push_str(&format!(
            "service-request,{},crash note {i},,,,,,\n",
            SRS[i % 4]
        ));
    }
    for i in 0..CONTACTS {
        csv.push_str(&format!(
            "support-contact,,,{CONTOSO},d1000000-0000-4000-8000-{i:012x},{TREY_TENANT},4391507,Trey Research,\n"
        ));
    }
    for i in 0..BILLING {
        csv.push_str(&format!(
            "billing-profile,,,c1000000-0000-4000-8000-{i:012x},,,,,Renamed {i}\n"
        ));
    }
    csv
}

const FAULTY: &[&str] = &[
    "--latency-ms",
    "10-60",
    "--rate",
    "40",
    "--burst",
    "5",
    "--drop-before",
    "0.05",
    "--drop-after",
    "0.08",
    "--subscriptions",
    "16",
    "--customers",
    "6",
];

fn apply_cmd(sb: &Sandbox, input: &Path, resume: bool) -> Command {
    let mut c = pcbulk();
    c.arg("apply")
        .arg(input)
        .args(["--base-url", &sb.url, "--rate", "100", "--concurrency", "4"])
        // Short, so that a note whose outcome a kill left unknown is looked for within seconds.
        .args(["--timeout", "1"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

/// Records in a journal (one a line); none when it is not there.
fn journal_records(journal: &Path) -> usize {
    std::fs::read(journal).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// Runs, killing the process with SIGKILL once its journal holds `records` more records than when
/// it started (the sign that it got that far), if it is still going then; `None` lets it finish.
/// Returns its output, or `None` if it was killed.
fn run_killed_at(mut cmd: Command, journal: &Path, records: Option<usize>) -> Option<Output> {
    let Some(records) = records else {
        return Some(cmd.output().unwrap());
    };
    let target = journal_records(journal) + records;
    let mut child = cmd.spawn().unwrap();
    let mut seen_len = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        // Counted again only when the journal has grown.
        let len = std::fs::metadata(journal).map(|m| m.len()).ok();
        if len != seen_len {
            seen_len = len;
            if journal_records(journal) >= target {
                break;
            }
        }
        std::thread::yield_now();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    None
}

/// Every row applied exactly once, from the sandbox's own state.
fn assert_exactly_once(sb: &Sandbox, results_path: &Path, context: &str) {
    let state = sb.state();
    let notes = sb.note_counts();
    for i in 0..NOTES {
        assert_eq!(
            notes.get(&format!("crash note {i}")),
            Some(&1),
            "{context}: note {i} in {notes:?}"
        );
    }
    let changes: Vec<&str> = state["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for i in 0..CONTACTS {
        let sub = format!("d1000000-0000-4000-8000-{i:012x}");
        assert_eq!(
            changes.iter().filter(|c| c.contains(&sub)).count(),
            1,
            "{context}: {sub} changed once"
        );
        assert_eq!(
            sb.subscription(&sub)["supportContact"]["supportMpnId"],
            "4391507"
        );
    }
    for i in 0..BILLING {
        let c = format!("c1000000-0000-4000-8000-{i:012x}");
        let b = sb.customer(&c)["billingProfile"].clone();
        assert_eq!(
            b["companyName"],
            format!("Renamed {i}").as_str(),
            "{context}"
        );
        assert_eq!(
            b["defaultAddress"]["addressLine3"], "Suite 1",
            "{context}: other fields kept"
        );
        let etag = b["attributes"]["etag"].as_str().unwrap();
        assert!(
            etag.ends_with("-000002"),
            "{context}: {c} written exactly once ({etag})"
        );
    }
    let rows = results(results_path);
    assert_eq!(rows.len(), ROWS, "{context}: one line per row");
    let row_numbers: Vec<String> = rows.iter().map(|r| r["row"].clone()).collect();
    let want: Vec<String> = (1..=ROWS).map(|r| r.to_string()).collect();
    assert_eq!(row_numbers, want, "{context}: in input order");
    assert!(
        rows.iter().all(|r| r["status"] == "succeeded"),
        "{context}: {rows:?}"
    );
}

/// The sandbox's switches for trial `trial`, in turn: a service that replays a repeated
/// MS-RequestId; one that does not; one that applies each write 300 ms after it arrives, whether
/// or not its client is still there (a kill leaves writes that land while the resume looks); one
/// whose gateway answers a tenth of the writes it applied with a 5xx and an HTML page; and one that
/// serves each support-profile path for one method only, with some 429s lacking Retry-After.
/// Quoted If-Match, token kinds and full bodies are checked in every one (the sandbox's defaults).
fn mode(trial: usize) -> &'static [&'static str] {
    const MODES: [&[&str]; 5] = [
        &[],
        &["--no-replay"],
        &["--late-writes", "300"],
        &["--applied-5xx", "0.1", "--gateway-bodies"],
        &[
            "--strict-paths",
            "--no-replay",
            "--429-without-retry-after",
            "0.5",
        ],
    ];
    MODES[trial % MODES.len()]
}

/// Runs `trial` for each of `0..n` at once, each on its own thread (each trial has its own sandbox
/// and folder; most of a trial's time is spent waiting for looks), and gives back what each
/// returned, in order. A trial's failure fails the test with its own message.
fn trials<T: Send>(n: usize, trial: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let trial = &trial;
        let running: Vec<_> = (0..n).map(|t| s.spawn(move || trial(t))).collect();
        running
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// One trial of [`killed_at_random_moments_and_resumed_every_row_is_applied_exactly_once`]: a few
/// kills at random points (after a random number of journal records), then the run is let finish.
/// Returns how many times the run was killed.
fn killed_and_resumed(trial: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(20261122 + trial as u64);
    let sb = Sandbox::start(&[FAULTY, &["--seed", &trial.to_string()], mode(trial)].concat());
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_input());
    let mut resume = false;
    let mut kills = 0;
    let final_out = loop {
        let at = (kills < 3).then(|| rng.random_range(2..100));
        let journal = w.path("in.results.csv.journal");
        match run_killed_at(apply_cmd(&sb, &input, resume), &journal, at) {
            Some(out) => break out,
            None => {
                kills += 1;
                resume = true;
            }
        }
    };
    assert_eq!(
        code(&final_out),
        0,
        "trial {trial} after {kills} kills: {}",
        text(&final_out)
    );
    assert_exactly_once(
        &sb,
        &w.path("in.results.csv"),
        &format!("trial {trial}, {kills} kills"),
    );
    let stats = sb.stats();
    assert_eq!(stats["requestIdReuse"], 0, "trial {trial}: {stats}");
    kills
}

#[test]
fn killed_at_random_moments_and_resumed_every_row_is_applied_exactly_once() {
    // One trial against each kind of service (see `mode`).
    let all_kills: usize = trials(5, killed_and_resumed).into_iter().sum();
    assert!(
        all_kills >= 5,
        "runs were really killed mid-way: {all_kills} kills"
    );
}

#[test]
fn crashed_at_every_kind_of_point_and_resumed_every_row_is_applied_exactly_once() {
    // after-journal-append:N aborts right after the N-th journal record is written: after the run
    // header, a before-value, a write's intent (before it is sent), an answer, or a row's outcome.
    // before-results-sync aborts with every line written but before the results file is synced;
    // mid-results when half the rows have their line.
    let points = [
        "after-journal-append:2",
        "after-journal-append:7",
        "after-journal-append:23",
        "after-journal-append:61",
        "before-results-sync",
        "mid-results",
    ];
    // Every point twice, each time against another kind of service (see `mode`).
    let points: Vec<&str> = points.iter().flat_map(|p| [*p, *p]).collect();
    trials(points.len(), |trial| {
        let point = points[trial];
        let sb = Sandbox::start(
            &[FAULTY, &["--seed", &(100 + trial).to_string()], mode(trial)].concat(),
        );
        let w = Workdir::new();
        let input = w.write("in.csv", mixed_input());
        let crashed = apply_cmd(&sb, &input, false)
            .env("PCBULK_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(
            !crashed.status.success(),
            "{point}: the crash point was reached"
        );
        let out = apply_cmd(&sb, &input, true).output().unwrap();
        assert_eq!(code(&out), 0, "{point}: {}", text(&out));
        assert_exactly_once(&sb, &w.path("in.results.csv"), point);
    });
}

#[test]
fn a_resumed_run_writes_the_same_results_as_an_uninterrupted_one() {
    let columns_that_vary = ["duration_ms", "attempts", "correlation_id", "request_id"];
    let strip = |rows: Vec<BTreeMap<String, String>>| -> Vec<BTreeMap<String, String>> {
        rows.into_iter()
            .map(|mut r| {
                for c in columns_that_vary {
                    r.remove(c);
                }
                r
            })
            .collect()
    };
    let calm = Sandbox::start(&["--subscriptions", "16", "--customers", "6"]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_input());
    let out = apply_cmd(&calm, &input, false).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let uninterrupted = strip(results(&w.path("in.results.csv")));

    let sb = Sandbox::start(&[
        "--subscriptions",
        "16",
        "--customers",
        "6",
        "--latency-ms",
        "30",
    ]);
    let w2 = Workdir::new();
    let input2 = w2.write("in.csv", mixed_input());
    let journal = w2.path("in.results.csv.journal");
    assert!(run_killed_at(apply_cmd(&sb, &input2, false), &journal, Some(40)).is_none());
    let out = apply_cmd(&sb, &input2, true).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(strip(results(&w2.path("in.results.csv"))), uninterrupted);
}

#[test]
fn resume_refuses_another_file_operation_or_target_and_a_new_run_refuses_an_unfinished_journal() {
    let sb = Sandbox::start(&[
        "--latency-ms",
        "200",
        "--subscriptions",
        "16",
        "--customers",
        "6",
    ]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_input());
    let journal = w.path("in.results.csv.journal");
    assert!(run_killed_at(apply_cmd(&sb, &input, false), &journal, Some(10)).is_none());

    let again = apply_cmd(&sb, &input, false).output().unwrap();
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(text(&again).contains("--resume"), "{}", text(&again));

    std::fs::write(
        &input,
        mixed_input().replace("crash note 3,", "crash note 3 edited,"),
    )
    .unwrap();
    let edited = apply_cmd(&sb, &input, true).output().unwrap();
    assert_eq!(code(&edited), 2, "{}", text(&edited));
    assert!(
        text(&edited).contains("does not hold the rows the run started with"),
        "{}",
        text(&edited)
    );
    std::fs::write(&input, mixed_input()).unwrap();

    let other_op = apply_cmd(&sb, &input, true)
        .args(["--operation", "support-contact"])
        .output()
        .unwrap();
    assert_eq!(code(&other_op), 2, "{}", text(&other_op));

    let elsewhere = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--resume", "--base-url", "http://127.0.0.1:9"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&elsewhere), 2, "{}", text(&elsewhere));
    assert!(
        text(&elsewhere).contains("was sent to"),
        "{}",
        text(&elsewhere)
    );

    let finished = apply_cmd(&sb, &input, true).output().unwrap();
    assert_eq!(code(&finished), 0, "{}", text(&finished));
}

fn snapshot(sb: &Sandbox) -> Value {
    let mut s = sb.state();
    s.as_object_mut().unwrap().remove("changes");
    for c in s["customers"].as_array_mut().unwrap() {
        c["billingProfile"]["attributes"]["etag"] = Value::Null;
    }
    for sr in s["serviceRequests"].as_array_mut().unwrap() {
        for k in ["lastModifiedDate", "lastClosedDate", "notes"] {
            sr[k] = Value::Null;
        }
    }
    s
}

#[test]
fn undo_then_apply_puts_the_tenant_back() {
    let sb = Sandbox::start(&[]);
    let before = snapshot(&sb);
    let w = Workdir::new();
    let input = w.write(
        "changes.csv",
        format!(
            "operation,customer_id,subscription_id,support_tenant_id,partner_id,name,service_request_id,note,new_status,email,city\n\
             support-contact,{FABRIKAM},d0000002-0000-4000-8000-000000000021,e0000002-0000-4000-8000-000000000002,5123456,Fabrikam Resellers,,,,,\n\
             support-contact,{CONTOSO},d0000001-0000-4000-8000-000000000011,{TREY_TENANT},4391507,Trey Research,,,,,\n\
             service-request,,,,,,616122292874577,Taken over by Fabrikam Resellers.,attention_needed,,\n\
             service-request,,,,,,616122292874578,Just a note.,,,\n\
             billing-profile,{NORTHWIND},,,,,,,,ap@northwind.example,Malmö C\n\
             support-profile,,,,,,,,,escalations@adatum.example,\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_ne!(snapshot(&sb), before);

    let undo = pcbulk()
        .arg("undo")
        .arg(w.path("changes.results.csv"))
        .output()
        .unwrap();
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    assert!(
        text(&undo).contains("cannot remove a note"),
        "{}",
        text(&undo)
    );
    let undo_file = w.path("changes.undo.csv");
    let undo_rows = results(&undo_file);
    assert_eq!(
        undo_rows.len(),
        5,
        "every change but the note-only row: {undo_rows:?}"
    );

    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        snapshot(&sb),
        before,
        "the tenant is as it was, notes aside"
    );
    let notes = sb.service_request("616122292874578")["notes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        notes, 1,
        "the note stays: Partner Center cannot remove notes"
    );
}

/// The customer whose billing profile [`LateBillingPut`] renames.
const LATE_CUSTOMER: &str = "c1000000-0000-4000-8000-000000000000";

/// A run killed while the service holds its billing-profile PUT, which the service applies late
/// (seconds after it arrived): a resume reads the profile before that copy lands, and sends the PUT
/// again with the same If-Match, which the copy, landing meanwhile, makes stale (412).
struct LateBillingPut {
    sb: Sandbox,
    w: Workdir,
    input: std::path::PathBuf,
    /// The company name before the row.
    was: String,
}

impl LateBillingPut {
    /// `flags`: the sandbox's, `--late-writes` among them.
    fn killed(flags: &[&str]) -> LateBillingPut {
        let sb = Sandbox::start(&[&["--customers", "1"], flags].concat());
        let w = Workdir::new();
        let input = w.write(
            "in.csv",
            format!("customer_id,company_name\n{LATE_CUSTOMER},Renamed 0\n"),
        );
        let was = sb.customer(LATE_CUSTOMER)["billingProfile"]["companyName"]
            .as_str()
            .unwrap()
            .to_owned();
        let late = LateBillingPut { sb, w, input, was };
        let mut child = late.apply(&[]).spawn().unwrap();
        wait_for_sends(&late.w.path("in.results.csv.journal"), 1);
        // The profile was read before the PUT's intent was journaled: a call in flight is the PUT.
        while late.sb.stats()["inFlight"] != 1 {
            assert!(child.try_wait().unwrap().is_none(), "killed before it ends");
            std::thread::yield_now();
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let now = late.sb.customer(LATE_CUSTOMER)["billingProfile"]["companyName"].clone();
        assert_eq!(now, late.was.as_str(), "the PUT has not landed yet");
        late
    }

    /// `apply`, with a timeout longer than the service's delay (the resend is answered, not lost).
    fn apply(&self, extra: &[&str]) -> Command {
        let mut c = pcbulk();
        c.arg("apply")
            .arg(&self.input)
            .args(["--base-url", &self.sb.url, "--timeout", "30"])
            .args(extra)
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The profile renamed once, and the row succeeded with its change in the results (and so in
    /// the undo file), not `unchanged`.
    fn assert_one_change_accounted(&self) {
        let profile = self.sb.customer(LATE_CUSTOMER)["billingProfile"].clone();
        assert_eq!(profile["companyName"], "Renamed 0");
        let etag = profile["attributes"]["etag"].as_str().unwrap();
        assert!(etag.ends_with("-000002"), "written exactly once ({etag})");
        let rows = results(&self.w.path("in.results.csv"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["status"], "succeeded", "{rows:?}");
        let want = format!("company_name: {:?} → \"Renamed 0\"", self.was);
        assert_eq!(rows[0]["change"], want, "{rows:?}");
    }
}

#[test]
fn a_killed_run_s_billing_put_landing_while_the_resume_sends_it_again_is_succeeded_not_unchanged() {
    let late = LateBillingPut::killed(&["--late-writes", "3000"]);
    let out = late.apply(&["--resume"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    late.assert_one_change_accounted();
}

#[test]
fn a_resume_killed_right_after_its_resend_was_refused_as_stale_still_settles_the_landed_put() {
    // Every call takes 1 s: the resume is killed once its resend's 412 is journaled, well before
    // its look after the refusal is answered and the row's outcome journaled. The PUT lands 5 s
    // after it arrived, leaving the resume 3 s to start, read and send it again.
    let late = LateBillingPut::killed(&["--late-writes", "4000", "--latency-ms", "1000"]);
    let journal = late.w.path("in.results.csv.journal");
    let mut resume = late.apply(&["--resume"]).spawn().unwrap();
    let refused = r#""t":"answer","row":1,"#;
    while !std::fs::read_to_string(&journal).unwrap().contains(refused) {
        assert!(
            resume.try_wait().unwrap().is_none(),
            "killed before it ends"
        );
        std::thread::yield_now();
    }
    resume.kill().unwrap(); // SIGKILL
    resume.wait().unwrap();
    let journaled = std::fs::read_to_string(&journal).unwrap();
    let last = journaled.lines().last().unwrap();
    assert!(last.contains(r#""status":412"#), "{journaled}");

    let out = late.apply(&["--resume"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    late.assert_one_change_accounted();
}
