//! Everything a `/v1` call goes through around the resource it names: latency, authorization (the
//! token, and what its kind may reach), throttling (429 and Retry-After), injected failures and
//! dropped connections, writes applied late or answered with a 5xx after being applied, the header
//! checks the reference asks of every call, replay of a write by its MS-RequestId, and the counts.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::common::{error, gateway_failure, header, is_guid, reply, Answer, CallIds};
use super::state::{Shared, Stored, TokenKind};
use super::tokens::authorize;
use super::{dispatch, route_name};
use crate::sandbox::faults::Fate;

pub(super) async fn api(
    s: &Shared,
    method: &Method,
    rest: &[&str],
    query: &str,
    h: &HeaderMap,
    body: &Bytes,
) -> Response {
    let ids = CallIds {
        request_id: header(h, "MS-RequestId").map(str::to_owned),
        correlation_id: header(h, "MS-CorrelationId").map(str::to_owned),
    };
    let route = route_name(rest);
    let delay = s.faults.lock().unwrap().latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Err(refused) = gate(s, method, route, rest, h, &ids) {
        return *refused;
    }
    check_headers(s, method, route, h);
    let (fate, bom) = s.faults.lock().unwrap().fate();
    let is_write = *method == Method::PUT || *method == Method::PATCH;
    match fate {
        Fate::Fail(code) => {
            s.fault(if code == 500 { "500" } else { "503" });
            count(s, method, route, code);
            return server_error(s, code, &ids, bom);
        }
        Fate::DropBefore => {
            s.fault("dropBefore");
            count(s, method, route, 0);
            return dropped();
        }
        Fate::Normal | Fate::DropAfter | Fate::AppliedFail(_) => {}
    }
    let (status, answer) = answer(s, method, (rest, query), route, h, body, &ids).await;
    match fate {
        Fate::DropAfter => {
            s.fault("dropAfter");
            dropped()
        }
        Fate::AppliedFail(code) if is_write => {
            s.fault("applied5xx");
            server_error(s, code, &ids, bom)
        }
        _ => {
            if bom {
                s.fault("bom");
            }
            reply(status, answer, &ids, bom)
        }
    }
}

/// The gate before a call is served: a valid token, of a kind that may reach this route and
/// customer, within the throttling limits.
fn gate(
    s: &Shared,
    method: &Method,
    route: &'static str,
    rest: &[&str],
    h: &HeaderMap,
    ids: &CallIds,
) -> Result<(), Box<Response>> {
    let kind = authorize(s, h, ids).inspect_err(|_| count(s, method, route, 401))?;
    if let Err((st, b)) = permitted(s, kind, route, rest) {
        count(s, method, route, st.as_u16());
        return Err(Box::new(reply(st, b, ids, false)));
    }
    let customer = match rest {
        ["customers", c, ..] => Some(*c),
        _ => None,
    };
    let admitted = s.faults.lock().unwrap().admit(customer);
    if let Err(wait) = admitted {
        s.stats.lock().unwrap().throttled += 1;
        count(s, method, route, 429);
        return Err(Box::new(throttled(s, wait, ids)));
    }
    Ok(())
}

/// What a token of this kind may reach: app-only tokens only the billing profile (900329), and
/// nobody a customer the partner holds no delegated role over (900308).
fn permitted(s: &Shared, kind: TokenKind, route: &str, rest: &[&str]) -> Result<(), Answer> {
    if !s.opts.rules.token_kinds {
        return Ok(());
    }
    let app_user_only = matches!(
        route,
        "supportcontact" | "servicerequest" | "servicerequests" | "supportprofile"
    );
    if kind == TokenKind::AppOnly && app_user_only {
        return Err(error(
            403,
            900329,
            "App-only tokens are not supported for this operation; use an App+User token",
        ));
    }
    if let ["customers", c, ..] = rest {
        let undelegated = s
            .tenant
            .lock()
            .unwrap()
            .customers
            .get(*c)
            .is_some_and(|c| !c.delegated);
        if undelegated {
            return Err(error(
                403,
                900308,
                &format!("Insufficient privileges: the partner holds no delegated admin role over customer {c}"),
            ));
        }
    }
    Ok(())
}

/// A server error: Partner Center's JSON, or, with gateway bodies, a 502/503/504 as a gateway
/// sends it.
fn server_error(s: &Shared, code: u16, ids: &CallIds, bom: bool) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if s.opts.rules.gateway_bodies && matches!(code, 502..=504) {
        let html = s.faults.lock().unwrap().gateway_html();
        return gateway_failure(status, html);
    }
    let (st, b) = error(
        status.as_u16(),
        800003,
        "An unexpected service error occurred; try again later",
    );
    reply(st, b, ids, bom)
}

/// Answers a call that got past throttling and faults: replays a write it has seen, or applies it.
/// The replay is looked up when the call arrives and the answer kept once the write is applied, so
/// with late writes a retry that arrives before the first copy is applied is applied too.
async fn answer(
    s: &Shared,
    method: &Method,
    (rest, query): (&[&str], &str),
    route: &'static str,
    h: &HeaderMap,
    body: &Bytes,
    ids: &CallIds,
) -> Answer {
    let is_write = *method == Method::PUT || *method == Method::PATCH;
    let fingerprint = format!(
        "{method} /{} {}",
        rest.join("/"),
        String::from_utf8_lossy(body)
    );
    let replay = is_write && s.opts.replay;
    if replay {
        if let Some(seen) = replayed(s, method, route, ids, &fingerprint) {
            return seen;
        }
    }
    if let Some(late) = s.opts.knobs.late_writes.filter(|_| is_write) {
        tokio::time::sleep(late).await;
    }
    let (status, answer) = dispatch(s, method, rest, query, h, body);
    if is_write && status.is_success() {
        s.applied(method, rest);
    }
    if let Some(rid) = ids.request_id.as_deref().filter(|_| replay) {
        s.idempotency.lock().unwrap().insert(
            rid.to_ascii_lowercase(),
            Stored {
                fingerprint,
                status,
                body: answer.clone(),
            },
        );
    }
    count(s, method, route, status.as_u16());
    (status, answer)
}

/// The first answer to a write sent again under its MS-RequestId, or a refusal when that id was
/// used for another call.
fn replayed(
    s: &Shared,
    method: &Method,
    route: &str,
    ids: &CallIds,
    fingerprint: &str,
) -> Option<Answer> {
    let key = ids.request_id.as_deref()?.to_ascii_lowercase();
    let idem = s.idempotency.lock().unwrap();
    let stored = idem.get(&key)?;
    if stored.fingerprint == fingerprint {
        s.stats.lock().unwrap().replays += 1;
        count(s, method, route, stored.status.as_u16());
        return Some((stored.status, stored.body.clone()));
    }
    drop(idem);
    s.stats.lock().unwrap().request_id_reuse += 1;
    let refused = error(
        400,
        800002,
        "MS-RequestId was already used for a different call; every new call needs a new MS-RequestId",
    );
    count(s, method, route, refused.0.as_u16());
    Some(refused)
}

/// The throttling answer: 429, Retry-After, and the body of the other shape. Some 429s, when asked
/// for, carry no Retry-After and no number in their message: the client must back off by itself.
fn throttled(s: &Shared, wait: std::time::Duration, ids: &CallIds) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    if s.faults.lock().unwrap().no_retry_after() {
        s.fault("noRetryAfter");
        let body = json!({"statusCode": 429, "message": "Rate limit is exceeded."});
        return reply(StatusCode::TOO_MANY_REQUESTS, body, ids, false);
    }
    let body = json!({"statusCode": 429, "message": format!("Rate limit is exceeded. Try again in {secs} seconds.")});
    let mut resp = reply(StatusCode::TOO_MANY_REQUESTS, body, ids, false);
    let value = if s.opts.knobs.retry_after_date {
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(secs))
    } else {
        secs.to_string()
    };
    resp.headers_mut()
        .insert("Retry-After", HeaderValue::from_str(&value).unwrap());
    resp
}

/// A connection that drops before a whole answer arrives: the status line, then a body that fails,
/// so the client never learns how the call ended.
fn dropped() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox dropped the connection",
        ))
    });
    let mut resp = Response::new(axum::body::Body::from_stream(failing));
    resp.headers_mut()
        .insert("Content-Type", HeaderValue::from_static("application/json"));
    resp
}

fn count(s: &Shared, method: &Method, route: &str, status: u16) {
    let mut st = s.stats.lock().unwrap();
    st.total += 1;
    *st.calls
        .entry(format!("{method} {route} {status}"))
        .or_default() += 1;
}

/// Counts what the reference asks of every call and the client did not do.
fn check_headers(s: &Shared, method: &Method, route: &str, h: &HeaderMap) {
    let mut problems = Vec::new();
    match header(h, "MS-RequestId") {
        Some(v) if is_guid(&v.to_ascii_lowercase()) => {}
        Some(_) => problems.push("MS-RequestId is not a GUID"),
        None => problems.push("MS-RequestId missing"),
    }
    match header(h, "MS-CorrelationId") {
        Some(v) if is_guid(&v.to_ascii_lowercase()) => {}
        Some(_) => problems.push("MS-CorrelationId is not a GUID"),
        None => problems.push("MS-CorrelationId missing"),
    }
    if header(h, "MS-Contract-Version") != Some("v1") {
        problems.push("MS-Contract-Version is not v1");
    }
    if !header(h, "Accept").is_some_and(|a| a.contains("application/json")) {
        problems.push("Accept is not application/json");
    }
    if (*method == Method::PUT || *method == Method::PATCH)
        && !header(h, "Content-Type").is_some_and(|c| c.starts_with("application/json"))
    {
        problems.push("Content-Type is not application/json");
    }
    for p in problems {
        s.violation(format!("{method} {route}: {p}"));
    }
}
