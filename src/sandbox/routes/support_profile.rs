//! `/v1/profiles/support` (also spelled `/v1/profiles/supportprofile`): the partner's support
//! profile, read with GET and replaced whole with PUT.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::common::{describe_diff, field, Answer};
use super::Shared;
use crate::sandbox::tenant::Tenant;

/// GET: the support profile as it stands.
pub(super) fn get_support_profile(t: &Tenant) -> Result<Answer, Answer> {
    Ok((StatusCode::OK, t.support_profile.clone()))
}

pub(super) fn put_support_profile(s: &Shared, t: &mut Tenant, b: &Value) -> Result<Answer, Answer> {
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
