//! pcbulk over HTTPS, end to end: against `pcbulk sandbox --tls`, trusting its CA through
//! `SSL_CERT_FILE` (and refusing it without), through an HTTP CONNECT proxy, with HTTP/2 negotiated
//! by ALPN; and a token request's redirect, which is not followed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;

/// The name the proxy test reaches the sandbox by: not loopback to pcbulk (so the proxy carries
/// it), held by the sandbox's certificate (`--tls-name`), and mapped to the sandbox by the proxy,
/// so it is never looked up.
const NAME: &str = "pcbulk-sandbox.test";

/// `pcbulk sandbox --tls` on a free loopback port, stopped when dropped.
struct TlsSandbox {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
    url: String,
    ca: PathBuf,
    http: reqwest::blocking::Client,
}

impl TlsSandbox {
    fn start(w: &Workdir) -> TlsSandbox {
        let ca = w.path("ca.pem");
        let mut child = pcbulk()
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--subscriptions",
                "20",
            ])
            .args(["--tls", "--tls-name", NAME, "--tls-ca-out"])
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pcbulk sandbox --tls");
        // The sandbox says where it listens once its CA is written: the sign to go on.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("pcbulk sandbox listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let pem = std::fs::read(&ca).expect("the CA was written before the sandbox said so");
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .no_proxy()
            .build()
            .unwrap();
        TlsSandbox {
            child,
            _stdout: stdout,
            url,
            ca,
            http,
        }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let resp = self.http.get(format!("{}{path}", self.url)).send().unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().unwrap()
    }

    /// Support-contact PUTs the sandbox answered 200: rows written.
    fn puts(&self) -> u64 {
        self.get("/_sandbox/stats")["calls"]["PUT supportcontact 200"]
            .as_u64()
            .unwrap_or(0)
    }

    /// `pcbulk apply INPUT --base-url BASE`, with no proxy or trust variable but those given.
    fn apply(&self, input: &Path, base: &str, vars: &[(&str, &str)]) -> std::process::Output {
        let mut c = pcbulk();
        c.arg("apply")
            .arg(input)
            .args(["--base-url", base, "--yes", "--rate", "200"])
            .env("PCBULK_ACCESS_TOKEN", "sandbox");
        without_network_vars(&mut c);
        c.envs(vars.iter().copied()).output().unwrap()
    }
}

impl Drop for TlsSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn without_network_vars(c: &mut Command) {
    // Every proxy and trust-store variable: a test sets the ones it means.
    for v in PROXY_VARS.iter().chain(&["SSL_CERT_FILE", "SSL_CERT_DIR"]) {
        c.env_remove(v);
    }
}

/// Three support-contact rows, each succeeded.
fn applied_all(out: &std::process::Output, w: &Workdir) {
    assert_eq!(code(out), 0, "{}", text(out));
    assert_eq!(
        statuses(&w.path("in.results.csv")),
        ["succeeded", "succeeded", "succeeded"]
    );
}

#[test]
fn rows_apply_over_https_trusting_the_sandbox_ca_through_ssl_cert_file_on_http2() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    let input = w.write("in.csv", contacts_csv(3));
    let ca = sb.ca.to_str().unwrap().to_owned();
    let out = sb.apply(&input, &sb.url, &[("SSL_CERT_FILE", &ca)]);
    applied_all(&out, &w);
    assert_eq!(sb.puts(), 3);
    let versions = sb.get("/_sandbox/http-versions");
    assert_eq!(versions["HTTP/1.1"], 0, "{versions}");
    assert_eq!(versions["HTTP/2"], 6, "a GET and a PUT a row: {versions}");
}

#[test]
fn without_ssl_cert_file_the_sandbox_certificate_is_refused_naming_the_trust_problem() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    let input = w.write("in.csv", contacts_csv(3));
    let out = sb.apply(&input, &sb.url, &[]);
    assert_eq!(code(&out), 3, "cannot reach the service: {}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("TLS certificate is not trusted") && said.contains("SSL_CERT_FILE"),
        "{said}"
    );
    assert_eq!(sb.puts(), 0, "no row applied");
    assert!(
        statuses(&w.path("in.results.csv"))
            .iter()
            .all(|s| s == "skipped"),
        "{said}"
    );
}

/// Found by an outside tester: an `SSL_CERT_FILE` that names a missing file, or one with no
/// certificate in it, was only logged; the run then failed as an untrusted certificate, with a
/// journal of a run to resume.
#[test]
fn an_ssl_cert_file_that_is_missing_or_holds_no_certificate_is_refused_naming_it() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    let input = w.write("in.csv", contacts_csv(3));
    let empty = w.write("not-a-ca.pem", "this is not a PEM certificate\n");
    let junk = w.write(
        "junk.pem",
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    );
    let missing = w.path("missing.pem");
    for (file, said) in [
        (&empty, "holds no PEM certificate"),
        (&junk, "holds no PEM certificate"),
        (&missing, "cannot be read"),
    ] {
        let out = sb.apply(
            &input,
            &sb.url,
            &[("SSL_CERT_FILE", file.to_str().unwrap())],
        );
        assert_eq!(code(&out), 2, "{}", text(&out));
        let text = text(&out);
        assert!(
            text.contains("SSL_CERT_FILE=") && text.contains(said),
            "{text}"
        );
        assert!(
            text.contains(file.file_name().unwrap().to_str().unwrap()),
            "{text}"
        );
        assert!(
            !w.path("in.results.csv.journal").exists(),
            "no run began, so none is left to resume: {text}"
        );
    }
    assert_eq!(sb.get("/_sandbox/stats")["total"], 0, "nothing was sent");
}

#[test]
fn the_ca_file_is_the_owner_s_and_never_written_through_a_link() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sb.ca).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        let target = w.write("elsewhere.txt", "kept");
        let link = w.path("link.pem");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = pcbulk()
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--tls",
                "--tls-ca-out",
            ])
            .arg(&link)
            .output()
            .unwrap();
        assert_ne!(code(&out), 0, "{}", text(&out));
        assert!(text(&out).contains("link"), "{}", text(&out));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
    }
    drop(sb);
}

/// A loopback HTTP CONNECT proxy that opens each tunnel to `127.0.0.1:port` whatever host it is
/// asked for, and counts the tunnels it opened.
struct Proxy {
    url: String,
    tunnels: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tunnels = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&tunnels);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let count = Arc::clone(&count);
                std::thread::spawn(move || tunnel(conn, port, &count));
            }
        });
        Proxy { url, tunnels }
    }

    fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

/// Reads a `CONNECT host:port` head, answers 200, and copies bytes both ways.
fn tunnel(mut client: TcpStream, port: u16, count: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with(&format!("CONNECT {NAME}:{port} ")) {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut client, mut server) = (client, server);
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

#[test]
fn rows_apply_through_an_https_proxy_tunnel_on_http2() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    let proxy = Proxy::start(sb.port());
    let input = w.write("in.csv", contacts_csv(3));
    let ca = sb.ca.to_str().unwrap().to_owned();
    let base = format!("https://{NAME}:{}", sb.port());
    let out = sb.apply(
        &input,
        &base,
        &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &proxy.url)],
    );
    applied_all(&out, &w);
    assert!(proxy.tunnels() >= 1, "the calls went through the proxy");
    assert_eq!(sb.puts(), 3);
    let versions = sb.get("/_sandbox/http-versions");
    assert_eq!(
        versions["HTTP/2"], 6,
        "HTTP/2 inside the tunnel: {versions}"
    );
}

/// A token authority on loopback that answers every request with a redirect to `to`.
fn redirecting_authority(to: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            count.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}/contoso.onmicrosoft.com/oauth2/token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, asked)
}

#[test]
fn a_token_request_redirected_elsewhere_is_not_followed() {
    let w = Workdir::new();
    let sb = TlsSandbox::start(&w);
    let (authority, asked) = redirecting_authority(sb.url.clone());
    let input = w.write("in.csv", contacts_csv(3));
    let ca = sb.ca.to_str().unwrap().to_owned();
    let mut c = pcbulk();
    c.arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url, "--rate", "200"])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
        .env("PCBULK_AUTHORITY", &authority);
    without_network_vars(&mut c);
    let out = c.env("SSL_CERT_FILE", &ca).output().unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(asked.load(Ordering::SeqCst) >= 1, "the authority was asked");
    assert!(
        text(&out).contains("307"),
        "the redirect is named: {}",
        text(&out)
    );
    assert_eq!(sb.get("/_sandbox/stats")["tokensIssued"], 0, "not followed");
    assert_eq!(sb.puts(), 0);
}
