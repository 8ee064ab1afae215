//! What the `/v1` files share: the ids a call carries, the answer's headers and Partner Center's
//! error body, reading headers and JSON fields as the service does (case-insensitively), the
//! customer-not-found answer, a gateway's failure page, and the diff the change log is written
//! from.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The ids a call carries, echoed on the answer.
pub(super) struct CallIds {
    pub(super) request_id: Option<String>,
    pub(super) correlation_id: Option<String>,
}

pub(super) fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

pub(super) fn is_guid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(super) fn reply(status: StatusCode, body: Value, ids: &CallIds, bom: bool) -> Response {
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
pub(super) fn error(status: u16, code: u32, description: &str) -> (StatusCode, Value) {
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

pub(super) type Answer = (StatusCode, Value);

/// A 502, 503 or 504 as a gateway in front of the service sends it: an HTML page or nothing, and
/// none of the service's headers.
pub(super) fn gateway_failure(status: StatusCode, html: bool) -> Response {
    if !html {
        return (status, "").into_response();
    }
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut resp = (status, page).into_response();
    resp.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// The value under `key`, matching keys case-insensitively as the service's deserializer does.
pub(super) fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

pub(super) fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    field(v, key).and_then(Value::as_str)
}

/// 20002, no commerce relationship: a customer the partner does not sell to is forbidden to it,
/// not missing (403, as Partner Center answers).
pub(super) fn customer_not_found(c: &str) -> Answer {
    error(
        403,
        20002,
        &format!("Customer {c} was not found or has no relationship with the partner"),
    )
}

/// "email a → b; city c → d" over the leaves that differ.
pub(super) fn describe_diff(before: &Value, after: &Value) -> String {
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
