//! A plan is what a person reviews, and `apply --from-plan` holds every row to it: found by an
//! outside test, each of these once let a row through that the reviewed plan did not allow.

use std::path::Path;
use std::process::Output;

use crate::common::*;

const SR: &str = "616122292874576";

fn run(sb: &Sandbox, input: &Path, args: &[&str]) -> Output {
    pcbulk()
        .args(args)
        .arg(input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap()
}

fn contact_name(sb: &Sandbox, i: usize) -> String {
    sb.subscription(&extra_subscription(i))["supportContact"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Rewrites a plan file as a reviewer would in a spreadsheet: `keep` decides which rows stay, and
/// `status` may change what a row says.
fn review(plan: &Path, keep: impl Fn(&str) -> bool, status: impl Fn(&str) -> Option<&'static str>) {
    let (headers, rows) = table(plan);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).unwrap();
    for row in rows.iter().filter(|r| keep(&r["row"])) {
        let cells: Vec<String> = headers
            .iter()
            .map(|h| match (h.as_str(), status(&row["row"])) {
                ("status", Some(s)) => s.to_owned(),
                _ => row[h].clone(),
            })
            .collect();
        w.write_record(&cells).unwrap();
    }
    std::fs::write(plan, w.into_inner().unwrap()).unwrap();
}

#[test]
fn rows_taken_out_of_a_plan_in_review_are_not_applied() {
    let sb = Sandbox::start(&["--subscriptions", "3"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(3));
    let plan = run(&sb, &input, &["plan"]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let plan_path = w.path("in.plan.csv");
    assert_eq!(statuses(&plan_path), ["planned", "planned", "planned"]);
    // The reviewer deletes row 2's line and marks row 3 as not to be done.
    review(
        &plan_path,
        |row| row != "2",
        |row| (row == "3").then_some("no"),
    );

    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan_path.to_str().unwrap()],
    );
    let got: Vec<(String, String)> = results(&w.path("in.results.csv"))
        .into_iter()
        .map(|r| (r["status"].clone(), r["error_code"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("succeeded".into(), "".into()),
            ("skipped".into(), "not_planned".into()),
            ("skipped".into(), "not_planned".into()),
        ],
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("1 row to send"),
        "the banner counts the rows the plan still marks: {}",
        text(&out)
    );
    assert_eq!(contact_name(&sb, 0), "Trey Research");
    assert_ne!(contact_name(&sb, 1), "Trey Research");
    assert_ne!(contact_name(&sb, 2), "Trey Research");
}

#[test]
fn a_plan_file_that_is_gone_applies_nothing() {
    let sb = Sandbox::start(&["--subscriptions", "1"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan_path = w.path("in.plan.csv");
    std::fs::remove_file(&plan_path).unwrap();
    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan_path.to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("cannot read the plan"),
        "{}",
        text(&out)
    );
    assert_ne!(contact_name(&sb, 0), "Trey Research");
}

#[test]
fn an_apply_s_results_are_not_a_plan_and_undo_refuses_a_plan() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    assert_eq!(code(&run(&sb, &input, &["apply"])), 0);
    let applied = w.path("in.results.csv");
    let other = w.write("other.csv", contacts_csv(1));
    let out = run(
        &sb,
        &other,
        &["apply", "--from-plan", applied.to_str().unwrap(), "--force"],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("is not a plan"), "{}", text(&out));

    assert_eq!(code(&run(&sb, &other, &["plan"])), 0);
    let out = pcbulk()
        .arg("undo")
        .arg(w.path("other.plan.csv"))
        .output()
        .unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("is a plan"), "{}", text(&out));
}

/// After a --from-plan run, `--retry-failed` once sent a drifted row as a plain apply would,
/// overwriting the change made meanwhile; and `--resume --from-plan` (the command pcbulk prints after
/// an interrupt) was refused by the command line.
#[test]
fn a_retry_of_a_run_from_a_plan_is_held_to_the_same_plan() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    // Someone edits row 2's contact in between.
    let sub = extra_subscription(1);
    sb.set_contact(
        &sub,
        FABRIKAM_RESELLER_TENANT,
        "5123456",
        "Edited meanwhile",
    );
    let plan = w.path("in.plan.csv");
    let plan = plan.to_str().unwrap();
    let out = run(&sb, &input, &["apply", "--from-plan", plan]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(statuses(&w.path("in.results.csv")), ["succeeded", "failed"]);

    let plain = run(&sb, &input, &["apply", "--retry-failed"]);
    assert_eq!(code(&plain), 2, "{}", text(&plain));
    assert!(
        text(&plain).contains(&format!("--from-plan {plan}")),
        "{}",
        text(&plain)
    );
    let held = run(
        &sb,
        &input,
        &["apply", "--retry-failed", "--from-plan", plan],
    );
    assert_eq!(code(&held), 1, "{}", text(&held));
    let rows = results(&w.path("in.results.csv"));
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["error_code"].as_str()),
        ("failed", "drifted")
    );
    assert_eq!(contact_name(&sb, 1), "Edited meanwhile");
    // The run has finished: a resume sends nothing and says so (SPEC: Resume).
    let resumed = run(&sb, &input, &["apply", "--resume", "--from-plan", plan]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert!(
        text(&resumed).contains("already applied"),
        "{}",
        text(&resumed)
    );
    assert_eq!(contact_name(&sb, 1), "Edited meanwhile");
}

/// A planned row whose values someone else already changed to the row's own target came out
/// `unchanged`, and a planned note that someone else added meanwhile was added a second time: both
/// now fail as drifted, and nothing is written.
#[test]
fn a_row_whose_reads_differ_from_the_plan_s_is_drifted_even_when_nothing_is_left_to_write() {
    let sb = Sandbox::start(&["--subscriptions", "1"]);
    let w = Workdir::new();
    let contacts = w.write("in.csv", contacts_csv(1));
    let notes = w.write(
        "sr.csv",
        format!("service_request_id,note\n{SR},from the plan\n"),
    );
    assert_eq!(code(&run(&sb, &contacts, &["plan"])), 0);
    assert_eq!(code(&run(&sb, &notes, &["plan"])), 0);
    // Meanwhile: the contact is set to the row's own values, and the note is added by hand.
    sb.set_contact(
        &extra_subscription(0),
        TREY_TENANT,
        "4391507",
        "Trey Research",
    );
    let note = serde_json::json!({"NewNote": {"Text": "from the plan"}});
    assert!(sb
        .call("PATCH", &format!("/servicerequests/{SR}"), Some(note), &[])
        .unwrap()
        .status()
        .is_success());

    for (input, plan) in [(&contacts, "in.plan.csv"), (&notes, "sr.plan.csv")] {
        let plan = w.path(plan);
        let out = run(
            &sb,
            input,
            &["apply", "--from-plan", plan.to_str().unwrap()],
        );
        assert_eq!(code(&out), 1, "{}", text(&out));
        let results_path = plan.with_file_name(format!(
            "{}.results.csv",
            input.file_stem().unwrap().to_str().unwrap()
        ));
        let rows = results(&results_path);
        assert_eq!(
            (rows[0]["status"].as_str(), rows[0]["error_code"].as_str()),
            ("failed", "drifted"),
            "{rows:?}"
        );
        assert!(rows[0]["error_message"].contains("in the plan"), "{rows:?}");
    }
    assert_eq!(
        sb.note_counts()["from the plan"],
        1,
        "the note is not added twice"
    );
}

/// A plan cut short (the service unreachable) left a journal that refused every later plan at its
/// path, asking for a --resume that plan does not have.
#[test]
fn a_plan_cut_short_can_be_made_again() {
    let sb = Sandbox::start(&["--subscriptions", "20"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(20));
    let cut = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &closed_port_url(), "--concurrency", "1"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&cut), 3, "{}", text(&cut));
    let again = run(&sb, &input, &["plan"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(statuses(&w.path("in.plan.csv")), ["planned"; 20]);
}

/// Sets one cell of a plan file as a reviewer would in a spreadsheet: `column` of the line whose
/// `row` is `row` now holds `value`.
fn edit_plan(plan: &Path, row: &str, column: &str, value: &str) {
    let (headers, rows) = table(plan);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).unwrap();
    for r in &rows {
        let cells: Vec<&str> = headers
            .iter()
            .map(|h| match r["row"] == row && h == column {
                true => value,
                false => r[h].as_str(),
            })
            .collect();
        w.write_record(&cells).unwrap();
    }
    std::fs::write(plan, w.into_inner().unwrap()).unwrap();
}

/// Two notes for two service requests, with the admin's own `comment` column.
fn notes_csv(first: &str, second: &str) -> String {
    format!(
        "service_request_id,note,comment\n\
         616122292874576,{first},ok\n\
         616122292874577,{second},ok\n"
    )
}

/// A reviewer changed a note in the plan's CSV, and `apply --from-plan` sent the input's note
/// instead, with no word: the edited plan is now refused, naming the row and column, and nothing
/// is written.
#[test]
fn a_note_edited_in_the_plan_is_refused_naming_row_and_column_and_nothing_is_written() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("sr.csv", notes_csv("first note", "second note"));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan = w.path("sr.plan.csv");
    edit_plan(&plan, "2", "note", "edited in review");
    let before = sb.note_counts();

    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan.to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    for said in [
        "row 2",
        "`note`",
        "\"edited in review\"",
        "edit the input and plan again",
        "nothing was sent",
    ] {
        assert!(text(&out).contains(said), "{said}: {}", text(&out));
    }
    assert_eq!(sb.note_counts(), before, "no note was added");
    assert!(!w.path("sr.results.csv").exists(), "{}", text(&out));
}

/// Columns the operation does not read are the reviewer's: a comment written there is no edit of
/// what is applied, and the plan applies.
#[test]
fn a_comment_written_in_a_carried_column_of_the_plan_is_accepted() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("sr.csv", notes_csv("first note", "second note"));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan = w.path("sr.plan.csv");
    edit_plan(&plan, "1", "comment", "checked with the customer");

    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        statuses(&w.path("sr.results.csv")),
        ["succeeded", "succeeded"]
    );
    assert_eq!(sb.note_counts()["first note"], 1);
}

/// The plan writes a formula-looking cell with a leading `'` (so a spreadsheet shows it as text);
/// read back as it was written, the unedited plan applies.
#[test]
fn a_formula_looking_note_round_trips_through_an_unedited_plan() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "sr.csv",
        notes_csv("=1+1 was the answer", "-5 minutes late"),
    );
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan = w.path("sr.plan.csv");
    let notes: Vec<String> = results(&plan)
        .into_iter()
        .map(|r| r["note"].clone())
        .collect();
    assert_eq!(notes, ["'=1+1 was the answer", "'-5 minutes late"]);

    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let counts = sb.note_counts();
    assert_eq!(counts["=1+1 was the answer"], 1, "{counts:?}");
    assert_eq!(counts["-5 minutes late"], 1, "{counts:?}");
}

/// A plan copied elsewhere without its journal was refused with only "No such file or directory":
/// the message now says to keep the two together, or to plan again.
#[test]
fn a_plan_moved_without_its_journal_says_to_keep_them_together() {
    let sb = Sandbox::start(&["--subscriptions", "1"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let moved = w.path("reviewed.csv");
    std::fs::rename(w.path("in.plan.csv"), &moved).unwrap();
    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", moved.to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("together with its .journal file, or make the plan again"),
        "{}",
        text(&out)
    );
    assert_ne!(contact_name(&sb, 0), "Trey Research");
}

/// Found by an outside tester: a reviewer's edit to an `expected_<column>` cell of a plan was
/// silently ignored; a precondition is part of what is applied, and an edited one is refused.
#[test]
fn an_expected_cell_edited_in_the_plan_is_refused_like_any_edit() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "sr.csv",
        "service_request_id,new_status,expected_new_status\n616122292874576,closed,\n",
    );
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan = w.path("sr.plan.csv");
    edit_plan(&plan, "1", "expected_new_status", "attention_needed");
    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan.to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("`expected_new_status`"),
        "{}",
        text(&out)
    );
    assert!(!w.path("sr.results.csv").exists(), "{}", text(&out));
}

/// Found by an outside tester: a plan re-saved by a spreadsheet in a locale that separates with
/// `;` was refused as having no `row` column; the plan's delimiter is now read from its header.
#[test]
fn a_plan_re_saved_with_semicolons_applies_as_reviewed() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("sr.csv", notes_csv("first note", "second note"));
    assert_eq!(code(&run(&sb, &input, &["plan"])), 0);
    let plan = w.path("sr.plan.csv");
    let rows = results(&plan);
    let header: Vec<String> = rows[0].keys().cloned().collect();
    let mut resaved = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let order: Vec<String> = {
        let mut r = csv::Reader::from_path(&plan).unwrap();
        r.headers()
            .unwrap()
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_owned())
            .collect()
    };
    assert_eq!(order.len(), header.len());
    resaved.write_record(&order).unwrap();
    for row in &rows {
        resaved
            .write_record(order.iter().map(|h| row[h].as_str()))
            .unwrap();
    }
    std::fs::write(&plan, resaved.into_inner().unwrap()).unwrap();
    let out = run(
        &sb,
        &input,
        &["apply", "--from-plan", plan.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let counts = sb.note_counts();
    assert_eq!(counts["first note"], 1, "{counts:?}");
    assert_eq!(counts["second note"], 1, "{counts:?}");
}
