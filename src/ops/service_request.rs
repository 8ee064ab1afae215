//! Service request: `PATCH /servicerequests/{id}` with a new note and/or a new status.
//!
//! A note is not idempotent: sent twice, it is added twice. The dispatcher keeps one MS-RequestId on
//! every retry of the PATCH so the service can recognise a retry after a lost answer.

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::check::{required, token};
use super::{Applied, Change, OpSpec, Problem, Problems, Row};
use crate::api::{Api, CallError, Request};

pub static SPEC: OpSpec = OpSpec {
    name: "service-request",
    required: &["service_request_id"],
    one_of: &["note", "new_status"],
    optional: &[],
    example: &[
        ("service_request_id", "616122292874576"),
        ("note", "Reseller Trey Research now handles this request."),
        ("new_status", "attention_needed"),
    ],
    plan,
};

/// The statuses a PATCH may set (`none` means no change and is not offered).
pub const STATUSES: &[&str] = &["open", "closed", "attention_needed"];

#[derive(Debug)]
struct UpdateServiceRequest {
    id: String,
    note: Option<String>,
    status: Option<&'static str>,
}

fn status(value: &str) -> Result<&'static str, Problem> {
    let n: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    STATUSES
        .iter()
        .find(|s| s.replace('_', "") == n)
        .copied()
        .ok_or_else(|| {
            Problem::new(
                "new_status",
                "invalid_status",
                format!(
                    "new_status {value:?} is not a service request status; use one of {}",
                    STATUSES.join(", ")
                ),
            )
        })
}

fn plan(row: &Row) -> Result<Box<dyn Change>, Vec<Problem>> {
    let mut p = Problems::default();
    let id =
        p.take(required(row, "service_request_id").and_then(|v| token("service_request_id", v)));
    let note = row.get("note").map(str::to_owned);
    let status = match row.get("new_status") {
        Some(v) => p.take(status(v)).map(Some),
        None => Some(None),
    };
    if note.is_none() && row.get("new_status").is_none() {
        p.push(Problem::new(
            "note",
            "missing_value",
            "both note and new_status are empty; fill in at least one",
        ));
    }
    p.finish(|| {
        Some(UpdateServiceRequest {
            id: id?,
            note,
            status: status?,
        })
    })
}

impl UpdateServiceRequest {
    /// Only what changes, as the reference asks of a PATCH.
    fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(text) = &self.note {
            body.insert("NewNote".into(), json!({ "Text": text }));
        }
        if let Some(s) = self.status {
            body.insert("Status".into(), json!(s));
        }
        Value::Object(body)
    }
}

impl Change for UpdateServiceRequest {
    fn target(&self) -> Option<String> {
        None
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let path = format!("/servicerequests/{}", self.id.to_ascii_lowercase());
            api.call(Request::patch(path, self.body())).await?;
            Ok(Applied::Changed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spellings() {
        assert_eq!(status("Attention Needed").unwrap(), "attention_needed");
        assert_eq!(status("CLOSED").unwrap(), "closed");
        assert_eq!(status("attention-needed").unwrap(), "attention_needed");
        assert_eq!(status("none").unwrap_err().code, "invalid_status");
    }

    #[test]
    fn body_holds_only_what_changes() {
        let c = UpdateServiceRequest {
            id: "1".into(),
            note: Some("hi".into()),
            status: None,
        };
        assert_eq!(c.body(), json!({"NewNote": {"Text": "hi"}}));
        let c = UpdateServiceRequest {
            id: "1".into(),
            note: None,
            status: Some("closed"),
        };
        assert_eq!(c.body(), json!({"Status": "closed"}));
    }

    #[test]
    fn a_row_with_neither_note_nor_status_is_refused() {
        let errs = plan(&Row::new().with("service_request_id", "616122292874576")).unwrap_err();
        assert_eq!(errs[0].code, "missing_value");
    }

    #[test]
    fn notes_may_repeat_for_one_request() {
        let c = plan(&Row::new().with("service_request_id", "6").with("note", "x")).unwrap();
        assert!(c.target().is_none());
    }
}
