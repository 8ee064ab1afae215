//! The journal read as the hostile file it may be: on `--resume`, a journal that does not fit the
//! input (a write to another path or with another body, a row the input does not have, garbage in
//! the middle, a line too long, an id that is not a GUID) is refused with exit 2, naming the journal
//! and the line, and nothing is sent; a torn last line is still a crash's, and is ignored. What a
//! journal says that reaches the results file is neutralised like any cell.

use std::path::PathBuf;

use crate::common::*;
use serde_json::{json, Value};

const SUBS: [&str; 3] = [
    "d0000001-0000-4000-8000-000000000011",
    "d0000001-0000-4000-8000-000000000012",
    "d0000001-0000-4000-8000-000000000013",
];

/// A run of three support-contact rows whose journal is then cut back to what a crash right after
/// row 3's write was journaled leaves: row 3's write has no answer and no outcome, and the run is
/// not done. Returns the work dir, the input, and the journal's records.
struct Cut {
    w: Workdir,
    input: PathBuf,
    records: Vec<Value>,
}

impl Cut {
    fn new(sb: &Sandbox) -> Cut {
        let w = Workdir::new();
        let mut csv =
            String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n");
        for sub in SUBS {
            csv.push_str(&format!(
                "{CONTOSO},{sub},{TREY_TENANT},4391507,Trey Research\n"
            ));
        }
        let input = w.write("in.csv", csv);
        let out = sb.apply(&input, &[]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let text = std::fs::read_to_string(w.path("in.results.csv.journal")).unwrap();
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &Value| {
                let t = r["t"].as_str().unwrap();
                !(t == "done" || r["row"] == 3 && (t == "answer" || t == "row"))
            })
            .collect();
        Cut { w, input, records }
    }

    fn journal(&self) -> PathBuf {
        self.w.path("in.results.csv.journal")
    }

    /// The index of the first record that `pick` picks.
    fn find(&self, pick: impl Fn(&Value) -> bool) -> usize {
        self.records.iter().position(pick).expect("a record")
    }

    fn send_of_row_3(&self) -> usize {
        self.find(|r| r["t"] == "send" && r["row"] == 3)
    }

    /// Writes the records as journal lines.
    fn write(&self) {
        self.write_lines(
            self.records
                .iter()
                .map(|r| serde_json::to_string(r).unwrap())
                .collect(),
        );
    }

    fn write_lines(&self, lines: Vec<String>) {
        std::fs::write(self.journal(), lines.join("\n") + "\n").unwrap();
    }

    fn resume(&self, sb: &Sandbox) -> std::process::Output {
        sb.apply(&self.input, &["--resume"])
    }
}

/// Resumes and expects a refusal naming the journal and `line`, with nothing sent and the journal
/// left as it was.
fn assert_refused(sb: &Sandbox, cut: &Cut, line: usize, why: &str) {
    let calls = sb.stats()["total"].clone();
    let journal = std::fs::read(cut.journal()).unwrap();
    let out = cut.resume(sb);
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(
        said.contains(&cut.journal().display().to_string()),
        "names the journal: {said}"
    );
    assert!(
        said.contains(&format!("line {line}:")),
        "names line {line}: {said}"
    );
    assert!(said.contains(why), "says {why:?}: {said}");
    assert!(said.contains("without --resume"), "says what to do: {said}");
    assert_eq!(sb.stats()["total"], calls, "nothing was sent");
    assert_eq!(
        std::fs::read(cut.journal()).unwrap(),
        journal,
        "the journal is left as it was"
    );
}

#[test]
fn an_untampered_cut_journal_resumes_and_settles_row_3_s_write_by_reading_it() {
    let sb = Sandbox::start(&[]);
    let cut = Cut::new(&sb);
    cut.write();
    let puts = |sb: &Sandbox| -> u64 {
        let stats = sb.stats();
        stats["calls"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("PUT "))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    let before = puts(&sb);
    let out = cut.resume(&sb);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        puts(&sb),
        before,
        "the journaled write had gone in: the contact was read, holding the row's values, and \
         the PUT was not sent again"
    );
    let rows = results(&cut.w.path("in.results.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["succeeded"; 3]);
}

#[test]
fn a_tampered_journal_path_is_refused_naming_the_line() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.send_of_row_3();
    let elsewhere = "d0000002-0000-4000-8000-000000000021";
    cut.records[at]["call"]["path"] =
        format!("/customers/{FABRIKAM}/subscriptions/{elsewhere}/supportcontact").into();
    cut.write();
    let before = sb.subscription(elsewhere)["supportContact"].clone();
    assert_refused(&sb, &cut, at + 1, "is not the call that row makes");
    assert_eq!(sb.subscription(elsewhere)["supportContact"], before);
}

#[test]
fn a_tampered_journal_body_is_refused_naming_the_line() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.send_of_row_3();
    cut.records[at]["call"]["body"]["Name"] = "Someone Else".into();
    cut.write();
    assert_refused(
        &sb,
        &cut,
        at + 1,
        "its body is not the contact the row sets",
    );
}

#[test]
fn a_journal_request_id_that_is_not_a_guid_is_refused() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.send_of_row_3();
    cut.records[at]["call"]["request_id"] = "x\r\nX-Evil: 1".into();
    cut.write();
    assert_refused(&sb, &cut, at + 1, "is not a GUID");
}

#[test]
fn a_journal_row_beyond_the_input_is_refused() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.find(|r| r["t"] == "row" && r["row"] == 1);
    let mut beyond = cut.records[at].clone();
    beyond["row"] = 4.into();
    cut.records.insert(at + 1, beyond);
    cut.write();
    assert_refused(&sb, &cut, at + 2, "row 4, but the input has 3 rows");
}

#[test]
fn before_values_of_another_operation_are_refused() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.find(|r| r["t"] == "before" && r["row"] == 3);
    cut.records[at]["op"] = "service-request".into();
    cut.records[at]["values"] = json!({});
    cut.write();
    assert_refused(
        &sb,
        &cut,
        at + 1,
        "before-values of a service-request row, but row 3 of the input is a support-contact row",
    );
}

#[test]
fn garbage_in_the_middle_of_the_journal_is_refused_but_a_torn_last_line_is_not() {
    let sb = Sandbox::start(&[]);
    let cut = Cut::new(&sb);
    let mut lines: Vec<String> = cut
        .records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let mut garbled = lines.clone();
    garbled.insert(2, "this is not a journal record".into());
    cut.write_lines(garbled);
    assert_refused(&sb, &cut, 3, "not the last line");

    // The same garbage as the last line, with no newline after it: a crash tore it.
    lines.push(r#"{"t":"answer","row":3,"requ"#.into());
    std::fs::write(cut.journal(), lines.join("\n")).unwrap();
    let out = cut.resume(&sb);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&cut.w.path("in.results.csv"));
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
}

#[test]
fn an_oversized_journal_line_is_refused() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.find(|r| r["t"] == "before" && r["row"] == 1);
    cut.records[at]["values"]["name"] = "x".repeat(2 << 20).into();
    cut.write();
    assert_refused(&sb, &cut, at + 1, "a line longer than 1 MiB");
}

#[test]
fn what_a_journal_says_reaches_the_results_file_neutralised() {
    let sb = Sandbox::start(&[]);
    let mut cut = Cut::new(&sb);
    let at = cut.find(|r| r["t"] == "row" && r["row"] == 2);
    cut.records[at]["status"] = "failed".into();
    cut.records[at]["error_code"] = "=1+1".into();
    cut.records[at]["error_message"] = "=HYPERLINK(\"http://x\")\u{1b}[2J\u{202e}".into();
    cut.write();
    let out = cut.resume(&sb);
    assert_eq!(code(&out), 1, "a failed row: {}", text(&out));
    let rows = results(&cut.w.path("in.results.csv"));
    assert_eq!(rows[1]["status"], "failed");
    assert_eq!(rows[1]["error_code"], "'=1+1");
    let message = &rows[1]["error_message"];
    assert!(message.starts_with("'=HYPERLINK"), "{message}");
    assert!(
        !message.contains('\u{1b}') && !message.contains('\u{202e}'),
        "{message:?}"
    );
}
