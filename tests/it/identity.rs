//! A run's identity is what it applies: the operation, the service, the sheet and the rows' own
//! cells. The same rows saved another way are the same input (refused as already applied, and a
//! killed run resumes from them); another sheet is another input; a resume or a plan that does not
//! fit is refused before anything is recorded, so a refusal never makes pcbulk forget an unfinished
//! run. Each test gives its commands one state folder (`PCBULK_STATE_DIR`) of its own.

use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::*;
use rust_xlsxwriter::Workbook;

/// Starts an apply that sends one row at a time, and kills it (SIGKILL) once it has sent two.
fn apply_killed(sb: &Sandbox, w: &Workdir, input: &Path, out: &Path, args: &[&str]) {
    let mut child: Child = pcbulk()
        .arg("apply")
        .arg(input)
        .args([
            "--base-url",
            &sb.url,
            "--rate",
            "1000",
            "--concurrency",
            "1",
        ])
        .args(["--out", out.to_str().unwrap(), "--timeout", "1"])
        .args(args)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut journal = out.as_os_str().to_owned();
    journal.push(".journal");
    wait_for_sends(Path::new(&journal), 2);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A support-contact file for Contoso's extra subscriptions `range`, with a carried `memo` column.
fn contacts(range: std::ops::Range<usize>) -> String {
    let mut csv =
        String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name,memo\n");
    for i in range {
        csv.push_str(&format!(
            "{CONTOSO},{},{TREY_TENANT},4391507,Trey Research,ticket {i}\n",
            extra_subscription(i)
        ));
    }
    csv
}

/// The same rows as [`contacts`], saved another way: Windows line ends, a byte-order mark,
/// semicolons, the columns in another order, the carried column changed and another added.
fn contacts_saved_again(range: std::ops::Range<usize>) -> Vec<u8> {
    let mut csv = String::from(
        "\u{feff}Name;Support MPN ID;Support Tenant ID;Subscription ID;Customer ID;note to self;memo\r\n",
    );
    for i in range {
        csv.push_str(&format!(
            "\"Trey Research\";4391507; {TREY_TENANT} ;{};{CONTOSO};checked;other {i}\r\n",
            extra_subscription(i)
        ));
    }
    csv.into_bytes()
}

/// Excel's "Unicode text": UTF-16LE with a byte-order mark, tab-separated.
fn utf16(range: std::ops::Range<usize>) -> Vec<u8> {
    let text = String::from_utf8(contacts_saved_again(range))
        .unwrap()
        .replace('\u{feff}', "")
        .replace(';', "\t");
    let mut bytes = vec![0xff, 0xfe];
    for u in text.encode_utf16() {
        bytes.extend(u.to_le_bytes());
    }
    bytes
}

/// Found by an outside tester: after a run was killed, a resume refused after the run's started
/// line was added (here: with a plan the run did not apply) ended the run's line in pcbulk's list
/// of runs, and a copy of the file under another --out then ran every row again. Every refusal
/// now comes before anything is recorded.
#[test]
fn a_refused_resume_does_not_erase_the_unfinished_run_s_record() {
    let sb = Sandbox::start(&["--latency-ms", "200", "--subscriptions", "12"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..12));
    let plan = run(&sb, &w, "plan", &input, &[]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let a = w.path("a.csv");
    apply_killed(&sb, &w, &input, &a, &[]);
    let sent = puts(&sb);
    let recorded = runs_list(&w);
    assert!(!recorded.is_empty(), "the run's started line");

    let out_a = ["--out", a.to_str().unwrap(), "--resume"];
    let changed = contacts(0..12).replace(
        ",4391507,Trey Research,ticket 3",
        ",4391508,Trey Research,ticket 3",
    );
    let changed = w.write("changed.csv", changed);
    let plan_path = w.path("in.plan.csv");
    let refused: [(&Path, Vec<&str>, &str); 2] = [
        (
            &input,
            [&out_a[..], &["--from-plan", plan_path.to_str().unwrap()]].concat(),
            "did not apply a plan",
        ),
        (&changed, out_a.to_vec(), "does not hold the rows"),
    ];
    for (file, args, why) in refused {
        let out = run(&sb, &w, "apply", file, &args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{}", text(&out));
        assert_eq!(
            runs_list(&w),
            recorded,
            "{args:?}: the list of runs is as it was"
        );
    }
    assert_eq!(puts(&sb), sent, "nothing sent");

    let copy = w.write("copy.csv", contacts(0..12));
    let fresh = w.path("fresh.csv");
    let again = run(&sb, &w, "apply", &copy, &["--out", fresh.to_str().unwrap()]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(
        text(&again).contains("has not finished"),
        "{}",
        text(&again)
    );
    assert_eq!(puts(&sb), sent, "the copy sent nothing");

    let resumed = run(&sb, &w, "apply", &input, &out_a);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert_eq!(puts(&sb), 12, "every row once: {}", sb.stats());
}

/// A workbook with two sheets of contacts: `A` for subscriptions 0..6, `B` for 6..12.
fn two_sheets(w: &Workdir) -> std::path::PathBuf {
    let mut wb = Workbook::new();
    for (name, range) in [("A", 0..6), ("B", 6..12)] {
        let ws = wb.add_worksheet();
        ws.set_name(name).unwrap();
        for (r, line) in contacts(range).lines().enumerate() {
            for (c, cell) in line.split(',').enumerate() {
                ws.write_string(r as u32, c as u16, cell).unwrap();
            }
        }
    }
    w.write("w.xlsx", wb.save_to_buffer().unwrap())
}

fn contact_mpn(sb: &Sandbox, i: usize) -> serde_json::Value {
    sb.subscription(&extra_subscription(i))["supportContact"]["supportMpnId"].clone()
}

/// Found by an outside tester: a run of sheet A, killed, was "resumed" with --sheet B: sheet B's
/// first rows were marked succeeded without being sent, and sheet A's rest was never applied.
#[test]
fn a_resume_with_another_sheet_is_refused() {
    let sb = Sandbox::start(&["--latency-ms", "200", "--subscriptions", "12"]);
    let w = Workdir::new();
    let book = two_sheets(&w);
    let a = w.path("a.csv");
    apply_killed(&sb, &w, &book, &a, &["--sheet", "A"]);
    let sent = puts(&sb);
    let resume = ["--out", a.to_str().unwrap(), "--resume"];
    let out = run(
        &sb,
        &w,
        "apply",
        &book,
        &[&resume[..], &["--sheet", "B"]].concat(),
    );
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(said.contains("sheet \"A\", not sheet \"B\""), "{said}");
    assert_eq!(puts(&sb), sent, "nothing sent");

    let out = run(
        &sb,
        &w,
        "apply",
        &book,
        &[&resume[..], &["--sheet", "A"]].concat(),
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&a), vec!["succeeded"; 6]);
    for i in 0..6 {
        assert_eq!(contact_mpn(&sb, i), "4391507", "sheet A's row {i}");
    }
    assert_eq!(puts(&sb), 6, "sheet B untouched: {}", sb.stats());
}

/// Found by an outside tester: `plan --sheet A` was accepted by `apply --sheet B --from-plan`.
#[test]
fn a_plan_of_one_sheet_is_not_applied_to_another() {
    let sb = Sandbox::start(&["--subscriptions", "12"]);
    let w = Workdir::new();
    let book = two_sheets(&w);
    let plan = run(&sb, &w, "plan", &book, &["--sheet", "A"]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let plan_path = w.path("w.A.plan.csv");
    assert_eq!(
        results(&plan_path).len(),
        6,
        "the plan carries its sheet's name"
    );
    let calls = sb.stats()["total"].clone();
    let args = ["--sheet", "B", "--from-plan", plan_path.to_str().unwrap()];
    let out = run(&sb, &w, "apply", &book, &args);
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(said.contains("sheet \"A\", not sheet \"B\""), "{said}");
    assert_eq!(sb.stats()["total"], calls, "nothing sent: {}", sb.stats());
}

/// Found by an outside tester: sheet B applied after sheet A was refused as "already applied"
/// (both were one file's bytes), which teaches users --force. Each sheet is an input of its own,
/// with records of its own.
#[test]
fn sheet_b_after_sheet_a_is_another_input() {
    let sb = Sandbox::start(&["--subscriptions", "12"]);
    let w = Workdir::new();
    let book = two_sheets(&w);
    for sheet in ["A", "B"] {
        let out = run(&sb, &w, "apply", &book, &["--sheet", sheet]);
        assert_eq!(code(&out), 0, "sheet {sheet}: {}", text(&out));
        let results = w.path(&format!("w.{sheet}.results.csv"));
        assert_eq!(statuses(&results), vec!["succeeded"; 6]);
    }
    assert_eq!(puts(&sb), 12);
    // The first sheet, named or not, is sheet A: applied already.
    let again = run(&sb, &w, "apply", &book, &[]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(text(&again).contains("already applied"), "{}", text(&again));
    assert_eq!(puts(&sb), 12, "nothing sent again");
}

/// Found by an outside tester: "the same input" was the same bytes, so the same rows saved again
/// by Excel (Windows line ends) were applied again without --force. The same rows in a byte-order
/// mark, semicolons, other columns carried, another column order, or UTF-16 are the same input.
#[test]
fn the_same_rows_saved_again_are_already_applied() {
    let sb = Sandbox::start(&["--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..4));
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let calls = sb.stats()["total"].clone();
    let saved_again = [
        (
            "crlf.csv",
            contacts(0..4).replace('\n', "\r\n").into_bytes(),
        ),
        ("excel.csv", contacts_saved_again(0..4)),
        ("unicode.txt", utf16(0..4)),
    ];
    for (name, bytes) in saved_again {
        let copy = w.write(name, bytes);
        let out = run(&sb, &w, "apply", &copy, &[]);
        assert_eq!(code(&out), 2, "{name}: {}", text(&out));
        assert!(text(&out).contains("already applied"), "{}", text(&out));
    }
    assert_eq!(sb.stats()["total"], calls, "nothing sent");

    // A value the operation applies is changed: another input.
    let changed = w.write(
        "changed.csv",
        contacts(0..4).replace("Trey Research,", "Trey Research Ltd,"),
    );
    let out = run(&sb, &w, "apply", &changed, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

/// A killed run resumes from its rows saved again (Windows line ends, a byte-order mark, columns
/// moved and carried ones changed), every row applied once.
#[test]
fn a_killed_run_resumes_from_its_rows_saved_again() {
    let sb = Sandbox::start(&["--latency-ms", "200", "--subscriptions", "12"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..12));
    let a = w.path("a.csv");
    apply_killed(&sb, &w, &input, &a, &[]);
    let resaved = w.write("in saved by excel.csv", contacts_saved_again(0..12));
    let out = run(
        &sb,
        &w,
        "apply",
        &resaved,
        &["--out", a.to_str().unwrap(), "--resume"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(puts(&sb), 12, "every row once: {}", sb.stats());
    assert_eq!(statuses(&a), vec!["succeeded"; 12]);
}

/// Found by an outside tester: a file name with a tab wrote a line pcbulk's list of runs dropped
/// when it read it back, so a copy of the file ran again.
#[test]
fn a_run_of_a_file_named_with_a_tab_is_remembered() {
    let sb = Sandbox::start(&["--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in\tput.csv", contacts(0..4));
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let copy = w.write("copy.csv", contacts(0..4));
    let again = run(&sb, &w, "apply", &copy, &[]);
    let said = text(&again);
    assert_eq!(code(&again), 2, "{said}");
    assert!(said.contains("already applied"), "{said}");
    assert!(said.contains("in\\tput"), "the name shown escaped: {said}");
    assert!(!said.contains('\t'), "{said}");
    assert_eq!(puts(&sb), 4);
}

/// Found by an outside tester: a base URL read from a file with Windows line ends kept its `\r`,
/// which the URL parser dropped for the calls but the list of runs kept (and then dropped the
/// line). Such a base URL is refused.
#[test]
fn a_base_url_with_a_line_end_is_refused() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..2));
    let url = format!("{}\r", sb.url);
    let out = run_at(&url, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("control character"), "{}", text(&out));
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .env("PCBULK_BASE_URL", &url)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert!(runs_list(&w).is_empty(), "nothing recorded");
}

/// A line of the list of runs that pcbulk did not write stops an apply (exit 2, naming the list
/// and the line, and what to do), where skipping it could apply a file twice; a last line torn by
/// a crash does not.
#[test]
fn a_damaged_line_in_the_list_of_runs_stops_apply_but_a_torn_last_one_does_not() {
    let sb = Sandbox::start(&["--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..4));
    let first = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--out", w.path("a.csv").to_str().unwrap()],
    );
    assert_eq!(code(&first), 0, "{}", text(&first));
    let whole = runs_list(&w);
    let lines = whole.lines().count();

    let damaged = format!("{whole}{{\"input_sha256\": \"edited by hand\"}}\n");
    std::fs::write(w.state().join("runs.jsonl"), &damaged).unwrap();
    let copy = w.write("copy.csv", contacts(0..4));
    let out = run(&sb, &w, "apply", &copy, &[]);
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(said.contains("runs.jsonl"), "{said}");
    assert!(said.contains(&format!("line {}", lines + 1)), "{said}");
    assert!(said.contains("PCBULK_STATE_DIR"), "what to do: {said}");
    assert_eq!(puts(&sb), 4, "nothing sent");

    let torn = format!("{whole}{{\"input_sha256\":\"ab");
    std::fs::write(w.state().join("runs.jsonl"), &torn).unwrap();
    let out = run(&sb, &w, "apply", &copy, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("already applied"), "{}", text(&out));
    let other = w.write("other.csv", contacts(1..4));
    let out = run(&sb, &w, "apply", &other, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        !runs_list(&w).contains("\"ab\n"),
        "the torn line was taken away"
    );
}

/// Found by an outside tester: a sheet's rows applied, then the same rows saved from Excel as CSV
/// were applied again (every note twice): the sheet a run read is not what makes its rows another
/// input.
#[test]
fn the_same_rows_saved_from_a_workbook_as_csv_are_already_applied() {
    let sb = Sandbox::start(&["--subscriptions", "12"]);
    let w = Workdir::new();
    let book = two_sheets(&w);
    let first = run(&sb, &w, "apply", &book, &["--sheet", "A"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let csv = w.write("sheet A.csv", contacts(0..6));
    let again = run(&sb, &w, "apply", &csv, &[]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(text(&again).contains("already applied"), "{}", text(&again));
    assert_eq!(puts(&sb), 6, "every row once");
}

/// Found by an outside tester: the same rows with an `operation` column (however its cells spell
/// the operation) were another input, applied again.
#[test]
fn the_same_rows_with_an_operation_column_are_already_applied() {
    let sb = Sandbox::start(&["--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts(0..4));
    let first = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    for spelled in ["support-contact", "Support Contact", "SUPPORT_CONTACT"] {
        let with_column: String = contacts(0..4)
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("Operation,{l}\n"),
                _ => format!("{spelled},{l}\n"),
            })
            .collect();
        let copy = w.write("with operation.csv", with_column);
        let again = run(&sb, &w, "apply", &copy, &[]);
        assert_eq!(code(&again), 2, "{spelled}: {}", text(&again));
        assert!(text(&again).contains("already applied"), "{}", text(&again));
    }
    assert_eq!(puts(&sb), 4, "every row once");
}
