//! The admin's own spreadsheet, as it is: German headers, a `Customer` column of company names,
//! notes of their own. `--map` says which header holds which column; the columns pcbulk does not
//! read are carried to the results, named once, never warned about one by one.

use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::*;

/// The `--map` flags for [`admin_file`]'s headers.
const ADMIN_MAP: &[&str] = &[
    "--map",
    "Tenant ID=customer_id",
    "--map",
    "Abo=subscription_id",
    "--map",
    "Support Tenant=support_tenant_id",
    "--map",
    "MPN=support_mpn_id",
];

/// A support-contact file as an admin keeps it (semicolons, their own headers and columns) for
/// Contoso's extra subscriptions `range`: `Customer` holds the company's name.
fn admin_file(range: std::ops::Range<usize>) -> String {
    let mut csv = String::from("Customer;Tenant ID;Abo;Support Tenant;MPN;Name;Notiz\n");
    for i in range {
        csv.push_str(&format!(
            "Contoso Ltd;{CONTOSO};{};{TREY_TENANT};4391507;Trey Research;Vertrag {i}\n",
            extra_subscription(i)
        ));
    }
    csv
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn contact_mpn(sb: &Sandbox, i: usize) -> serde_json::Value {
    sb.subscription(&extra_subscription(i))["supportContact"]["supportMpnId"].clone()
}

/// Found by a new user: every run printed one warning per column of their own, and there was no
/// way to say which of their headers meant what.
#[test]
fn the_admin_s_own_headers_apply_with_map_and_their_customer_column_comes_back() {
    let sb = Sandbox::start(&["--subscriptions", "3"]);
    let w = Workdir::new();
    let input = w.write("kunden.csv", admin_file(0..3));
    let out = run(&sb, &w, "apply", &input, ADMIN_MAP);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        err.matches("carried: Customer, Notiz (echoed to the results)")
            .count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains("warning") && !err.contains("matches no column"),
        "{err}"
    );
    let (header, rows) = table(&w.path("kunden.results.csv"));
    assert_eq!(
        header[..7],
        [
            "Customer",
            "Tenant ID",
            "Abo",
            "Support Tenant",
            "MPN",
            "Name",
            "Notiz"
        ]
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["status"], "succeeded", "{r:?}");
        assert_eq!(r["Customer"], "Contoso Ltd");
        assert_eq!(r["Notiz"], format!("Vertrag {i}"));
        assert_eq!(contact_mpn(&sb, i), "4391507");
    }
    // The undo file keeps the admin's columns too, and names pcbulk's own as pcbulk does.
    let out = pcbulk()
        .current_dir(w.path(""))
        .args(["undo", "kunden.results.csv"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (header, rows) = table(&w.path("kunden.undo.csv"));
    for column in [
        "Customer",
        "Notiz",
        "customer_id",
        "subscription_id",
        "expected_support_mpn_id",
    ] {
        assert!(header.iter().any(|h| h == column), "{column}: {header:?}");
    }
    assert_eq!(rows.len(), 3);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["Customer"], "Contoso Ltd", "{r:?}");
        assert_eq!(r["Notiz"], format!("Vertrag {i}"), "{r:?}");
        assert_eq!(r["subscription_id"], extra_subscription(i), "{r:?}");
    }
}

/// Found by a new user: a `Customer` column of company names beside `Tenant ID` in a billing file;
/// which one is the customer is the user's to say, and the error says how.
#[test]
fn two_headers_meaning_customer_id_name_the_map_that_settles_it_and_then_one_is_carried() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!("Customer;Tenant ID;City\nContoso Ltd;{CONTOSO};Lund\n"),
    );
    let out = run(&sb, &w, "apply", &input, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        err.contains("\"Customer\" and \"Tenant ID\" both mean customer_id")
            && err.contains("--map 'Tenant ID=customer_id'"),
        "{err}"
    );
    assert_eq!(sb.stats()["total"], 0, "nothing sent");

    let out = run(
        &sb,
        &w,
        "apply",
        &input,
        &["--map", "Tenant ID=customer_id"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        stderr(&out).contains("carried: Customer ("),
        "{}",
        text(&out)
    );
    let rows = results(&w.path("billing.results.csv"));
    assert_eq!(
        (rows[0]["Customer"].as_str(), rows[0]["status"].as_str()),
        ("Contoso Ltd", "succeeded")
    );
    let profile = &sb.customer(CONTOSO)["billingProfile"];
    assert_eq!(profile["defaultAddress"]["city"], "Lund", "{profile}");
}

/// Found by a new user: a `Customer ID` column of company names gave one `invalid_guid` per row,
/// while the GUIDs sat in the next column.
#[test]
fn a_guid_column_of_names_is_one_usage_error_naming_the_column_that_holds_guids() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut csv =
        String::from("Customer ID,Tenant,Subscription ID,Support Tenant ID,Partner ID,Name\n");
    for i in 0..3 {
        csv.push_str(&format!(
            "Contoso Ltd,{CONTOSO},{},{TREY_TENANT},4391507,Trey\n",
            extra_subscription(i)
        ));
    }
    let input = w.write("contacts.csv", csv);
    let apply = run(&sb, &w, "apply", &input, &[]);
    let validate = pcbulk().arg("validate").arg(&input).output().unwrap();
    for (cmd, out) in [("apply", apply), ("validate", validate)] {
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{cmd}: {}", text(&out));
        assert!(
            err.contains("\"Customer ID\" is read as customer_id")
                && err.contains("row 1, line 2: \"Contoso Ltd\"")
                && err.contains("\"Tenant\" holds GUIDs")
                && err.contains("--map 'Tenant=customer_id'"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert!(!w.path("contacts.results.csv").exists());
}

#[test]
fn a_map_to_an_unknown_column_or_from_a_header_the_file_lacks_exits_2_naming_them() {
    let w = Workdir::new();
    let input = w.write("kunden.csv", admin_file(0..1));
    let validate = |map: &str| {
        pcbulk()
            .arg("validate")
            .arg(&input)
            .args(["--map", map])
            .output()
            .unwrap()
    };
    let out = validate("Tenant ID=kunde");
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("\"kunde\" is not a column pcbulk reads")
            && stderr(&out).contains("customer_id, subscription_id"),
        "{}",
        text(&out)
    );
    let out = validate("Kundennummer=customer_id");
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("no column \"Kundennummer\"")
            && stderr(&out).contains("\"Customer\", \"Tenant ID\", \"Abo\""),
        "{}",
        text(&out)
    );
    assert!(!w.path("kunden.validation.csv").exists());
}

/// `pcbulk apply` killed once it has sent two writes.
fn apply_killed(sb: &Sandbox, w: &Workdir, input: &Path, args: &[&str]) {
    let mut child: Child = pcbulk()
        .arg("apply")
        .arg(input)
        .args([
            "--base-url",
            &sb.url,
            "--concurrency",
            "1",
            "--timeout",
            "1",
        ])
        .args(args)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut journal = input.with_extension("results.csv").into_os_string();
    journal.push(".journal");
    wait_for_sends(Path::new(&journal), 2);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_resume_with_another_mapping_is_refused_and_one_without_map_takes_the_run_s() {
    let sb = Sandbox::start(&["--latency-ms", "200", "--subscriptions", "8"]);
    let w = Workdir::new();
    // Two GUID columns the user could mean as the subscription.
    let mut csv = String::from("Tenant ID;Abo;Alt-Abo;Support Tenant;MPN;Name\n");
    for i in 0..8 {
        csv.push_str(&format!(
            "{CONTOSO};{};{};{TREY_TENANT};4391507;Trey\n",
            extra_subscription(i),
            extra_subscription(7 - i)
        ));
    }
    let input = w.write("kunden.csv", csv);
    apply_killed(&sb, &w, &input, ADMIN_MAP);
    let sent = puts(&sb);
    let other = [
        "--map",
        "Tenant ID=customer_id",
        "--map",
        "Alt-Abo=subscription_id",
        "--map",
        "Support Tenant=support_tenant_id",
        "--map",
        "MPN=support_mpn_id",
        "--resume",
    ];
    let out = run(&sb, &w, "apply", &input, &other);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        err.contains("--map 'Abo=subscription_id'")
            && err.contains("--map 'Alt-Abo=subscription_id'"),
        "both mappings named: {err}"
    );
    assert_eq!(puts(&sb), sent, "nothing sent");

    let out = run(&sb, &w, "apply", &input, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        stderr(&out).contains("mapped: Tenant ID=customer_id, Abo=subscription_id"),
        "the run's mapping, taken: {}",
        text(&out)
    );
    assert_eq!(
        statuses(&w.path("kunden.results.csv")),
        vec!["succeeded"; 8]
    );
    assert_eq!(puts(&sb), 8, "every row once: {}", sb.stats());
}

/// A workbook of two sheets in the admin's format: `A` for subscriptions 0..3, `B` for 3..6.
fn admin_workbook(w: &Workdir) -> std::path::PathBuf {
    let mut wb = rust_xlsxwriter::Workbook::new();
    for (name, range) in [("A", 0..3), ("B", 3..6)] {
        let ws = wb.add_worksheet();
        ws.set_name(name).unwrap();
        for (r, line) in admin_file(range).lines().enumerate() {
            for (c, cell) in line.split(';').enumerate() {
                ws.write_string(r as u32, c as u16, cell).unwrap();
            }
        }
    }
    w.write("kunden.xlsx", wb.save_to_buffer().unwrap())
}

#[test]
fn a_plan_is_applied_with_its_own_sheet_and_mapping_and_other_ones_are_refused() {
    let sb = Sandbox::start(&["--subscriptions", "6"]);
    let w = Workdir::new();
    let book = admin_workbook(&w);
    let plan = run(
        &sb,
        &w,
        "plan",
        &book,
        &[&["--sheet", "B"], ADMIN_MAP].concat(),
    );
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let plan_path = w.path("kunden.B.plan.csv");
    let from_plan = ["--from-plan", plan_path.to_str().unwrap()];

    let other_map = [
        &from_plan[..],
        &[
            "--map",
            "Tenant ID=customer_id",
            "--map",
            "Abo=subscription_id",
        ],
        &[
            "--map",
            "Support Tenant=support_tenant_id",
            "--map",
            "MPN=support_mpn_id",
        ],
        &["--map", "Customer=name"],
    ]
    .concat();
    let out = run(&sb, &w, "apply", &book, &other_map);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("--map 'Customer=name'")
            && stderr(&out).contains("made with --map 'Abo=subscription_id'"),
        "both mappings named: {}",
        text(&out)
    );
    let out = run(
        &sb,
        &w,
        "apply",
        &book,
        &[&from_plan[..], &["--sheet", "A"]].concat(),
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("sheet \"B\", not sheet \"A\""),
        "{}",
        text(&out)
    );
    assert_eq!(puts(&sb), 0, "nothing sent");

    let out = run(&sb, &w, "apply", &book, &from_plan);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("kunden.B.results.csv"));
    assert_eq!(rows.len(), 3);
    for (r, i) in rows.iter().zip(3..6) {
        assert_eq!(
            (r["status"].as_str(), r["Customer"].as_str()),
            ("succeeded", "Contoso Ltd")
        );
        assert_eq!(contact_mpn(&sb, i), "4391507", "sheet B's row {i}");
    }
    assert_eq!(puts(&sb), 3, "sheet A untouched: {}", sb.stats());
}

/// Found by an outside tester: rows applied with `--map`, then the same rows under pcbulk's own
/// headers, were taken for another input, and every note went on its service request twice.
#[test]
fn the_same_rows_under_pcbulk_s_own_headers_after_a_mapped_run_are_already_applied() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let ids = ["616122292874576", "616122292874577"];
    let (mut mapped, mut plain) = (
        String::from("SR;Text\n"),
        String::from("service_request_id,note\n"),
    );
    for i in 0..4 {
        mapped.push_str(&format!("{};twice? {i}\n", ids[i % 2]));
        plain.push_str(&format!("{},twice? {i}\n", ids[i % 2]));
    }
    let mapped = w.write("mapped.csv", mapped);
    let maps = ["--map", "SR=service_request_id", "--map", "Text=note"];
    let out = run(&sb, &w, "apply", &mapped, &maps);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let plain = w.write("plain.csv", plain);
    let out = run(&sb, &w, "apply", &plain, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("--force"), "{}", text(&out));
    let notes: usize = ids
        .iter()
        .map(|id| {
            let sr = sb.service_request(id);
            let notes = sr["notes"].as_array().cloned().unwrap_or_default();
            notes
                .iter()
                .filter(|n| n["text"].as_str().is_some_and(|t| t.starts_with("twice?")))
                .count()
        })
        .sum();
    assert_eq!(notes, 4, "each note once");
}
