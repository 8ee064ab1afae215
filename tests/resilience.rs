//! Client runs against a misbehaving sandbox: throttled, faulty, stale ETags. Every row must end
//! `succeeded`, and the sandbox's own state must show each change applied exactly once.

mod common;

use std::collections::BTreeMap;

use common::*;

const SRS: [&str; 4] = [
    "616122292874576",
    "616122292874577",
    "616122292874578",
    "616122292874579",
];

fn extra_subscription(i: usize) -> String {
    format!("d1000000-0000-4000-8000-{i:012x}")
}

#[test]
fn a_throttled_run_waits_as_told_and_applies_every_row() {
    let sb = Sandbox::start(&["--rate", "10", "--burst", "2", "--subscriptions", "30"]);
    let w = Workdir::new();
    let mut csv =
        String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "{CONTOSO},{},{TREY_TENANT},4391507,Trey Research\n",
            extra_subscription(i)
        ));
    }
    let input = w.write("in.csv", csv);
    let out = sb.apply(&input, &["--rate", "100", "--concurrency", "4"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(statuses(&w.path("in.results.csv"))
        .iter()
        .all(|s| s == "succeeded"));
    for i in 0..30 {
        assert_eq!(
            sb.subscription(&extra_subscription(i))["supportContact"]["supportMpnId"],
            "4391507"
        );
    }
    let stats = sb.stats();
    assert!(
        stats["throttled"].as_u64().unwrap() > 0,
        "the run was throttled: {stats}"
    );
    assert_eq!(
        stats["calls"]["PUT supportcontact 200"], 30,
        "each row written once: {stats}"
    );
}

#[test]
fn a_faulty_run_adds_every_note_exactly_once() {
    let sb = Sandbox::start(&[
        "--seed",
        "3",
        "--fail-share",
        "0.1",
        "--drop-before",
        "0.05",
        "--drop-after",
        "0.1",
        "--bom-share",
        "0.2",
    ]);
    let w = Workdir::new();
    let mut csv = String::from("service_request_id,note\n");
    for i in 0..40 {
        csv.push_str(&format!("{},note {i}\n", SRS[i % 4]));
    }
    let input = w.write("notes.csv", csv);
    let out = sb.apply(&input, &["--concurrency", "4"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("notes.results.csv"));
    assert!(rows.iter().all(|r| r["status"] == "succeeded"));
    assert!(
        rows.iter().any(|r| r["attempts"] != "1"),
        "some rows needed retries"
    );

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for sr in SRS {
        for n in sb.service_request(sr)["notes"].as_array().unwrap() {
            *seen
                .entry(n["text"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "every note once: {seen:?}");
    let stats = sb.stats();
    assert!(
        stats["faults"]["dropAfter"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    assert!(
        stats["replays"].as_u64().unwrap() > 0,
        "lost answers were replayed, not re-applied: {stats}"
    );
    assert_eq!(stats["requestIdReuse"], 0);
    assert_eq!(stats["violations"], 0);
}

#[test]
fn a_stale_etag_run_reads_again_and_keeps_every_other_field() {
    let sb = Sandbox::start(&[
        "--seed",
        "5",
        "--etag-churn",
        "0.4",
        "--stale-etag",
        "mix",
        "--drop-after",
        "0.1",
    ]);
    let before: Vec<_> = [CONTOSO, FABRIKAM, NORTHWIND]
        .iter()
        .map(|c| sb.customer(c)["billingProfile"].clone())
        .collect();
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!(
            "customer_id,company_name,postal_code\n\
             {CONTOSO},Contoso Holdings,98053\n\
             {FABRIKAM},Fabrikam Groupe,69003\n\
             {NORTHWIND},Northwind Nordic AB,211 35\n"
        ),
    );
    let out = sb.apply(&input, &["--concurrency", "1"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        statuses(&w.path("billing.results.csv")),
        vec!["succeeded"; 3]
    );
    let wanted = [
        ("Contoso Holdings", "98053"),
        ("Fabrikam Groupe", "69003"),
        ("Northwind Nordic AB", "211 35"),
    ];
    for (i, c) in [CONTOSO, FABRIKAM, NORTHWIND].iter().enumerate() {
        let after = sb.customer(c)["billingProfile"].clone();
        let mut want = before[i].clone();
        want["companyName"] = wanted[i].0.into();
        want["defaultAddress"]["postalCode"] = wanted[i].1.into();
        want["attributes"]["etag"] = after["attributes"]["etag"].clone();
        assert_eq!(after, want, "{c}");
    }
    let stats = sb.stats();
    assert!(
        stats["faults"]["staleEtag"].as_u64().unwrap_or(0) > 0,
        "stale etags were met: {stats}"
    );
    assert_eq!(stats["violations"], 0, "{stats}");
}
