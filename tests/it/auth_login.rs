//! `pcbulk auth login` / `logout` against a real sandbox over loopback: the device code is
//! approved (or declined, or expired) through the sandbox's `/_sandbox/device/*`, as the user would
//! on the sign-in page. Every command runs with a home, state folder and token store of its own
//! (`PCBULK_TOKEN_STORE=file`), so the developer's real credential store is never touched.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;

const CLIENT: &str = "00000000-0000-4000-8000-00000000c11e";
const SR: &str = "616122292874576";

/// `pcbulk` with a private home and state folder, the file store, and `authority` as the token
/// authority; no token in the environment.
fn pcbulk_at(w: &Workdir, authority: &str) -> Command {
    let mut c = pcbulk();
    c.env("HOME", w.path("home"))
        .env("XDG_STATE_HOME", w.path("xdg"))
        .env("PCBULK_STATE_DIR", w.state())
        .env("PCBULK_TOKEN_STORE", "file")
        .env("PCBULK_AUTHORITY", authority)
        .env("PCBULK_CLIENT_ID", CLIENT);
    c
}

/// Runs `login` (set up by the caller), waits for the user code on stderr, tells the sandbox at
/// `sandbox` to `action` it (approve, decline, expire), and returns the finished command's output.
fn login_and(mut login: Command, sandbox: &str, action: &str) -> Output {
    let mut child = login
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let code = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "login ended before showing a code: {seen}"
        );
        seen.push_str(&line);
        if let Some(at) = line.find("user_code=") {
            let code: String = line[at + 10..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            break code;
        }
    };
    let told = reqwest::blocking::Client::new()
        .post(format!("{sandbox}/_sandbox/device/{action}"))
        .form(&[("user_code", code.as_str())])
        .send()
        .unwrap();
    assert!(told.status().is_success(), "{action}: {}", told.status());
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stderr = format!("{seen}{rest}").into_bytes();
    out
}

fn login(w: &Workdir, sb: &Sandbox) -> Output {
    let mut c = pcbulk_at(w, &sb.url);
    c.args(["auth", "login", "--base-url", &sb.url]);
    login_and(c, &sb.url, "approve")
}

/// The file the list of sign-ins says keeps the token for `authority`.
fn token_file(w: &Workdir, authority: &str) -> PathBuf {
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state().join("logins.json")).unwrap()).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["authority"] == authority)
        .unwrap_or_else(|| panic!("no sign-in for {authority} in {list}"));
    assert_eq!(entry["store"], "file", "{entry}");
    PathBuf::from(entry["path"].as_str().unwrap())
}

fn apply_note(w: &Workdir, sb: &Sandbox, note: &str) -> Output {
    let input = w.write("sr.csv", format!("service_request_id,note\n{SR},{note}\n"));
    pcbulk_at(w, &sb.url)
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .output()
        .unwrap()
}

/// No token the sandbox issues (access, refresh, device code: all carry its `sbx-` prefixes) in
/// what a command printed.
fn assert_no_secret(out: &Output) {
    let all = text(out);
    for prefix in ["sbx-at-", "sbx-rt-", "sbx-dc-"] {
        assert!(!all.contains(prefix), "a token was printed:\n{all}");
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_then_apply_status_and_logout_use_the_kept_token_and_print_no_secret() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let signed = login(&w, &sb);
    assert_eq!(code(&signed), 0, "{}", text(&signed));
    let said = String::from_utf8_lossy(&signed.stdout);
    let file = token_file(&w, &sb.url);
    assert!(
        said.contains(&format!("kept in the file {}", file.display())),
        "the login says where: {said}"
    );
    let first = std::fs::read_to_string(&file).unwrap();

    let applied = apply_note(&w, &sb, "kept token");
    assert_eq!(code(&applied), 0, "{}", text(&applied));
    assert_eq!(statuses(&w.path("sr.results.csv")), ["succeeded"]);
    let rotated = std::fs::read_to_string(&file).unwrap();
    assert!(rotated.starts_with("sbx-rt-"), "a refresh token is kept");
    assert_ne!(rotated, first, "the renewed refresh token is written back");

    let status = pcbulk_at(&w, &sb.url)
        .args(["auth", "status", "--base-url", &sb.url])
        .output()
        .unwrap();
    assert_eq!(code(&status), 0, "{}", text(&status));
    assert!(
        text(&status).contains("pcbulk auth login"),
        "{}",
        text(&status)
    );

    let out = pcbulk_at(&w, &sb.url)
        .args(["auth", "logout", "--base-url", &sb.url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("signed out"), "{}", text(&out));
    assert!(!file.exists(), "logout removes the token");
    let again = pcbulk_at(&w, &sb.url)
        .args(["auth", "logout", "--base-url", &sb.url])
        .output()
        .unwrap();
    assert!(text(&again).contains("nothing removed"), "{}", text(&again));

    let refused = apply_note(&w, &sb, "after logout");
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        text(&refused).contains("no credentials"),
        "{}",
        text(&refused)
    );

    for out in [&signed, &applied, &status, &out, &again, &refused] {
        assert_no_secret(out);
    }
}

#[test]
fn login_without_a_client_id_says_the_app_registration_is_needed() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let out = pcbulk_at(&w, &sb.url)
        .env_remove("PCBULK_CLIENT_ID")
        .args(["auth", "login", "--base-url", &sb.url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("PCBULK_CLIENT_ID") && said.contains("public client"),
        "{said}"
    );
    assert_eq!(sb.stats()["tokensIssued"], 0, "no token was issued");
}

#[test]
fn sign_ins_to_two_authorities_are_kept_apart_in_owner_only_files() {
    let (a, b) = (Sandbox::start(&[]), Sandbox::start(&[]));
    let w = Workdir::new();
    for sb in [&a, &b] {
        let out = login(&w, sb);
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let (fa, fb) = (token_file(&w, &a.url), token_file(&w, &b.url));
    assert_ne!(fa, fb);
    #[cfg(unix)]
    for f in [&fa, &fb] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // The first sign-in still works: the second did not replace it.
    for sb in [&a, &b] {
        let status = pcbulk_at(&w, &sb.url)
            .args(["auth", "status", "--base-url", &sb.url])
            .output()
            .unwrap();
        assert_eq!(code(&status), 0, "{}", text(&status));
    }
}

#[test]
fn a_refresh_token_in_the_environment_wins_over_the_kept_one() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    assert_eq!(code(&login(&w, &sb)), 0);
    let file = token_file(&w, &sb.url);
    std::fs::write(&file, "a-revoked-token").unwrap();
    let input = w.write(
        "sr.csv",
        format!("service_request_id,note\n{SR},env wins\n"),
    );
    let out = pcbulk_at(&w, &sb.url)
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "a-revoked-token",
        "the kept sign-in was neither used nor rotated"
    );
}

#[test]
fn a_declined_or_expired_code_ends_the_login_with_exit_2_and_keeps_nothing() {
    let sb = Sandbox::start(&[]);
    for (action, words) in [("decline", "declined"), ("expire", "expired")] {
        let w = Workdir::new();
        let mut c = pcbulk_at(&w, &sb.url);
        c.args(["auth", "login", "--base-url", &sb.url]);
        let out = login_and(c, &sb.url, action);
        assert_eq!(code(&out), 2, "{action}: {}", text(&out));
        assert!(text(&out).contains(words), "{action}: {}", text(&out));
        assert!(!w.state().join("logins.json").exists(), "{action}");
        assert_no_secret(&out);
    }
}

#[test]
fn the_sandbox_asks_a_client_polling_too_fast_to_slow_down() {
    let sb = Sandbox::start(&[]);
    let http = reqwest::blocking::Client::new();
    let code: serde_json::Value = http
        .post(format!("{}/organizations/oauth2/v2.0/devicecode", sb.url))
        .form(&[("client_id", CLIENT), ("scope", "x offline_access")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let poll = || -> serde_json::Value {
        http.post(format!("{}/organizations/oauth2/v2.0/token", sb.url))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", CLIENT),
                ("device_code", code["device_code"].as_str().unwrap()),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(poll()["error"], "authorization_pending");
    assert_eq!(poll()["error"], "slow_down");
}

/// On a machine with no Secret Service (a headless cron host), the default store falls back to a
/// file, and says so in one line.
#[cfg(target_os = "linux")]
#[test]
fn with_no_credential_store_the_login_keeps_the_token_in_a_file_and_says_so() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let mut c = pcbulk_at(&w, &sb.url);
    c.env_remove("PCBULK_TOKEN_STORE")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", w.path("no-bus").display()),
        )
        .env("XDG_RUNTIME_DIR", w.path("run"))
        .args(["auth", "login", "--base-url", &sb.url]);
    let out = login_and(c, &sb.url, "approve");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("credential store"))
        .collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(notes[0].contains("in a file instead"), "{err}");
    assert!(token_file(&w, &sb.url).exists());
}
