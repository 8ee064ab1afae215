//! `/v1/servicerequests`: the partner's service requests, listed whole; and
//! `/v1/servicerequests/{id}`: a service request, read with GET and changed with PATCH (a new note
//! and/or a new status).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::common::{error, field, text, Answer};
use super::Shared;
use crate::sandbox::tenant::Tenant;

/// GET `/v1/servicerequests`: every service request of the partner, as one collection.
pub(super) fn list_service_requests(t: &Tenant) -> Result<Answer, Answer> {
    let items: Vec<&Value> = t.service_requests.values().collect();
    Ok((
        StatusCode::OK,
        json!({
            "totalCount": items.len(), "items": items,
            "links": {"self": {"uri": "/servicerequests", "method": "GET", "headers": []}},
            "attributes": {"objectType": "Collection"}
        }),
    ))
}

/// GET: the service request as it stands.
pub(super) fn get_service_request(t: &Tenant, id: &str) -> Result<Answer, Answer> {
    t.service_requests
        .get(id)
        .map(|sr| (StatusCode::OK, sr.clone()))
        .ok_or_else(|| error(404, 800002, &format!("Service request {id} was not found")))
}

/// PATCH: adds a note and/or sets a new status; a request that changes neither is refused.
pub(super) fn patch_service_request(
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
    let (note, status) = patch_fields(b)?;
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

/// The body's new note (blank is none) and new status (`none` is none, any other case taken),
/// with a status the service does not know refused before anything is looked at further.
fn patch_fields(b: &Value) -> Result<(Option<&str>, Option<String>), Answer> {
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
    Ok((note, status))
}

fn now_text() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}
