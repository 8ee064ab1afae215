//! The sandbox's HTTP surface. Routing is by hand because Partner Center's path segments are
//! case-insensitive, which axum's router is not.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use super::faults::{Fate, Faults};
use super::tenant::{
    etag_text, support_contact, Reseller, Tenant, PARTNER_MPN, PARTNER_TENANT, RESELLERS,
};
use super::Options;

/// The bearer token the sandbox always accepts.
pub const STATIC_TOKEN: &str = "sandbox";
/// The refresh token the token endpoint always accepts.
pub const INITIAL_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// Countries for which a billing address needs a phone number (600051).
const PHONE_REQUIRED: &[&str] = &[
    "AM", "AZ", "BY", "HU", "IN", "KZ", "KG", "MD", "RU", "TJ", "UZ", "UA",
];

/// Calls by route and outcome, and everything a test may want to know about what the server saw.
#[derive(Default)]
struct Stats {
    calls: BTreeMap<String, u64>,
    total: u64,
    replays: u64,
    request_id_reuse: u64,
    unauthorized: u64,
    violations: u64,
    violation_examples: Vec<String>,
    max_in_flight: usize,
    tokens_issued: u64,
    throttled: u64,
    faults: BTreeMap<&'static str, u64>,
}

struct Stored {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct TokenBook {
    access: HashMap<String, Instant>,
    /// Refresh token → when a newer one replaced it.
    refresh: HashMap<String, Option<Instant>>,
    issued: u64,
}

/// The sandbox's state, shared by all connections.
pub struct Shared {
    opts: Options,
    tenant: Mutex<Tenant>,
    stats: Mutex<Stats>,
    idempotency: Mutex<HashMap<String, Stored>>,
    tokens: Mutex<TokenBook>,
    faults: Mutex<Faults>,
    in_flight: AtomicUsize,
}

impl Shared {
    pub fn new(opts: Options) -> Self {
        Shared {
            tenant: Mutex::new(Tenant::demo(opts.extra_subscriptions, opts.extra_customers)),
            faults: Mutex::new(Faults::new(opts.knobs.clone(), opts.seed)),
            opts,
            stats: Mutex::default(),
            idempotency: Mutex::default(),
            tokens: Mutex::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn state_json(&self) -> Value {
        self.tenant.lock().unwrap().to_json()
    }

    pub fn changes(&self) -> Vec<String> {
        self.tenant.lock().unwrap().changes.clone()
    }

    fn stats_json(&self) -> Value {
        let s = self.stats.lock().unwrap();
        json!({
            "calls": s.calls, "total": s.total, "replays": s.replays,
            "requestIdReuse": s.request_id_reuse, "unauthorized": s.unauthorized,
            "violations": s.violations, "violationExamples": s.violation_examples,
            "maxInFlight": s.max_in_flight, "tokensIssued": s.tokens_issued,
            "throttled": s.throttled, "faults": s.faults,
        })
    }

    fn fault(&self, kind: &'static str) {
        *self.stats.lock().unwrap().faults.entry(kind).or_default() += 1;
    }

    fn violation(&self, what: String) {
        let mut s = self.stats.lock().unwrap();
        s.violations += 1;
        if s.violation_examples.len() < 20 {
            s.violation_examples.push(what);
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(s: &'a Shared) -> Self {
        let n = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut st = s.stats.lock().unwrap();
        st.max_in_flight = st.max_in_flight.max(n);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    match segs.as_slice() {
        ["_sandbox", "state"] => axum::Json(s.state_json()).into_response(),
        ["_sandbox", "stats"] => axum::Json(s.stats_json()).into_response(),
        [_tenant, "oauth2", "token"] | [_tenant, "oauth2", "v2.0", "token"]
            if method == Method::POST =>
        {
            token_endpoint(&s, &body)
        }
        ["v1", rest @ ..] => {
            let _guard = InFlight::enter(&s);
            api(&s, &method, rest, &headers, &body).await
        }
        _ => (StatusCode::NOT_FOUND, "").into_response(),
    }
}

// ---------------------------------------------------------------- the API

/// The ids a call carries, echoed on the answer.
struct CallIds {
    request_id: Option<String>,
    correlation_id: Option<String>,
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn is_guid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

async fn api(s: &Shared, method: &Method, rest: &[&str], h: &HeaderMap, body: &Bytes) -> Response {
    let ids = CallIds {
        request_id: header(h, "MS-RequestId").map(str::to_owned),
        correlation_id: header(h, "MS-CorrelationId").map(str::to_owned),
    };
    let route = route_name(rest);
    let delay = s.faults.lock().unwrap().latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Err(resp) = authorize(s, h, &ids) {
        count(s, method, route, 401);
        return *resp;
    }
    let customer = match rest {
        ["customers", c, ..] => Some(*c),
        _ => None,
    };
    let admitted = s.faults.lock().unwrap().admit(customer);
    if let Err(wait) = admitted {
        s.stats.lock().unwrap().throttled += 1;
        count(s, method, route, 429);
        return throttled(s, wait, &ids);
    }
    check_headers(s, method, route, h);
    let (fate, bom) = s.faults.lock().unwrap().fate();
    match fate {
        Fate::Fail(code) => {
            s.fault(if code == 500 { "500" } else { "503" });
            count(s, method, route, code);
            let (st, b) = error(
                code,
                800003,
                "An unexpected service error occurred; try again later",
            );
            return reply(st, b, &ids, bom);
        }
        Fate::DropBefore => {
            s.fault("dropBefore");
            count(s, method, route, 0);
            return dropped();
        }
        Fate::Normal | Fate::DropAfter => {}
    }
    let (status, answer) = answer(s, method, rest, route, h, body, &ids);
    if fate == Fate::DropAfter {
        s.fault("dropAfter");
        return dropped();
    }
    if bom {
        s.fault("bom");
    }
    reply(status, answer, &ids, bom)
}

/// Answers a call that got past throttling and faults: replays a write it has seen, or applies it.
fn answer(
    s: &Shared,
    method: &Method,
    rest: &[&str],
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
    if is_write {
        if let Some(rid) = ids.request_id.as_deref() {
            let key = rid.to_ascii_lowercase();
            let idem = s.idempotency.lock().unwrap();
            if let Some(stored) = idem.get(&key) {
                if stored.fingerprint == fingerprint {
                    s.stats.lock().unwrap().replays += 1;
                    count(s, method, route, stored.status.as_u16());
                    return (stored.status, stored.body.clone());
                }
                drop(idem);
                s.stats.lock().unwrap().request_id_reuse += 1;
                let refused = error(400, 800002, "MS-RequestId was already used for a different call; every new call needs a new MS-RequestId");
                count(s, method, route, refused.0.as_u16());
                return refused;
            }
        }
    }
    let (status, answer) = dispatch(s, method, rest, h, body);
    if is_write {
        if let Some(rid) = ids.request_id.as_deref() {
            s.idempotency.lock().unwrap().insert(
                rid.to_ascii_lowercase(),
                Stored {
                    fingerprint,
                    status,
                    body: answer.clone(),
                },
            );
        }
    }
    count(s, method, route, status.as_u16());
    (status, answer)
}

/// The throttling answer: 429, Retry-After, and the body of the other shape.
fn throttled(s: &Shared, wait: std::time::Duration, ids: &CallIds) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
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

fn route_name(rest: &[&str]) -> &'static str {
    match rest {
        ["customers", _, "subscriptions", _, "supportcontact"] => "supportcontact",
        ["servicerequests", _] => "servicerequest",
        ["profiles", "support" | "supportprofile"] => "supportprofile",
        ["customers", _, "profiles", "billing"] => "billingprofile",
        _ => "other",
    }
}

fn count(s: &Shared, method: &Method, route: &str, status: u16) {
    let mut st = s.stats.lock().unwrap();
    st.total += 1;
    *st.calls
        .entry(format!("{method} {route} {status}"))
        .or_default() += 1;
}

fn authorize(s: &Shared, h: &HeaderMap, ids: &CallIds) -> Result<(), Box<Response>> {
    let token = header(h, "Authorization").and_then(|a| {
        let (scheme, t) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(t.trim())
    });
    let why = match token {
        None => "missing bearer token",
        Some(STATIC_TOKEN) => return Ok(()),
        Some(t) => match s.tokens.lock().unwrap().access.get(t) {
            Some(exp) if Instant::now() < *exp => return Ok(()),
            Some(_) => "the access token has expired",
            None => "the access token is not valid",
        },
    };
    s.stats.lock().unwrap().unauthorized += 1;
    let (st, body) = error(401, 401, &format!("Unauthorized: {why}"));
    let mut resp = reply(st, body, ids, false);
    resp.headers_mut().insert(
        "WWW-Authenticate",
        HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{why}\""
        ))
        .unwrap(),
    );
    Err(Box::new(resp))
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

fn reply(status: StatusCode, body: Value, ids: &CallIds, bom: bool) -> Response {
    let mut bytes = if bom {
        b"\xef\xbb\xbf".to_vec()
    } else {
        Vec::new()
    };
    bytes.extend(serde_json::to_vec(&body).expect("JSON serializes"));
    let mut resp = (status, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        "Content-Type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (name, v) in [
        ("MS-RequestId", &ids.request_id),
        ("MS-CorrelationId", &ids.correlation_id),
    ] {
        if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    h.insert("MS-CV", HeaderValue::from_static("sandbox.0"));
    h.insert("MS-ServerId", HeaderValue::from_static("sandbox-01"));
    resp
}

/// Partner Center's error body. Not-found answers carry the code as a string, as the schema has it;
/// others as a number, as the service does in practice.
fn error(status: u16, code: u32, description: &str) -> (StatusCode, Value) {
    let code = if status == 404 {
        json!(code.to_string())
    } else {
        json!(code)
    };
    (
        StatusCode::from_u16(status).unwrap(),
        json!({"code": code, "description": description, "data": [], "source": "PartnerFD"}),
    )
}

type Answer = (StatusCode, Value);

fn dispatch(s: &Shared, method: &Method, rest: &[&str], h: &HeaderMap, body: &Bytes) -> Answer {
    let parse = || -> Result<Value, Answer> {
        let b = body
            .strip_prefix(b"\xef\xbb\xbf".as_slice())
            .unwrap_or(body);
        match serde_json::from_slice::<Value>(b) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(error(400, 800002, "The request body is not a JSON object")),
        }
    };
    let mut t = s.tenant.lock().unwrap();
    let result = match (method.clone(), rest) {
        (Method::GET, ["customers", c, "subscriptions", sub, "supportcontact"]) => {
            subscription(&t, c, sub).map(|sub| (StatusCode::OK, sub.support_contact.clone()))
        }
        (Method::PUT, ["customers", c, "subscriptions", sub, "supportcontact"]) => {
            parse().and_then(|b| put_support_contact(&mut t, c, sub, &b))
        }
        (Method::GET, ["servicerequests", id]) => t
            .service_requests
            .get(*id)
            .map(|sr| (StatusCode::OK, sr.clone()))
            .ok_or_else(|| error(404, 800002, &format!("Service request {id} was not found"))),
        (Method::PATCH, ["servicerequests", id]) => {
            parse().and_then(|b| patch_service_request(s, &mut t, id, &b))
        }
        (Method::GET, ["profiles", "support" | "supportprofile"]) => {
            Ok((StatusCode::OK, t.support_profile.clone()))
        }
        (Method::PUT, ["profiles", "support" | "supportprofile"]) => {
            parse().and_then(|b| put_support_profile(s, &mut t, &b))
        }
        (Method::GET, ["customers", c, "profiles", "billing"]) => t
            .billing_view(c)
            .map(|v| (StatusCode::OK, v))
            .ok_or_else(|| customer_not_found(c)),
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

/// The value under `key`, matching keys case-insensitively as the service's deserializer does.
fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    field(v, key).and_then(Value::as_str)
}

fn customer_not_found(c: &str) -> Answer {
    error(
        404,
        20002,
        &format!("Customer {c} was not found or has no relationship with the partner"),
    )
}

fn subscription<'t>(
    t: &'t Tenant,
    c: &str,
    sub: &str,
) -> Result<&'t super::tenant::Subscription, Answer> {
    if !t.customers.contains_key(c) {
        return Err(customer_not_found(c));
    }
    t.subscriptions
        .get(sub)
        .filter(|x| x.customer_id == c)
        .ok_or_else(|| {
            error(
                404,
                20003,
                &format!("Subscription {sub} was not found for customer {c}"),
            )
        })
}

fn put_support_contact(t: &mut Tenant, c: &str, sub: &str, b: &Value) -> Result<Answer, Answer> {
    let existing = subscription(t, c, sub)?;
    if existing.new_commerce {
        return Err(error(
            400,
            800002,
            "Updating the support contact is not supported for New Commerce subscriptions",
        ));
    }
    let tenant_id = text(b, "SupportTenantId")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mpn = text(b, "SupportMpnId").unwrap_or("");
    let name = text(b, "Name").unwrap_or("").trim();
    if !is_guid(&tenant_id)
        || mpn.is_empty()
        || !mpn.bytes().all(|x| x.is_ascii_digit())
        || name.is_empty()
    {
        return Err(error(
            400,
            800002,
            "Invalid input: SupportTenantId must be a GUID, SupportMpnId digits, Name not empty",
        ));
    }
    // The partner itself, the contact every subscription starts with, may be put back.
    let partner = Reseller {
        tenant_id: PARTNER_TENANT,
        mpn_id: PARTNER_MPN,
        name: "the partner",
        indirect_reseller: true,
    };
    let found = RESELLERS.iter().find(|r| r.mpn_id == mpn);
    let Some(reseller) = found.or((mpn == PARTNER_MPN).then_some(&partner)) else {
        return Err(error(404, 800015, &format!("PartnerID {mpn} isn't found")));
    };
    if !reseller.indirect_reseller {
        return Err(error(
            400,
            800016,
            &format!("PartnerID {mpn} isn't a valid Indirect Reseller"),
        ));
    }
    if reseller.tenant_id != tenant_id {
        return Err(error(
            400,
            800002,
            &format!("SupportTenantId {tenant_id} is not the tenant of PartnerID {mpn}"),
        ));
    }
    let contact = support_contact(c, sub, &tenant_id, mpn, name);
    let sub_entry = t.subscriptions.get_mut(sub).expect("checked above");
    let before = sub_entry
        .support_contact
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    sub_entry.support_contact = contact.clone();
    t.changes.push(format!(
        "subscription {sub} ({c}): support contact {before} → {name} ({mpn})"
    ));
    Ok((StatusCode::OK, contact))
}

fn patch_service_request(
    s: &Shared,
    t: &mut Tenant,
    id: &str,
    b: &Value,
) -> Result<Answer, Answer> {
    if !t.service_requests.contains_key(id) {
        return Err(error(
            404,
            800002,
            &format!("Service request {id} was not found"),
        ));
    }
    let note = field(b, "NewNote")
        .and_then(|n| text(n, "Text"))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let status = text(b, "Status")
        .map(str::to_ascii_lowercase)
        .filter(|st| st != "none");
    if let Some(st) = &status {
        if !["open", "closed", "attention_needed"].contains(&st.as_str()) {
            return Err(error(
                400,
                800002,
                &format!("Status {st} is not one of open, closed, attention_needed"),
            ));
        }
    }
    if note.is_none() && status.is_none() {
        s.violation(format!("PATCH servicerequest {id}: nothing to change"));
        return Err(error(
            400,
            800002,
            "The request changes nothing: give NewNote.Text and/or Status",
        ));
    }
    let now = now_text();
    let sr = t.service_requests.get_mut(id).expect("checked above");
    let mut said = Vec::new();
    if let Some(n) = note {
        sr["notes"]
            .as_array_mut()
            .expect("seeded with notes")
            .push(json!({"createdByName": "Sandbox User", "createdDate": now, "text": n}));
        said.push(format!("note added: {n:?}"));
    }
    if let Some(st) = status {
        let before = sr["status"].as_str().unwrap_or("").to_owned();
        if st == "closed" {
            sr["lastClosedDate"] = json!(now);
        }
        sr["status"] = json!(st);
        said.push(format!("status {before} → {st}"));
    }
    sr["lastModifiedDate"] = json!(now);
    let out = sr.clone();
    t.changes
        .push(format!("service request {id}: {}", said.join("; ")));
    Ok((StatusCode::OK, out))
}

fn put_support_profile(s: &Shared, t: &mut Tenant, b: &Value) -> Result<Answer, Answer> {
    let missing: Vec<&str> = ["Email", "Telephone", "Website", "ProfileType"]
        .into_iter()
        .filter(|k| field(b, k).is_none())
        .collect();
    if !missing.is_empty() {
        // A PUT replaces the resource: what is not sent is lost, as on the service.
        s.violation(format!(
            "PUT supportprofile: not the full resource (missing {})",
            missing.join(", ")
        ));
    }
    let before = t.support_profile.clone();
    let mut p = Map::new();
    for k in ["email", "telephone", "website", "profileType"] {
        p.insert(k.into(), field(b, k).cloned().unwrap_or(Value::Null));
    }
    p.insert(
        "links".into(),
        json!({"self": {"uri": "/v1/profiles/support", "method": "GET", "headers": []}}),
    );
    p.insert(
        "attributes".into(),
        json!({"objectType": "PartnerSupportProfile"}),
    );
    let after = Value::Object(p);
    let diff = describe_diff(&before, &after);
    t.support_profile = after.clone();
    t.changes.push(format!("support profile: {diff}"));
    Ok((StatusCode::OK, after))
}

fn put_billing(
    s: &Shared,
    t: &mut Tenant,
    c: &str,
    h: &HeaderMap,
    b: &Value,
) -> Result<Answer, Answer> {
    let Some(customer) = t.customers.get(c) else {
        return Err(customer_not_found(c));
    };
    let current = etag_text(c, customer.etag);
    let if_match = header(h, "If-Match").map(|v| v.trim_matches('"').to_owned());
    let body_etag = field(b, "Attributes")
        .and_then(|a| text(a, "Etag"))
        .map(|e| e.trim_matches('"').to_owned());
    if if_match.is_none() && body_etag.is_none() {
        s.violation(format!(
            "PUT billingprofile {c}: no ETag (If-Match or Attributes.Etag)"
        ));
        return Err(error(
            400,
            800002,
            "An ETag is required: send If-Match with the profile's etag",
        ));
    }
    if if_match.is_none() {
        s.violation(format!("PUT billingprofile {c}: If-Match missing"));
    }
    let mut faults = s.faults.lock().unwrap();
    let churned = faults.churn(c, t.customers[c].etag);
    let current = if churned {
        // Someone else edited the profile just now: the etag the client holds is stale.
        let customer = t.customers.get_mut(c).expect("checked above");
        customer.etag += 1;
        etag_text(c, customer.etag)
    } else {
        current
    };
    let stale = [&if_match, &body_etag]
        .iter()
        .any(|e| e.as_deref().is_some_and(|e| e != current));
    let as_412 = stale && faults.stale_as_412();
    drop(faults);
    if churned {
        s.fault("etagChurn");
    }
    if stale {
        s.fault("staleEtag");
        let status = if as_412 {
            StatusCode::PRECONDITION_FAILED
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err((
            status,
            json!({"code": 2055, "description": "Etag is no longer valid", "data": [], "source": "PartnerFD"}),
        ));
    }
    let customer = t.customers.get(c).expect("checked above");
    let mut new = camel(b);
    let obj = new.as_object_mut().expect("body is an object");
    obj.remove("attributes");
    obj.insert("id".into(), json!(c));
    let problems = billing_problems(&new);
    if let Some((code, msg)) = problems {
        return Err(error(400, code, &msg));
    }
    let before = customer.billing.clone();
    let lost: Vec<String> = before
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !new.as_object().unwrap().contains_key(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !lost.is_empty() {
        s.violation(format!(
            "PUT billingprofile {c}: fields dropped from the full resource: {}",
            lost.join(", ")
        ));
    }
    let diff = describe_diff(&before, &new);
    let customer = t.customers.get_mut(c).expect("checked above");
    customer.billing = new;
    customer.etag += 1;
    t.changes.push(format!("billing profile of {c}: {diff}"));
    Ok((StatusCode::OK, t.billing_view(c).expect("exists")))
}

/// The documented limits of a billing profile; the first broken one, as the service reports it.
fn billing_problems(p: &Value) -> Option<(u32, String)> {
    let len = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| s.chars().count());
    for k in ["firstName", "lastName"] {
        if let Some(n) = len(p.get(k)) {
            if !(1..=50).contains(&n) {
                return Some((800002, format!("{k} must be 1 to 50 characters")));
            }
        }
    }
    let a = p.get("defaultAddress")?;
    match len(a.get("addressLine1")) {
        Some(1..=200) => {}
        _ => return Some((800002, "addressLine1 must be 1 to 200 characters".into())),
    }
    if len(a.get("addressLine2")).is_some_and(|n| n > 200) {
        return Some((800002, "addressLine2 must be at most 200 characters".into()));
    }
    if len(a.get("state")).is_some_and(|n| n > 2) {
        return Some((800002, "state must be at most 2 characters".into()));
    }
    let country = a.get("country").and_then(Value::as_str).unwrap_or("");
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Some((
            800002,
            format!("country {country:?} is not an ISO 3166-1 alpha-2 code"),
        ));
    }
    let phone = a
        .get("phoneNumber")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    if phone.is_empty() && PHONE_REQUIRED.contains(&country) {
        return Some((600051, "Customer phone number is missing".into()));
    }
    None
}

/// Keys as the service stores them: camelCase at every depth.
fn camel(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let key = match c.next() {
                        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                        None => String::new(),
                    };
                    (key, camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

/// "email a → b; city c → d" over the leaves that differ.
fn describe_diff(before: &Value, after: &Value) -> String {
    fn walk(prefix: &str, b: &Value, a: &Value, out: &mut Vec<String>) {
        match (b, a) {
            (Value::Object(bo), Value::Object(ao)) => {
                for (k, av) in ao {
                    if k == "links" || k == "attributes" {
                        continue;
                    }
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, bo.get(k).unwrap_or(&Value::Null), av, out);
                }
            }
            _ if b != a => out.push(format!("{prefix} {} → {}", short(b), short(a))),
            _ => {}
        }
    }
    fn short(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    if out.is_empty() {
        "written, nothing changed".into()
    } else {
        out.join("; ")
    }
}

fn now_text() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

// ---------------------------------------------------------------- tokens

fn token_endpoint(s: &Shared, body: &Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let refusal = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": error, "error_description": description, "error_codes": [70000]}),
            ),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refusal(
            "unsupported_grant_type",
            "AADSTS70003: The sandbox supports the refresh_token grant only.",
        );
    }
    let Some(presented) = form.get("refresh_token") else {
        return refusal(
            "invalid_request",
            "AADSTS900144: The request body must contain the parameter: 'refresh_token'.",
        );
    };
    let mut book = s.tokens.lock().unwrap();
    let usable = presented == INITIAL_REFRESH_TOKEN
        || match book.refresh.get(presented) {
            Some(None) => true,
            Some(Some(replaced)) => replaced.elapsed() < s.opts.refresh_grace,
            None => false,
        };
    if !usable {
        return refusal(
            "invalid_grant",
            "AADSTS70000: The provided value for the 'refresh_token' is invalid, expired or revoked.",
        );
    }
    book.issued += 1;
    let n = book.issued;
    let access = format!("sbx-at-{n}-{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("sbx-rt-{n}-{}", uuid::Uuid::new_v4().simple());
    let lifetime = s.opts.token_lifetime;
    book.access
        .insert(access.clone(), Instant::now() + lifetime);
    if presented != INITIAL_REFRESH_TOKEN {
        book.refresh.insert(presented.clone(), Some(Instant::now()));
    }
    book.refresh.insert(refresh.clone(), None);
    drop(book);
    s.stats.lock().unwrap().tokens_issued += 1;
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs().to_string(),
        "access_token": access,
        "refresh_token": refresh,
        "resource": "https://api.partnercenter.microsoft.com",
    }))
    .into_response()
}
