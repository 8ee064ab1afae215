//! Dispatch against the sandbox, the figures of the resilient-dispatch issue: how much of an unknown
//! limit pcbulk uses, how many of its calls are throttled, and whether faults ever cost a row or
//! apply one twice. Runs the release binary against a `pcbulk sandbox` process on 127.0.0.1.
//!
//! Run: `cargo bench --bench dispatch` (about two minutes; `-- smooth` etc. runs one scenario).

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{results, Sandbox, Workdir};
use serde_json::Value;

const ROWS: usize = 600;
const LATENCY: &str = "20-60";

struct Figures {
    succeeded: usize,
    rows: usize,
    seconds: f64,
    calls: u64,
    throttled: u64,
    admitted: u64,
    /// When each success was answered, in seconds since the sandbox started (its windows start
    /// then); from the client's `-vv` JSON log.
    ok_at: Vec<f64>,
}

fn run(sandbox: &[&str], client: &[&str], csv: &str) -> (Figures, Sandbox, Workdir) {
    let started = SystemTime::now();
    let sb = Sandbox::start(sandbox);
    let w = Workdir::new();
    let input = w.write("in.csv", csv);
    let t = Instant::now();
    let out = sb.apply(&input, client);
    let seconds = t.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!("{}", common::text(&out));
    }
    let rows = results(&w.path("in.results.csv"));
    let stats = sb.stats();
    let calls = stats["total"].as_u64().unwrap();
    let throttled = stats["throttled"].as_u64().unwrap();
    let faults: u64 = stats["faults"]
        .as_object()
        .map(|f| {
            f.iter()
                .filter(|(k, _)| matches!(k.as_str(), "500" | "503" | "dropBefore"))
                .map(|(_, v)| v.as_u64().unwrap())
                .sum()
        })
        .unwrap_or(0);
    let figures = Figures {
        succeeded: rows.iter().filter(|r| r["status"] == "succeeded").count(),
        rows: rows.len(),
        seconds,
        calls,
        throttled,
        admitted: calls - throttled - faults,
        ok_at: successes_since(&out.stderr, started),
    };
    (figures, sb, w)
}

/// The answers of status 2xx in a `-vv --log-format json` log, as seconds since `origin`. The
/// sandbox admits a call just before it answers it, so the answer's time places the admission.
fn successes_since(log: &[u8], origin: SystemTime) -> Vec<f64> {
    String::from_utf8_lossy(log)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["message"] == "answer" && (200..300).contains(&e["status"].as_u64().unwrap_or(0))
        })
        .filter_map(|e| humantime::parse_rfc3339(e["timestamp"].as_str()?).ok())
        .map(|t| t.duration_since(origin).unwrap_or_default().as_secs_f64())
        .collect()
}

/// Successes per full window of `window` over the windows the run spanned whole, as a share of
/// the window's `limit`; and how many windows that is.
fn per_full_window(ok_at: &[f64], window: Duration, limit: f64) -> (f64, u64) {
    let index = |t: &f64| (t / window.as_secs_f64()) as u64;
    let first = ok_at.iter().map(index).min().unwrap_or(0);
    let last = ok_at.iter().map(index).max().unwrap_or(0);
    let full = last.saturating_sub(first + 1);
    let ok = ok_at
        .iter()
        .filter(|t| (first + 1..last).contains(&index(t)))
        .count();
    (ok as f64 / (full as f64 * limit), full)
}

/// `window`: the sandbox's window (a token bucket's figures are taken per second).
fn limit_scenario(name: &str, sandbox: &[&str], client: &[&str], rate: f64, window: Duration) {
    let mut args = vec!["--latency-ms", LATENCY, "--subscriptions", "600"];
    args.extend_from_slice(sandbox);
    let mut client = client.to_vec();
    client.extend_from_slice(&["-vv", "--log-format", "json"]);
    let (f, _, _) = run(&args, &client, &common::contacts_csv(ROWS));
    let (share, windows) = per_full_window(&f.ok_at, window, rate * window.as_secs_f64());
    println!(
        "{name}: {}/{} rows succeeded in {:.1} s; admitted {:.1}% of the limit per full {} s \
         window over {windows} windows ({} calls admitted in all); 429s {}/{} calls = {:.1}%",
        f.succeeded,
        f.rows,
        f.seconds,
        100.0 * share,
        window.as_secs(),
        f.admitted,
        f.throttled,
        f.calls,
        100.0 * f.throttled as f64 / f.calls as f64
    );
}

fn faults_scenario() {
    let srs = [
        "616122292874576",
        "616122292874577",
        "616122292874578",
        "616122292874579",
    ];
    let mut csv = String::from("operation,service_request_id,note,customer_id,company_name,city\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "service-request,{},bench note {i},,,\n",
            srs[i % 4]
        ));
    }
    for i in 0..50 {
        csv.push_str(&format!(
            "billing-profile,,,c1000000-0000-4000-8000-{i:012x},Renamed {i},Town {i}\n"
        ));
    }
    let sandbox = [
        "--latency-ms",
        LATENCY,
        "--customers",
        "50",
        "--seed",
        "11",
        "--fail-share",
        "0.1",
        "--fail-status",
        "503",
        "--drop-before",
        "0.05",
        "--drop-after",
        "0.05",
    ];
    let (f, sb, _w) = run(&sandbox, &["--rate", "100", "--concurrency", "8"], &csv);
    let state = sb.state();
    let notes = sb.note_counts();
    let once = (0..100)
        .filter(|i| notes.get(&format!("bench note {i}")) == Some(&1))
        .count();
    let customers: Vec<&Value> = state["customers"].as_array().unwrap().iter().collect();
    let billing_ok = (0..50)
        .filter(|i| {
            let id = format!("c1000000-0000-4000-8000-{i:012x}");
            customers.iter().any(|c| {
                let b = &c["billingProfile"];
                c["id"] == id.as_str()
                    && b["companyName"] == format!("Renamed {i}").as_str()
                    && b["defaultAddress"]["city"] == format!("Town {i}").as_str()
                    && b["defaultAddress"]["addressLine1"] == format!("{i} Main Street").as_str()
                    && b["defaultAddress"]["addressLine3"] == "Suite 1"
                    && b["middleName"] == ""
                    && b["defaultAddress"]["district"] == "King County"
            })
        })
        .count();
    let stats = sb.stats();
    println!(
        "faults (10% 503, 5% dropped before, 5% after apply): {}/{} rows succeeded in {:.1} s; \
         notes present exactly once: {once}/100; billing profiles with the CSV's values and every \
         other field: {billing_ok}/50; faults injected {}; replays {}; calls {}",
        f.succeeded, f.rows, f.seconds, stats["faults"], stats["replays"], f.calls
    );
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    if want("smooth") {
        limit_scenario(
            "smooth (token bucket 20/s burst 5, --rate 100)",
            &["--rate", "20", "--burst", "5"],
            &["--rate", "100", "--concurrency", "8"],
            20.0,
            Duration::from_secs(1),
        );
    }
    if want("window") {
        limit_scenario(
            "window (100 calls per 5 s window, --rate 100)",
            &["--rate", "20", "--window", "5"],
            &["--rate", "100", "--concurrency", "8"],
            20.0,
            Duration::from_secs(5),
        );
    }
    if want("window1") {
        limit_scenario(
            "window1 (20 calls per 1 s window, --rate 100)",
            &["--rate", "20", "--window", "1"],
            &["--rate", "100", "--concurrency", "8"],
            20.0,
            Duration::from_secs(1),
        );
    }
    if want("known") {
        limit_scenario(
            "known (token bucket 20/s burst 5, --rate 20)",
            &["--rate", "20", "--burst", "5"],
            &["--rate", "20", "--concurrency", "8"],
            20.0,
            Duration::from_secs(1),
        );
    }
    if want("faults") {
        faults_scenario();
    }
}
