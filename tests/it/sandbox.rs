//! The sandbox itself, over HTTP, against what the reference says Partner Center does.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

const SUB_11: &str = "d0000001-0000-4000-8000-000000000011";

fn contact_path() -> String {
    format!("/customers/{CONTOSO}/subscriptions/{SUB_11}/supportcontact")
}

fn trey() -> Value {
    json!({"SupportTenantId": TREY_TENANT, "SupportMpnId": "4391507", "Name": "Trey Research"})
}

fn billing_path(c: &str) -> String {
    format!("/customers/{c}/profiles/billing")
}

/// The partner's support profile read with `Authorization: authorization`.
fn support_profile_as(sb: &Sandbox, authorization: &str) -> reqwest::blocking::Response {
    let headers = [("Authorization", authorization)];
    sb.call("GET", "/profiles/support", None, &headers).unwrap()
}

/// Customer `c`'s billing profile as a client reads it before a PUT.
fn billing_profile(sb: &Sandbox, c: &str) -> Value {
    Sandbox::json(sb.call("GET", &billing_path(c), None, &[]).unwrap())
}

/// The profile's etag quoted, as an `If-Match` value.
fn if_match(profile: &Value) -> String {
    format!("\"{}\"", profile["attributes"]["etag"].as_str().unwrap())
}

/// `body` PUT as customer `c`'s billing profile with `If-Match: etag`, taken as given.
fn put_billing(sb: &Sandbox, c: &str, body: Value, etag: &str) -> reqwest::blocking::Response {
    sb.call("PUT", &billing_path(c), Some(body), &[("If-Match", etag)])
        .unwrap()
}

#[test]
fn path_words_match_in_any_case_ids_exactly_and_answers_echo_the_ids() {
    let sb = Sandbox::start(&[]);
    let shouting = contact_path()
        .replace("/customers/", "/CUSTOMERS/")
        .replace("/subscriptions/", "/Subscriptions/")
        .replace("/supportcontact", "/SupportContact");
    let r = sb
        .call(
            "GET",
            &shouting,
            None,
            &[("MS-RequestId", "11111111-1111-4111-8111-111111111111")],
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["MS-RequestId"],
        "11111111-1111-4111-8111-111111111111"
    );
    assert!(r.headers().contains_key("MS-CV"));
    assert_eq!(Sandbox::json(r)["supportMpnId"], "1000001");
    // An id is opaque: one written in another case names no customer of the partner (20002).
    let other_case = billing_path(&CONTOSO.to_uppercase());
    assert_eq!(
        sb.call("GET", &other_case, None, &[]).unwrap().status(),
        403
    );
    assert_eq!(
        sb.call("GET", &billing_path(CONTOSO), None, &[])
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn error_bodies_for_what_the_service_refuses() {
    let sb = Sandbox::start(&[]);
    let cases: Vec<(String, Value, u16, Value)> = vec![
        (contact_path(), json!({"SupportTenantId": "e0000009-0000-4000-8000-000000000009", "SupportMpnId": "9000009", "Name": "Litware"}), 400, json!(800016)),
        (contact_path(), json!({"SupportTenantId": TREY_TENANT, "SupportMpnId": "5555555", "Name": "Nobody"}), 404, json!("800015")),
        (format!("/customers/{FABRIKAM}/subscriptions/d0000002-0000-4000-8000-000000000022/supportcontact"), trey(), 400, json!(800002)),
        (format!("/customers/{CONTOSO}/subscriptions/d0000002-0000-4000-8000-000000000021/supportcontact"), trey(), 404, json!("20003")),
        (format!("/customers/c0000009-0000-4000-8000-000000000009/subscriptions/{SUB_11}/supportcontact"), trey(), 403, json!(20002)),
    ];
    for (path, body, status, code) in cases {
        let r = sb.call("PUT", &path, Some(body), &[]).unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let b = Sandbox::json(r);
        assert_eq!(b["code"], code, "{path}: {b}");
        assert!(b["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportMpnId"],
        "1000001",
        "nothing applied"
    );
}

#[test]
fn a_repeated_request_id_is_answered_with_the_first_answer_and_not_applied_again() {
    let sb = Sandbox::start(&[]);
    let rid = "22222222-2222-4222-8222-222222222222";
    let note = json!({"NewNote": {"Text": "only once"}});
    for _ in 0..3 {
        let r = sb
            .call(
                "PATCH",
                "/servicerequests/616122292874576",
                Some(note.clone()),
                &[("MS-RequestId", rid)],
            )
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            Sandbox::json(r)["notes"].as_array().unwrap().len(),
            1,
            "the first answer, replayed"
        );
    }
    assert_eq!(
        sb.service_request("616122292874576")["notes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let other = json!({"NewNote": {"Text": "a different call"}});
    let r = sb
        .call(
            "PATCH",
            "/servicerequests/616122292874576",
            Some(other),
            &[("MS-RequestId", rid)],
        )
        .unwrap();
    assert_eq!(r.status(), 400);
    let stats = sb.stats();
    assert_eq!(stats["replays"], 2);
    assert_eq!(stats["requestIdReuse"], 1);
}

#[test]
fn with_no_replay_a_repeated_request_id_is_applied_again() {
    let sb = Sandbox::start(&["--no-replay"]);
    let rid = "33333333-3333-4333-8333-333333333333";
    let note = json!({"NewNote": {"Text": "twice"}});
    for n in 1..=2 {
        let r = sb
            .call(
                "PATCH",
                "/servicerequests/616122292874576",
                Some(note.clone()),
                &[("MS-RequestId", rid)],
            )
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(Sandbox::json(r)["notes"].as_array().unwrap().len(), n);
    }
    assert_eq!(sb.stats()["replays"], 0);
}

#[test]
fn token_bucket_throttles_with_retry_after_and_the_429_body() {
    // Refused calls free, so every Retry-After is the same second.
    let sb = Sandbox::start(&["--rate", "2", "--burst", "3", "--free-429s"]);
    let statuses: Vec<u16> = (0..8)
        .map(|_| {
            let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
            let s = r.status().as_u16();
            if s == 429 {
                let after: u64 = r.headers()["Retry-After"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(
                    (1..=1).contains(&after),
                    "a token returns within a second: {after}"
                );
                let b = Sandbox::json(r);
                assert_eq!(b["statusCode"], 429);
                assert_eq!(
                    b["message"],
                    "Rate limit is exceeded. Try again in 1 seconds."
                );
            }
            s
        })
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (3..=5).contains(&ok),
        "burst of 3 plus what refilled: {statuses:?}"
    );
    assert_eq!(sb.stats()["throttled"].as_u64().unwrap() as usize, 8 - ok);
}

#[test]
fn fixed_window_says_to_come_back_when_the_window_ends() {
    let sb = Sandbox::start(&["--rate", "1", "--window", "30"]);
    let mut throttled = Vec::new();
    for _ in 0..35 {
        let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
        if r.status() == 429 {
            let after: u64 = r.headers()["Retry-After"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let msg = Sandbox::json(r)["message"].as_str().unwrap().to_owned();
            assert_eq!(
                msg,
                format!("Rate limit is exceeded. Try again in {after} seconds.")
            );
            throttled.push(after);
        }
    }
    assert_eq!(throttled.len(), 5, "30 calls per 30 s window");
    assert!(
        throttled.iter().all(|a| (25..=30).contains(a)),
        "until the window ends: {throttled:?}"
    );
}

#[test]
fn retry_after_can_be_an_http_date() {
    // 0.04 calls/s over 60 s windows: two calls per window, and the refused third one owed by
    // the next window, which still admits one.
    let sb = Sandbox::start(&["--rate", "0.04", "--window", "60", "--retry-after-date"]);
    sb.call("GET", "/profiles/support", None, &[]).unwrap();
    sb.call("GET", "/profiles/support", None, &[]).unwrap();
    let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
    assert_eq!(r.status(), 429);
    let when = httpdate::parse_http_date(r.headers()["Retry-After"].to_str().unwrap()).unwrap();
    let ahead = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        ahead > Duration::from_secs(50) && ahead <= Duration::from_secs(61),
        "{ahead:?}"
    );
}

#[test]
fn per_customer_limit_slows_only_that_customer() {
    let sb = Sandbox::start(&["--customer-rate", "1", "--customer-burst", "2"]);
    let contoso: Vec<u16> = (0..4)
        .map(|_| {
            sb.call("GET", &billing_path(CONTOSO), None, &[])
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(
        contoso.iter().filter(|s| **s == 429).count(),
        2,
        "{contoso:?}"
    );
    assert_eq!(
        sb.call("GET", &billing_path(FABRIKAM), None, &[])
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        sb.call("GET", "/profiles/support", None, &[])
            .unwrap()
            .status(),
        200,
        "not a customer call"
    );
}

#[test]
fn latency_delays_each_answer() {
    let sb = Sandbox::start(&["--latency-ms", "150-200"]);
    let t = Instant::now();
    sb.call("GET", "/profiles/support", None, &[]).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn server_errors_are_not_applied() {
    let sb = Sandbox::start(&["--fail-share", "1"]);
    let r = sb.call("PUT", &contact_path(), Some(trey()), &[]).unwrap();
    assert!(matches!(r.status().as_u16(), 500 | 503));
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportMpnId"],
        "1000001"
    );
    let faults = &sb.stats()["faults"];
    assert_eq!(
        faults["500"].as_u64().unwrap_or(0) + faults["503"].as_u64().unwrap_or(0),
        1
    );
}

#[test]
fn a_connection_dropped_before_applying_changes_nothing() {
    let sb = Sandbox::start(&["--drop-before", "1"]);
    let r = sb
        .call("PUT", &contact_path(), Some(trey()), &[])
        .and_then(|r| r.bytes());
    assert!(r.is_err(), "the client gets no whole answer");
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportMpnId"],
        "1000001"
    );
    assert_eq!(sb.stats()["faults"]["dropBefore"], 1);
}

#[test]
fn a_connection_dropped_after_applying_keeps_the_change_and_a_retry_replays_it() {
    let sb = Sandbox::start(&["--drop-after", "1"]);
    let rid = "33333333-3333-4333-8333-333333333333";
    let note = json!({"NewNote": {"Text": "lost answer"}});
    for _ in 0..3 {
        let r = sb
            .call(
                "PATCH",
                "/servicerequests/616122292874577",
                Some(note.clone()),
                &[("MS-RequestId", rid)],
            )
            .and_then(|r| r.bytes());
        assert!(r.is_err());
    }
    let notes = sb.service_request("616122292874577")["notes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(notes, 1, "applied once, however often the answer is lost");
    assert_eq!(sb.stats()["replays"], 2);
}

#[test]
fn answers_can_start_with_a_byte_order_mark() {
    let sb = Sandbox::start(&["--bom-share", "1"]);
    let bytes = sb
        .call("GET", "/profiles/support", None, &[])
        .unwrap()
        .bytes()
        .unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf{"));
}

#[test]
fn same_seed_same_faults() {
    let pattern = |seed: &str| -> Vec<bool> {
        let sb = Sandbox::start(&[
            "--seed",
            seed,
            "--fail-share",
            "0.3",
            "--drop-before",
            "0.2",
        ]);
        (0..30)
            .map(|_| {
                sb.call("GET", "/profiles/support", None, &[])
                    .and_then(|r| r.bytes())
                    .is_ok()
            })
            .collect()
    };
    let a = pattern("7");
    assert_eq!(a, pattern("7"));
    assert!(
        a.contains(&true) && a.contains(&false),
        "some answered, some dropped: {a:?}"
    );
}

#[test]
fn billing_etag_changes_on_every_write_and_stale_ones_are_refused() {
    for (flag, status) in [("412", 412u16), ("2055", 400)] {
        let sb = Sandbox::start(&["--stale-etag", flag]);
        let profile = billing_profile(&sb, CONTOSO);
        let etag = profile["attributes"]["etag"].as_str().unwrap().to_owned();
        let quoted = if_match(&profile);
        let r = put_billing(&sb, CONTOSO, profile.clone(), &quoted);
        assert_eq!(r.status(), 200);
        let new_etag = Sandbox::json(r)["attributes"]["etag"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(new_etag, etag);
        let r = put_billing(&sb, CONTOSO, profile, &quoted);
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(Sandbox::json(r)["code"], 2055);
    }
}

#[test]
fn etag_churn_makes_a_fresh_etag_stale() {
    let sb = Sandbox::start(&["--etag-churn", "1"]);
    let profile = billing_profile(&sb, CONTOSO);
    let etag = if_match(&profile);
    let r = put_billing(&sb, CONTOSO, profile, &etag);
    assert_eq!(r.status(), 412);
    assert_eq!(sb.stats()["faults"]["etagChurn"], 1);
}

#[test]
fn with_partial_bodies_a_billing_put_wipes_what_it_leaves_out_and_is_flagged() {
    let sb = Sandbox::start(&["--partial-bodies"]);
    let mut profile = billing_profile(&sb, NORTHWIND);
    let etag = if_match(&profile);
    profile.as_object_mut().unwrap().remove("middleName");
    let r = put_billing(&sb, NORTHWIND, profile, &etag);
    assert_eq!(r.status(), 200);
    assert!(
        sb.customer(NORTHWIND)["billingProfile"]
            .get("middleName")
            .is_none(),
        "what is not sent is lost"
    );
    let stats = sb.stats();
    assert_eq!(stats["violations"], 1);
    assert!(stats["violationExamples"][0]
        .as_str()
        .unwrap()
        .contains("middleName"));
}

#[test]
fn protocol_violations_are_counted_and_refused_where_the_service_would() {
    let sb = Sandbox::start(&[]);
    // Missing headers: counted, still answered.
    let r = sb
        .call(
            "GET",
            "/profiles/support",
            None,
            &[
                ("MS-RequestId", ""),
                ("MS-CorrelationId", "not-a-guid"),
                ("MS-Contract-Version", ""),
            ],
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    // A billing PUT without any ETag: refused.
    let mut profile = billing_profile(&sb, CONTOSO);
    profile.as_object_mut().unwrap().remove("attributes");
    assert_eq!(
        sb.call("PUT", &billing_path(CONTOSO), Some(profile), &[])
            .unwrap()
            .status(),
        400
    );
    // An empty PATCH: refused.
    assert_eq!(
        sb.call(
            "PATCH",
            "/servicerequests/616122292874576",
            Some(json!({})),
            &[]
        )
        .unwrap()
        .status(),
        400
    );
    // A support-profile PUT that is not the full resource: counted, and refused.
    assert_eq!(
        sb.call(
            "PUT",
            "/profiles/supportprofile",
            Some(json!({"Email": "x@y.example"})),
            &[]
        )
        .unwrap()
        .status(),
        400
    );
    assert_eq!(sb.state()["supportProfile"]["telephone"], "+1 425 555 0199");
    // A PUT without Content-Type: counted.
    sb.call(
        "PUT",
        &contact_path(),
        Some(trey()),
        &[("Content-Type", "")],
    )
    .unwrap();
    let stats = sb.stats();
    let examples: BTreeSet<String> = stats["violationExamples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for want in [
        "MS-RequestId missing",
        "MS-CorrelationId is not a GUID",
        "MS-Contract-Version",
        "no ETag",
        "nothing to change",
        "not the full resource",
        "Content-Type",
    ] {
        assert!(
            examples.iter().any(|e| e.contains(want)),
            "{want} in {examples:?}"
        );
    }
}

#[test]
fn tokens_rotate_refresh_tokens_with_a_grace_period_and_expire() {
    let sb = Sandbox::start(&["--token-lifetime", "1", "--refresh-grace", "60"]);
    let http = reqwest::blocking::Client::new();
    let grant = |refresh: &str| {
        http.post(format!("{}/contoso.onmicrosoft.com/oauth2/token", sb.url))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "x"),
                ("resource", "https://api.partnercenter.microsoft.com"),
            ])
            .send()
            .unwrap()
    };
    let first: Value = grant("sandbox-refresh-token").json().unwrap();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], "1", "expires_in may be a string");
    let second: Value = grant(&r1).json().unwrap();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2, "a new refresh token every grant");
    assert_eq!(
        grant(&r1).status(),
        200,
        "the old one still works within the grace period"
    );
    let refused = grant("made-up");
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS"));

    let access = second["access_token"].as_str().unwrap();
    let bearer = format!("Bearer {access}");
    assert_eq!(support_profile_as(&sb, &bearer).status(), 200);
    // The sign: the token is refused once its second has passed (within a deadline).
    let waiting = std::time::Instant::now();
    let r = loop {
        let r = support_profile_as(&sb, &bearer);
        if r.status() != 200 {
            break r;
        }
        assert!(waiting.elapsed() < Duration::from_secs(30), "never expired");
    };
    assert_eq!(r.status(), 401);
    assert!(r.headers()["WWW-Authenticate"]
        .to_str()
        .unwrap()
        .contains("expired"));
    assert_eq!(support_profile_as(&sb, "Bearer nonsense").status(), 401);
    assert_eq!(
        sb.call("GET", "/profiles/support", None, &[])
            .unwrap()
            .status(),
        200,
        "`sandbox` always works"
    );
}

#[test]
fn the_sandbox_refuses_to_listen_off_loopback() {
    let out = pcbulk()
        .args(["sandbox", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("loopback"));
}

// The simulator that stops being kind: one test per switch, on and off.

const SR: &str = "616122292874576";
const TAILSPIN: &str = "c0000004-0000-4000-8000-000000000004";
const TAILSPIN_SUB: &str = "d0000004-0000-4000-8000-000000000041";

fn note(text: &str) -> Value {
    json!({"NewNote": {"Text": text}})
}

/// The sandbox's own count of writes applied to `target` (`"<METHOD> /v1/<path>"`).
fn writes_to(sb: &Sandbox, target: &str) -> u64 {
    sb.get("/_sandbox/writes")[target].as_u64().unwrap_or(0)
}

/// Waits (up to a deadline) until the sandbox has applied `n` writes to `target`.
fn wait_for_writes(sb: &Sandbox, target: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while writes_to(sb, target) < n {
        assert!(
            Instant::now() < deadline,
            "{target}: {} writes",
            writes_to(sb, target)
        );
        std::thread::yield_now(); // each look is a call to the sandbox: that paces the loop
    }
}

/// A PATCH of a note from a client that gives up after `timeout`.
fn impatient_note(sb: &Sandbox, text: &str, timeout: Duration) -> reqwest::Result<u16> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
        .patch(format!("{}/v1/servicerequests/{SR}", sb.url))
        .header("Authorization", "Bearer sandbox")
        .header("Accept", "application/json")
        .header("MS-Contract-Version", "v1")
        .header("MS-RequestId", uuid::Uuid::new_v4().to_string())
        .header("MS-CorrelationId", uuid::Uuid::new_v4().to_string())
        .header("Content-Type", "application/json")
        .body(note(text).to_string())
        .send()
        .map(|r| r.status().as_u16())
}

/// A PATCH adding the note `text` to the service request, sent under the MS-RequestId `rid`.
fn patch_note(sb: &Sandbox, text: &str, rid: &str) -> reqwest::Result<reqwest::blocking::Response> {
    let path = format!("/servicerequests/{SR}");
    sb.call("PATCH", &path, Some(note(text)), &[("MS-RequestId", rid)])
}

fn error_code(r: reqwest::blocking::Response) -> Value {
    Sandbox::json(r)["code"].clone()
}

#[test]
fn late_writes_are_applied_after_the_client_gave_up() {
    let sb = Sandbox::start(&["--late-writes", "400"]);
    let target = format!("PATCH /v1/servicerequests/{SR}");
    let gave_up = impatient_note(&sb, "late but there", Duration::from_millis(50));
    assert!(
        gave_up.is_err_and(|e| e.is_timeout()),
        "the client timed out"
    );
    wait_for_writes(&sb, &target, 1);
    assert_eq!(sb.note_counts()["late but there"], 1);
    // A client that waits gets the answer once the write is applied.
    let r = sb
        .call(
            "PATCH",
            &format!("/servicerequests/{SR}"),
            Some(note("waited")),
            &[],
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(writes_to(&sb, &target), 2);
}

#[test]
fn with_late_writes_a_retry_under_the_same_request_id_before_the_first_lands_lands_too() {
    let sb = Sandbox::start(&["--late-writes", "300"]);
    let rid = uuid::Uuid::new_v4().to_string();
    let path = format!("/servicerequests/{SR}");
    let target = format!("PATCH /v1{path}");
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| patch_note(&sb, "twice", &rid));
        let second = patch_note(&sb, "twice", &rid);
        assert_eq!(second.unwrap().status(), 200);
        first.join().unwrap()
    });
    assert_eq!(first.unwrap().status(), 200);
    assert_eq!(
        writes_to(&sb, &target),
        2,
        "the key is kept once a write is applied"
    );
    // Once applied, the same id is answered from the record.
    let third = patch_note(&sb, "twice", &rid);
    assert_eq!(third.unwrap().status(), 200);
    assert_eq!(writes_to(&sb, &target), 2);
}

#[test]
fn an_applied_5xx_write_is_applied_and_a_retry_under_its_request_id_gets_the_first_answer() {
    let sb = Sandbox::start(&["--applied-5xx", "1"]);
    let path = format!("/servicerequests/{SR}");
    let rid = uuid::Uuid::new_v4().to_string();
    let r = patch_note(&sb, "applied anyway", &rid).unwrap();
    assert!(
        [502, 503, 504].contains(&r.status().as_u16()),
        "{}",
        r.status()
    );
    assert_eq!(
        sb.note_counts()["applied anyway"],
        1,
        "applied before the 5xx"
    );
    assert_eq!(writes_to(&sb, &format!("PATCH /v1{path}")), 1);
    assert_eq!(
        sb.call("GET", &path, None, &[]).unwrap().status(),
        200,
        "reads are answered"
    );
    let again = patch_note(&sb, "applied anyway", &rid).unwrap();
    assert!(
        again.status().is_server_error(),
        "the gateway fails it again"
    );
    assert_eq!(
        sb.note_counts()["applied anyway"],
        1,
        "replayed, not applied"
    );
    assert_eq!(sb.stats()["faults"]["applied5xx"], 2);
}

#[test]
fn gateway_bodies_are_an_html_page_or_nothing() {
    let sb = Sandbox::start(&[
        "--fail-share",
        "1",
        "--fail-status",
        "502,503,504",
        "--gateway-bodies",
    ]);
    let (mut html, mut empty) = (0, 0);
    for _ in 0..12 {
        let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
        assert!([502, 503, 504].contains(&r.status().as_u16()));
        assert!(
            !r.headers().contains_key("MS-CV"),
            "a gateway adds none of the service's headers"
        );
        let kind = r
            .headers()
            .get("Content-Type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = r.text().unwrap();
        if body.is_empty() {
            empty += 1;
        } else {
            assert!(
                body.starts_with("<html>") && kind.unwrap().starts_with("text/html"),
                "{body}"
            );
            html += 1;
        }
    }
    assert!(html > 0 && empty > 0, "{html} pages, {empty} empty");
    // Without the switch, Partner Center's JSON error.
    let sb = Sandbox::start(&["--fail-share", "1", "--fail-status", "502"]);
    let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(error_code(r), 800003);
}

/// Retry-After of `n` calls made at once past a burst of one.
fn retry_afters(flags: &[&str], n: usize) -> Vec<Option<u64>> {
    let mut args = vec!["--rate", "2", "--burst", "1"];
    args.extend_from_slice(flags);
    let sb = Sandbox::start(&args);
    assert_eq!(
        sb.call("GET", "/profiles/support", None, &[])
            .unwrap()
            .status(),
        200
    );
    (0..n)
        .map(|_| {
            let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
            assert_eq!(r.status(), 429);
            r.headers()
                .get("Retry-After")
                .map(|v| v.to_str().unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn refused_calls_count_against_the_limit_unless_free() {
    let counted = retry_afters(&[], 6);
    assert!(counted.windows(2).all(|w| w[0] <= w[1]), "{counted:?}");
    assert!(
        counted[5] > counted[0],
        "each refusal costs a call: {counted:?}"
    );
    let free = retry_afters(&["--free-429s"], 6);
    assert!(free.iter().all(|a| *a == Some(1)), "{free:?}");
}

#[test]
fn some_429s_carry_no_retry_after() {
    assert!(retry_afters(&["--429-without-retry-after", "1"], 3)
        .iter()
        .all(Option::is_none));
    let sb = Sandbox::start(&[
        "--rate",
        "1",
        "--burst",
        "1",
        "--429-without-retry-after",
        "1",
    ]);
    sb.call("GET", "/profiles/support", None, &[]).unwrap();
    let r = sb.call("GET", "/profiles/support", None, &[]).unwrap();
    assert_eq!(r.status(), 429);
    let b = Sandbox::json(r);
    assert_eq!(b["statusCode"], 429);
    assert!(!b["message"].as_str().unwrap().contains("seconds"), "{b}");
    assert!(
        retry_afters(&[], 3).iter().all(Option::is_some),
        "every 429 has one by default"
    );
}

/// The status of a GET and of a full PUT on each support-profile path.
fn profile_paths(flags: &[&str]) -> Vec<(&'static str, &'static str, u16)> {
    let sb = Sandbox::start(flags);
    let full = json!({"Email": "help@adatum.example", "Telephone": "+1 425 555 0100",
        "Website": "adatum.example", "ProfileType": "support_profile",
        "Attributes": {"ObjectType": "PartnerSupportProfile"}});
    let mut seen = Vec::new();
    for path in ["/profiles/support", "/profiles/supportprofile"] {
        for method in ["GET", "PUT"] {
            let body = (method == "PUT").then(|| full.clone());
            let r = sb.call(method, path, body, &[]).unwrap();
            seen.push((method, path, r.status().as_u16()));
        }
    }
    seen
}

#[test]
fn strict_paths_serve_one_support_profile_path_per_method() {
    let pages = profile_paths(&["--strict-paths"]);
    assert_eq!(
        pages,
        [
            ("GET", "/profiles/support", 200),
            ("PUT", "/profiles/support", 405),
            ("GET", "/profiles/supportprofile", 405),
            ("PUT", "/profiles/supportprofile", 200),
        ]
    );
    let sdk = profile_paths(&["--strict-paths", "sdk"]);
    assert_eq!(
        sdk.iter().map(|s| s.2).collect::<Vec<_>>(),
        [200, 200, 404, 404]
    );
    let both = profile_paths(&[]);
    assert!(both.iter().all(|s| s.2 == 200), "{both:?}");
}

#[test]
fn an_unquoted_if_match_is_refused_unless_allowed() {
    for (flags, unquoted_status) in [(&[][..], 400), (&["--unquoted-if-match"][..], 200)] {
        let sb = Sandbox::start(flags);
        let profile = billing_profile(&sb, CONTOSO);
        let etag = profile["attributes"]["etag"].as_str().unwrap().to_owned();
        let r = put_billing(&sb, CONTOSO, profile, &etag);
        assert_eq!(r.status(), unquoted_status, "{flags:?}");
        if unquoted_status == 400 {
            assert_eq!(error_code(r), 800002);
            assert_eq!(
                writes_to(&sb, &format!("PUT /v1{}", billing_path(CONTOSO))),
                0
            );
        }
    }
}

/// An app-only access token from the token endpoint's client_credentials grant.
fn app_only_token(sb: &Sandbox) -> String {
    let r: Value = reqwest::blocking::Client::new()
        .post(format!("{}/contoso.onmicrosoft.com/oauth2/token", sb.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
            ("resource", "https://api.partnercenter.microsoft.com"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        r.get("refresh_token").is_none(),
        "no refresh token for an application"
    );
    r["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn app_only_tokens_reach_only_the_billing_profile() {
    let sb = Sandbox::start(&[]);
    for token in [app_only_token(&sb), "sandbox-app-only".to_owned()] {
        let bearer = format!("Bearer {token}");
        let auth = [("Authorization", bearer.as_str())];
        let calls = [
            ("GET", contact_path(), None),
            ("PUT", contact_path(), Some(trey())),
            ("PATCH", format!("/servicerequests/{SR}"), Some(note("app"))),
            ("GET", "/profiles/support".to_owned(), None),
        ];
        for (method, path, body) in calls {
            let r = sb.call(method, &path, body, &auth).unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
            assert_eq!(error_code(r), 900329, "{method} {path}");
        }
        let r = sb.call("GET", &billing_path(CONTOSO), None, &auth).unwrap();
        assert_eq!(
            r.status(),
            200,
            "the billing profile accepts app-only tokens"
        );
    }
    assert!(sb.get("/_sandbox/writes").as_object().unwrap().is_empty());
    let lenient = Sandbox::start(&["--any-token"]);
    let r = support_profile_as(&lenient, "Bearer sandbox-app-only");
    assert_eq!(r.status(), 200);
}

#[test]
fn a_customer_without_a_delegated_role_is_forbidden() {
    let sb = Sandbox::start(&[]);
    let contact = format!("/customers/{TAILSPIN}/subscriptions/{TAILSPIN_SUB}/supportcontact");
    for (method, path, body) in [
        ("GET", billing_path(TAILSPIN), None),
        ("GET", contact.clone(), None),
        ("PUT", contact.clone(), Some(trey())),
    ] {
        let r = sb.call(method, &path, body, &[]).unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(error_code(r), 900308, "{method} {path}");
    }
    assert_eq!(sb.customer(TAILSPIN)["delegatedAdmin"], false);
    let lenient = Sandbox::start(&["--any-token"]);
    assert_eq!(
        lenient.call("GET", &contact, None, &[]).unwrap().status(),
        200
    );
}

#[test]
fn a_billing_put_that_leaves_out_fields_is_refused_and_wipes_nothing() {
    let sb = Sandbox::start(&[]);
    let profile = billing_profile(&sb, CONTOSO);
    let etag = if_match(&profile);
    let before = sb.customer(CONTOSO)["billingProfile"].clone();
    let two_fields = json!({"Email": "new@contoso.example", "Attributes": profile["attributes"]});
    let mut no_district = profile.clone();
    no_district["defaultAddress"]
        .as_object_mut()
        .unwrap()
        .remove("district");
    let mut numbered = profile.clone();
    numbered["companyName"] = json!(42);
    for body in [two_fields, no_district, numbered] {
        let r = put_billing(&sb, CONTOSO, body.clone(), &etag);
        assert_eq!(r.status(), 400, "{body}");
        let b = Sandbox::json(r);
        assert_eq!(b["code"], 800002);
        assert!(
            b["description"].as_str().unwrap().contains("whole profile"),
            "{b}"
        );
    }
    assert_eq!(
        sb.customer(CONTOSO)["billingProfile"],
        before,
        "nothing wiped"
    );
    // The whole resource back, one field changed: applied.
    let mut full = profile;
    full["email"] = json!("new@contoso.example");
    let r = put_billing(&sb, CONTOSO, full, &etag);
    assert_eq!(r.status(), 200);
    assert_eq!(
        sb.customer(CONTOSO)["billingProfile"]["defaultAddress"]["district"],
        "King County"
    );
}

#[test]
fn a_support_profile_put_that_is_not_the_full_resource_is_refused() {
    let sb = Sandbox::start(&[]);
    let before = sb.state()["supportProfile"].clone();
    for body in [
        json!({"Email": "x@y.example"}),
        json!({"Email": "x@y.example", "Telephone": 5, "Website": "w", "ProfileType": "support_profile"}),
        json!({"Email": "x@y.example", "Telephone": "5", "Website": "w", "ProfileType": "other"}),
    ] {
        let r = sb
            .call("PUT", "/profiles/supportprofile", Some(body.clone()), &[])
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r), 800002);
    }
    assert_eq!(sb.state()["supportProfile"], before);
}

#[test]
fn a_401_has_the_shape_of_the_error_codes_page() {
    let sb = Sandbox::start(&[]);
    let r = support_profile_as(&sb, "Bearer nonsense");
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["WWW-Authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("OAuth realm=urn:cpsvc:cpid:"),
        "{challenge}"
    );
    let b = Sandbox::json(r);
    assert_eq!(b["code"], "401", "code is a string, as the schema has it");
    assert!(b["description"].as_str().unwrap().contains("not valid"));
    assert_eq!(b["source"], "PartnerFD");
}

#[test]
fn the_writes_count_is_what_was_applied_not_replayed_or_refused() {
    let sb = Sandbox::start(&[]);
    let path = format!("/servicerequests/{SR}");
    let rid = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        patch_note(&sb, "one", &rid).unwrap();
    }
    sb.call("PATCH", &path, Some(note("two")), &[]).unwrap();
    let refused = sb.call("PATCH", &path, Some(json!({})), &[]).unwrap();
    assert_eq!(refused.status(), 400);
    sb.set_contact(SUB_11, TREY_TENANT, "4391507", "Trey Research");
    let writes = sb.get("/_sandbox/writes");
    assert_eq!(
        writes,
        json!({
            format!("PATCH /v1{path}"): 2,
            format!("PUT /v1{}", contact_path()): 1,
        })
    );
}
