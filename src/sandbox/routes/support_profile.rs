//! `/v1/profiles/support` (also spelled `/v1/profiles/supportprofile`): the partner's support
//! profile, read with GET and replaced whole with PUT. Its body must be the full resource: Email,
//! Telephone, Website as text and ProfileType `support_profile`.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::common::{describe_diff, error, field, text, Answer};
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
        s.violation(format!(
            "PUT supportprofile: not the full resource (missing {})",
            missing.join(", ")
        ));
    }
    if s.opts.rules.full_bodies {
        check_full(b, &missing)?;
    }
    // Past here only with --partial-bodies: a PUT replaces the resource, so what is not sent is
    // lost.
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

/// Refuses a body that is not the full resource: a field left out, one that is not text, or a
/// ProfileType other than `support_profile` (400, 800002).
fn check_full(b: &Value, missing: &[&str]) -> Result<(), Answer> {
    if !missing.is_empty() {
        return Err(error(
            400,
            800002,
            &format!(
                "Invalid input: the body leaves out {}; a PUT replaces the whole support profile, so send every field the GET returned",
                missing.join(", ")
            ),
        ));
    }
    let untyped: Vec<&str> = ["Email", "Telephone", "Website", "ProfileType"]
        .into_iter()
        .filter(|k| text(b, k).is_none())
        .collect();
    if !untyped.is_empty() {
        return Err(error(
            400,
            800002,
            &format!("Invalid input: {} must be text", untyped.join(", ")),
        ));
    }
    if !text(b, "ProfileType").is_some_and(|t| t.eq_ignore_ascii_case("support_profile")) {
        return Err(error(
            400,
            800002,
            "Invalid input: ProfileType must be support_profile",
        ));
    }
    Ok(())
}
