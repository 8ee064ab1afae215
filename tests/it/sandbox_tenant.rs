//! The sandbox as a partner's tenant, over HTTP: the customer listing page by page, the
//! subscription reads, the subscription PATCH and its refusals, and the original four customers as
//! the other tests and the samples know them.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{json, Value};

const TAILSPIN: &str = "c0000004-0000-4000-8000-000000000004";
/// The first named customer: its subscriptions 0..5 are legacy, New Commerce inside its
/// cancellation window, legacy, New Commerce past it, and suspended.
const NAMED_0: &str = "c2000000-0000-4000-8000-000000000000";

fn named_sub(j: usize) -> String {
    format!("d2000000-0000-4000-8000-{j:012x}")
}

fn sub_path(c: &str, s: &str) -> String {
    format!("/customers/{c}/subscriptions/{s}")
}

/// GET on a path under `/v1`, with extra headers; status and body.
fn get(sb: &Sandbox, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let resp = sb.call("GET", path, None, headers).unwrap();
    (resp.status().as_u16(), Sandbox::json(resp))
}

fn patch(sb: &Sandbox, path: &str, body: Value) -> (u16, Value) {
    let resp = sb.call("PATCH", path, Some(body), &[]).unwrap();
    (resp.status().as_u16(), Sandbox::json(resp))
}

/// The path under `/v1` a `links.next.uri` names, whichever way it spells the root.
fn under_v1(uri: &str) -> String {
    let rest = uri.trim_start_matches('/');
    format!("/{}", rest.strip_prefix("v1/").unwrap_or(rest))
}

/// Every page of the customer listing, following `links.next` with its continuation token.
fn pages(sb: &Sandbox, first: &str) -> Vec<Value> {
    let mut out = vec![];
    let (status, mut page) = get(sb, first, &[]);
    assert_eq!(status, 200, "{page}");
    loop {
        let next = page["links"]["next"].clone();
        out.push(page);
        if next.is_null() {
            return out;
        }
        assert_eq!(next["headers"][0]["key"], "MS-ContinuationToken", "{next}");
        let token = next["headers"][0]["value"].as_str().unwrap().to_owned();
        let path = under_v1(next["uri"].as_str().unwrap());
        let (status, body) = get(sb, &path, &[("MS-ContinuationToken", &token)]);
        assert_eq!(status, 200, "{path}: {body}");
        page = body;
        assert!(out.len() < 1000, "the listing never ends");
    }
}

fn ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn paging_walks_every_customer_exactly_once() {
    let sb = Sandbox::start(&[]);
    // The sandbox holds pages to 5 customers whatever larger size is asked.
    let walked = pages(&sb, "/customers?size=40");
    assert!(walked
        .iter()
        .all(|p| p["items"].as_array().unwrap().len() <= 5));
    let seen = ids(&walked);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a customer listed twice: {seen:?}"
    );
    let state: BTreeSet<String> = sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), state);
    assert!(seen.len() >= 20, "tens of customers, not {}", seen.len());
    assert_eq!(walked.len(), seen.len().div_ceil(5));
}

#[test]
fn a_smaller_size_is_honoured() {
    let sb = Sandbox::start(&["--page-size", "7"]);
    let walked = pages(&sb, "/customers?size=3");
    assert_eq!(walked[0]["items"].as_array().unwrap().len(), 3);
    let (_, big) = get(&sb, "/customers?size=100", &[]);
    assert_eq!(big["items"].as_array().unwrap().len(), 7);
    assert_eq!(big["totalCount"], 7);
}

#[test]
fn a_continuation_token_the_sandbox_did_not_issue_is_refused() {
    let sb = Sandbox::start(&[]);
    let other = Sandbox::start(&["--seed", "2"]);
    let (_, first) = get(&sb, "/customers", &[]);
    let token = first["links"]["next"]["headers"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, theirs) = get(&other, "/customers", &[]);
    let foreign = theirs["links"]["next"]["headers"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut altered = token.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let long = "A".repeat(10_000);
    for bad in [
        altered.as_str(),
        foreign.as_str(),
        "not-a-token",
        long.as_str(),
    ] {
        let (status, body) = get(
            &sb,
            "/customers?seekOperation=Next",
            &[("MS-ContinuationToken", bad)],
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["code"], 800002, "{body}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("continuation token"),
            "{body}"
        );
    }
    let (status, _) = get(
        &sb,
        "/customers?seekOperation=Next",
        &[("MS-ContinuationToken", &token)],
    );
    assert_eq!(status, 200);
    let (status, body) = get(&sb, "/customers?seekOperation=Next", &[]);
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!(800002)),
        "{body}"
    );
    let (status, _) = get(&sb, "/customers?size=0", &[]);
    assert_eq!(status, 400);
}

#[test]
fn next_with_v1_alternates_the_two_spellings_of_the_root() {
    let plain = Sandbox::start(&[]);
    let (_, first) = get(&plain, "/customers", &[]);
    assert_eq!(
        first["links"]["next"]["uri"],
        "/customers?size=5&seekOperation=Next"
    );

    let sb = Sandbox::start(&["--next-with-v1"]);
    let walked = pages(&sb, "/customers");
    let uris: Vec<&str> = walked
        .iter()
        .filter_map(|p| p["links"]["next"]["uri"].as_str())
        .collect();
    assert!(uris.len() >= 2, "{uris:?}");
    for (i, uri) in uris.iter().enumerate() {
        let want = if i % 2 == 0 {
            "/v1/customers?size=5&seekOperation=Next"
        } else {
            "v1/customers?size=5&seekOperation=Next"
        };
        assert_eq!(*uri, want);
    }
    assert_eq!(ids(&walked).len(), ids(&pages(&plain, "/customers")).len());
    // Joined naively to the /v1 root, the link names a path the service does not have.
    let token = walked[0]["links"]["next"]["headers"][0]["value"]
        .as_str()
        .unwrap();
    let (status, _) = get(
        &sb,
        "/v1/customers?size=5&seekOperation=Next",
        &[("MS-ContinuationToken", token)],
    );
    assert_eq!(status, 404);
}

#[test]
fn subscriptions_per_customer_gives_each_load_customer_its_subscriptions() {
    let sb = Sandbox::start(&[
        "--customers",
        "3",
        "--subscriptions-per-customer",
        "4",
        "--subscriptions",
        "2",
    ]);
    for i in 0..3 {
        let c = format!("c1000000-0000-4000-8000-{i:012x}");
        let (status, list) = get(&sb, &format!("/customers/{c}/subscriptions"), &[]);
        assert_eq!(status, 200, "{list}");
        let subs: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..4)
            .map(|j| format!("d3{i:06x}-0000-4000-8000-{j:012x}"))
            .collect();
        assert_eq!(subs, want);
        assert_eq!(list["totalCount"], 4);
    }
    // --subscriptions keeps its meaning: extra subscriptions for Contoso.
    let (_, contoso) = get(&sb, &format!("/customers/{CONTOSO}/subscriptions"), &[]);
    assert_eq!(contoso["items"].as_array().unwrap().len(), 3 + 2);
    let without = Sandbox::start(&["--customers", "2"]);
    let (_, none) = get(
        &without,
        "/customers/c1000000-0000-4000-8000-000000000001/subscriptions",
        &[],
    );
    assert_eq!(none["items"], json!([]));
}

/// Every subscription of every customer the partner may read.
fn all_subscriptions(sb: &Sandbox) -> Vec<Value> {
    let mut out = vec![];
    for c in ids(&pages(sb, "/customers")) {
        let (status, list) = get(sb, &format!("/customers/{c}/subscriptions"), &[]);
        if c == TAILSPIN {
            assert_eq!((status, list["code"].clone()), (403, json!(900308)));
            continue;
        }
        assert_eq!(status, 200, "{list}");
        out.extend(list["items"].as_array().unwrap().iter().cloned());
    }
    out
}

#[test]
fn the_tenant_looks_like_a_partners_and_follows_the_seed() {
    let sb = Sandbox::start(&[]);
    let (_, page) = get(&sb, "/customers?size=40", &[]);
    for c in page["items"].as_array().unwrap() {
        let domain = c["companyProfile"]["domain"].as_str().unwrap();
        assert!(domain.ends_with(".onmicrosoft.com"), "{c}");
        assert!(!c["companyProfile"]["companyName"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    let subs = all_subscriptions(&sb);
    let nce = subs
        .iter()
        .filter(|s| s.get("refundableQuantity").is_some())
        .count();
    let suspended = subs.iter().filter(|s| s["status"] == "suspended").count();
    let offers: BTreeSet<&str> = subs
        .iter()
        .map(|s| s["offerName"].as_str().unwrap())
        .collect();
    let resellers: BTreeSet<&str> = subs
        .iter()
        .filter_map(|s| s["partnerId"].as_str())
        .collect();
    assert!(
        subs.len() >= 60 && nce >= 5 && suspended >= 5,
        "{} {nce} {suspended}",
        subs.len()
    );
    assert!(offers.len() >= 8, "{offers:?}");
    assert_eq!(resellers, BTreeSet::from(["4391507", "5123456", "6789012"]));
    let supporters: BTreeSet<String> = sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["subscriptions"].as_array().unwrap().clone())
        .map(|s| {
            s["supportContact"]["supportMpnId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(supporters.is_superset(&BTreeSet::from([
        "4391507".into(),
        "5123456".into(),
        "6789012".into()
    ])));

    let shape = |subs: &[Value]| -> Vec<Value> {
        subs.iter()
            .map(|s| {
                json!([
                    s["id"],
                    s["offerId"],
                    s["quantity"],
                    s["status"],
                    s["partnerId"]
                ])
            })
            .collect()
    };
    let again = Sandbox::start(&[]);
    assert_eq!(
        shape(&all_subscriptions(&again)),
        shape(&subs),
        "one seed, one tenant"
    );
    let other = Sandbox::start(&["--seed", "7"]);
    assert_ne!(
        shape(&all_subscriptions(&other)),
        shape(&subs),
        "another seed, another tenant"
    );
}

#[test]
fn the_original_four_customers_are_as_the_tests_and_samples_know_them() {
    let sb = Sandbox::start(&[]);
    let walked = pages(&sb, "/customers");
    let names: Vec<(String, String)> = walked
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["companyProfile"]["companyName"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    for (id, name) in [
        (CONTOSO, "Contoso Ltd"),
        (FABRIKAM, "Fabrikam SARL"),
        (NORTHWIND, "Northwind AB"),
        (TAILSPIN, "Tailspin Toys"),
    ] {
        assert!(
            names.contains(&(id.to_owned(), name.to_owned())),
            "{id} {name}"
        );
    }
    let (_, contoso) = get(&sb, &format!("/customers/{CONTOSO}/subscriptions"), &[]);
    let subs: Vec<&str> = contoso["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        subs,
        [
            "d0000001-0000-4000-8000-000000000011",
            "d0000001-0000-4000-8000-000000000012",
            "d0000001-0000-4000-8000-000000000013"
        ]
    );
    let (status, contact) = get(
        &sb,
        &format!(
            "/customers/{CONTOSO}/subscriptions/{}/supportcontact",
            subs[0]
        ),
        &[],
    );
    assert_eq!(
        (status, contact["name"].as_str()),
        (200, Some("Adatum Cloud (partner)"))
    );
    let (status, srs) = get(&sb, "/servicerequests", &[]);
    assert_eq!(status, 200);
    assert_eq!(srs["totalCount"], 4);
    assert_eq!(srs["items"][0]["title"], "Cannot assign licenses");
}

#[test]
fn subscription_patch_changes_name_auto_renew_and_seats_once() {
    let sb = Sandbox::start(&[]);
    let path = sub_path(NAMED_0, &named_sub(0));
    let (status, changed) = patch(
        &sb,
        &path,
        json!({"friendlyName": "Sales team", "autoRenewEnabled": false}),
    );
    assert_eq!(status, 200, "{changed}");
    // The full resource as read, with the seat count changed.
    let (_, mut full) = get(&sb, &path, &[]);
    let seats = full["quantity"].as_u64().unwrap();
    full["quantity"] = json!(seats + 3);
    let rid = uuid::Uuid::new_v4().to_string();
    let send = || {
        sb.call(
            "PATCH",
            &path,
            Some(full.clone()),
            &[("MS-RequestId", &rid)],
        )
        .unwrap()
    };
    let first = Sandbox::json(send());
    let replayed = Sandbox::json(send());
    assert_eq!(first, replayed);
    let (_, now) = get(&sb, &path, &[]);
    assert_eq!(now["friendlyName"], "Sales team");
    assert_eq!(now["autoRenewEnabled"], false);
    assert_eq!(now["quantity"], seats + 3);
    let writes = sb.get("/_sandbox/writes");
    assert_eq!(writes[format!("PATCH /v1{path}")], 2, "{writes}");
}

#[test]
fn subscription_patch_refusals_carry_the_reference_codes() {
    let sb = Sandbox::start(&[]);
    let legacy = sub_path(NAMED_0, &named_sub(0));
    let in_window = sub_path(NAMED_0, &named_sub(1));
    let past_window = sub_path(NAMED_0, &named_sub(3));
    let suspended = sub_path(NAMED_0, &named_sub(4));
    let (_, open) = get(&sb, &in_window, &[]);
    let refundable = open["refundableQuantity"]["totalQuantity"]
        .as_u64()
        .unwrap();
    let seats = open["quantity"].as_u64().unwrap();
    assert_eq!(refundable, seats, "{open}");
    let cases = [
        (&legacy, json!({"quantity": 0}), 400, json!(2002)),
        (&legacy, json!({"quantity": 2.5}), 400, json!(800002)),
        (&legacy, json!({"quantity": "7"}), 400, json!(800002)),
        (&legacy, json!({"quantity": 20_000}), 403, json!(800067)),
        (&legacy, json!({"status": "deleted"}), 400, json!(800002)),
        (&legacy, json!({"partnerId": "9000009"}), 400, json!(800016)),
        (
            &legacy,
            json!({"partnerId": "1234567"}),
            404,
            json!("800015"),
        ),
        (&legacy, json!({"partnerId": "4391507"}), 400, json!(800002)),
        (&past_window, json!({"quantity": 1}), 400, json!(900117)),
        (&suspended, json!({"quantity": 1}), 400, json!(800091)),
        (
            &suspended,
            json!({"status": "active", "friendlyName": "x"}),
            400,
            json!(800091),
        ),
    ];
    for (path, body, status, code) in &cases {
        let (got, answer) = patch(&sb, path, body.clone());
        assert_eq!(
            (got, &answer["code"]),
            (*status, code),
            "{path} {body}: {answer}"
        );
    }
    assert_eq!(
        sb.get("/_sandbox/writes"),
        json!({}),
        "a refused PATCH is not applied"
    );
    // New Commerce seats inside the window may go, but no more than are refundable.
    let (_, ok) = patch(&sb, &in_window, json!({"quantity": seats + 2}));
    assert_eq!(ok["refundableQuantity"]["totalQuantity"], seats + 2, "{ok}");
    let (status, answer) = patch(&sb, &in_window, json!({"quantity": 0.0}));
    assert_eq!((status, &answer["code"]), (400, &json!(2002)));
    if seats > 1 {
        let (status, _) = patch(&sb, &in_window, json!({"quantity": 1}));
        assert_eq!(status, 200);
    }
    // Reactivating a suspended subscription is the one change it takes.
    let (status, back) = patch(&sb, &suspended, json!({"status": "active"}));
    assert_eq!((status, &back["status"]), (200, &json!("active")), "{back}");

    let writable = Sandbox::start(&["--writable-partner-id"]);
    let (status, moved) = patch(&writable, &legacy, json!({"partnerId": "4391507"}));
    assert_eq!(
        (status, &moved["partnerId"]),
        (200, &json!("4391507")),
        "{moved}"
    );
}

#[test]
fn a_new_commerce_cut_past_the_refundable_seats_is_refused() {
    let sb = Sandbox::start(&[]);
    let path = sub_path(NAMED_0, &named_sub(1));
    let (_, open) = get(&sb, &path, &[]);
    let seats = open["quantity"].as_u64().unwrap();
    // Seats added are refundable; cutting them gives the window back.
    let (status, _) = patch(&sb, &path, json!({"quantity": seats + 2}));
    assert_eq!(status, 200);
    let (status, _) = patch(&sb, &path, json!({"quantity": seats}));
    assert_eq!(status, 200);
    let (_, after) = get(&sb, &path, &[]);
    assert_eq!(after["refundableQuantity"]["totalQuantity"], seats);
    // Fabrikam's New Commerce subscription: 12 seats, none refundable.
    let fabrikam_nce = sub_path(FABRIKAM, "d0000002-0000-4000-8000-000000000022");
    let (status, answer) = patch(&sb, &fabrikam_nce, json!({"quantity": 11}));
    assert_eq!((status, &answer["code"]), (400, &json!(900117)), "{answer}");
    let (status, _) = patch(&sb, &fabrikam_nce, json!({"quantity": 13}));
    assert_eq!(status, 200);
    let (status, answer) = patch(&sb, &fabrikam_nce, json!({"quantity": 11}));
    assert_eq!((status, &answer["code"]), (400, &json!(800090)), "{answer}");
    let (status, _) = patch(&sb, &fabrikam_nce, json!({"quantity": 12}));
    assert_eq!(status, 200, "the seat just added is inside its window");
    let (status, answer) = patch(&sb, &fabrikam_nce, json!({"quantity": 11}));
    assert_eq!((status, &answer["code"]), (400, &json!(900117)), "{answer}");
}
