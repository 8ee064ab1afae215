//! What a run shows and leaves for people and scripts besides its results: the text and JSON
//! summaries, progress, logs, and the HTML report. The real binary against a real sandbox.

use crate::common;

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;
use serde_json::Value;

const LITWARE: &str = "e0000009-0000-4000-8000-000000000009";
const HEADER: &str = "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n";

/// Two rows Trey Research takes, two the service refuses (Litware is no reseller of Contoso's),
/// and one that is not a GUID.
fn mixed_outcomes() -> String {
    let mut csv = String::from(HEADER);
    for sub in ["11", "12"] {
        csv.push_str(&format!(
            "{CONTOSO},d0000001-0000-4000-8000-0000000000{sub},{TREY_TENANT},4391507,Trey Research\n"
        ));
    }
    for (customer, sub) in [
        (CONTOSO, "1-0000-4000-8000-000000000013"),
        (FABRIKAM, "2-0000-4000-8000-000000000021"),
    ] {
        csv.push_str(&format!(
            "{customer},d000000{sub},{LITWARE},9000009,Litware\n"
        ));
    }
    csv.push_str("not-a-guid,x,y,1,Nobody\n");
    csv
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn read_json(path: &Path) -> Value {
    json_of(&std::fs::read(path).expect("the summary JSON was written"))
}

/// RFC 3339 in UTC as pcbulk writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_rfc3339(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && s.ends_with('Z')
        && s[..4].parse::<u32>().is_ok_and(|y| y >= 2020)
}

#[test]
fn summary_json_on_stdout_is_all_a_cron_job_needs_to_see_the_run_needs_attention() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let out = sb.apply(&input, &["--summary-json", "-", "--concurrency", "1"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let s = json_of(&out.stdout);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["aborted"], Value::Null);
    assert_eq!(s["operation"], "support-contact");
    assert_eq!(s["target"], sb.url.as_str());
    assert_eq!(s["input"], input.display().to_string());
    assert_eq!(s["results"], w.path("in.results.csv").display().to_string());
    assert_eq!(s["rows"]["succeeded"], 2, "{s}");
    assert_eq!(s["rows"]["failed"], 2, "{s}");
    assert_eq!(s["rows"]["invalid"], 1, "{s}");
    assert_eq!(s["rows"]["skipped"], 0, "{s}");
    assert!(
        is_rfc3339(&s["started"]) && is_rfc3339(&s["finished"]),
        "{s}"
    );
    assert!(s["started"].as_str() <= s["finished"].as_str());
    // elapsed_s is the span from started to finished (both to the millisecond), not a number of
    // its own.
    let at = |k: &str| humantime::parse_rfc3339(s[k].as_str().unwrap()).unwrap();
    let span = at("finished").duration_since(at("started")).unwrap();
    let elapsed = s["elapsed_s"].as_f64().expect("elapsed_s is a number");
    assert!(
        (elapsed - span.as_secs_f64()).abs() <= 0.005,
        "elapsed_s {elapsed} is not finished - started ({span:?}): {s}"
    );
    // The results file is the truth the summary counts: its failed rows' code leads the errors.
    let rows = results(&w.path("in.results.csv"));
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] == "failed").collect();
    let errors = s["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{s}");
    assert_eq!(errors[0]["count"], 2);
    assert_eq!(errors[0]["code"], failed[0]["error_code"].as_str());
    assert_eq!(errors[0]["message"], failed[0]["error_message"].as_str());
    assert_eq!(errors[0]["example_row"].to_string(), failed[0]["row"]);
    assert_eq!(errors[1]["count"], 1);
    assert_eq!(errors[1]["example_row"], 5);
    let calls_in_sandbox = sb.stats()["total"].as_u64().unwrap();
    assert_eq!(s["calls"].as_u64(), Some(calls_in_sandbox), "{s}");
    assert_eq!(s["retries"], 0);
    assert_eq!(s["throttled"], 0);
    // The text summary still reaches a person, on stderr, with the errors grouped.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("errors by code, most frequent first:"),
        "{err}"
    );
    assert!(err.contains("journal: "), "{err}");
    assert!(err.contains("undo: pcbulk undo"), "{err}");
}

#[test]
fn the_summary_counts_the_429s_and_retries_it_met() {
    let sb = Sandbox::start(&["--rate", "4", "--burst", "1"]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let summary = w.path("summary.json");
    let out = sb.apply(
        &input,
        &["--rate", "100", "--summary-json", summary.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let s = read_json(&summary);
    let stats = sb.stats();
    let throttled_by_sandbox = stats["throttled"].as_u64().unwrap_or(0);
    assert!(throttled_by_sandbox > 0, "the sandbox throttled: {stats}");
    assert_eq!(s["throttled"].as_u64(), Some(throttled_by_sandbox), "{s}");
    assert!(
        s["retries"].as_u64().unwrap() >= throttled_by_sandbox,
        "{s}"
    );
    assert_eq!(s["rows"]["succeeded"], 2, "{s}");
    // The text summary (stdout, as no JSON goes there) says it too.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{throttled_by_sandbox} 429")),
        "{said}"
    );
}

#[test]
fn summary_json_is_written_when_the_run_aborts() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut csv = String::from(HEADER);
    for sub in ["11", "12", "13"] {
        csv.push_str(&format!(
            "{CONTOSO},d0000001-0000-4000-8000-0000000000{sub},{LITWARE},9000009,Litware\n"
        ));
    }
    let input = w.write("in.csv", csv);
    let summary = w.path("s.json");
    let out = sb.apply(
        &input,
        &[
            "--max-errors",
            "1",
            "--concurrency",
            "1",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 3, "{}", text(&out));
    let s = read_json(&summary);
    assert_eq!(s["exit_code"], 3);
    assert!(
        s["aborted"]
            .as_str()
            .is_some_and(|a| a.contains("max-errors")),
        "{s}"
    );
    let statuses = statuses(&w.path("in.results.csv"));
    let skipped = statuses.iter().filter(|s| *s == "skipped").count();
    assert!(skipped >= 1);
    assert_eq!(s["rows"]["skipped"], skipped, "{s}");
}

#[test]
fn summary_json_is_written_when_the_run_is_interrupted_twice() {
    let sb = Sandbox::start(&["--latency-ms", "20000", "--subscriptions", "4"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(4));
    let summary = w.path("s.json");
    let mut child = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url, "--concurrency", "2"])
        .args(["--summary-json", summary.to_str().unwrap()])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    while sb.stats()["maxInFlight"].as_u64().unwrap_or(0) < 2 {
        std::thread::yield_now();
    }
    signal(&child, "-INT");
    let mut said = String::new();
    while !said.contains("no new rows") {
        said.clear();
        let n = stderr.read_line(&mut said).unwrap();
        assert!(n > 0, "the run ended before taking the first interrupt");
    }
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    let s = read_json(&summary);
    assert_eq!(s["exit_code"], 3);
    assert!(
        s["aborted"]
            .as_str()
            .is_some_and(|a| a.contains("interrupted")),
        "{s}"
    );
    assert_eq!(s["calls"], 2, "{s}");
}

#[test]
fn summary_json_says_why_when_nothing_could_be_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "in.csv",
        format!("customer_id,subscription_id,name\n{CONTOSO},x,Trey\n"),
    );
    let out = sb.apply(
        &input,
        &["--operation", "support-contact", "--summary-json", "-"],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    let s = json_of(&out.stdout);
    assert_eq!(s["exit_code"], 2);
    assert!(
        s["aborted"]
            .as_str()
            .is_some_and(|a| a.contains("support_tenant_id")),
        "{s}"
    );
    assert_eq!(s["calls"], 0);
    assert_eq!(sb.stats()["total"], 0);
}

#[cfg(unix)]
#[test]
fn summary_json_through_a_symlink_is_refused_before_anything_is_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let precious = w.write("precious.txt", "keep me");
    let link = w.path("s.json");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let out = sb.apply(&input, &["--summary-json", link.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert_eq!(sb.stats()["total"], 0);
}

#[test]
fn a_summary_json_path_that_is_the_input_is_refused_and_the_input_kept() {
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let out = pcbulk()
        .arg("validate")
        .arg(&input)
        .args(["--summary-json", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&input).unwrap(), mixed_outcomes());
}

#[test]
fn plan_and_validate_write_the_summary_json_too() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let out = pcbulk()
        .arg("plan")
        .arg(&input)
        .args(["--base-url", &sb.url, "--summary-json", "-"])
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .output()
        .unwrap();
    let s = json_of(&out.stdout);
    assert_eq!(s["command"], "plan");
    assert_eq!(s["exit_code"].as_i64(), Some(code(&out) as i64));
    assert_eq!(s["rows"]["planned"], 4, "{s}");
    assert_eq!(s["rows"]["invalid"], 1, "{s}");
    assert_eq!(s["results"], w.path("in.plan.csv").display().to_string());

    let out = pcbulk()
        .arg("validate")
        .arg(&input)
        .args(["--summary-json", "-"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let s = json_of(&out.stdout);
    assert_eq!(s["command"], "validate");
    // Found by an outside test: null when the operation came from the header.
    assert_eq!(s["operation"], "support-contact");
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["rows"]["valid"], 4);
    assert_eq!(s["rows"]["invalid"], 1);
    assert_eq!(s["errors"][0]["example_row"], 5);
    assert_eq!(s["calls"], 0);
}

/// A slow run (each call 150 ms, one at a time) with progress lines every 100 ms, its stderr read
/// line by line as it comes.
fn slow_run(
    extra: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    Sandbox,
) {
    let sb = Sandbox::start(&["--latency-ms", "150", "--subscriptions", "8"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(8));
    let mut child = spawn_with_progress(&sb, &input, extra);
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::mem::forget(w); // the run's files live until the process ends
    (child, stderr, sb)
}

fn is_progress_line(l: &str) -> bool {
    l.starts_with("pcbulk: ") && l.contains("/8 rows (") && l.contains(" retrying · ")
}

#[test]
fn a_piped_run_prints_plain_progress_lines() {
    let (mut child, stderr, _sb) = slow_run(&[]);
    let mut lines = stderr.lines();
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| is_progress_line(l))
        .expect("a progress line before the run ended");
    assert!(
        line.contains(" succeeded · ") && line.contains(" throttled"),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "no colour off a terminal: {line:?}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
}

#[test]
fn quiet_prints_no_progress() {
    let (mut child, stderr, _sb) = slow_run(&["--quiet"]);
    let lines: Vec<String> = stderr.lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{lines:?}");
    assert!(!lines.iter().any(|l| is_progress_line(l)), "{lines:?}");
    // What the run is about to do is still said (the banner is not progress).
    assert!(lines.iter().any(|l| l.contains("results:")), "{lines:?}");
}

/// The stderr lines that are log lines, each parsed (every one must parse).
fn json_log_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_logs_at_v_give_each_row_its_ids_status_and_attempts() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let out = sb.apply(&input, &["--log-format", "json", "-v"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(!text(&out).contains('\x1b'), "no colour off a terminal");
    let logs = json_log_lines(&out.stderr);
    let rows: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "row finished")
        .collect();
    let results = results(&w.path("in.results.csv"));
    assert_eq!(rows.len(), results.len(), "{logs:?}");
    for r in &results {
        let l = rows
            .iter()
            .find(|l| l["row"] == r["row"].parse::<u64>().unwrap())
            .unwrap_or_else(|| panic!("no log line for row {}", r["row"]));
        assert_eq!(l["status"], r["status"].as_str());
        assert_eq!(l["correlation_id"], r["correlation_id"].as_str());
        assert_eq!(l["request_id"], r["request_id"].as_str());
        assert_eq!(l["attempt"].to_string(), r["attempts"]);
        assert_eq!(l["level"], "INFO");
    }
    assert!(
        !logs.iter().any(|l| l["message"] == "call sent"),
        "calls are -vv"
    );
}

#[test]
fn at_vv_every_call_retry_and_429_is_logged_and_no_secret_ever_is() {
    let sb = Sandbox::start(&["--rate", "4", "--burst", "1", "--token-lifetime", "1"]);
    let w = Workdir::new();
    let mut csv = String::from("service_request_id,note\n");
    for i in 0..6 {
        csv.push_str(&format!("616122292874579,note {i}\n"));
    }
    let input = w.write("sr.csv", csv);
    let secret = "client-secret-8c1f0e";
    for format in ["json", "text"] {
        let out = pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", &sb.url, "--rate", "50", "--force", "-vv"])
            .args(["--log-format", format])
            .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
            .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
            .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
            .env("PCBULK_CLIENT_SECRET", secret)
            .env("PCBULK_AUTHORITY", &sb.url)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
        let all = text(&out);
        for s in [
            "sandbox-refresh-token",
            secret,
            "sbx-at-",
            "sbx-rt-",
            "Bearer",
        ] {
            assert!(!all.contains(s), "{s} in the {format} output:\n{all}");
        }
        if format == "json" {
            let logs = json_log_lines(&out.stderr);
            let sent = logs.iter().filter(|l| l["message"] == "call sent").count();
            let stats = sb.stats();
            assert!(sent >= 6, "{logs:?}");
            let retry = logs
                .iter()
                .find(|l| l["message"] == "retry scheduled")
                .unwrap_or_else(|| panic!("a retry after a 429: {stats} {logs:?}"));
            assert!(
                retry["wait_ms"].is_u64() && retry["row"].is_u64(),
                "{retry}"
            );
            let throttled = logs.iter().find(|l| l["message"] == "throttled").unwrap();
            assert_eq!(throttled["status"], 429);
            let call = logs.iter().find(|l| l["message"] == "call sent").unwrap();
            for field in ["row", "attempt", "correlation_id", "request_id"] {
                assert!(!call[field].is_null(), "{field} in {call}");
            }
        }
    }
}

/// A sandbox run with succeeded, failed and invalid rows, and a name written to look like markup.
fn run_with_report(w: &Workdir, sb: &Sandbox) -> String {
    let evil = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    let csv = mixed_outcomes().replacen("Trey Research", &format!("\"{evil}\""), 1);
    let input = w.write("in.csv", csv);
    let report = w.path("report.html");
    let out = sb.apply(&input, &["--report", report.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    std::fs::read_to_string(&report).expect("the report was written")
}

#[test]
fn the_report_is_one_page_that_loads_nothing_and_escapes_what_it_shows() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let page = run_with_report(&w, &sb);
    // HTML injection: the name is shown as text, never as markup.
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    // Self-contained: no script, no link, no fetched resource of any kind.
    for fetch in [
        "<link", "src=\"", "url(", "@import", "https://", "<iframe", "<object",
    ] {
        assert!(!page.contains(fetch), "{fetch} in the page");
    }
    assert!(page.contains("<svg"), "an inline chart");
    for section in ["p50", "p90", "p99", "max", "before → after"] {
        assert!(page.contains(section), "{section} missing");
    }
    // The failed rows' error code, from the results file, heads a group.
    let rows = results(&w.path("in.results.csv"));
    let failed = rows.iter().find(|r| r["status"] == "failed").unwrap();
    assert!(page.contains(&format!(
        "<h3><code>{}</code> · 2 rows",
        failed["error_code"]
    )));
}

/// Renders a page in headless Chromium, loopback only, and returns the screenshot's PNG, or
/// `None` when Chromium is not installed.
pub fn screenshot(page: &Path, png: &Path) -> Option<()> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
    let profile = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--hide-scrollbars",
            // Anything it might still try to fetch goes to a closed loopback port.
            "--proxy-server=127.0.0.1:9",
            "--window-size=1200,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run chromium");
    assert!(status.success(), "chromium failed: {status}");
    Some(())
}

#[test]
fn the_report_renders_in_a_browser_as_a_page_that_is_not_blank() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    run_with_report(&w, &sb);
    let png = w.path("report.png");
    if screenshot(&w.path("report.html"), &png).is_none() {
        common::skipped("chromium is not installed (apt-get install chromium)");
        return;
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1400));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let colours: std::collections::HashSet<[u8; 3]> =
        pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    let not_white = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    assert!(
        colours.len() > 50,
        "{} colours: a blank page?",
        colours.len()
    );
    assert!(
        not_white * 10 > pixels.len(),
        "{not_white} of {} pixels are not white",
        pixels.len()
    );
    // The red of failed rows and 429s, and the blue of the calls, made it to the screen.
    assert!(
        colours.contains(&[0xcf, 0x22, 0x2e]),
        "no failure red drawn"
    );
    assert!(colours.contains(&[0x2f, 0x81, 0xf7]), "no calls blue drawn");
}

/// Found by an outside test: `--report` naming the run's journal wrote over it, and undo and every
/// later run were refused; `--summary-json` in a folder that does not exist was found only after the
/// run, leaving a cron job yesterday's summary to read. Both are refused before anything is sent.
#[test]
fn a_report_over_the_journal_or_a_summary_nowhere_is_refused_before_anything_is_sent() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("in.csv", mixed_outcomes());
    let journal = w.path("in.results.csv.journal");
    let missing = w.path("no-such-folder").join("s.json");
    for args in [
        vec!["--report", journal.to_str().unwrap()],
        vec!["--summary-json", missing.to_str().unwrap()],
        vec!["--summary-json", "same.out", "--report", "same.out"],
    ] {
        let out = pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", &sb.url])
            .args(&args)
            .current_dir(w.path(""))
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(!journal.exists(), "{args:?}: nothing was started");
        assert!(!missing.exists());
    }
    let stats = sb.stats();
    assert!(
        stats["calls"].as_object().is_none_or(|c| c.is_empty()),
        "nothing was sent: {stats}"
    );
}
