//! Writes whose answers are lost, against a loopback service that keeps working after its client
//! gave up: a note is added late (after the client timed out), or applied and then answered 504 as
//! a gateway would. Each note must land once, and a row whose outcome cannot be found out must say
//! so instead of sending the note again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

/// The service request every test adds its note to.
const SR: &str = "616122292874576";

/// How the service handles a PATCH (and the GETs after it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Holds each PATCH unanswered until the client hangs up, and adds its note only after one
    /// GET has been answered since: a service that finishes after the client gave up, and after
    /// the client's first look.
    Late,
    /// Adds the note, then answers 504 with a gateway's HTML page.
    AppliedThen504,
    /// Answers the first PATCH 504 without adding its note, the next ones 200 (adding it).
    RefusedThen504Once,
    /// Adds the note, holds the PATCH unanswered, and answers every GET after it 500.
    LooksFail,
    /// Answers every call 401 with the service's reason, which names the token.
    Unauthorized,
}

/// What the service holds and has seen.
#[derive(Debug, Default)]
struct State {
    /// The request's notes, by text.
    notes: Vec<String>,
    /// Notes taken but not added yet, each with the GETs answered since it came.
    pending: Vec<(String, usize)>,
    /// The MS-RequestId of every PATCH, in order.
    patches: Vec<String>,
    /// The service has recovered: GETs are answered again.
    recovered: bool,
}

impl State {
    /// Every note the service added or will add: what a user would end up with.
    fn notes_in_the_end(&self) -> usize {
        self.notes.len() + self.pending.len()
    }
}

struct Service {
    url: String,
    state: Arc<Mutex<State>>,
    /// A sign for each PATCH that arrived.
    patched: Receiver<()>,
}

impl Service {
    fn start(mode: Mode) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, patched) = channel();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (state, tx) = (Arc::clone(&shared), tx.clone());
                std::thread::spawn(move || serve(conn, mode, &state, &tx));
            }
        });
        Service {
            url,
            state,
            patched,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

/// One request as it came.
struct Call {
    method: String,
    request_id: String,
}

/// Reads one request (`None` when the client hung up).
fn read_call(r: &mut BufReader<TcpStream>) -> Option<Call> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_owned();
    let (mut length, mut request_id) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().ok()?;
        }
        if k.eq_ignore_ascii_case("ms-requestid") {
            request_id = v.trim().to_owned();
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Call { method, request_id })
}

fn answer(status: &str, kind: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: {kind}\r\n\r\n{body}",
        body.len()
    )
}

/// The request as a GET shows it.
fn request_json(notes: &[String]) -> String {
    let notes: Vec<_> = notes
        .iter()
        .map(|t| serde_json::json!({ "text": t }))
        .collect();
    serde_json::json!({"id": SR, "status": "open", "notes": notes}).to_string()
}

/// Serves one connection until the client hangs up, or holds it unanswered after a PATCH the
/// mode does not answer.
fn serve(conn: TcpStream, mode: Mode, state: &Mutex<State>, patched: &Sender<()>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    while let Some(call) = read_call(&mut r) {
        let reply = match call.method.as_str() {
            _ if mode == Mode::Unauthorized => answer(
                "401 Unauthorized",
                "application/json",
                r#"{"code":"900421","description":"Token lost-answers-token-1 has expired"}"#,
            ),
            "GET" => get(mode, state),
            "PATCH" => {
                let reply = patch(mode, state, &call.request_id);
                let _ = patched.send(());
                match reply {
                    Some(reply) => reply,
                    None => {
                        // Unanswered: held until the client gives up and hangs up.
                        let _ = r.read(&mut [0u8; 1]);
                        return;
                    }
                }
            }
            _ => answer("405 Method Not Allowed", "application/json", "{}"),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn get(mode: Mode, state: &Mutex<State>) -> String {
    let mut s = state.lock().unwrap();
    if mode == Mode::LooksFail && !s.patches.is_empty() && !s.recovered {
        return answer("500 Internal Server Error", "application/json", "{}");
    }
    // Notes taken before the last GET are added now.
    let (due, waiting): (Vec<_>, Vec<_>) = s.pending.drain(..).partition(|(_, gets)| *gets >= 1);
    s.notes.extend(due.into_iter().map(|(t, _)| t));
    s.pending = waiting.into_iter().map(|(t, g)| (t, g + 1)).collect();
    answer("200 OK", "application/json", &request_json(&s.notes))
}

/// The answer to a PATCH, or `None` to hold it unanswered.
fn patch(mode: Mode, state: &Mutex<State>, request_id: &str) -> Option<String> {
    let mut s = state.lock().unwrap();
    s.patches.push(request_id.to_owned());
    let note = "moved to Trey Research".to_owned();
    let gateway = answer(
        "504 Gateway Timeout",
        "text/html",
        "<html><body>504 Gateway Time-out</body></html>",
    );
    match mode {
        Mode::Late => {
            s.pending.push((note, 0));
            None
        }
        Mode::AppliedThen504 => {
            s.notes.push(note);
            Some(gateway)
        }
        Mode::RefusedThen504Once if s.patches.len() == 1 => Some(gateway),
        Mode::RefusedThen504Once => {
            s.notes.push(note);
            Some(answer("200 OK", "application/json", "{}"))
        }
        Mode::LooksFail => {
            s.notes.push(note);
            None
        }
        Mode::Unauthorized => unreachable!("answered before"),
    }
}

fn one_note(w: &Workdir) -> std::path::PathBuf {
    w.write(
        "in.csv",
        format!("service_request_id,note\n{SR},moved to Trey Research\n"),
    )
}

/// `pcbulk apply` against the service, with `--timeout` `timeout` (short, so that the looks after a
/// lost answer come within seconds).
fn apply_cmd(
    service: &Service,
    input: &std::path::Path,
    timeout: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut c = pcbulk();
    c.arg("apply")
        .arg(input)
        .args(["--base-url", &service.url, "--timeout", timeout])
        .args(extra)
        .env("PCBULK_ACCESS_TOKEN", "lost-answers-token-1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

fn apply(service: &Service, input: &std::path::Path, extra: &[&str]) -> std::process::Output {
    apply_cmd(service, input, "0.5", extra).output().unwrap()
}

/// The one row of the results file.
fn the_row(w: &Workdir) -> std::collections::BTreeMap<String, String> {
    let mut rows = results(&w.path("in.results.csv"));
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

/// One note applied to a service in `mode` (its work dir with it): the run exits 0 and the row
/// succeeds.
fn one_note_succeeds(mode: Mode) -> (Service, Workdir) {
    let service = Service::start(mode);
    let w = Workdir::new();
    let out = apply(&service, &one_note(&w), &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let row = the_row(&w);
    assert_eq!(row["status"], "succeeded", "{row:?}");
    (service, w)
}

/// The note was sent once, and stands once on the request in the end.
fn sent_once(service: &Service, why: &str) {
    let s = service.state();
    assert_eq!(s.patches.len(), 1, "{why}");
    assert_eq!(s.notes_in_the_end(), 1, "{s:?}");
}

#[test]
fn a_note_the_service_adds_after_the_client_timed_out_lands_once_and_succeeds() {
    let (service, _w) = one_note_succeeds(Mode::Late);
    sent_once(&service, "the note was sent once");
}

#[test]
fn a_note_applied_then_answered_504_by_a_gateway_is_not_sent_again() {
    let (service, _w) = one_note_succeeds(Mode::AppliedThen504);
    sent_once(&service, "the note was sent once");
}

#[test]
fn a_note_answered_504_and_not_applied_goes_again_once_under_a_new_journaled_request_id() {
    let (service, w) = one_note_succeeds(Mode::RefusedThen504Once);
    let s = service.state();
    assert_eq!(s.notes_in_the_end(), 1, "{s:?}");
    assert_eq!(s.patches.len(), 2);
    assert_ne!(
        s.patches[0], s.patches[1],
        "an answer came: a new MS-RequestId"
    );
    // Each MS-RequestId went out only after its intent was journaled.
    let journal = std::fs::read_to_string(w.path("in.results.csv.journal")).unwrap();
    let sent: Vec<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["t"] == "send")
        .map(|r| r["call"]["request_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &s.patches {
        assert!(sent.contains(id), "{id} not journaled: {journal}");
    }
}

#[test]
fn a_note_whose_looks_fail_ends_outcome_unknown_and_retry_failed_looks_before_sending() {
    let service = Service::start(Mode::LooksFail);
    let w = Workdir::new();
    let input = one_note(&w);
    let out = apply(&service, &input, &["--max-attempts", "2"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let row = the_row(&w);
    assert_eq!(row["status"], "failed");
    assert_eq!(row["error_code"], "outcome_unknown");
    let msg = &row["error_message"];
    assert!(msg.contains("may or may not have been applied"), "{msg}");
    assert!(
        msg.contains(&format!("check service request {SR} in Partner Center")),
        "{msg}"
    );
    assert_eq!(service.state().patches.len(), 1, "never a second copy");

    // The service recovers; --retry-failed finds the note there and sends nothing.
    service.state().recovered = true;
    let out = apply(&service, &input, &["--retry-failed"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(the_row(&w)["status"], "succeeded");
    let s = service.state();
    assert_eq!(s.patches.len(), 1, "--retry-failed looked first");
    assert_eq!(s.notes_in_the_end(), 1);
}

#[test]
fn a_resume_after_a_kill_waits_for_a_note_still_on_its_way_instead_of_sending_it_again() {
    let service = Service::start(Mode::Late);
    let w = Workdir::new();
    let input = one_note(&w);
    // Killed while the service holds the PATCH (the note not added yet).
    let mut child = apply_cmd(&service, &input, "30", &[]).spawn().unwrap();
    service
        .patched
        .recv_timeout(Duration::from_secs(60))
        .expect("the PATCH arrived");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(service.state().notes.len(), 0, "not added yet");

    let out = apply(&service, &input, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(the_row(&w)["status"], "succeeded");
    sent_once(&service, "the resume did not send it again");
}

#[test]
fn a_401_the_token_renewal_cannot_fix_says_what_the_service_said_without_the_token() {
    let service = Service::start(Mode::Unauthorized);
    let w = Workdir::new();
    let out = apply(&service, &one_note(&w), &[]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let row = the_row(&w);
    let msg = &row["error_message"];
    assert!(
        msg.contains("(401, code 900421: Token *** has expired)"),
        "{msg}"
    );
    assert!(
        !text(&out).contains("lost-answers-token-1"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("900421"), "{}", text(&out));
}
