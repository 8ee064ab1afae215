//! `/v1/customers/{customer}/profiles/billing`: a customer's billing profile, read with GET and
//! replaced whole with PUT under an ETag (a quoted If-Match, stale ETags, ETag churn, the documented
//! field limits, and a body that leaves out fields the profile has).

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
    if !t.customers.contains_key(c) {
        return Err(customer_not_found(c));
    }
    let (if_match, body_etag) = etags_sent(s, c, h, b)?;
    check_fresh(s, t, c, &if_match, &body_etag)?;
    let customer = t.customers.get(c).expect("checked above");
    let mut new = camel(b);
    let obj = new.as_object_mut().expect("body is an object");
    obj.remove("attributes");
    obj.insert("id".into(), json!(c));
    let before = customer.billing.clone();
    let lost: Vec<&String> = before
        .as_object()
        .map(|o| o.keys().filter(|k| new.get(*k).is_none()).collect())
        .unwrap_or_default();
    if !lost.is_empty() {
        s.violation(format!(
            "PUT billingprofile {c}: fields dropped from the full resource: {}",
            lost.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if s.opts.rules.full_bodies {
        if let Some(msg) = left_out(&before, &new) {
            return Err(error(400, 800002, &msg));
        }
    }
    // Past here with --partial-bodies, fields left out are wiped, as by a service that trusts the
    // client to send the full resource.
    if let Some((code, msg)) = billing_problems(&new) {
        return Err(error(400, code, &msg));
    }
    let diff = describe_diff(&before, &new);
    let customer = t.customers.get_mut(c).expect("checked above");
    customer.billing = new;
    customer.etag += 1;
    t.changes.push(format!("billing profile of {c}: {diff}"));
    Ok((StatusCode::OK, t.billing_view(c).expect("exists")))
}

/// The ETags a PUT carries (If-Match and `Attributes.Etag`, unquoted), refusing a PUT with none
/// and, under the rule, an If-Match that is not a quoted ETag.
fn etags_sent(
    s: &Shared,
    c: &str,
    h: &HeaderMap,
    b: &Value,
) -> Result<(Option<String>, Option<String>), Answer> {
    let raw_if_match = header(h, "If-Match");
    if s.opts.rules.quoted_if_match && raw_if_match.is_some_and(|v| !is_entity_tag(v)) {
        return Err(error(
            400,
            800002,
            "If-Match must be a quoted ETag, e.g. If-Match: \"<etag>\"",
        ));
    }
    let if_match = raw_if_match.map(|v| v.trim_matches('"').to_owned());
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
    Ok((if_match, body_etag))
}

/// Refuses ETags that are not the profile's current one (412, or 400 with 2055), after letting
/// ETag churn edit the profile first.
fn check_fresh(
    s: &Shared,
    t: &mut Tenant,
    c: &str,
    if_match: &Option<String>,
    body_etag: &Option<String>,
) -> Result<(), Answer> {
    let customer = t.customers.get_mut(c).expect("checked by the caller");
    let mut faults = s.faults.lock().unwrap();
    if faults.churn(c, customer.etag) {
        // Someone else edited the profile just now: the etag the client holds is stale.
        customer.etag += 1;
        s.fault("etagChurn");
    }
    let current = etag_text(c, customer.etag);
    let stale = [if_match, body_etag]
        .iter()
        .any(|e| e.as_deref().is_some_and(|e| e != current));
    let as_412 = stale && faults.stale_as_412();
    drop(faults);
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
    Ok(())
}

/// An If-Match value as RFC 9110 has it: `*`, or entity tags, each quoted (`"x"` or `W/"x"`).
fn is_entity_tag(v: &str) -> bool {
    v == "*"
        || v.split(',').map(str::trim).all(|tag| {
            let t = tag.strip_prefix("W/").unwrap_or(tag);
            t.len() >= 2
                && t.starts_with('"')
                && t.ends_with('"')
                && !t[1..t.len() - 1].contains('"')
        })
}

/// The fields the stored profile has (with a value) that a PUT body leaves out, at the top and in
/// `defaultAddress`, and fields that should be text but are not: a PUT replaces the whole profile,
/// so leaving a field out would wipe it.
fn left_out(stored: &Value, new: &Value) -> Option<String> {
    fn walk(prefix: &str, stored: &Value, new: &Value, out: &mut Vec<String>) {
        let Some(so) = stored.as_object() else { return };
        for (k, sv) in so {
            if sv.is_null() || k == "links" || k == "attributes" {
                continue;
            }
            let name = format!("{prefix}{k}");
            match (sv, new.get(k)) {
                (_, None) => out.push(name),
                // A field sent as null is cleared on purpose, not left out.
                (_, Some(Value::Null)) => {}
                (Value::Object(_), Some(nv @ Value::Object(_))) => {
                    walk(&format!("{name}."), sv, nv, out)
                }
                (_, Some(nv)) if std::mem::discriminant(sv) == std::mem::discriminant(nv) => {}
                (_, Some(_)) => out.push(format!("{name} (of another type)")),
            }
        }
    }
    let mut missing = Vec::new();
    walk("", stored, new, &mut missing);
    (!missing.is_empty()).then(|| {
        format!(
            "Invalid input: the body leaves out or mistypes {}; a PUT replaces the whole profile, so send every field the GET returned",
            missing.join(", ")
        )
    })
}

/// The documented limits of a billing profile; the first broken one, as the service reports it.
fn billing_problems(p: &Value) -> Option<(u32, String)> {
    let len = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| s.chars().count());
    for k in ["firstName", "lastName"] {
        if !matches!(len(p.get(k)), Some(1..=50)) {
            return Some((800002, format!("{k} must be 1 to 50 characters")));
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
