//! The sandbox's HTTP surface and its hand-written router. Routing is by hand because Partner
//! Center's path words are case-insensitive, which axum's router is not: the path is split into
//! segments, its words lowercased (ids are left as they are and match exactly), then matched here — first to the `/_sandbox/*` admin endpoints, the
//! token endpoint or the `/v1` API, then, for `/v1`, by method and resource to the file serving it.
//!
//! - `admin`: `/_sandbox/state`, `/_sandbox/stats` and `/_sandbox/writes`.
//! - `tokens`: the token endpoint, the device authorization grant (`/oauth2/v2.0/devicecode`, and
//!   `POST /_sandbox/device/{approve,decline,expire}` standing for what the user does in the browser)
//!   and the bearer check.
//! - `call`: what every `/v1` call goes through (latency, throttling, faults, idempotency).
//! - `customers`, `subscriptions`, `support_contact`, `service_requests`, `support_profile`,
//!   `billing_profile`: the resources.
//! - `common`: error bodies, reply headers and field lookups the others share.
//! - `state`: the state shared by all connections, and the counts.

mod admin;
mod billing_profile;
mod call;
mod common;
mod customers;
mod service_requests;
mod state;
mod subscriptions;
mod support_contact;
mod support_profile;
mod tokens;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use crate::sandbox::ProfilePaths;
use billing_profile::{get_billing, put_billing};
use common::{error, Answer};
use customers::{get_customer, list_customers};
use service_requests::{get_service_request, list_service_requests, patch_service_request};
use state::InFlight;
use subscriptions::{get_subscription, list_subscriptions, patch_subscription};
use support_contact::{get_support_contact, put_support_contact};
use support_profile::{get_support_profile, put_support_profile};

pub use state::Shared;

/// The words of the paths the sandbox serves (everything else in a path is an id).
const WORDS: &[&str] = &[
    "_sandbox",
    "state",
    "stats",
    "writes",
    "oauth2",
    "v2.0",
    "token",
    "devicecode",
    "device",
    "approve",
    "decline",
    "expire",
    "v1",
    "customers",
    "subscriptions",
    "supportcontact",
    "servicerequests",
    "profiles",
    "support",
    "supportprofile",
    "billing",
];

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Path words match in any case, as Partner Center's do; ids (every other segment) match exactly.
    let words: Vec<String> = uri
        .path()
        .split('/')
        .filter(|x| !x.is_empty())
        .map(|seg| {
            let lower = seg.to_ascii_lowercase();
            if WORDS.contains(&lower.as_str()) {
                lower
            } else {
                seg.to_owned()
            }
        })
        .collect();
    let segs: Vec<&str> = words.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["_sandbox", "state"] => admin::state(&s),
        ["_sandbox", "stats"] => admin::stats(&s),
        ["_sandbox", "writes"] => admin::writes(&s),
        ["_sandbox", "device", action] if method == Method::POST => {
            tokens::device_action(&s, action, &body)
        }
        [_tenant, "oauth2", "v2.0", "devicecode"] if method == Method::POST => {
            tokens::devicecode_endpoint(&s, &headers, &body)
        }
        [_tenant, "oauth2", "token"] | [_tenant, "oauth2", "v2.0", "token"]
            if method == Method::POST =>
        {
            tokens::token_endpoint(&s, &body)
        }
        ["v1", ..] if s.opts.knobs.late_writes.is_some() => {
            let query = uri.query().unwrap_or("").to_owned();
            detached(s, method, words, query, headers, body).await
        }
        ["v1", rest @ ..] => {
            let _guard = InFlight::enter(&s);
            let query = uri.query().unwrap_or("");
            call::api(&s, &method, rest, query, &headers, &body).await
        }
        _ => (StatusCode::NOT_FOUND, "").into_response(),
    }
}

/// Serves a `/v1` call on a task of its own, so that it runs to the end — a write is applied —
/// even when its client hangs up or times out and the connection's future is dropped, as a service
/// behind a load balancer does.
async fn detached(
    s: Arc<Shared>,
    method: Method,
    words: Vec<String>,
    query: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let task = tokio::spawn(async move {
        let _guard = InFlight::enter(&s);
        let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        call::api(&s, &method, &rest, &query, &headers, &body).await
    });
    task.await
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "").into_response())
}

/// Whether the support-profile path `word` serves `method` under the strictness asked for.
fn profile_path_serves(s: &Shared, method: &Method, word: &str) -> bool {
    match s.opts.rules.profile_paths {
        ProfilePaths::Both => true,
        ProfilePaths::Sdk => word == "support",
        ProfilePaths::Pages => match *method {
            Method::GET => word == "support",
            Method::PUT => word == "supportprofile",
            _ => true,
        },
    }
}

/// The route a `/v1` path names, for the call counts and to tell 405 from 404.
pub(super) fn route_name(rest: &[&str]) -> &'static str {
    match rest {
        ["customers"] => "customers",
        ["customers", _] => "customer",
        ["customers", _, "subscriptions"] => "subscriptions",
        ["customers", _, "subscriptions", _] => "subscription",
        ["customers", _, "subscriptions", _, "supportcontact"] => "supportcontact",
        ["servicerequests"] => "servicerequests",
        ["servicerequests", _] => "servicerequest",
        ["profiles", "support" | "supportprofile"] => "supportprofile",
        ["customers", _, "profiles", "billing"] => "billingprofile",
        _ => "other",
    }
}

/// A write's body as a JSON object (a UTF-8 byte-order mark before it allowed, as the service
/// allows it); parsed only by the routes that take a body, so a GET's body is never looked at.
fn json_body(body: &Bytes) -> Result<Value, Answer> {
    let b = body
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(body);
    match serde_json::from_slice::<Value>(b) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(error(400, 800002, "The request body is not a JSON object")),
    }
}

/// The answer to a support-profile path the chosen profile does not serve: the SDKs' service
/// knows one path (so the other is not found); the pages' knows both, each for one method.
fn profile_path_refused(s: &Shared) -> Answer {
    if s.opts.rules.profile_paths == ProfilePaths::Sdk {
        error(404, 404, "No such resource")
    } else {
        error(405, 405, "Method not allowed on this resource")
    }
}

/// Hands a `/v1` call to the resource it names, by method and path, under the tenant's lock.
pub(super) fn dispatch(
    s: &Shared,
    method: &Method,
    rest: &[&str],
    query: &str,
    h: &HeaderMap,
    body: &Bytes,
) -> Answer {
    let parse = || json_body(body);
    let mut t = s.tenant.lock().unwrap();
    let result = match (method.clone(), rest) {
        (Method::GET, ["customers"]) => list_customers(s, &t, query, h),
        (Method::GET, ["customers", c]) => get_customer(&t, c),
        (Method::GET, ["customers", c, "subscriptions"]) => list_subscriptions(&t, c),
        (Method::GET, ["customers", c, "subscriptions", sub]) => get_subscription(&t, c, sub),
        (Method::PATCH, ["customers", c, "subscriptions", sub]) => parse()
            .and_then(|b| patch_subscription(s.opts.rules.writable_partner_id, &mut t, c, sub, &b)),
        (Method::GET, ["servicerequests"]) => list_service_requests(&t),
        (Method::GET, ["customers", c, "subscriptions", sub, "supportcontact"]) => {
            get_support_contact(&t, c, sub)
        }
        (Method::PUT, ["customers", c, "subscriptions", sub, "supportcontact"]) => {
            parse().and_then(|b| put_support_contact(&mut t, c, sub, &b))
        }
        (Method::GET, ["servicerequests", id]) => get_service_request(&t, id),
        (Method::PATCH, ["servicerequests", id]) => {
            parse().and_then(|b| patch_service_request(s, &mut t, id, &b))
        }
        (m, ["profiles", word @ ("support" | "supportprofile")])
            if !profile_path_serves(s, &m, word) =>
        {
            Err(profile_path_refused(s))
        }
        (Method::GET, ["profiles", "support" | "supportprofile"]) => get_support_profile(&t),
        (Method::PUT, ["profiles", "support" | "supportprofile"]) => {
            parse().and_then(|b| put_support_profile(s, &mut t, &b))
        }
        (Method::GET, ["customers", c, "profiles", "billing"]) => get_billing(&t, c),
        (Method::PUT, ["customers", c, "profiles", "billing"]) => {
            parse().and_then(|b| put_billing(s, &mut t, c, h, &b))
        }
        (_, r) if route_name(r) != "other" => {
            Err(error(405, 405, "Method not allowed on this resource"))
        }
        _ => Err(error(404, 404, "No such resource")),
    };
    result.unwrap_or_else(|e| e)
}
