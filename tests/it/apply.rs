//! The real binary against a real sandbox over HTTP, one story per operation, asserting on what the
//! sandbox holds and saw, not on what the client claims.

use crate::common::*;
use serde_json::json;
use std::process::Command;

const SUB_11: &str = "d0000001-0000-4000-8000-000000000011";
const SUB_13: &str = "d0000001-0000-4000-8000-000000000013";
const SUB_12: &str = "d0000001-0000-4000-8000-000000000012";
const SUB_21: &str = "d0000002-0000-4000-8000-000000000021";
const SUB_NCE: &str = "d0000002-0000-4000-8000-000000000022";

#[test]
fn support_contacts_reach_the_sandbox_exactly_as_the_csv_asks() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "contacts.csv",
        format!(
            "Customer ID,Subscription ID,Support Tenant ID,Partner ID,Name,Status\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research,todo\n\
             {{{}}},{},{FABRIKAM_RESELLER_TENANT},5123456,  Fabrikam Resellers  ,todo\n\
             {FABRIKAM},{SUB_21},not-a-guid,4391507,Trey Research,todo\n\
             {FABRIKAM},{SUB_NCE},{TREY_TENANT},4391507,Trey Research,todo\n",
            CONTOSO.to_uppercase(),
            SUB_12.to_uppercase()
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));

    let rows = results(&w.path("contacts.results.csv"));
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["row"].as_str(),
                r["status"].as_str(),
                r["error_code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("1", "succeeded", ""),
            ("2", "succeeded", ""),
            ("3", "invalid", "invalid_guid"),
            ("4", "failed", "800002")
        ]
    );
    assert_eq!(
        rows[0]["input_status"], "todo",
        "a user's Status column is echoed, not hidden"
    );
    assert_eq!(rows[1]["Name"], "Fabrikam Resellers", "values are trimmed");
    assert_eq!(rows[3]["http_status"], "400");
    assert!(rows[3]["error_message"].contains("New Commerce"));
    assert!(rows[2]["error_message"].contains("Support Tenant ID"));
    assert_eq!(rows[2]["attempts"], "0");
    for r in &rows[..2] {
        assert_eq!(r["attempts"], "2", "read, then written");
        assert_eq!(r["correlation_id"].len(), 36);
        assert_eq!(r["request_id"].len(), 36);
    }

    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportMpnId"],
        "4391507"
    );
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportTenantId"],
        TREY_TENANT
    );
    assert_eq!(
        sb.subscription(SUB_12)["supportContact"]["name"],
        "Fabrikam Resellers"
    );
    assert_eq!(
        sb.subscription(SUB_12)["supportContact"]["supportTenantId"],
        FABRIKAM_RESELLER_TENANT
    );
    assert_eq!(
        sb.subscription(SUB_21)["supportContact"]["supportMpnId"],
        "1000001",
        "invalid row never sent"
    );

    let stats = sb.stats();
    assert_eq!(stats["calls"]["PUT supportcontact 200"], 2, "{stats}");
    assert_eq!(
        stats["total"], 6,
        "only the valid rows were sent, a read and a write each: {stats}"
    );
    assert_eq!(
        stats["violations"], 0,
        "headers as the reference asks: {stats}"
    );
}

#[test]
fn service_request_notes_land_once_each_and_statuses_change() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "sr.csv",
        "service_request_id,note,new_status\n\
         616122292874576,First note,\n\
         616122292874576,Second note,attention needed\n\
         616122292874577,,CLOSED\n\
         616122292874578,,sometime\n",
    );
    let out = sb.apply(&input, &["--concurrency", "1"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(
        statuses(&w.path("sr.results.csv")),
        vec!["succeeded", "succeeded", "succeeded", "invalid"]
    );
    let sr = sb.service_request("616122292874576");
    let notes: Vec<&str> = sr["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, vec!["First note", "Second note"]);
    assert_eq!(sr["status"], "attention_needed");
    let changes: Vec<String> = results(&w.path("sr.results.csv"))
        .iter()
        .map(|r| r["change"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            r#"note: + "First note""#,
            r#"note: + "Second note"; new_status: "open" → "attention_needed""#,
            r#"new_status: "open" → "closed""#,
            ""
        ],
        "what each succeeded row changed, before → after"
    );
    assert_eq!(sb.service_request("616122292874577")["status"], "closed");
    assert_eq!(
        sb.service_request("616122292874578")["status"],
        "attention_needed",
        "invalid row never sent"
    );
    assert_eq!(sb.stats()["violations"], 0);
}

#[test]
fn support_profile_is_read_then_written_whole() {
    let sb = Sandbox::start(&[]);
    let before = sb.state()["supportProfile"].clone();
    let w = Workdir::new();
    let input = w.write(
        "sp.csv",
        "operation,Website\nsupport-profile,https://help.adatum.example\n",
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let after = sb.state()["supportProfile"].clone();
    let mut want = before.clone();
    want["website"] = json!("https://help.adatum.example");
    assert_eq!(
        after, want,
        "only the website changed; email, telephone, profileType kept"
    );
    let stats = sb.stats();
    assert_eq!(stats["violations"], 0, "a full resource was sent: {stats}");
    assert_eq!(stats["calls"]["GET supportprofile 200"], 1);
    assert_eq!(stats["calls"]["PUT supportprofile 200"], 1);

    // The same file on the same target again: refused, saying when it ran and what it did.
    let calls = sb.stats()["total"].clone();
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("was already applied") && text(&out).contains("1 succeeded"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], calls, "nothing sent");
    // With --force it runs, finds nothing to change and writes nothing; the first run's records
    // are moved aside, not written over.
    let out = sb.apply(&input, &["--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("sp.results.csv")), vec!["unchanged"]);
    assert_eq!(sb.stats()["calls"]["PUT supportprofile 200"], 1);
    let aside: Vec<String> = std::fs::read_dir(w.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sp.results.2") && n.ends_with("Z.csv"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(statuses(&w.path(&aside[0])), vec!["succeeded"]);
    assert!(w.path(&format!("{}.journal", aside[0])).exists());
}

#[test]
fn billing_profile_changes_named_fields_and_keeps_every_other() {
    let sb = Sandbox::start(&[]);
    let before = sb.customer(CONTOSO)["billingProfile"].clone();
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!(
            "customer_id;email;city;phone_number;country\r\n\
             {CONTOSO};ap@contoso.example;Seattle;;\r\n\
             {NORTHWIND};;;;SE\r\n\
             {FABRIKAM};;;;RU\r\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        statuses(&w.path("billing.results.csv")),
        vec!["succeeded", "unchanged", "succeeded"]
    );

    let after = sb.customer(CONTOSO)["billingProfile"].clone();
    let mut want = before.clone();
    want["email"] = json!("ap@contoso.example");
    want["defaultAddress"]["city"] = json!("Seattle");
    want["attributes"]["etag"] = after["attributes"]["etag"].clone();
    assert_ne!(
        after["attributes"]["etag"], before["attributes"]["etag"],
        "a write changes the etag"
    );
    assert_eq!(
        after, want,
        "middleName, addressLine3, district and the rest kept"
    );
    assert_eq!(
        sb.customer(FABRIKAM)["billingProfile"]["defaultAddress"]["country"],
        "RU"
    );

    let stats = sb.stats();
    assert_eq!(stats["violations"], 0, "{stats}");
    assert_eq!(
        stats["calls"]["PUT billingprofile 200"], 2,
        "no write for the unchanged row"
    );
}

#[test]
fn a_clean_file_exits_0_and_results_keep_input_order() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut csv =
        String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n");
    for sub in [SUB_11, SUB_12, "d0000001-0000-4000-8000-000000000013"] {
        csv.push_str(&format!(
            "{CONTOSO},{sub},{TREY_TENANT},4391507,Trey Research\n\n"
        ));
    }
    let input = w.write("in.csv", csv);
    let out = sb.apply(
        &input,
        &[
            "--out",
            w.path("out.csv").to_str().unwrap(),
            "--concurrency",
            "3",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("out.csv"));
    let order: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["row"].as_str(), r["line"].as_str()))
        .collect();
    assert_eq!(order, vec![("1", "2"), ("2", "4"), ("3", "6")]);
    let header: Vec<String> = csv::Reader::from_path(w.path("out.csv"))
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header[5..],
        [
            "row",
            "line",
            "status",
            "http_status",
            "error_code",
            "error_message",
            "attempts",
            "correlation_id",
            "request_id",
            "duration_ms",
            "change"
        ]
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 succeeded"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_required_column_is_exit_2_and_nothing_is_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!("customer_id,subscription_id,name\n{CONTOSO},{SUB_11},Trey\n"),
    );
    let out = sb.apply(&input, &["--operation", "support-contact"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("support_tenant_id, support_mpn_id"), "{err}");
    assert_eq!(sb.stats()["total"], 0);
}

#[test]
fn without_credentials_nothing_is_sent_and_the_message_says_what_to_set() {
    let w = Workdir::new();
    let input = w.write("sp.csv", "operation,email\nsupport-profile,a@b.example\n");
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PCBULK_ACCESS_TOKEN"));
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", "http://partner.example"])
        .env("PCBULK_ACCESS_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(
        code(&out),
        2,
        "plain http off loopback is refused: {}",
        text(&out)
    );
}

#[test]
fn a_refused_token_aborts_with_exit_3_keeps_every_row_and_never_prints_the_token() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "sp.csv",
        "operation,email\nsupport-profile,new@adatum.example\n",
    );
    let secret = "very-secret-token-value-1234";
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", secret)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(!text(&out).contains(secret));
    let results_text = std::fs::read_to_string(w.path("sp.results.csv")).unwrap();
    assert!(!results_text.contains(secret));
    assert_eq!(statuses(&w.path("sp.results.csv")), vec!["skipped"]);
    assert!(text(&out).contains("credentials refused"), "{}", text(&out));
}

#[test]
fn app_user_tokens_come_from_the_refresh_token_and_are_renewed_as_they_expire() {
    let sb = Sandbox::start(&["--token-lifetime", "1"]);
    let w = Workdir::new();
    let mut csv = String::from("service_request_id,note\n");
    for i in 0..8 {
        csv.push_str(&format!("616122292874579,note {i}\n"));
    }
    let input = w.write("sr.csv", csv);
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url, "--rate", "4", "--concurrency", "2"])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
        .env("PCBULK_AUTHORITY", &sb.url)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!text(&out).contains("sandbox-refresh-token"));
    let stats = sb.stats();
    assert!(
        stats["tokensIssued"].as_u64().unwrap() >= 2,
        "tokens renewed over a 2 s run: {stats}"
    );
    let notes = sb.service_request("616122292874579")["notes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(notes, 8, "every note once, through token renewals");
}

#[test]
fn dry_run_and_validate_send_nothing() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "bp.csv",
        format!("customer_id,email\n{CONTOSO},ap@contoso.example\n{FABRIKAM},bad-email\n"),
    );
    let out = sb.apply(&input, &["--dry-run"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(
        statuses(&w.path("bp.plan.csv")),
        vec!["planned", "invalid"],
        "a dry run is a plan, in its own file, never an apply's results"
    );
    assert!(!w.path("bp.results.csv").exists());
    let stats = sb.stats();
    let calls = stats["calls"].as_object().unwrap();
    assert!(
        calls.keys().all(|k| k.starts_with("GET ")),
        "reads only: {stats}"
    );

    let clean = w.write(
        "clean.csv",
        "operation,email\nsupport-profile,new@adatum.example\n",
    );
    let out = pcbulk().arg("validate").arg(&clean).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("clean.validation.csv")), vec!["valid"]);
}

#[test]
fn every_template_is_a_valid_file_for_its_operation() {
    let w = Workdir::new();
    // Every operation the registry has, so a new one cannot be left out.
    for op in pcbulk::ops::OPERATIONS.iter().map(|o| o.name) {
        let out = pcbulk().args(["template", op]).output().unwrap();
        assert_eq!(code(&out), 0);
        let file = w.write(&format!("{op}.csv"), &out.stdout);
        let out = pcbulk().arg("validate").arg(&file).output().unwrap();
        assert_eq!(code(&out), 0, "{op}: {}", text(&out));
        assert_eq!(
            statuses(&w.path(&format!("{op}.validation.csv"))),
            vec!["valid"],
            "{op}"
        );
    }
}

#[test]
fn formulas_from_input_and_from_the_service_are_neutralised() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "sr.csv",
        "service_request_id,note,comment\n616122292874576,hello,=HYPERLINK(\"x\")\n",
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("sr.results.csv"));
    assert_eq!(rows[0]["comment"], "'=HYPERLINK(\"x\")");
}

#[test]
fn validate_streams_a_large_file_across_batches_in_order_and_finds_duplicates_far_apart() {
    let w = Workdir::new();
    let mut csv =
        String::from("customer_id;subscription_id;support_tenant_id;support_mpn_id;name\r\n");
    for i in 1..=40_000usize {
        let sub = match i {
            35_000 => "d1000000-0000-4000-8000-000000000005".to_owned(), // the same as row 5
            _ => format!("d1000000-0000-4000-8000-{i:012x}"),
        };
        let mpn = if i == 20_000 { "43915O7" } else { "4391507" };
        csv.push_str(&format!(
            "{CONTOSO};{sub};{TREY_TENANT};{mpn};Trey Research\r\n"
        ));
        if i == 10_000 {
            csv.push_str(";;;;\r\n\r\n"); // an empty row and a blank line
        }
    }
    let input = w.write("big.csv", csv);
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("big.validation.csv"));
    assert_eq!(rows.len(), 40_000);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["row"], (i + 1).to_string());
    }
    assert_eq!(rows[9_999]["line"], "10001");
    assert_eq!(
        rows[10_000]["line"], "10004",
        "the empty row and the blank line are counted as lines"
    );
    let invalid: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["status"] == "invalid")
        .map(|r| (r["row"].as_str(), r["error_code"].as_str()))
        .collect();
    assert_eq!(
        invalid,
        vec![
            ("20000", "invalid_partner_id"),
            ("35000", "duplicate_target")
        ]
    );
    assert!(
        rows[34_999]["error_message"].contains("row 5 (line 6)"),
        "{}",
        rows[34_999]["error_message"]
    );
    assert!(rows.iter().filter(|r| r["status"] == "valid").count() == 39_998);
}

#[test]
fn the_china_cloud_refuses_operations_it_does_not_offer_before_sending_anything() {
    let w = Workdir::new();
    let input = w.write("sr.csv", "service_request_id,note\n616122292874576,hello\n");
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--cloud", "china"])
        .env("PCBULK_ACCESS_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("not offered in the China cloud"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_token_cache_keeps_the_newest_refresh_token_for_the_next_run() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let cache = w.path("pcbulk-token");
    let run = |refresh: &str, note: &str| {
        let input = w.write(
            "sr.csv",
            format!("service_request_id,note\n616122292874576,{note}\n"),
        );
        pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", &sb.url])
            .env("PCBULK_REFRESH_TOKEN", refresh)
            .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
            .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
            .env("PCBULK_AUTHORITY", &sb.url)
            .env("PCBULK_TOKEN_CACHE", &cache)
            .output()
            .unwrap()
    };
    let first = run("sandbox-refresh-token", "one");
    assert_eq!(code(&first), 0, "{}", text(&first));
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(
        cached.starts_with("sbx-rt-"),
        "the newest refresh token is kept"
    );
    assert!(!text(&first).contains(&cached), "and never printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Months later the environment's token is stale; the cached one carries the job.
    let second = run("an-old-refresh-token", "two");
    assert_eq!(code(&second), 0, "{}", text(&second));
    let newer = std::fs::read_to_string(&cache).unwrap();
    assert_ne!(newer, cached, "rotated again");

    // A cached token that was revoked falls back to the one in the environment.
    std::fs::write(&cache, "revoked-token").unwrap();
    let third = run("sandbox-refresh-token", "three");
    assert_eq!(code(&third), 0, "{}", text(&third));
    assert!(std::fs::read_to_string(&cache)
        .unwrap()
        .starts_with("sbx-rt-"));
    assert_eq!(
        sb.service_request("616122292874576")["notes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn apply_refuses_an_input_it_cannot_read_twice_and_sends_nothing() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let fifo = w.path("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Nobody writes to the pipe: apply must refuse before it opens it (it would block on it).
    let out = sb.apply(&fifo, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
    assert!(
        text(&out).contains("save it to a file first"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], 0);
    assert!(!w.path("pipe.results.csv").exists());
}

#[test]
fn a_results_file_that_cannot_be_written_leaves_no_journal_to_block_the_next_run() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let out_path = w.path("in.results.csv");
    std::fs::create_dir(&out_path).unwrap();
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("cannot write the results file"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], 0, "nothing was sent");
    std::fs::remove_dir(&out_path).unwrap();
    let again = sb.apply(&input, &[]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(statuses(&out_path), vec!["succeeded", "succeeded"]);
}

/// Calls to a service off this machine go through the proxy the environment names. The service
/// here is a name that resolves nowhere (`.invalid`), so only a call made through the proxy reaches
/// anything; the proxy is a listener on loopback that records the tunnel it is asked for.
#[test]
fn a_proxy_named_in_the_environment_carries_the_calls() {
    use std::io::{Read, Write};
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let (asked, asks) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in proxy.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let first = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            if asked.send(first).is_err() {
                return;
            }
        }
    });
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    let mut c = pcbulk();
    c.arg("apply")
        .arg(&input)
        .args(["--base-url", "https://api.pcbulk-test.invalid"])
        .args(["--yes", "--max-attempts", "1"])
        .env("PCBULK_ACCESS_TOKEN", "t");
    for v in PROXY_VARS {
        c.env_remove(v);
    }
    let out = c.env("HTTPS_PROXY", &proxy_url).output().unwrap();
    let first = asks
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the proxy was never asked: {}", text(&out)));
    assert!(
        first.starts_with("CONNECT api.pcbulk-test.invalid:443 "),
        "{first}"
    );
    assert_eq!(results(&w.path("in.results.csv")).len(), 1);
}

/// Found by an outside test: a proxy named in the environment also carried calls to loopback (the
/// sandbox), which a proxy elsewhere cannot reach. Loopback is always reached directly: with every
/// proxy variable naming a port nothing listens on, a run against a sandbox (its token endpoint
/// included) and one against the embedded sandbox succeed.
#[test]
fn loopback_is_never_reached_through_a_proxy() {
    let sb = Sandbox::start(&[]);
    let dead = closed_port_url();
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n"
        ),
    );
    let with_dead_proxies = |c: &mut Command| {
        for v in PROXY_VARS {
            c.env_remove(v);
        }
        for v in &PROXY_VARS[..6] {
            c.env(v, &dead);
        }
    };
    let mut c = pcbulk();
    c.arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
        .env("PCBULK_AUTHORITY", &sb.url);
    with_dead_proxies(&mut c);
    let out = c.output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("in.results.csv")), ["succeeded"]);
    assert_eq!(sb.stats()["tokensIssued"], 1);
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportTenantId"],
        TREY_TENANT
    );
    let mut c = pcbulk();
    c.arg("apply")
        .arg(&input)
        .arg("--sandbox")
        .arg("--out")
        .arg(w.path("embedded.csv"));
    with_dead_proxies(&mut c);
    let out = c.output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("embedded.csv")), ["succeeded"]);
}

/// 2,000 rows against an address nothing listens on: the run stops once calls in a row cannot
/// connect, says which address it cannot reach, and skips the rows it never tried.
#[test]
fn an_unreachable_service_stops_the_run_early_with_exit_3_and_skips_the_rest() {
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2000));
    let unreachable = closed_port_url();
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args([
            "--base-url",
            &unreachable,
            "--rate",
            "1000",
            "--concurrency",
            "8",
        ])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot reach {unreachable}")),
        "{}",
        text(&out)
    );
    let rows = results(&w.path("in.results.csv"));
    assert_eq!(rows.len(), 2000, "every row has its line");
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] == "failed").collect();
    let skipped = rows.iter().filter(|r| r["status"] == "skipped").count();
    assert_eq!(failed.len() + skipped, 2000);
    assert!(
        failed.is_empty(),
        "a row whose call could not connect was not sent: skipped, so --resume sends it: {failed:?}"
    );
    let said = String::from_utf8_lossy(&out.stdout);
    let resume = said
        .lines()
        .skip_while(|l| !l.starts_with("to finish the run"))
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command: {said}"));
    assert!(
        resume.trim_start().starts_with("pcbulk apply ")
            && resume.contains(&unreachable)
            && resume.trim_end().ends_with("--resume"),
        "{resume}"
    );
}

#[test]
fn auth_status_with_app_user_credentials_tells_tenant_kind_and_expiry_and_changes_nothing() {
    let sb = Sandbox::start(&[]);
    let out = pcbulk()
        .args(["auth", "status", "--base-url", &sb.url])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
        .env("PCBULK_AUTHORITY", &sb.url)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.contains("tenant:   contoso.onmicrosoft.com"), "{said}");
    assert!(said.contains("App+User"), "{said}");
    assert!(said.contains(&format!("target:   {}", sb.url)), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("expires:") && l.ends_with(" min)")),
        "{said}"
    );
    assert!(
        !said.contains("sandbox-refresh-token") && !said.contains("sbx-"),
        "{said}"
    );
    let stats = sb.stats();
    assert_eq!(stats["tokensIssued"], 1, "{stats}");
    let calls = stats["calls"].as_object().unwrap();
    assert!(
        calls.keys().all(|k| k.starts_with("GET ")),
        "nothing but a read: {stats}"
    );
}

#[test]
fn auth_status_with_a_refused_token_exits_3_with_the_reason_and_never_prints_it() {
    let sb = Sandbox::start(&[]);
    let secret = "very-secret-token-value-5678";
    let out = pcbulk()
        .args(["auth", "status", "--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", secret)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 3, "{said}");
    assert!(said.contains("refused (401)"), "{said}");
    assert!(!said.contains(secret), "{said}");
}

/// With no credentials set there is nothing to check: a configuration error (exit 2, as for apply)
/// whose message names the variables to set; nothing is sent, not even a token request.
#[test]
fn auth_status_without_credentials_exits_2_naming_the_variables_and_sends_nothing() {
    let sb = Sandbox::start(&[]);
    let out = pcbulk()
        .args(["auth", "status", "--base-url", &sb.url])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    for v in [
        "PCBULK_ACCESS_TOKEN",
        "PCBULK_REFRESH_TOKEN",
        "PCBULK_TENANT_ID",
        "PCBULK_CLIENT_ID",
    ] {
        assert!(said.contains(v), "names {v}: {said}");
    }
    let out = pcbulk()
        .args(["auth", "status", "--base-url", &sb.url])
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(code(&out), 2, "{said}");
    assert!(
        said.contains("PCBULK_REFRESH_TOKEN") && said.contains("PCBULK_CLIENT_ID"),
        "{said}"
    );
    let stats = sb.stats();
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["tokensIssued"], 0, "{stats}");
}

/// `pcbulk plan` takes the input, target and pacing flags, and refuses apply's flags that make no
/// sense for a plan (they would write, or resume a write) as a usage error, before anything is sent.
#[test]
fn plan_refuses_apply_s_write_flags_and_takes_target_and_pacing_flags() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n"
        ),
    );
    let plan = |extra: &[&str]| {
        pcbulk()
            .arg("plan")
            .arg(&input)
            .args(["--base-url", &sb.url])
            .args(extra)
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .output()
            .unwrap()
    };
    let other_plan = w.path("other.plan.csv");
    for flag in [
        &["--yes"][..],
        &["--resume"],
        &["--retry-failed"],
        &["--force"],
        &["--dry-run"],
        &["--from-plan", other_plan.to_str().unwrap()],
    ] {
        let out = plan(flag);
        assert_eq!(code(&out), 2, "plan {flag:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains(&format!("unexpected argument '{}'", flag[0])),
            "{}",
            text(&out)
        );
    }
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert!(!w.path("in.plan.csv").exists());
    let out = plan(&[
        "--operation",
        "support-contact",
        "--out",
        w.path("mine.plan.csv").to_str().unwrap(),
        "--rate",
        "50",
        "--concurrency",
        "2",
        "--max-attempts",
        "2",
        "--timeout",
        "10",
        "--max-errors",
        "5",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("mine.plan.csv")), ["planned"]);
    let stats = sb.stats();
    let calls = stats["calls"].as_object().unwrap();
    assert!(
        !calls.is_empty() && calls.keys().all(|k| k.starts_with("GET ")),
        "{stats}"
    );
}

#[test]
fn the_banner_says_the_operation_how_it_was_chosen_the_target_and_the_counts_before_any_call() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name,ticket\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research,T-1\n\
             not-a-guid,{SUB_12},{TREY_TENANT},4391507,Trey Research,T-2\n"
        ),
    );
    let out = sb.apply(&input, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    let banner = err
        .lines()
        .position(|l| l.contains("pcbulk: apply support-contact (chosen by the header)"))
        .unwrap_or_else(|| panic!("no banner: {err}"));
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[banner].contains(&sb.url), "{err}");
    assert!(
        lines[banner + 1].contains("1 row to send, 1 invalid")
            && lines[banner + 1].contains("in.results.csv"),
        "{err}"
    );
    assert!(
        lines[banner + 2] == "        carried: ticket (echoed to the results)",
        "{err}"
    );
}

#[test]
fn a_header_that_fits_only_the_support_profile_is_refused_and_nothing_is_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", "Client,Email\nContoso,help@contoso.example\n");
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("--operation support-profile"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    let out = sb.apply(&input, &["--operation", "support-profile"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

/// A production address (neither loopback nor the sandbox) with no terminal to ask on and no
/// --yes: exit 2, no results, no journal. (Any call would go to a dead loopback proxy, so even a
/// regression sends nothing off this machine.)
#[test]
fn a_production_target_with_no_terminal_and_no_yes_is_refused_before_anything_is_sent() {
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(3));
    let dead = closed_port_url();
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", "https://api.partnercenter.example"])
        .env("PCBULK_ACCESS_TOKEN", "t")
        .env("HTTPS_PROXY", &dead)
        .env("NO_PROXY", "")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(!w.path("in.results.csv").exists());
    assert!(!w.path("in.results.csv.journal").exists());
}

/// One process at a time per results file: a second run with the same results file is refused
/// while the first holds its lock, and sends nothing.
#[test]
fn a_second_run_on_the_same_results_file_is_refused_while_the_first_runs() {
    let sb = Sandbox::start(&["--latency-ms", "20000", "--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let mut first = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url, "--rate", "200"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The sign: the first run's calls are on the wire (reads that take 20 s).
    let waiting = std::time::Instant::now();
    while sb.stats()["maxInFlight"].as_u64().unwrap_or(0) < 1 {
        assert!(waiting.elapsed() < std::time::Duration::from_secs(60));
        std::thread::yield_now();
    }
    let calls = sb.stats()["total"].clone();
    let second = sb.apply(&input, &["--force"]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(code(&second), 2, "{}", text(&second));
    assert!(
        text(&second).contains("another pcbulk is running"),
        "{}",
        text(&second)
    );
    assert_eq!(sb.stats()["total"], calls, "the second run sent nothing");
}

/// `pcbulk plan`: reads each row's current values through the same dispatcher and says what
/// applying it would change, and never writes: the sandbox saw GETs only and holds what it held.
#[test]
fn a_plan_reads_says_what_would_change_and_never_writes() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let before = sb.state();
    let input = w.write(
        "in.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n\
             not-a-guid,{SUB_12},{TREY_TENANT},4391507,Trey Research\n"
        ),
    );
    let out = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("in.plan.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["status"].as_str(), r["change"].as_str()))
        .collect();
    assert_eq!(got[0].0, "planned");
    assert!(
        got[0].1.contains(&format!("→ \"{TREY_TENANT}\"")) && got[0].1.contains("name: "),
        "{got:?}"
    );
    assert_eq!(got[1], ("invalid", ""));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applying it would change:"),
        "{}",
        text(&out)
    );
    let stats = sb.stats();
    let calls = stats["calls"].as_object().unwrap();
    assert!(
        !calls.is_empty() && calls.keys().all(|k| k.starts_with("GET ")),
        "{stats}"
    );
    assert_eq!(sb.state(), before, "nothing changed");
    assert!(!w.path("in.results.csv").exists());
}

/// Plan on Monday, apply on Tuesday: `apply --from-plan` applies exactly the rows the plan marks
/// `planned`, and a row whose values changed in between fails as `drifted` and is not written.
#[test]
fn apply_from_plan_applies_the_planned_rows_and_refuses_one_changed_in_between() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             {CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n\
             {CONTOSO},{SUB_12},{TREY_TENANT},4391507,Trey Research\n\
             not-a-guid,{SUB_12},{TREY_TENANT},4391507,Trey Research\n\
             {CONTOSO},{SUB_13},{TREY_TENANT},4391507,Trey Research\n"
        ),
    );
    // Row 4's contact already is what the row asks: the plan says unchanged.
    let already = serde_json::json!({
        "SupportTenantId": TREY_TENANT, "SupportMpnId": "4391507",
        "Name": "Trey Research", "Attributes": {"ObjectType": "SupportContact"},
    });
    let sub13 = format!("/customers/{CONTOSO}/subscriptions/{SUB_13}/supportcontact");
    assert!(sb
        .call("PUT", &sub13, Some(already), &[])
        .unwrap()
        .status()
        .is_success());
    let run = |args: &[&str]| {
        pcbulk()
            .args(args)
            .arg(&input)
            .args(["--base-url", &sb.url])
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .output()
            .unwrap()
    };
    let plan = run(&["plan"]);
    assert_eq!(code(&plan), 1, "{}", text(&plan));
    assert_eq!(
        statuses(&w.path("in.plan.csv")),
        ["planned", "planned", "invalid", "unchanged"]
    );
    // Someone edits row 2's contact between the plan and the apply.
    sb.set_contact(
        SUB_12,
        FABRIKAM_RESELLER_TENANT,
        "5123456",
        "Edited meanwhile",
    );
    let plan_path = w.path("in.plan.csv");
    let out = run(&["apply", "--from-plan", plan_path.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("in.results.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["status"].as_str(), r["error_code"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("succeeded", ""),
            ("failed", "drifted"),
            ("invalid", "invalid_guid"),
            ("skipped", "not_planned")
        ]
    );
    assert_eq!(
        sb.subscription(SUB_11)["supportContact"]["supportTenantId"],
        TREY_TENANT
    );
    assert_eq!(
        sb.subscription(SUB_12)["supportContact"]["name"],
        "Edited meanwhile",
        "the edit made meanwhile is not overwritten"
    );
}

/// Found by an outside test: validate and undo wrote over an apply's records (and undo over the
/// run's own input). Both now refuse, and the files are left as they were.
#[test]
fn validate_and_undo_never_write_over_an_apply_s_records_or_its_input() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        contacts_csv(0) + &format!("{CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let results_path = w.path("in.results.csv");
    let results_before = std::fs::read(&results_path).unwrap();
    let journal_before = std::fs::read(w.path("in.results.csv.journal")).unwrap();
    let input_before = std::fs::read(&input).unwrap();

    // validate after apply writes its own file, beside them.
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(statuses(&w.path("in.validation.csv")), ["valid"]);

    let out = pcbulk()
        .arg("validate")
        .arg(&input)
        .arg("--out")
        .arg(&results_path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("an apply's results file"),
        "{}",
        text(&out)
    );

    for target in [&input, &results_path] {
        let out = pcbulk()
            .arg("undo")
            .arg(&results_path)
            .arg("--out")
            .arg(target)
            .output()
            .unwrap();
        assert_eq!(
            code(&out),
            2,
            "undo --out {}: {}",
            target.display(),
            text(&out)
        );
    }
    assert_eq!(std::fs::read(&results_path).unwrap(), results_before);
    assert_eq!(
        std::fs::read(w.path("in.results.csv.journal")).unwrap(),
        journal_before
    );
    assert_eq!(std::fs::read(&input).unwrap(), input_before);
    // And the run can still be undone: its before-values are all there.
    let out = pcbulk().arg("undo").arg(&results_path).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let undo = results(&w.path("in.undo.csv"));
    assert_eq!(undo.len(), 1, "{undo:?}");
    assert_eq!(undo[0]["subscription_id"], SUB_11);
    assert_ne!(undo[0]["support_tenant_id"], TREY_TENANT, "{undo:?}");
}

/// `--sandbox` starts a fresh demo tenant each run, so running the README's first command twice
/// applies nothing twice: it is not refused as "already applied" (the records are moved aside).
#[test]
fn the_sandbox_job_runs_again_and_moves_the_earlier_records_aside() {
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        contacts_csv(0) + &format!("{CONTOSO},{SUB_11},{TREY_TENANT},4391507,Trey Research\n"),
    );
    for _ in 0..2 {
        let out = pcbulk()
            .arg("apply")
            .arg(&input)
            .arg("--sandbox")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    assert_eq!(statuses(&w.path("in.results.csv")), ["succeeded"]);
    let aside = std::fs::read_dir(w.path(""))
        .unwrap()
        .filter(|e| {
            let n = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .into_owned();
            n.starts_with("in.results.2") && n.ends_with("Z.csv")
        })
        .count();
    assert_eq!(aside, 1);
}

/// A row whose write would be too large to journal (a note of over 1 MiB) is `invalid`,
/// `too_large`, and its write is not sent. Its read was: `http_status` is that read's 200 and
/// `attempts` 1, as the SPEC has them (the last HTTP status; the calls made for the row), and the
/// message says only the read went out. The row after it, on the same request, still goes.
#[test]
fn a_row_too_large_to_journal_is_invalid_after_its_read_and_its_write_is_not_sent() {
    let sb = Sandbox::start(&[]);
    let sr = sb.state()["serviceRequests"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w = Workdir::new();
    let big = "x".repeat(1_100_000);
    let input = w.write(
        "in.csv",
        format!("service_request_id,note\n{sr},{big}\n{sr},a small note\n"),
    );
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("in.results.csv"));
    let row = &rows[0];
    assert_eq!(
        (
            row["status"].as_str(),
            row["error_code"].as_str(),
            row["http_status"].as_str(),
            row["attempts"].as_str()
        ),
        ("invalid", "too_large", "200", "1")
    );
    assert!(
        row["error_message"].contains("not sent (only the row's read was)"),
        "{}",
        row["error_message"]
    );
    assert_eq!(rows[1]["status"], "succeeded");
    let notes = sb.note_counts();
    assert_eq!(notes.get("a small note"), Some(&1));
    assert!(!notes.contains_key(&big));
    let stats = sb.stats();
    let patches: u64 = stats["calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("PATCH "))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(patches, 1, "only the small note's write: {stats}");
}
