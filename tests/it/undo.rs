//! Undo files and formula neutralisation: an undo file is safe to open in a spreadsheet (a cell that
//! would run as a formula gets a `'`), and applying it puts back exactly the values that were there,
//! formula-looking or not, because pcbulk marks its undo files and takes off only its own `'`.

use crate::common::*;
use serde_json::json;

const SUB_A: &str = "d0000001-0000-4000-8000-000000000011";
const SUB_B: &str = "d0000001-0000-4000-8000-000000000012";
const SUB_C: &str = "d0000001-0000-4000-8000-000000000013";

/// Sets a subscription's support contact in the sandbox, as someone else did before the run.
fn set_contact(sb: &Sandbox, sub: &str, name: &str) {
    let body = json!({
        "SupportTenantId": FABRIKAM_RESELLER_TENANT, "SupportMpnId": "5123456", "Name": name,
        "Attributes": {"ObjectType": "SupportContact"},
    });
    let path = format!("/customers/{CONTOSO}/subscriptions/{sub}/supportcontact");
    let resp = sb.call("PUT", &path, Some(body), &[]).unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

fn contact_name(sb: &Sandbox, sub: &str) -> String {
    sb.subscription(sub)["supportContact"]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn telephone(sb: &Sandbox) -> String {
    sb.state()["supportProfile"]["telephone"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn undo_of_a_formula_looking_value_puts_back_exactly_the_value() {
    let sb = Sandbox::start(&[]);
    set_contact(&sb, SUB_A, "=Old Name");
    set_contact(&sb, SUB_B, "'-quoted already");
    set_contact(&sb, SUB_C, "@Old");
    let phone_before = telephone(&sb);
    assert!(phone_before.starts_with('+'), "{phone_before}");

    let w = Workdir::new();
    let mut csv = String::from(
        "operation,customer_id,subscription_id,support_tenant_id,support_mpn_id,name,telephone\n",
    );
    for sub in [SUB_A, SUB_B, SUB_C] {
        csv.push_str(&format!(
            "support-contact,{CONTOSO},{sub},{TREY_TENANT},4391507,Trey Research,\n"
        ));
    }
    csv.push_str("support-profile,,,,,,+46 8 555 0100\n");
    let input = w.write("changes.csv", csv);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(contact_name(&sb, SUB_A), "Trey Research");
    assert_eq!(telephone(&sb), "+46 8 555 0100");

    let undo = undo_of(&w.path("changes.results.csv"));
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let undo_file = w.path("changes.undo.csv");
    let (headers, rows) = table(&undo_file);
    assert_eq!(headers.last().map(String::as_str), Some("pcbulk_undo"));
    // Safe to open in a spreadsheet: nothing starts as a formula.
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["'=Old Name", "''-quoted already", "'@Old", ""],
        "{rows:?}"
    );
    assert_eq!(rows[3]["telephone"], format!("'{phone_before}"));
    assert_eq!(rows[0]["pcbulk_undo"], "1", "the results row it puts back");

    let validated = pcbulk()
        .arg("validate")
        .arg(&undo_file)
        .arg("--out")
        .arg(w.path("undo.validate.csv"))
        .output()
        .unwrap();
    assert_eq!(code(&validated), 0, "{}", text(&validated));
    assert!(
        !text(&validated).contains("pcbulk_undo"),
        "the marker is no column to warn about: {}",
        text(&validated)
    );

    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(contact_name(&sb, SUB_A), "=Old Name");
    assert_eq!(contact_name(&sb, SUB_B), "'-quoted already");
    assert_eq!(contact_name(&sb, SUB_C), "@Old");
    assert_eq!(telephone(&sb), phone_before);
}

#[test]
fn a_users_own_file_with_a_leading_apostrophe_is_sent_as_written() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "mine.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_A},{TREY_TENANT},4391507,'=Trey Research\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        contact_name(&sb, SUB_A),
        "'=Trey Research",
        "no marker column: the apostrophe is the user's"
    );
}

#[test]
fn undo_reads_a_results_header_neutralised_by_the_results_writer() {
    // `-Customer ID` names customer_id in the input; the results file writes it `'-Customer ID`.
    let sb = Sandbox::start(&[]);
    set_contact(&sb, SUB_A, "Old Name");
    let w = Workdir::new();
    let input = w.write(
        "changes.csv",
        format!(
            "-Customer ID,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_A},{TREY_TENANT},4391507,Trey Research\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (headers, _) = table(&w.path("changes.results.csv"));
    assert_eq!(headers[0], "'-Customer ID");

    let undo = undo_of(&w.path("changes.results.csv"));
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let (_, rows) = table(&w.path("changes.undo.csv"));
    assert_eq!(rows[0]["customer_id"], CONTOSO, "{rows:?}");
    let out = sb.apply(&w.path("changes.undo.csv"), &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(contact_name(&sb, SUB_A), "Old Name");
}

#[test]
fn undo_refuses_before_values_the_row_did_not_change_or_for_a_key() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!("customer_id,email\n{NORTHWIND},ap@northwind.example\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let journal = w.path("billing.results.csv.journal");
    let honest = std::fs::read_to_string(&journal).unwrap();
    let undo = || {
        pcbulk()
            .arg("undo")
            .arg(w.path("billing.results.csv"))
            .output()
            .unwrap()
    };
    let out = undo();
    assert_eq!(code(&out), 0, "the honest journal: {}", text(&out));
    std::fs::remove_file(w.path("billing.undo.csv")).unwrap();

    for (column, why) in [
        ("city", "which that row of"),
        ("customer_id", "which billing-profile rows do not change"),
    ] {
        let mut line = 0;
        let tampered: Vec<String> = honest
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                if r["t"] == "before" {
                    line = i + 1;
                    r["values"][column] = "Somewhere Else".into();
                }
                r.to_string()
            })
            .collect();
        std::fs::write(&journal, tampered.join("\n") + "\n").unwrap();
        let out = undo();
        assert_eq!(code(&out), 2, "{column}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("line {line}:")),
            "{}",
            text(&out)
        );
        assert!(text(&out).contains(why), "{}", text(&out));
        assert!(!w.path("billing.undo.csv").exists(), "no undo file written");
    }
}

/// An undo file is written like the results: UTF-8 with a BOM, in the input's delimiter, so a
/// semicolon file from a European Excel comes back in semicolons and opens in columns there.
#[test]
fn an_undo_file_keeps_the_input_s_delimiter_and_a_bom() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "kontakte.csv",
        format!(
            "customer_id;subscription_id;support_tenant_id;support_mpn_id;name\n\
             {CONTOSO};{SUB_A};{TREY_TENANT};4391507;Trey Research\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = undo_of(&w.path("kontakte.results.csv"));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let bytes = std::fs::read(w.path("kontakte.undo.csv")).unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "a BOM");
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&bytes[3..]);
    let headers = r.headers().unwrap().clone();
    assert!(headers.len() > 3, "read in semicolons: {headers:?}");
    assert!(headers.iter().any(|h| h == "name"), "{headers:?}");
    assert_eq!(r.records().count(), 1);
}

/// Found by an outside tester: a carried column named like another operation's (`note`, a
/// service request's; `city`, a billing profile's) was left out of the undo file of a
/// support-contact run. The undo file keeps them, says its operation (the header alone could fit
/// a billing profile too), and applied, puts the contacts back, the columns still carried.
#[test]
fn undo_keeps_a_carried_column_named_like_another_operation_s() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "changes.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name,note,city\n\
             {CONTOSO},{SUB_A},{TREY_TENANT},4391507,Trey Research,ticket 42,Lyon\n"
        ),
    );
    let before = contact_name(&sb, SUB_A);
    let out = sb.apply(&input, &["--operation", "support-contact"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo = undo_of(&w.path("changes.results.csv"));
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let (headers, rows) = table(&w.path("changes.undo.csv"));
    assert!(headers.contains(&"note".to_owned()), "{headers:?}");
    assert_eq!(rows[0]["note"], "ticket 42");
    assert_eq!(rows[0]["city"], "Lyon");
    assert_eq!(rows[0]["operation"], "support-contact");

    let out = sb.apply(&w.path("changes.undo.csv"), &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let applied = results(&w.path("changes.undo.results.csv"));
    assert_eq!(applied[0]["status"], "succeeded", "{applied:?}");
    assert_eq!(applied[0]["note"], "ticket 42");
    assert_eq!(contact_name(&sb, SUB_A), before);
    assert!(
        !sb.note_counts().contains_key("ticket 42"),
        "no note was added"
    );
}

/// `pcbulk undo RESULTS`, run to its end.
fn undo_of(results: &std::path::Path) -> std::process::Output {
    pcbulk().arg("undo").arg(results).output().unwrap()
}

/// Found by an outside tester: a carried cell of a marked file (an export's `subscription_name`,
/// escaped `''apostrophe` for the name `'apostrophe`) gained one more `'` in the undo file, and
/// another each time it went round.
#[test]
fn a_marked_file_s_carried_cell_comes_out_of_undo_escaped_once() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "export.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name,subscription_name,\
             pcbulk_export\n\
             {CONTOSO},{SUB_A},{TREY_TENANT},4391507,Trey Research,''apostrophe,1\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo = undo_of(&w.path("export.results.csv"));
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let (_, rows) = table(&w.path("export.undo.csv"));
    assert_eq!(rows[0]["subscription_name"], "''apostrophe");
}
