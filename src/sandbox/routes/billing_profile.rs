//! `/v1/customers/{customer}/profiles/billing`: a customer's billing profile, read with GET and
//! replaced whole with PUT under an ETag (stale ETags, ETag churn, the documented field limits).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::common::{customer_not_found, describe_diff, error, field, header, text, Answer};
use super::Shared;
use crate::sandbox::tenant::{etag_text, Tenant};

/// Countries for which a billing address needs a phone number (600051).
const PHONE_REQUIRED: &[&str] = &[
    "AM", "AZ", "BY", "HU", "IN", "KZ", "KG", "MD", "RU", "TJ", "UZ", "UA",
];

/// GET: the billing profile, with its current etag.
pub(super) fn get_billing(t: &Tenant, c: &str) -> Result<Answer, Answer> {
    t.billing_view(c)
        .map(|v| (StatusCode::OK, v))
        .ok_or_else(|| customer_not_found(c))
}

pub(super) fn put_billing(
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
