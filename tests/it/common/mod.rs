//! Test helpers that read like the user's story: a work dir with an input file, the real `pcbulk`
//! binary, a real sandbox on loopback (pcbulk's own, served in this process over real HTTP), and
//! the results file parsed back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub const CONTOSO: &str = "c0000001-0000-4000-8000-000000000001";
pub const FABRIKAM: &str = "c0000002-0000-4000-8000-000000000002";
pub const NORTHWIND: &str = "c0000003-0000-4000-8000-000000000003";
pub const TREY_TENANT: &str = "e0000001-0000-4000-8000-000000000001";
pub const FABRIKAM_RESELLER_TENANT: &str = "e0000002-0000-4000-8000-000000000002";

/// The id of the sandbox's i-th extra Contoso subscription (`pcbulk sandbox --subscriptions N`).
pub fn extra_subscription(i: usize) -> String {
    format!("d1000000-0000-4000-8000-{i:012x}")
}

/// A support-contact file moving Contoso's extra subscriptions `0..n` to Trey Research.
pub fn contacts_csv(n: usize) -> String {
    let mut csv =
        String::from("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{CONTOSO},{},{TREY_TENANT},4391507,Trey Research\n",
            extra_subscription(i)
        ));
    }
    csv
}

/// The `pcbulk` binary with no PCBULK_* variables from the caller's environment, and a state folder
/// (the list of finished runs) of its own, new for each command: no two tests, and no two commands
/// of one test, share the list, nor touch the user's. A test that needs the list to outlive one
/// command sets `PCBULK_STATE_DIR` itself ([`Workdir::state`]).
pub fn pcbulk() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pcbulk"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PCBULK_") {
            c.env_remove(k);
        }
    }
    // A fresh random name: never one an earlier test run left behind.
    let state = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pcbulk-state")
        .join(uuid::Uuid::new_v4().to_string());
    c.env("PCBULK_STATE_DIR", state);
    c.stdin(Stdio::null());
    c
}

/// `pcbulk sandbox` on a free loopback port, stopped when dropped. It runs in the test's process,
/// on a runtime of its own, and is reached over real HTTP like the process `pcbulk sandbox` starts:
/// the same options (parsed from the same flags) and the same server, without a process to start.
pub struct Sandbox {
    running: Option<pcbulk::sandbox::Running>,
    runtime: tokio::runtime::Runtime,
    pub url: String,
    http: reqwest::blocking::Client,
}

impl Sandbox {
    pub fn start(extra: &[&str]) -> Sandbox {
        use clap::Parser;
        let args = ["pcbulk", "sandbox", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(extra);
        let cli = pcbulk::cli::Cli::try_parse_from(args)
            .unwrap_or_else(|e| panic!("sandbox flags {extra:?}: {e}"));
        let pcbulk::cli::Command::Sandbox(args) = cli.command else {
            unreachable!("parsed as the sandbox command")
        };
        let opts = pcbulk::sandbox::Options::try_from(&args)
            .unwrap_or_else(|e| panic!("sandbox flags {extra:?}: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the sandbox");
        let running = runtime
            .block_on(pcbulk::sandbox::start(opts))
            .expect("start the sandbox");
        let url = running.base_url();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Sandbox {
            running: Some(running),
            runtime,
            url,
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .and_then(|r| r.json())
            .expect("sandbox answers")
    }

    /// A call as the reference says a client makes it; `extra` headers are added or, when the value
    /// is empty, removed.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::blocking::Response> {
        let mut headers = vec![
            ("Authorization".to_string(), "Bearer sandbox".to_string()),
            ("Accept".into(), "application/json".into()),
            ("MS-Contract-Version".into(), "v1".into()),
            ("MS-RequestId".into(), uuid::Uuid::new_v4().to_string()),
            ("MS-CorrelationId".into(), uuid::Uuid::new_v4().to_string()),
            ("X-Locale".into(), "en-US".into()),
        ];
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        for (k, v) in extra {
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                headers.push((k.to_string(), v.to_string()));
            }
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}/v1{path}", self.url));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(serde_json::to_vec(&b).unwrap());
        }
        req.send()
    }

    /// Someone else sets Contoso's subscription `sub`'s support contact, as the portal would.
    pub fn set_contact(&self, sub: &str, tenant: &str, mpn: &str, name: &str) {
        let path = format!("/customers/{CONTOSO}/subscriptions/{sub}/supportcontact");
        let body = serde_json::json!({
            "SupportTenantId": tenant, "SupportMpnId": mpn, "Name": name,
            "Attributes": {"ObjectType": "SupportContact"},
        });
        let resp = self.call("PUT", &path, Some(body), &[]).unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// The body of an answer as JSON, a leading byte-order mark allowed.
    pub fn json(resp: reqwest::blocking::Response) -> Value {
        let bytes = resp.bytes().unwrap();
        let b = bytes
            .strip_prefix(b"\xef\xbb\xbf".as_slice())
            .unwrap_or(&bytes);
        serde_json::from_slice(b).unwrap_or(Value::Null)
    }

    pub fn state(&self) -> Value {
        self.get("/_sandbox/state")
    }

    pub fn stats(&self) -> Value {
        self.get("/_sandbox/stats")
    }

    pub fn customer(&self, id: &str) -> Value {
        self.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .expect("customer in state")
    }

    pub fn subscription(&self, id: &str) -> Value {
        self.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["subscriptions"].as_array().unwrap().clone())
            .find(|s| s["id"] == id)
            .expect("subscription in state")
    }

    pub fn service_request(&self, id: &str) -> Value {
        self.state()["serviceRequests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect("service request in state")
    }

    /// How many times each note text stands on the tenant's service requests.
    pub fn note_counts(&self) -> BTreeMap<String, usize> {
        let mut notes = BTreeMap::new();
        for sr in self.state()["serviceRequests"].as_array().unwrap() {
            for n in sr["notes"].as_array().unwrap() {
                *notes
                    .entry(n["text"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        notes
    }

    /// `pcbulk apply INPUT --base-url <sandbox>` with the always-accepted token (and `--rate 200`
    /// unless `extra` sets one).
    pub fn apply(&self, input: &Path, extra: &[&str]) -> Output {
        let mut c = pcbulk();
        c.arg("apply").arg(input).args(["--base-url", &self.url]);
        if !extra.contains(&"--rate") {
            c.args(["--rate", "200"]);
        }
        c.args(extra)
            .env("PCBULK_ACCESS_TOKEN", "sandbox")
            .output()
            .expect("run pcbulk")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }
}

/// A temporary folder for one test's files.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A state folder (pcbulk's list of finished runs) that lasts as long as this folder: give it
    /// to commands as `PCBULK_STATE_DIR` to let one see the runs another finished.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// A CSV file pcbulk wrote (results, plan, undo), read with the csv crate, not pcbulk's own reader:
/// its BOM taken off, its delimiter (the input's) taken from the header line. The header, and each
/// row as column → cell.
pub fn table(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let bytes = std::fs::read(path).expect("the file exists");
    let bytes = bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(&bytes);
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| first.iter().filter(|b| *b == d).count())
        .unwrap();
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            headers
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (headers, rows)
}

/// The rows of a results file (see [`table`]).
pub fn results(path: &Path) -> Vec<BTreeMap<String, String>> {
    table(path).1
}

pub fn statuses(path: &Path) -> Vec<String> {
    results(path)
        .into_iter()
        .map(|r| r["status"].clone())
        .collect()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `http://127.0.0.1:PORT` for a port nothing listens on (it was free a moment ago): a service
/// that cannot be reached, on this machine.
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Support-contact PUTs the sandbox answered 200: rows written.
pub fn puts(sb: &Sandbox) -> u64 {
    sb.stats()["calls"]["PUT supportcontact 200"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until the journal holds `n` writes about to be sent: the run is sending.
pub fn wait_for_sends(journal: &Path, n: usize) {
    let started = std::time::Instant::now();
    loop {
        let sends = std::fs::read_to_string(journal)
            .map(|t| t.matches("\"t\":\"send\"").count())
            .unwrap_or(0);
        if sends >= n {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the run never sent {n} writes"
        );
        std::thread::yield_now();
    }
}

/// Sends the child `sig` (`-INT`, `-TERM`) as `kill` in a shell does.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `pcbulk <cmd> INPUT --base-url URL ARGS` (at `--rate 200`) with the work dir's state folder, so
/// that one command sees the runs another recorded.
pub fn run_at(url: &str, w: &Workdir, cmd: &str, input: &Path, args: &[&str]) -> Output {
    pcbulk()
        .arg(cmd)
        .arg(input)
        .args(["--base-url", url, "--rate", "200"])
        // Short: a resume looks for a write a kill left unanswered for up to 3 timeouts.
        .args(["--timeout", "1"])
        .args(args)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_STATE_DIR", w.state())
        .output()
        .expect("run pcbulk")
}

/// [`run_at`] the sandbox.
pub fn run(sb: &Sandbox, w: &Workdir, cmd: &str, input: &Path, args: &[&str]) -> Output {
    run_at(&sb.url, w, cmd, input, args)
}

/// pcbulk's list of runs in the work dir's state folder, as text (empty when there is none).
pub fn runs_list(w: &Workdir) -> String {
    String::from_utf8_lossy(&std::fs::read(w.state().join("runs.jsonl")).unwrap_or_default())
        .into_owned()
}

/// The same zip with one part's text changed by `f`.
pub fn rewrite_part(xlsx: &[u8], part: &str, f: impl Fn(String) -> String) -> Vec<u8> {
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..zin.len() {
        let mut p = zin.by_index(i).unwrap();
        let name = p.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut p, &mut bytes).unwrap();
        if name == part {
            bytes = f(String::from_utf8(bytes).unwrap()).into_bytes();
        }
        out.start_file(name, opts).unwrap();
        std::io::Write::write_all(&mut out, &bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// `pcbulk apply INPUT` against `sb`, one call at a time, stderr piped (off a terminal) with a
/// progress line every 100 ms, stdout ignored.
pub fn spawn_with_progress(sb: &Sandbox, input: &Path, extra: &[&str]) -> Child {
    pcbulk()
        .arg("apply")
        .arg(input)
        .args(["--base-url", &sb.url, "--concurrency", "1"])
        .args(extra)
        .env("PCBULK_ACCESS_TOKEN", "sandbox")
        .env("PCBULK_PROGRESS_EVERY_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A test whose tool or data is missing: "skipped" on a developer's machine, a failure where
/// `PCBULK_TESTS_REQUIRE_ALL` is set (`.ci/run` sets it, so CI cannot pass by skipping).
pub fn skipped(what: &str) {
    assert!(
        std::env::var_os("PCBULK_TESTS_REQUIRE_ALL").is_none(),
        "PCBULK_TESTS_REQUIRE_ALL is set (CI) and {what}"
    );
    eprintln!("skipped: {what}");
}

/// Every variable that names a proxy, in both cases.
pub const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];
