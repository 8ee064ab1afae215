//! `pcbulk export` against a sandbox process over HTTP: it follows every page of the customer
//! listing, writes one row per target with its names, narrows with `--where` and `--customer`, and
//! its file applied unchanged writes nothing, in CSV and in xlsx; refusals and stops exit as the
//! SPEC says.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::*;
use serde_json::{json, Value};

/// `pcbulk export OP --base-url <sandbox> --out <w/out>` at a rate that never waits.
fn export(sb: &Sandbox, w: &Workdir, op: &str, out: &str, extra: &[&str]) -> Output {
    pcbulk()
        .args([
            "export",
            op,
            "--base-url",
            &sb.url,
            "--rate",
            "2000",
            "--out",
        ])
        .arg(w.path(out))
        .args(extra)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .expect("run pcbulk export")
}

/// The writes the sandbox applied, by target.
fn writes(sb: &Sandbox) -> BTreeMap<String, Value> {
    serde_json::from_value(sb.get("/_sandbox/writes")).unwrap()
}

/// Every subscription the partner may read (Tailspin Toys refuses every call): (customer, sub).
fn readable_subscriptions(sb: &Sandbox) -> Vec<(Value, Value)> {
    let state = sb.state();
    let mut out = Vec::new();
    for c in state["customers"].as_array().unwrap() {
        if c["delegatedAdmin"] == json!(false) {
            continue;
        }
        for s in c["subscriptions"].as_array().unwrap() {
            out.push((c.clone(), s.clone()));
        }
    }
    out
}

/// Applies `file` to the sandbox and returns the results' statuses.
fn apply_statuses(sb: &Sandbox, file: &Path, op: &str) -> Vec<String> {
    let out = sb.apply(file, &["--operation", op, "--yes", "-q"]);
    assert!(code(&out) <= 1, "{}", text(&out));
    let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
    statuses(&file.with_file_name(format!("{stem}.results.csv")))
}

#[test]
fn support_contacts_export_follows_every_page_and_applied_unchanged_writes_nothing() {
    let sb = Sandbox::start(&["--page-size", "2", "--next-with-v1"]);
    let w = Workdir::new();
    let out = export(
        &sb,
        &w,
        "support-contact",
        "c.csv",
        &["--summary-json", &w.path("s.json").display().to_string()],
    );
    // Tailspin Toys is listed but refuses every read: its one target fails, the rest are there.
    assert_eq!(code(&out), 1, "{}", text(&out));
    let (header, rows) = table(&w.path("c.csv"));
    assert_eq!(
        header,
        [
            "customer_id",
            "subscription_id",
            "support_tenant_id",
            "support_mpn_id",
            "name",
            "customer_name",
            "customer_domain",
            "subscription_name",
            "offer_name",
            "pcbulk_export"
        ]
    );
    let want = readable_subscriptions(&sb);
    assert_eq!(rows.len(), want.len(), "one row per subscription");
    for (row, (c, s)) in rows.iter().zip(&want) {
        assert_eq!(row["customer_id"], c["id"].as_str().unwrap());
        assert_eq!(row["subscription_id"], s["id"].as_str().unwrap());
        assert_eq!(row["customer_name"], c["companyName"].as_str().unwrap());
        assert_eq!(row["customer_domain"], c["domain"].as_str().unwrap());
        assert_eq!(
            row["subscription_name"],
            s["friendlyName"].as_str().unwrap()
        );
        assert_eq!(row["offer_name"], s["offerName"].as_str().unwrap());
        assert_eq!(row["name"], s["supportContact"]["name"].as_str().unwrap());
    }
    let customers = sb.state()["customers"].as_array().unwrap().len() as u64;
    let pages = sb.stats()["calls"]["GET customers 200"].as_u64().unwrap();
    assert_eq!(
        pages,
        customers.div_ceil(2),
        "every page of two, and no page twice"
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(w.path("s.json")).unwrap()).unwrap();
    assert_eq!(summary["rows"]["succeeded"], json!(rows.len()));
    assert_eq!(summary["errors"][0]["code"], "900308");
    assert_eq!(summary["outcome"], "completed_with_errors");

    let statuses = apply_statuses(&sb, &w.path("c.csv"), "support-contact");
    assert_eq!(statuses.len(), rows.len());
    assert!(statuses.iter().all(|s| s == "unchanged"), "{statuses:?}");
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
}

/// The round trip for every operation pcbulk has (the list is the registry's: a new operation is
/// held to it as it is added): its export, applied unchanged, is every row `unchanged` and no write.
#[test]
fn every_operation_s_export_applied_unchanged_is_all_unchanged_and_writes_nothing() {
    let sb = Sandbox::start(&["--subscriptions-per-customer", "3"]);
    for op in pcbulk::ops::OPERATIONS {
        let w = Workdir::new();
        let out = export(&sb, &w, op.name, "now.csv", &[]);
        assert!(code(&out) <= 1, "{}: {}", op.name, text(&out));
        let (_, rows) = table(&w.path("now.csv"));
        assert!(!rows.is_empty(), "{}: rows exported", op.name);
        let statuses = apply_statuses(&sb, &w.path("now.csv"), op.name);
        assert_eq!(statuses.len(), rows.len(), "{}", op.name);
        assert!(
            statuses.iter().all(|s| s == "unchanged"),
            "{}: {statuses:?}",
            op.name
        );
        assert!(writes(&sb).is_empty(), "{}: {:?}", op.name, writes(&sb));
    }
}

#[test]
fn where_support_tenant_id_keeps_exactly_that_reseller_s_subscriptions_and_the_edit_applies_to_those(
) {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let subs = readable_subscriptions(&sb);
    let tenant = subs
        .iter()
        .map(|(_, s)| {
            s["supportContact"]["supportTenantId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .find(|t| t != "b0000000-0000-4000-8000-000000000000")
        .expect("some subscription is supported by an indirect reseller");
    let upper = format!("Support Tenant ID={}", tenant.to_uppercase());
    let out = export(&sb, &w, "support-contact", "r.csv", &["--where", &upper]);
    assert!(code(&out) <= 1, "{}", text(&out));
    let (header, rows) = table(&w.path("r.csv"));
    let want: Vec<&str> = subs
        .iter()
        .filter(|(_, s)| s["supportContact"]["supportTenantId"] == tenant.as_str())
        .map(|(_, s)| s["id"].as_str().unwrap())
        .collect();
    let got: Vec<&str> = rows.iter().map(|r| r["subscription_id"].as_str()).collect();
    assert_eq!(got, want);

    // The edited file renames the contact on exactly those subscriptions.
    let mut csv = csv::Writer::from_path(w.path("edited.csv")).unwrap();
    csv.write_record(&header).unwrap();
    for r in &rows {
        csv.write_record(header.iter().map(|h| {
            if h == "name" {
                "Renamed Reseller"
            } else {
                r[h].as_str()
            }
        }))
        .unwrap();
    }
    csv.flush().unwrap();
    // The service refuses a support contact change on a New Commerce subscription (800002).
    let new_commerce: Vec<bool> = want
        .iter()
        .map(|id| {
            subs.iter()
                .any(|(_, s)| s["id"] == *id && s["newCommerce"] == json!(true))
        })
        .collect();
    apply_statuses(&sb, &w.path("edited.csv"), "support-contact");
    let results = results(&w.path("edited.results.csv"));
    assert_eq!(results.len(), want.len());
    for (r, nce) in results.iter().zip(&new_commerce) {
        let (status, code) = (r["status"].as_str(), r["error_code"].as_str());
        match nce {
            true => assert_eq!((status, code), ("failed", "800002"), "{r:?}"),
            false => assert_eq!(status, "succeeded", "{r:?}"),
        }
    }
    let changed: Vec<&str> = want
        .iter()
        .zip(&new_commerce)
        .filter(|(_, nce)| !**nce)
        .map(|(id, _)| *id)
        .collect();
    assert!(!changed.is_empty());
    for (_, s) in readable_subscriptions(&sb) {
        let renamed = s["supportContact"]["name"] == "Renamed Reseller";
        assert_eq!(renamed, changed.contains(&s["id"].as_str().unwrap()), "{s}");
    }
}

/// Contoso's billing profile, set to `fields` (column → value) through the sandbox's own PUT.
fn seed_billing(sb: &Sandbox, customer: &str, fields: &[(&str, &str)]) {
    let path = format!("/customers/{customer}/profiles/billing");
    let mut profile = Sandbox::json(sb.call("GET", &path, None, &[]).unwrap());
    for (column, value) in fields {
        let (in_address, field) = billing_field(column);
        let at = if in_address {
            &mut profile["defaultAddress"]
        } else {
            &mut profile
        };
        at[field] = json!(value);
    }
    let etag = format!("\"{}\"", profile["attributes"]["etag"].as_str().unwrap());
    let resp = sb
        .call("PUT", &path, Some(profile), &[("If-Match", &etag)])
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
}

fn billing_field(column: &str) -> (bool, &'static str) {
    match column {
        "company_name" => (false, "companyName"),
        "last_name" => (false, "lastName"),
        "address_line1" => (true, "addressLine1"),
        "address_line2" => (true, "addressLine2"),
        "city" => (true, "city"),
        "postal_code" => (true, "postalCode"),
        "phone_number" => (true, "phoneNumber"),
        other => panic!("no field for {other}"),
    }
}

/// The cells of an export's first sheet, read with calamine: the header, and each row by column.
fn sheet(path: &Path) -> Vec<BTreeMap<String, String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    rows.map(|r| {
        header
            .iter()
            .cloned()
            .zip(r.iter().map(|c| c.to_string()))
            .collect()
    })
    .collect()
}

/// What an exported cell holds for `value`: the value, with one leading `'` where a spreadsheet
/// would run it or pcbulk would read it as a clear.
fn exported(value: &str) -> String {
    let quoted = value.starts_with(['=', '+', '-', '@', '\'', '\t', '\r'])
        || value == "#N/A"
        || value.trim() != value;
    if quoted {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

const TRICKY: &[(&str, &str)] = &[
    ("company_name", "=SUM(A1:A2)"),
    ("last_name", "Ødegård-Müller"),
    ("address_line1", "\"Les Ébénistes\", 7 rue d'Orsel"),
    ("address_line2", "#N/A"),
    ("city", "Saint-Étienne\nCedex 2"),
    ("postal_code", "00501"),
    ("phone_number", "+33 0477 00 00 00"),
];

#[test]
fn billing_export_round_trips_exactly_in_csv_and_xlsx() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    seed_billing(&sb, FABRIKAM, TRICKY);
    let seeded = writes(&sb);
    for out in ["b.csv", "b.xlsx"] {
        let o = export(
            &sb,
            &w,
            "billing-profile",
            out,
            &["--customer", FABRIKAM, "--customer", CONTOSO],
        );
        assert_eq!(code(&o), 0, "{}", text(&o));
        let rows = match out {
            "b.csv" => table(&w.path(out)).1,
            _ => sheet(&w.path(out)),
        };
        assert_eq!(rows.len(), 2, "{out}");
        let fabrikam = &rows[0];
        assert_eq!(fabrikam["customer_id"], FABRIKAM);
        for (column, value) in TRICKY {
            assert_eq!(fabrikam[*column], exported(value), "{out}: {column}");
        }
        let statuses = apply_statuses(&sb, &w.path(out), "billing-profile");
        assert_eq!(statuses, ["unchanged", "unchanged"], "{out}");
        assert_eq!(writes(&sb), seeded, "{out}: no write");
    }
    let profile = &sb.customer(FABRIKAM)["billingProfile"];
    assert_eq!(
        profile["defaultAddress"]["addressLine2"], "#N/A",
        "the text, never cleared"
    );
}

/// Found by an outside tester: `--where subscription_status=Active` kept no row, the status being
/// compared as written though apply reads it in any case.
#[test]
fn where_subscription_status_in_another_case_keeps_the_subscriptions_in_that_status() {
    let sb = Sandbox::start(&[]);
    for (asked, status) in [("Active", "active"), ("SUSPENDED", "suspended")] {
        let w = Workdir::new();
        let filter = format!("subscription_status={asked}");
        let out = export(&sb, &w, "subscription", "s.csv", &["--where", &filter]);
        assert!(code(&out) <= 1, "{}", text(&out));
        let (_, rows) = table(&w.path("s.csv"));
        let subs = readable_subscriptions(&sb);
        let want: Vec<&str> = subs
            .iter()
            .filter(|(_, s)| s["status"] == status)
            .map(|(_, s)| s["id"].as_str().unwrap())
            .collect();
        assert!(
            !want.is_empty(),
            "the demo tenant has {status} subscriptions"
        );
        let got: Vec<&str> = rows.iter().map(|r| r["subscription_id"].as_str()).collect();
        assert_eq!(got, want, "{asked}");
    }
}

#[test]
fn export_to_stdout_with_the_summary_json_on_stdout_too_is_refused() {
    let sb = Sandbox::start(&[]);
    let out = pcbulk()
        .args([
            "export",
            "billing-profile",
            "--base-url",
            &sb.url,
            "--summary-json",
            "-",
        ])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--summary-json -"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
}

/// Found by an outside tester: a listing stopped by refused credentials, or by a service out of
/// reach, was summed up as `interrupted`, so a cron job acted on the wrong cause.
#[test]
fn a_listing_stopped_by_refused_credentials_or_an_unreachable_service_says_so() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let json = w.path("refused.json");
    let out = pcbulk()
        .args(["export", "billing-profile", "--base-url", &sb.url, "--out"])
        .arg(w.path("refused.csv"))
        .arg("--summary-json")
        .arg(&json)
        .env("PCBULK_ACCESS_TOKEN", "not-a-token-the-sandbox-issued")
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "credentials_refused", "{summary}");
    assert!(!w.path("refused.csv").exists());

    let args = [
        "billing-profile",
        "--base-url",
        "http://127.0.0.1:9",
        "--max-attempts",
        "2",
    ];
    let (out, summary) = export_with_summary(&w, &args, "unreachable.csv");
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(summary["outcome"], "unreachable", "{summary}");
}

/// Found by an outside tester: a customer listing the service kept throttling past the tries
/// allowed ended as `interrupted` (the user's stop), and its reason was joined with a stray `.;`.
#[test]
fn a_listing_stopped_by_429s_ends_unreachable_and_its_reason_reads_cleanly() {
    // One call an hour (far past the test's end), spent here: the export's first call, the
    // customer listing, is throttled, and --max-attempts 1 waits out no 429.
    let sb = Sandbox::start(&["--rate", "0.0001", "--window", "10000"]);
    let spent = sb.call("GET", "/customers", None, &[]).unwrap();
    assert_eq!(spent.status(), 200);
    let w = Workdir::new();
    let args = [
        "billing-profile",
        "--base-url",
        &sb.url,
        "--max-attempts",
        "1",
    ];
    let (out, summary) = export_with_summary(&w, &args, "throttled.csv");
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(summary["outcome"], "unreachable", "{summary}");
    assert_eq!(summary["throttled"], 1, "{summary}");
    let why = summary["aborted"].as_str().unwrap();
    assert!(why.contains("429"), "{why}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(".;") && !why.contains(".;"), "{err}");
    assert!(
        err.contains("stopped early: cannot reach the service"),
        "{err}"
    );
    assert!(!w.path("throttled.csv").exists());
}

/// Found by an outside tester: with a proxy that is down named in the environment, calls failed
/// as if the service refused the connection, and nothing said to look at the proxy. The proxy is
/// a closed port on this machine (the target's name is never resolved: calls go to the proxy).
#[test]
fn a_dead_proxy_is_named_host_and_port_only_as_the_one_to_check() {
    let dead = closed_port_url();
    let port = dead.rsplit(':').next().unwrap();
    let proxy = format!("http://pc-user:pr0xy-secret@127.0.0.1:{port}");
    let shown = format!("the proxy 127.0.0.1:{port} that");
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    for (variable, command) in [("HTTPS_PROXY", "export"), ("all_proxy", "apply")] {
        let mut c = pcbulk();
        match command {
            "export" => c
                .args(["export", "billing-profile", "--out"])
                .arg(w.path("e.csv")),
            _ => c.arg("apply").arg(&input).arg("--yes"),
        };
        c.args(["--base-url", "https://api.pcbulk-test.invalid"])
            .args(["--max-attempts", "2"])
            .env("PCBULK_ACCESS_TOKEN", "t");
        for v in PROXY_VARS {
            c.env_remove(v);
        }
        let out = c.env(variable, &proxy).output().unwrap();
        let said = match command {
            "export" => text(&out),
            _ => std::fs::read_to_string(w.path("in.results.csv")).unwrap() + &text(&out),
        };
        assert_eq!(
            code(&out),
            if command == "export" { 3 } else { 1 },
            "{said}"
        );
        assert!(
            said.contains(&format!("{shown} {variable} names")),
            "{said}"
        );
        assert!(said.contains("check that proxy"), "{said}");
        assert!(
            !said.contains("pr0xy-secret") && !said.contains("pc-user"),
            "{said}"
        );
    }
    let row = &results(&w.path("in.results.csv"))[0];
    assert_eq!(row["error_code"], "unreachable", "{row:?}");
}

/// `pcbulk export ARGS --out OUT --summary-json OUT.json` with the sandbox's token: its output
/// and its summary.
fn export_with_summary(w: &Workdir, args: &[&str], out: &str) -> (std::process::Output, Value) {
    let json = w.path(&format!("{out}.json"));
    let output = pcbulk()
        .arg("export")
        .args(args)
        .arg("--out")
        .arg(w.path(out))
        .arg("--summary-json")
        .arg(&json)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    let summary = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (output, summary)
}

/// Found by an outside tester: an export of a few named customers with the service out of reach
/// wrote a file of headers only and exited 1, as if the customers had no subscriptions.
#[test]
fn named_customers_none_of_them_reachable_end_the_export_as_unreachable_with_no_file() {
    let w = Workdir::new();
    let named = [
        "--customer",
        "c0000001-0000-4000-8000-000000000001",
        "--customer",
        "c0000001-0000-4000-8000-000000000002",
    ];
    let unreachable = ["support-contact", "--base-url", "http://127.0.0.1:9"];
    let args: Vec<&str> = unreachable
        .iter()
        .chain(&["--max-attempts", "2"])
        .chain(&named)
        .copied()
        .collect();
    let (out, summary) = export_with_summary(&w, &args, "named.csv");
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(summary["outcome"], "unreachable", "{summary}");
    assert!(!w.path("named.csv").exists(), "{}", text(&out));

    // A customer the service answers for, but does not know, is that target's failure: the
    // export is written, without it.
    let sb = Sandbox::start(&[]);
    let unknown = ["--customer", "c0000999-0000-4000-8000-000000000999"];
    let args = [
        "support-contact",
        "--base-url",
        &sb.url,
        unknown[0],
        unknown[1],
    ];
    let (out, summary) = export_with_summary(&w, &args, "unknown.csv");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(summary["outcome"], "completed_with_errors", "{summary}");
    assert!(w.path("unknown.csv").exists(), "{}", text(&out));
}

/// Found by an outside tester: `--summary-json` naming the export's own `--out` replaced the
/// export with the summary.
#[test]
fn a_summary_json_at_the_export_s_own_path_is_refused() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let same = w.path("same.csv").display().to_string();
    let out = export(
        &sb,
        &w,
        "support-profile",
        "same.csv",
        &["--summary-json", &same],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("--summary-json"), "{}", text(&out));
    assert_eq!(sb.stats()["total"], 0, "nothing sent: {}", sb.stats());
}

/// Found by an outside tester: a `--customers` workbook was read as CSV text, and refused as not
/// UTF-8, though `export --help` offers a workbook.
#[test]
fn a_customers_workbook_narrows_the_export_to_its_customers() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "Customer ID").unwrap();
    sheet.write_string(1, 0, FABRIKAM).unwrap();
    let list = w.write("customers.xlsx", book.save_to_buffer().unwrap());
    let list = list.display().to_string();
    let out = export(&sb, &w, "billing-profile", "b.csv", &["--customers", &list]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (_, rows) = table(&w.path("b.csv"));
    let ids: Vec<&str> = rows.iter().map(|r| r["customer_id"].as_str()).collect();
    assert_eq!(ids, [FABRIKAM]);
}

/// Found by an outside tester: past 1,000 targets that could not be read, the summary counted
/// no more of them.
#[test]
fn every_target_that_could_not_be_read_is_counted_in_the_summary() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut list = format!("customer_id\n{CONTOSO}\n");
    for i in 0..1100 {
        list.push_str(&format!("c9000000-0000-4000-8000-{i:012x}\n"));
    }
    let list = w.write("customers.csv", list).display().to_string();
    let json = w.path("s.json").display().to_string();
    let out = export(
        &sb,
        &w,
        "billing-profile",
        "b.csv",
        &["--customers", &list, "--summary-json", &json],
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["rows"]["succeeded"], 1, "{summary}");
    assert_eq!(summary["rows"]["failed"], 1100, "{summary}");
    let counted: u64 = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1100, "{summary}");
}

#[test]
fn an_unknown_where_column_is_refused_naming_the_columns() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let out = export(
        &sb,
        &w,
        "support-contact",
        "c.csv",
        &["--where", "reseller=Trey"],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("customer_id, subscription_id, support_tenant_id"),
        "{err}"
    );
    assert!(!w.path("c.csv").exists());
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
}

/// Exports billing profiles of a 3,030-customer sandbox to a pipe at 500 calls a second with
/// `extra` arguments, reads the header line, closes the pipe: the exit code and the summary.
fn export_to_a_pipe_closed_after_the_header(extra: &[&str]) -> (Option<i32>, Value) {
    let sb = Sandbox::start(&["--customers", "3000"]);
    let w = Workdir::new();
    let json = w.path("s.json");
    let mut child = pcbulk()
        .args(["export", "billing-profile", "--base-url", &sb.url])
        .args(["--rate", "500", "-q", "--out", "-"])
        .args(extra)
        .arg("--summary-json")
        .arg(&json)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).unwrap();
    assert!(header.starts_with("customer_id,"), "{header}");
    drop(stdout);
    let status = child.wait().unwrap();
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (status.code(), summary)
}

/// Found by an outside tester: behind `| head -1` the export went on reading every target (its
/// rows sat in a buffer that was flushed only at the end) and counted them all as exported.
#[test]
fn a_stdout_closed_midway_ends_the_export_soon_with_exit_3_write_error_counting_rows_delivered() {
    let (code, summary) = export_to_a_pipe_closed_after_the_header(&[]);
    assert_eq!(code, Some(3), "{summary}");
    assert_eq!(summary["outcome"], "write_error", "{summary}");
    // At 500 calls a second the 3,030 customers take six seconds; stdout's reader left after the
    // header, and the export stopped at its next flush, long before the end.
    let calls = summary["calls"].as_u64().unwrap();
    assert!(calls < 3000, "it read on after stdout closed: {summary}");
    let rows = summary["rows"]["succeeded"].as_u64().unwrap();
    assert!(
        rows < 3000,
        "rows that never reached stdout were counted: {summary}"
    );
}

/// Found by an outside tester: with a `--where` that keeps no row, nothing was written to stdout
/// (not even its header, until the end), so a reader that had gone went unnoticed: the export read
/// every target and ended as if complete.
#[test]
fn a_stdout_closed_while_where_keeps_no_row_ends_the_export_soon_with_write_error() {
    let (code, summary) =
        export_to_a_pipe_closed_after_the_header(&["--where", "city=No Such City"]);
    assert_eq!(code, Some(3), "{summary}");
    assert_eq!(summary["outcome"], "write_error", "{summary}");
    assert_eq!(summary["rows"]["succeeded"], 0, "{summary}");
    // The 3,030 customers take six seconds at 500 calls a second: the reader left at the header.
    let calls = summary["calls"].as_u64().unwrap();
    assert!(calls < 3000, "it read on after stdout closed: {summary}");
}

#[test]
fn an_interrupted_export_exits_3_and_leaves_no_file() {
    let sb = Sandbox::start(&["--customers", "2000"]);
    let w = Workdir::new();
    let mut child = pcbulk()
        .args([
            "export",
            "billing-profile",
            "--base-url",
            &sb.url,
            "--rate",
            "20",
            "--out",
        ])
        .arg(w.path("b.csv"))
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("exporting billing-profile"), "{line}");
    // Sending has begun once a call reached the sandbox.
    while sb.stats()["total"].as_u64().unwrap_or(0) < 3 {
        std::thread::yield_now();
    }
    signal(&child, "-INT");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3), "{rest}");
    assert!(rest.contains("interrupted by SIGINT"), "{rest}");
    let left: Vec<_> = std::fs::read_dir(w.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no file, not even a scratch one: {left:?}");
}

/// `pcbulk export billing-profile --out OUT --summary-json JSON` at 20 calls a second, stopped
/// by SIGINT once its progress shows rows: its exit code, what it printed on stdout and on stderr,
/// its summary.
fn interrupted_once_rows_show(
    sb: &Sandbox,
    out: &str,
    json: &Path,
) -> (i32, String, String, Value) {
    let mut child = pcbulk()
        .args(["export", "billing-profile", "--base-url", &sb.url])
        .args(["--rate", "20", "--out", out])
        .arg("--summary-json")
        .arg(json)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut all = String::new();
        stdout.read_to_string(&mut all).unwrap();
        all
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ended: {said}");
        said.push_str(&line);
        let shown: usize = line
            .strip_prefix("pcbulk: ")
            .and_then(|l| l.split_once(" rows exported so far"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(0);
        if shown > 0 {
            break;
        }
    }
    signal(&child, "-INT");
    stderr.read_to_string(&mut said).unwrap();
    let code = child.wait().unwrap().code().unwrap();
    let summary = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    (code, printed.join().unwrap(), said, summary)
}

/// Found by an outside tester: a file export stopped by SIGINT wrote no file, yet its summary
/// counted the rows it had read as `succeeded`.
#[test]
fn an_interrupted_file_export_counts_no_row_succeeded_and_says_how_many_it_read() {
    let sb = Sandbox::start(&["--customers", "2000"]);
    let w = Workdir::new();
    let out = w.path("b.csv").display().to_string();
    let (code, _, said, summary) = interrupted_once_rows_show(&sb, &out, &w.path("s.json"));
    assert_eq!(code, 3, "{said}");
    assert!(!w.path("b.csv").exists());
    assert_eq!(summary["outcome"], "interrupted", "{summary}");
    assert_eq!(
        summary["rows"]["succeeded"], 0,
        "no file, no row exported: {summary}"
    );
    let read = summary["rows_read"].as_u64().unwrap();
    assert!(read > 0, "{summary}");
    assert!(
        said.contains(&format!("read {read} rows")) && said.contains("no file was written"),
        "{said}"
    );
}

/// The same stop with the rows going to stdout: the rows counted `succeeded` are exactly those
/// that reached it.
#[test]
fn an_interrupted_stdout_export_counts_succeeded_the_rows_that_reached_stdout() {
    let sb = Sandbox::start(&["--customers", "2000"]);
    let w = Workdir::new();
    let (code, printed, said, summary) = interrupted_once_rows_show(&sb, "-", &w.path("s.json"));
    assert_eq!(code, 3, "{said}");
    assert_eq!(summary["outcome"], "interrupted", "{summary}");
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(printed.as_bytes())
        .records()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows = records.len() as u64;
    assert!(rows > 0, "{said}");
    assert_eq!(summary["rows"]["succeeded"], rows, "{summary}");
    assert_eq!(summary["rows_read"], rows, "{summary}");
}

/// A text a billing field may hold, as an admin's tenant has them: accents, quotes, a newline
/// inside, leading zeros or `+`, formula characters, the text `#N/A`, white space at either end
/// (pcbulk trims cells, but an export's escaped cell keeps the value's own).
fn field_text(max: usize) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just("#N/A".to_owned()),
        Just("=".to_owned()),
        Just("+".to_owned()),
        Just("-".to_owned()),
        Just("@".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("\t".to_owned()),
        Just("00".to_owned()),
        "[A-Za-zÀ-ÿ0-9,;.]{1,6}",
    ];
    proptest::collection::vec(piece, 1..5)
        .prop_map(move |p| p.concat().chars().take(max).collect::<String>())
        .prop_filter("a value", |v| !v.trim().is_empty())
}

/// A telephone number as pcbulk accepts one: digits (leading zeros kept), maybe a leading `+`.
fn phone() -> impl proptest::strategy::Strategy<Value = String> {
    "\\+?0{0,2}[0-9]{3,6}( [0-9]{2,4}){0,2}"
}

/// Tenants with generated billing values: exported to CSV and to xlsx, each cell is the value
/// (escaped where a spreadsheet or pcbulk would read it otherwise), and applied unchanged the file
/// writes nothing. One sandbox serves every case (a process each would cost more than the case).
#[test]
fn generated_billing_profiles_round_trip_through_an_export() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let sb = Sandbox::start(&[]);
    let mut runner = TestRunner::new(Config {
        cases: 10,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        (field_text(60), field_text(50), field_text(80)),
        (field_text(80), field_text(40), "0{0,3}[0-9]{2,5}", phone()),
    );
    runner
        .run(
            &strategy,
            |((company, last_name, line1), (line2, city, postal, phone_number))| {
                let values = [
                    ("company_name", company.as_str()),
                    ("last_name", last_name.as_str()),
                    ("address_line1", line1.as_str()),
                    ("address_line2", line2.as_str()),
                    ("city", city.as_str()),
                    ("postal_code", postal.as_str()),
                    ("phone_number", phone_number.as_str()),
                ];
                round_trip(&sb, &values).map_err(TestCaseError::fail)
            },
        )
        .unwrap();
}

/// Found by an outside tester: a value that starts with a tab (escaped `'\t…` in the file) lost
/// its tab when read back, so an unchanged export planned a write that took it away.
#[test]
fn a_value_that_starts_with_a_tab_comes_back_with_its_tab() {
    let sb = Sandbox::start(&[]);
    round_trip(&sb, &[("address_line1", "\tTabbed"), ("city", "\t\tTwo")]).unwrap();
}

/// Found by an outside tester: a value the service held with spaces or a tab at its end (`São
/// Paulo  `) was trimmed when the export was read back, and the export applied unchanged wrote
/// the trimmed value, in CSV and in xlsx.
#[test]
fn a_value_held_with_white_space_at_its_ends_comes_back_with_it() {
    let sb = Sandbox::start(&[]);
    let values = [
        ("city", "São Paulo  "),
        ("address_line2", "@home\t"),
        ("company_name", "  Padded Ltd"),
        ("address_line1", "#N/A\n"), // the text, a line end after it: not a clear
    ];
    round_trip(&sb, &values).unwrap();
}

/// Seeds Northwind's billing profile with `values`, exports it to CSV and to xlsx, and applies
/// each: what differs from the round trip, if anything.
fn round_trip(sb: &Sandbox, values: &[(&str, &str)]) -> Result<(), String> {
    seed_billing(sb, NORTHWIND, values);
    let seeded = writes(sb);
    let w = Workdir::new();
    for out in ["n.csv", "n.xlsx"] {
        let o = export(sb, &w, "billing-profile", out, &["--customer", NORTHWIND]);
        if code(&o) != 0 {
            return Err(text(&o));
        }
        let rows = match out {
            "n.csv" => table(&w.path(out)).1,
            _ => sheet(&w.path(out)),
        };
        for (column, value) in values {
            if rows[0][*column] != exported(value) {
                return Err(format!(
                    "{out}: {column} {:?} for {value:?}",
                    rows[0][*column]
                ));
            }
        }
        let statuses = apply_statuses(sb, &w.path(out), "billing-profile");
        if statuses != ["unchanged"] || writes(sb) != seeded {
            return Err(format!("{out}: {statuses:?}, writes {:?}", writes(sb)));
        }
    }
    Ok(())
}
