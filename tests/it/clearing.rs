//! `#N/A` clears a field: as CSV text or as Excel's `#N/A` error cell, the field is written empty
//! and the change shows what it held; on a field Partner Center requires, the row is refused
//! (`cannot_clear`) and nothing is sent for it. An empty cell still leaves a field as it is.

use crate::common::*;
use rust_xlsxwriter::{Formula, Workbook};

fn address(sb: &Sandbox, customer: &str) -> serde_json::Value {
    sb.customer(customer)["billingProfile"]["defaultAddress"].clone()
}

#[test]
fn n_a_clears_a_billing_phone_number_and_the_change_shows_the_old_number() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!("customer_id;phone_number;city\r\n{CONTOSO};#N/A;\r\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("billing.results.csv"));
    assert_eq!(rows[0]["status"], "succeeded", "{rows:?}");
    assert_eq!(rows[0]["change"], r#"phone_number: "4255550100" → """#);
    let after = address(&sb, CONTOSO);
    assert_eq!(after["phoneNumber"], "", "cleared");
    assert_eq!(
        after["city"], "Redmond",
        "an empty cell leaves the field as it is"
    );
    assert_eq!(sb.stats()["violations"], 0, "{}", sb.stats());
}

#[test]
fn n_a_in_a_required_field_is_cannot_clear_and_nothing_is_sent_for_the_row() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!(
            "Customer ID,First Name,City\r\n\
             {CONTOSO},#N/A,Seattle\r\n\
             {FABRIKAM},,Lyon 2e\r\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    let rows = results(&w.path("billing.results.csv"));
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(rows[0]["status"], "invalid", "{rows:?}");
    assert_eq!(rows[0]["error_code"], "cannot_clear");
    assert!(
        rows[0]["error_message"].contains("First Name"),
        "names the column as the file does: {rows:?}"
    );
    assert_eq!(rows[1]["status"], "succeeded", "{rows:?}");
    assert_eq!(address(&sb, CONTOSO)["city"], "Redmond", "row 1 not sent");
    assert_eq!(sb.customer(CONTOSO)["billingProfile"]["firstName"], "Ann");
    let stats = sb.stats();
    assert_eq!(
        stats["calls"]["PUT billingprofile 200"], 1,
        "only row 2 wrote: {stats}"
    );
}

#[test]
fn a_plan_that_moves_an_address_abroad_warns_about_the_state_kept() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "move.csv",
        format!("customer_id,country,postal_code\r\n{CONTOSO},DE,10115\r\n"),
    );
    let out = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("move.plan.csv"));
    let change = &rows[0]["change"];
    assert!(change.contains(r#"country: "US" → "DE""#), "{change}");
    assert!(change.contains(r#"state "WA" is kept"#), "{change}");
    assert_eq!(
        address(&sb, CONTOSO)["country"],
        "US",
        "a plan writes nothing"
    );
}

#[test]
fn the_address_s_own_names_are_columns_of_their_own() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "names.csv",
        format!("customer_id,address_first_name,address_last_name\r\n{CONTOSO},#N/A,Berg\r\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let after = address(&sb, CONTOSO);
    assert_eq!(after["firstName"], "");
    assert_eq!(after["lastName"], "Berg");
    let profile = sb.customer(CONTOSO)["billingProfile"].clone();
    assert_eq!(
        profile["firstName"], "Ann",
        "the profile's own name is untouched"
    );
}

#[test]
fn an_excel_n_a_error_cell_clears_too_and_other_errors_are_still_refused() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    for (c, h) in ["customer_id", "phone_number"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, CONTOSO).unwrap();
    ws.write_formula(1, 1, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();
    let xlsx = book.save_to_buffer().unwrap();

    let input = w.write("billing.xlsx", &xlsx);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("billing.results.csv"));
    assert_eq!(rows[0]["change"], r#"phone_number: "4255550100" → """#);
    assert_eq!(address(&sb, CONTOSO)["phoneNumber"], "");

    let broken = rewrite_part(&xlsx, "xl/worksheets/sheet1.xml", |xml| {
        assert!(xml.contains(r#"t="e""#), "an error cell: {xml}");
        xml.replace("#N/A", "#REF!")
    });
    let input = w.write("broken.xlsx", &broken);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("#REF!"), "{}", text(&out));
}
