//! Undo reverts only what is still the run's: an undo file records what the run set in
//! `expected_<column>` columns, and applying it leaves alone (`drifted`) a target someone changed
//! since, unless `--force`. Any file may carry such preconditions; the admin's own columns come back
//! in the undo file.

use crate::common::*;

const SUB_A: &str = "d0000001-0000-4000-8000-000000000011";
const SUB_B: &str = "d0000001-0000-4000-8000-000000000012";
const SUB_C: &str = "d0000001-0000-4000-8000-000000000013";
const FABRIKAM_MPN: &str = "5123456";

fn contact_name(sb: &Sandbox, sub: &str) -> String {
    sb.subscription(sub)["supportContact"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn undo(w: &Workdir, results: &str) -> std::path::PathBuf {
    let out = pcbulk().arg("undo").arg(w.path(results)).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    w.path(&results.replace(".results.csv", ".undo.csv"))
}

/// Three Contoso subscriptions moved from Fabrikam Resellers to Trey Research, from a file whose
/// first column is the admin's own.
fn moved_to_trey(sb: &Sandbox, w: &Workdir) -> std::path::PathBuf {
    let mut csv = String::from(
        "Customer,customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n",
    );
    for sub in [SUB_A, SUB_B, SUB_C] {
        sb.set_contact(
            sub,
            FABRIKAM_RESELLER_TENANT,
            FABRIKAM_MPN,
            "Fabrikam Resellers",
        );
        csv.push_str(&format!(
            "Contoso Ltd,{CONTOSO},{sub},{TREY_TENANT},4391507,Trey Research\n"
        ));
    }
    let input = w.write("contacts.csv", csv);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    undo(w, "contacts.results.csv")
}

#[test]
fn an_undo_leaves_a_target_changed_since_the_run_as_it_is_and_reverts_the_rest() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let undo_file = moved_to_trey(&sb, &w);
    // A colleague sets one of them in the portal after the run.
    sb.set_contact(
        SUB_B,
        FABRIKAM_RESELLER_TENANT,
        FABRIKAM_MPN,
        "Colleague's Pick",
    );

    let plan = run(&sb, &w, "plan", &undo_file, &[]);
    assert_eq!(code(&plan), 1, "{}", text(&plan));
    let planned = results(&w.path("contacts.undo.plan.csv"));
    let status: Vec<(&str, &str)> = planned
        .iter()
        .map(|r| (r["status"].as_str(), r["error_code"].as_str()))
        .collect();
    assert_eq!(
        status,
        [("planned", ""), ("failed", "drifted"), ("planned", "")],
        "the plan says which row would be left alone"
    );

    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("contacts.undo.results.csv"));
    assert_eq!(rows[0]["status"], "succeeded");
    assert_eq!(rows[2]["status"], "succeeded");
    assert_eq!(rows[1]["status"], "failed");
    assert_eq!(rows[1]["error_code"], "drifted");
    let message = &rows[1]["error_message"];
    for part in [
        "name",
        "\"Trey Research\"",
        "\"Colleague's Pick\"",
        "--force",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(
        contact_name(&sb, SUB_B),
        "Colleague's Pick",
        "left as it is"
    );
    assert_eq!(contact_name(&sb, SUB_A), "Fabrikam Resellers");
    assert_eq!(contact_name(&sb, SUB_C), "Fabrikam Resellers");

    let forced = sb.apply(&undo_file, &["--force"]);
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    assert_eq!(
        statuses(&w.path("contacts.undo.results.csv")),
        ["unchanged", "succeeded", "unchanged"]
    );
    assert_eq!(contact_name(&sb, SUB_B), "Fabrikam Resellers");
}

#[test]
fn an_undo_file_keeps_the_admin_s_own_columns_and_expects_what_the_run_set() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let undo_file = moved_to_trey(&sb, &w);
    let (headers, rows) = table(&undo_file);
    assert_eq!(
        headers,
        [
            "Customer",
            "customer_id",
            "subscription_id",
            "support_tenant_id",
            "expected_support_tenant_id",
            "support_mpn_id",
            "expected_support_mpn_id",
            "name",
            "expected_name",
            "pcbulk_undo"
        ]
    );
    for r in &rows {
        assert_eq!(r["Customer"], "Contoso Ltd", "{r:?}");
        assert_eq!(r["name"], "Fabrikam Resellers");
        assert_eq!(r["expected_name"], "Trey Research");
        assert_eq!(r["support_mpn_id"], FABRIKAM_MPN);
        assert_eq!(r["expected_support_mpn_id"], "4391507");
        assert_eq!(r["expected_support_tenant_id"], TREY_TENANT);
    }
    let validated = pcbulk().arg("validate").arg(&undo_file).output().unwrap();
    assert_eq!(code(&validated), 0, "{}", text(&validated));
    assert!(
        !text(&validated).contains("expected_name"),
        "an expected_ column is read, not the admin's own: {}",
        text(&validated)
    );
}

fn billing_city(sb: &Sandbox, customer: &str) -> String {
    sb.customer(customer)["billingProfile"]["defaultAddress"]["city"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_billing_undo_leaves_a_profile_changed_since_and_puts_back_the_other() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let was = [CONTOSO, FABRIKAM].map(|c| billing_city(&sb, c));
    let input = w.write(
        "billing.csv",
        format!(
            "customer_id,city,email\n{CONTOSO},Lund,ap@contoso.example\n\
             {FABRIKAM},Lund,ap@fabrikam.example\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo_file = undo(&w, "billing.results.csv");
    let (headers, rows) = table(&undo_file);
    let at = |h: &str| headers.iter().position(|x| x == h).unwrap_or(usize::MAX);
    assert_eq!(at("expected_city"), at("city") + 1, "{headers:?}");
    assert_eq!(rows[0]["city"], was[0]);
    assert_eq!(rows[0]["expected_city"], "Lund");
    assert_eq!(rows[1]["expected_email"], "ap@fabrikam.example");

    // Someone moves Fabrikam again after the run.
    let later = w.write("later.csv", format!("customer_id,city\n{FABRIKAM},Malmö\n"));
    let out = sb.apply(&later, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("billing.undo.results.csv"));
    assert_eq!(rows[0]["status"], "succeeded", "{rows:?}");
    assert_eq!(rows[1]["error_code"], "drifted", "{rows:?}");
    assert!(
        rows[1]["error_message"].contains(r#"city: expected "Lund", found "Malmö""#),
        "{}",
        rows[1]["error_message"]
    );
    assert_eq!(billing_city(&sb, CONTOSO), was[0]);
    assert_eq!(billing_city(&sb, FABRIKAM), "Malmö");
    let email = &sb.customer(FABRIKAM)["billingProfile"]["email"];
    assert_eq!(
        email, "ap@fabrikam.example",
        "nothing of the row was written"
    );
}

#[test]
fn an_expected_column_in_a_users_own_file_is_a_precondition() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    sb.set_contact(
        SUB_A,
        FABRIKAM_RESELLER_TENANT,
        FABRIKAM_MPN,
        "Fabrikam Resellers",
    );
    sb.set_contact(
        SUB_B,
        FABRIKAM_RESELLER_TENANT,
        FABRIKAM_MPN,
        "Someone Else",
    );
    let input = w.write(
        "mine.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name,Expected Name\n\
             {CONTOSO},{SUB_A},{TREY_TENANT},4391507,Trey Research,Fabrikam Resellers\n\
             {CONTOSO},{SUB_B},{TREY_TENANT},4391507,Trey Research,Fabrikam Resellers\n\
             {CONTOSO},{SUB_C},{TREY_TENANT},4391507,Trey Research,\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("mine.results.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["status"].as_str(), r["error_code"].as_str()))
        .collect();
    assert_eq!(
        got,
        [("succeeded", ""), ("failed", "drifted"), ("succeeded", "")],
        "an empty expected cell checks nothing"
    );
    assert_eq!(contact_name(&sb, SUB_B), "Someone Else");
}

#[test]
fn an_expected_column_the_operation_cannot_hold_is_a_usage_error_and_nothing_is_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let header = "customer_id,subscription_id,support_tenant_id,support_mpn_id,name";
    let row = format!("{CONTOSO},{SUB_A},{TREY_TENANT},4391507,Trey Research");
    for (extra, named) in [
        ("expected_city", "support-contact has no column city"),
        ("expected_customer_id", "names the row's target"),
        ("expected_nmae", "\"nmae\" is no column pcbulk reads"),
    ] {
        let input = w.write("odd.csv", format!("{header},{extra}\n{row},x\n"));
        let out = sb.apply(&input, &[]);
        assert_eq!(code(&out), 2, "{extra}: {}", text(&out));
        let said = text(&out);
        assert!(said.contains(&format!("\"{extra}\"")), "{said}");
        assert!(said.contains(named), "{said}");
        let validated = pcbulk().arg("validate").arg(&input).output().unwrap();
        assert_eq!(code(&validated), 2, "{extra}: {}", text(&validated));
    }
    assert_eq!(puts(&sb), 0, "nothing was sent");
}

/// A billing address moved to another country journals the state it keeps; undo took that for a
/// damaged journal and wrote nothing.
#[test]
fn undo_of_a_country_move_that_kept_the_state_is_written_and_puts_the_country_back() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let address = |sb: &Sandbox| sb.customer(CONTOSO)["billingProfile"]["defaultAddress"].clone();
    let was = address(&sb);
    assert!(
        !was["state"].as_str().unwrap_or_default().is_empty(),
        "{was}"
    );
    let input = w.write(
        "move.csv",
        format!("customer_id,country,phone_number\n{CONTOSO},DE,+49 30 1234\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo_file = undo(&w, "move.results.csv");
    let (_, rows) = table(&undo_file);
    assert_eq!(rows[0]["country"], was["country"].as_str().unwrap());
    assert_eq!(rows[0]["expected_country"], "DE");
    assert_eq!(rows[0]["state"], "", "the state was kept, not changed");
    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(address(&sb), was);
}

/// Found by an outside tester: a billing file keyed by `Tenant ID` (billing's own name for
/// customer_id) gave an undo file with an empty customer_id, which no apply could read.
#[test]
fn an_undo_of_a_billing_file_keyed_by_tenant_id_names_each_customer() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let was = billing_city(&sb, CONTOSO);
    let input = w.write(
        "billing.csv",
        format!("Kunde,Tenant ID,City\nContoso Ltd,{CONTOSO},Lund\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo_file = undo(&w, "billing.results.csv");
    let (_, rows) = table(&undo_file);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["customer_id"], CONTOSO, "{rows:?}");
    assert_eq!(rows[0]["Kunde"], "Contoso Ltd", "{rows:?}");
    let out = sb.apply(&undo_file, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(billing_city(&sb, CONTOSO), was, "put back");
}
