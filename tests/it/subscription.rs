//! The subscription operation against the sandbox's demo tenant: names, auto-renew, seats and
//! status change; the service's refusals land on their rows; `plan` foresees what the read shows
//! will be refused; undo puts a run back; a file of current values writes nothing; and a support
//! contact and a subscription row on one subscription run in input order.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// The first named customer of the demo tenant, whose five subscriptions have one shape each.
const CUSTOMER: &str = "c2000000-0000-4000-8000-000000000000";
/// Legacy, active.
const LEGACY: &str = "d2000000-0000-4000-8000-000000000000";
/// New Commerce, bought a day ago: every seat still refundable.
const NCE_OPEN: &str = "d2000000-0000-4000-8000-000000000001";
/// New Commerce, bought months ago: no seat refundable.
const NCE_PAST: &str = "d2000000-0000-4000-8000-000000000003";
/// Legacy, suspended.
const SUSPENDED: &str = "d2000000-0000-4000-8000-000000000004";

const HEADER: &str =
    "customer_id,subscription_id,friendly_name,auto_renew,quantity,subscription_status\n";

fn seats(sb: &Sandbox, sub: &str) -> u64 {
    sb.subscription(sub)["quantity"].as_u64().unwrap()
}

/// The sandbox's writes applied so far, by method and path.
fn writes(sb: &Sandbox) -> BTreeMap<String, u64> {
    serde_json::from_value(sb.get("/_sandbox/writes")).unwrap()
}

fn changes(sb: &Sandbox) -> Vec<String> {
    serde_json::from_value(sb.state()["changes"].clone()).unwrap()
}

#[test]
fn changes_names_auto_renew_seats_and_status() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let open = seats(&sb, NCE_OPEN);
    let csv = format!(
        "{HEADER}{CUSTOMER},{LEGACY},Design team,No,20,\n\
         {CUSTOMER},{{{}}},,,{},\n\
         {CUSTOMER},{SUSPENDED},,,,Active\n",
        NCE_OPEN.to_ascii_uppercase(),
        open + 3
    );
    let input = w.write("subs.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("subs.results.csv"));
    assert_eq!(statuses(&w.path("subs.results.csv")), ["succeeded"; 3]);

    let legacy = sb.subscription(LEGACY);
    assert_eq!(legacy["friendlyName"], "Design team");
    assert_eq!(legacy["autoRenewEnabled"], false);
    assert_eq!(legacy["quantity"], 20);
    assert_eq!(seats(&sb, NCE_OPEN), open + 3);
    assert_eq!(sb.subscription(SUSPENDED)["status"], "active");
    assert!(
        rows[0]["change"].contains(r#"friendly_name: "Visio Plan 2" → "Design team""#)
            && rows[0]["change"].contains(r#"auto_renew: "true" → "false""#),
        "{:?}",
        rows[0]
    );
    assert_eq!(
        rows[2]["change"],
        r#"subscription_status: "suspended" → "active""#
    );
}

#[test]
fn a_new_commerce_seat_cut_the_service_refuses_is_that_row_s_failure_with_its_code() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let before = seats(&sb, NCE_PAST);
    let csv = format!("{HEADER}{CUSTOMER},{NCE_PAST},,,1,\n{CUSTOMER},{LEGACY},,,7,\n");
    let input = w.write("cut.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("cut.results.csv"));
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["error_code"], "900117");
    assert_eq!(rows[0]["http_status"], "400");
    assert!(
        rows[0]["error_message"].contains("cancellation window"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[1]["status"], "succeeded");
    assert_eq!(
        seats(&sb, NCE_PAST),
        before,
        "the refused cut changed nothing"
    );
}

#[test]
fn plan_reports_a_cut_past_the_cancellation_window_and_a_new_commerce_support_contact_before_sending(
) {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let csv = format!(
        "operation,customer_id,subscription_id,quantity,support_tenant_id,support_mpn_id,name\n\
         subscription,{CUSTOMER},{NCE_PAST},1,,,\n\
         support-contact,{CUSTOMER},{NCE_OPEN},,{TREY_TENANT},4391507,Trey Research\n\
         subscription,{CUSTOMER},{NCE_OPEN},1,,,\n\
         support-contact,{CUSTOMER},{LEGACY},,{TREY_TENANT},4391507,Trey Research\n"
    );
    let input = w.write("mixed.csv", csv);
    let out = run(&sb, &w, "plan", &input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("mixed.plan.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["status"].as_str(), r["error_code"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("invalid", "past_cancellation_window"),
            ("invalid", "new_commerce"),
            ("planned", ""),
            ("planned", ""),
        ]
    );
    assert!(
        rows[0]["error_message"]
            .contains("none of its seats is still inside its cancellation window"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[1]["error_message"].contains("New Commerce"),
        "{:?}",
        rows[1]
    );
    assert!(writes(&sb).is_empty(), "a plan writes nothing");
}

#[test]
fn undo_puts_the_subscriptions_back() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let was = [LEGACY, NCE_OPEN].map(|s| sb.subscription(s));
    let csv = format!(
        "{HEADER}{CUSTOMER},{LEGACY},Renamed,no,{},\n{CUSTOMER},{NCE_OPEN},,,{},\n",
        seats(&sb, LEGACY) + 5,
        seats(&sb, NCE_OPEN) + 2
    );
    let input = w.write("subs.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_ne!(sb.subscription(LEGACY), was[0]);

    let undo = pcbulk()
        .arg("undo")
        .arg(w.path("subs.results.csv"))
        .output()
        .unwrap();
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let out = run(&sb, &w, "apply", &w.path("subs.undo.csv"), &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("subs.undo.results.csv")), ["succeeded"; 2]);
    for (sub, was) in [LEGACY, NCE_OPEN].iter().zip(&was) {
        let now = sb.subscription(sub);
        for field in ["friendlyName", "autoRenewEnabled", "quantity", "status"] {
            assert_eq!(now[field], was[field], "{sub} {field}");
        }
    }
}

#[test]
fn undo_leaves_a_subscription_changed_since_the_run_as_it_is() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let csv =
        format!("{HEADER}{CUSTOMER},{LEGACY},Renamed,,,\n{CUSTOMER},{NCE_OPEN},Renamed too,,,\n");
    let input = w.write("subs.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo = pcbulk()
        .arg("undo")
        .arg(w.path("subs.results.csv"))
        .output()
        .unwrap();
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    // Someone renames the first one in the portal after the run.
    let path = format!("/customers/{CUSTOMER}/subscriptions/{LEGACY}");
    let body = serde_json::json!({"friendlyName": "Named in the portal"});
    let resp = sb.call("PATCH", &path, Some(body), &[]).unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());

    let out = run(&sb, &w, "apply", &w.path("subs.undo.csv"), &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("subs.undo.results.csv"));
    assert_eq!(rows[0]["error_code"], "drifted", "{:?}", rows[0]);
    assert_eq!(rows[1]["status"], "succeeded");
    assert_eq!(
        sb.subscription(LEGACY)["friendlyName"],
        "Named in the portal"
    );
    assert_ne!(sb.subscription(NCE_OPEN)["friendlyName"], "Renamed too");
}

#[test]
fn a_row_holding_the_current_values_is_unchanged_and_sends_no_write() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut csv = String::from(HEADER);
    // Every shape, the suspended one and a status no row may set among them.
    for sub in [LEGACY, NCE_OPEN, NCE_PAST, SUSPENDED] {
        let s = sb.subscription(sub);
        csv.push_str(&format!(
            "{CUSTOMER},{sub},{},{},{},{}\n",
            s["friendlyName"].as_str().unwrap(),
            s["autoRenewEnabled"],
            s["quantity"],
            s["status"].as_str().unwrap().to_ascii_uppercase(),
        ));
    }
    let input = w.write("same.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("same.results.csv")), ["unchanged"; 4]);
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
}

#[test]
fn a_status_a_row_cannot_set_is_refused_only_where_it_would_change_the_subscription() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let csv = format!("{HEADER}{CUSTOMER},{LEGACY},,,,expired\n");
    let input = w.write("expire.csv", csv);
    let out = run(&sb, &w, "apply", &input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("expire.results.csv"));
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["error_code"].as_str()),
        ("invalid", "invalid_status")
    );
    assert!(writes(&sb).is_empty());
}

#[test]
fn a_row_that_sets_the_reseller_of_record_is_refused_saying_why_and_what_to_do() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let csv = format!(
        "customer_id,subscription_id,quantity,reseller_partner_id\n\
         {CUSTOMER},{LEGACY},9,5123456\n\
         {CUSTOMER},{NCE_OPEN},40,\n"
    );
    let input = w.write("reseller.csv", csv);
    let out = run(&sb, &w, "apply", &input, &["--operation", "subscription"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("reseller.results.csv"));
    assert_eq!(rows[0]["status"], "invalid");
    assert_eq!(rows[0]["error_code"], "reseller_not_writable");
    let message = &rows[0]["error_message"];
    assert!(
        message.starts_with("column \"reseller_partner_id\": pcbulk cannot change"),
        "{message}"
    );
    assert!(message.contains("empty the cell"), "{message}");
    assert_eq!(rows[1]["status"], "succeeded", "an empty cell asks nothing");
    assert_ne!(
        seats(&sb, LEGACY),
        9,
        "nothing was sent for the refused row"
    );
}

#[test]
fn a_support_contact_row_and_a_subscription_row_on_one_subscription_run_in_input_order() {
    // Calls take 0 to 40 ms each, at random: rows running side by side would finish in any order.
    let sb = Sandbox::start(&["--latency-ms", "0-40", "--seed", "5"]);
    let w = Workdir::new();
    let subs = [
        (CONTOSO, "d0000001-0000-4000-8000-000000000011"),
        (CONTOSO, "d0000001-0000-4000-8000-000000000012"),
        (CONTOSO, "d0000001-0000-4000-8000-000000000013"),
        (FABRIKAM, "d0000002-0000-4000-8000-000000000021"),
        (NORTHWIND, "d0000003-0000-4000-8000-000000000031"),
        (NORTHWIND, "d0000003-0000-4000-8000-000000000032"),
    ];
    let mut csv = String::from(
        "operation,customer_id,subscription_id,friendly_name,support_tenant_id,support_mpn_id,name\n",
    );
    for (i, (c, s)) in subs.iter().enumerate() {
        let contact = format!("support-contact,{c},{s},,{TREY_TENANT},4391507,Trey Research\n");
        let rename = format!("subscription,{c},{s},Renamed {i},,,\n");
        // Half the pairs name the contact first, half the subscription.
        let pair = if i % 2 == 0 {
            [rename, contact]
        } else {
            [contact, rename]
        };
        csv.push_str(&pair.concat());
    }
    let input = w.write("mixed.csv", csv);
    let out = run(&sb, &w, "apply", &input, &["--concurrency", "12"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let changes = changes(&sb);
    for (i, (_, s)) in subs.iter().enumerate() {
        let at = |what: &str| {
            changes
                .iter()
                .position(|c| c.starts_with(&format!("subscription {s} ")) && c.contains(what))
                .unwrap_or_else(|| panic!("{s} {what}: {changes:?}"))
        };
        let (rename, contact) = (at("friendlyName"), at("support contact"));
        if i % 2 == 0 {
            assert!(rename < contact, "{s}: {changes:?}");
        } else {
            assert!(contact < rename, "{s}: {changes:?}");
        }
    }
}

#[test]
fn a_patch_whose_answer_is_lost_is_looked_for_and_lands_once() {
    // A fifth of the calls lose their answer after the change is applied, and the service does not
    // recognise a resent MS-RequestId: a PATCH sent again blindly would be applied twice.
    let sb = Sandbox::start(&[
        "--subscriptions",
        "30",
        "--drop-after",
        "0.2",
        "--no-replay",
        "--seed",
        "7",
    ]);
    let w = Workdir::new();
    let mut csv = String::from(HEADER);
    for i in 0..30 {
        csv.push_str(&format!(
            "{CONTOSO},{},Seat {i},,{},\n",
            extra_subscription(i),
            2 + i % 5
        ));
    }
    let input = w.write("lost.csv", csv);
    let out = run(&sb, &w, "apply", &input, &["--max-attempts", "10"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(sb.stats()["faults"]["dropAfter"].as_u64().unwrap() > 0);
    let writes = writes(&sb);
    for i in 0..30 {
        let sub = extra_subscription(i);
        let key = format!("PATCH /v1/customers/{CONTOSO}/subscriptions/{sub}");
        assert_eq!(writes.get(&key), Some(&1), "{key}: {writes:?}");
        assert_eq!(sb.subscription(&sub)["friendlyName"], format!("Seat {i}"));
    }
}

#[test]
fn the_subscriptions_sample_applies_as_it_says() {
    let w = Workdir::new();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/subscriptions.csv");
    let out_path = w.path("results.csv");
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--sandbox", "--rate", "200", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let got: Vec<(String, String)> = results(&out_path)
        .into_iter()
        .map(|r| (r["status"].clone(), r["error_code"].clone()))
        .collect();
    let want = [
        ("succeeded", ""),
        ("succeeded", ""),
        ("succeeded", ""),
        ("failed", "900117"),
        ("failed", "800091"),
        ("invalid", "invalid_quantity"),
        ("invalid", "invalid_auto_renew"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(s, c)| (s.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want, "{}", text(&out));
}
