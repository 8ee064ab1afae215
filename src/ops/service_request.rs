//! Service request: `PATCH /servicerequests/{id}` with a new note and/or a new status.
//!
//! A note is not idempotent: sent twice, it is added twice. A PATCH whose outcome is unknown (no
//! answer, or a 408 or 5xx) is looked for, more than once, before it may go again (see
//! [`super::look_times`]); it goes again under the same MS-RequestId only when no answer came.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::check::{cannot_clear, optional, required, token};
use super::export::{ExportRow, ExportSpec, Found, Walk};
use super::json::{get, get_str};
use super::{check_call, write_once, Applied, Change, Extra, OpSpec, Problem, Problems, Row};
use crate::api::{Api, CallError, Method, Request};

pub static SPEC: OpSpec = OpSpec {
    name: "service-request",
    required: &["service_request_id"],
    one_of: &["note", "new_status"],
    optional: &[],
    needs_an_optional: false,
    undo_keys: &["service_request_id"],
    // A note cannot be taken back: only the status is.
    undoable: &["new_status"],
    kept_beside: &[],
    in_china: false,
    partner_wide: false,
    yes_no: &[],
    any_case: &["new_status"],
    example: &[
        ("service_request_id", "616122292874576"),
        ("note", "Reseller Trey Research now handles this request."),
        ("new_status", "attention_needed"),
    ],
    plan,
    export: Some(&EXPORT),
};

/// Exported per request of the partner's listing: its id, its status as `new_status` (so that the
/// row, applied unchanged, changes nothing), and its `title`; the note is left empty.
pub static EXPORT: ExportSpec = ExportSpec {
    walk: Walk::PartnerList("/servicerequests"),
    carried: &["title"],
    read: export_row,
};

fn export_row<'a>(
    _api: &'a dyn Api,
    found: Found<'a>,
) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>> {
    let id = found.item_str("id");
    let row = match token("service_request_id", id) {
        Ok(id) => Ok(Some(vec![
            ("service_request_id", id),
            ("note", String::new()),
            ("new_status", found.item_str("status").to_owned()),
            ("title", found.item_str("title").to_owned()),
        ])),
        Err(p) => Err(CallError::Decode(format!(
            "the service request listing holds an item whose id is not one: {}",
            p.message
        ))),
    };
    Box::pin(async move { row })
}

/// The statuses a PATCH may set (`none` means no change and is not offered).
pub const STATUSES: &[&str] = &["open", "closed", "attention_needed"];

/// Statuses a request may show that no row may set: valid in a row only where the request has it
/// already (an export applied unchanged), and then the row is `unchanged`.
const SHOWN_ONLY: &[&str] = &["none"];

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
        .chain(SHOWN_ONLY)
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
    // A note is added, never replaced, and a request always has a status: neither clears.
    let note = optional(row, "note", false, |_, v| Ok(v.to_owned())).and_then(|r| p.take(r));
    let status = match row.get("new_status") {
        Some(_) if row.clears("new_status") => p.take(Err(cannot_clear("new_status"))),
        Some(v) => p.take(status(v)).map(Some),
        None => Some(None),
    };
    // Both cells empty; a note refused (`#N/A`) has its own problem.
    if row.get("note").is_none() && row.get("new_status").is_none() {
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
    fn path(&self) -> String {
        // An id is opaque: sent as the file gives it.
        format!("/servicerequests/{}", self.id)
    }

    /// Only what changes, as the reference asks of a PATCH.
    fn body(&self, status: Option<&str>) -> Value {
        let mut body = Map::new();
        if let Some(text) = &self.note {
            body.insert("NewNote".into(), json!({ "Text": text }));
        }
        if let Some(s) = status {
            body.insert("Status".into(), json!(s));
        }
        Value::Object(body)
    }

    /// How many of the request's notes have this row's text.
    fn notes_with_text(&self, sr: &Value) -> usize {
        let Some(note) = &self.note else { return 0 };
        get(sr, "notes")
            .and_then(Value::as_array)
            .map(|notes| {
                notes
                    .iter()
                    .filter(|n| get_str(n, "text") == Some(note.as_str()))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// The journal's name for how many notes had the row's text before it was sent.
const NOTES_BEFORE: &str = "notes_with_text";

impl Change for UpdateServiceRequest {
    fn target(&self) -> Option<String> {
        None
    }

    fn touches(&self) -> Option<String> {
        Some(format!("service request {}", self.id))
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let sr = api.call(Request::get(self.path())).await?.json()?;
            let status_now = get_str(&sr, "status").unwrap_or("").to_ascii_lowercase();
            let status = self.status.filter(|s| *s != status_now);
            if let Some(s) = status.filter(|s| SHOWN_ONLY.contains(s)) {
                return Err(CallError::Invalid {
                    code: "invalid_status".into(),
                    message: format!(
                        "new_status {s:?} is what a request shows when no status was set, and no row \
                         may set it; this request is {status_now:?}: use one of {} (nothing was written)",
                        STATUSES.join(", ")
                    ),
                });
            }
            if self.note.is_none() && status.is_none() {
                return Ok(Applied::Unchanged);
            }
            let mut before = BTreeMap::new();
            if status.is_some() {
                before.insert("new_status".to_owned(), status_now);
            }
            let extra =
                BTreeMap::from([(NOTES_BEFORE.to_owned(), json!(self.notes_with_text(&sr)))]);
            api.record_before(before, extra.clone());
            let patch = Request::patch(self.path(), self.body(status));
            write_once(self, api, patch, uuid::Uuid::new_v4(), &extra, None).await?;
            Ok(Applied::Changed)
        })
    }

    fn describe(&self, before: &BTreeMap<String, String>) -> String {
        let mut parts = Vec::new();
        if let Some(text) = &self.note {
            parts.push(format!("note: + {text:?}"));
        }
        if let (Some(to), Some(from)) = (self.status, before.get("new_status")) {
            parts.push(format!("new_status: {from:?} → {to:?}"));
        }
        parts.join("; ")
    }

    /// A note went in if the request has more notes with its text than before; a status change
    /// if the request has that status now.
    fn landed<'a>(
        &'a self,
        api: &'a dyn Api,
        extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async move {
            let sr = api.call(Request::get(self.path())).await?.json()?;
            if self.note.is_some() {
                let before = extra.get(NOTES_BEFORE).and_then(Value::as_u64).unwrap_or(0) as usize;
                return Ok(Some(self.notes_with_text(&sr) > before));
            }
            let now = get_str(&sr, "status").unwrap_or("");
            Ok(Some(
                self.status.is_some_and(|s| now.eq_ignore_ascii_case(s)),
            ))
        })
    }

    /// The PATCH is the row's note and status, or its note alone (when the request had the status
    /// already): nothing else.
    fn check_write(&self, call: &Request) -> Result<(), String> {
        check_call(call, Method::Patch, &[self.path().as_str()], None)?;
        let body = call.body.as_ref();
        let fits = body == Some(&self.body(self.status))
            || (self.note.is_some() && body == Some(&self.body(None)));
        if !fits {
            return Err("its body is not the row's note and status".into());
        }
        Ok(())
    }

    /// How many notes had the row's text: a count, and nothing else.
    fn check_extra(&self, extra: &BTreeMap<String, Value>) -> Result<(), String> {
        for (k, v) in extra {
            if k != NOTES_BEFORE {
                return Err(format!("{k:?} is not something this operation journals"));
            }
            if v.as_u64().is_none() {
                return Err(format!("{NOTES_BEFORE} is not a count"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Pending;

    #[test]
    fn status_spellings() {
        assert_eq!(status("Attention Needed").unwrap(), "attention_needed");
        assert_eq!(status("CLOSED").unwrap(), "closed");
        assert_eq!(status("attention-needed").unwrap(), "attention_needed");
        assert_eq!(status("done").unwrap_err().code, "invalid_status");
    }

    /// An export of a request whose status is `none` applies unchanged; a row asking for `none`
    /// where the request shows another status is refused before anything is written.
    #[tokio::test]
    async fn a_status_no_row_may_set_is_unchanged_where_the_request_has_it_and_refused_elsewhere() {
        use crate::ops::fake::{ok, FakeApi};
        let row = Row::new()
            .with("service_request_id", "6")
            .with("new_status", "None");
        let c = plan(&row).unwrap();
        let api = FakeApi::new(vec![ok(json!({"id": "6", "status": "none"}))]);
        assert!(matches!(c.apply(&api).await, Ok(Applied::Unchanged)));
        let api = FakeApi::new(vec![ok(json!({"id": "6", "status": "open"}))]);
        let refused = c.apply(&api).await;
        assert!(
            matches!(&refused, Err(CallError::Invalid { code, .. }) if code == "invalid_status"),
            "{refused:?}"
        );
        assert_eq!(api.sent.lock().unwrap().len(), 1, "the read only");
    }

    #[test]
    fn body_holds_only_what_changes() {
        let c = UpdateServiceRequest {
            id: "1".into(),
            note: Some("hi".into()),
            status: None,
        };
        assert_eq!(c.body(None), json!({"NewNote": {"Text": "hi"}}));
        let c = UpdateServiceRequest {
            id: "1".into(),
            note: None,
            status: Some("closed"),
        };
        assert_eq!(c.body(Some("closed")), json!({"Status": "closed"}));
    }

    #[test]
    fn a_row_with_neither_note_nor_status_is_refused() {
        let errs = plan(&Row::new().with("service_request_id", "616122292874576")).unwrap_err();
        assert_eq!(errs[0].code, "missing_value");
    }

    #[tokio::test]
    async fn a_status_already_set_is_unchanged_and_left_out_of_a_note_patch() {
        use crate::ops::fake::{ok, FakeApi};
        let sr = json!({"id": "6", "status": "closed", "notes": []});
        let c = UpdateServiceRequest {
            id: "6".into(),
            note: None,
            status: Some("closed"),
        };
        let api = FakeApi::new(vec![ok(sr.clone())]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Unchanged);
        let c = UpdateServiceRequest {
            id: "6".into(),
            note: Some("n".into()),
            status: Some("closed"),
        };
        let api = FakeApi::new(vec![ok(sr), ok(json!({}))]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        assert_eq!(
            api.sent.lock().unwrap()[1].body,
            Some(json!({"NewNote": {"Text": "n"}}))
        );
    }

    /// The request with the note "n" `times` times.
    fn with_n(times: usize) -> crate::ops::fake::Answer {
        let notes: Vec<Value> = (0..times).map(|_| json!({"text": "n"})).collect();
        crate::ops::fake::ok(json!({"id": "6", "status": "open", "notes": notes}))
    }

    /// The methods a fake was sent, in order.
    fn methods(api: &crate::ops::fake::FakeApi) -> Vec<Method> {
        api.sent.lock().unwrap().iter().map(|r| r.method).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_note_is_looked_for_until_it_settles_before_a_resume_sends_it_again() {
        use crate::ops::fake::FakeApi;
        use Method::{Get, Patch};
        let c = note_n();
        let pending = || Pending {
            sent_at: None,
            answered: false,
            request: Request::patch("/servicerequests/6", json!({"NewNote": {"Text": "n"}})),
            request_id: uuid::Uuid::new_v4(),
        };
        let extra = BTreeMap::from([(NOTES_BEFORE.to_owned(), json!(1))]);
        // The note is there twice now, once before: it went in; nothing is sent.
        let api = FakeApi::new(vec![with_n(2)]);
        assert_eq!(
            c.settle(&api, pending(), &extra).await.unwrap(),
            Some(Applied::Changed)
        );
        assert_eq!(methods(&api), [Get]);
        // Not there at once, but by the second look after: the earlier run's write was still on
        // its way; nothing is sent.
        let api = FakeApi::new(vec![with_n(1), with_n(1), with_n(2)]);
        assert_eq!(
            c.settle(&api, pending(), &extra).await.unwrap(),
            Some(Applied::Changed)
        );
        assert_eq!(methods(&api), [Get, Get, Get]);
        // Not there at any look: the PATCH goes again, under its own MS-RequestId.
        let api = FakeApi::new(vec![with_n(1), with_n(1), with_n(1), with_n(1), with_n(0)]);
        let p = pending();
        let id = p.request_id;
        assert_eq!(
            c.settle(&api, p, &extra).await.unwrap(),
            Some(Applied::Changed)
        );
        assert_eq!(methods(&api), [Get, Get, Get, Get, Patch]);
        assert_eq!(*api.ids.lock().unwrap(), [id]);
        // Answered 504 before the crash: it goes again under a new one.
        let api = FakeApi::new(vec![with_n(1), with_n(1), with_n(1), with_n(1), with_n(0)]);
        let p = Pending {
            sent_at: None,
            answered: true,
            ..pending()
        };
        let id = p.request_id;
        c.settle(&api, p, &extra).await.unwrap();
        assert_ne!(api.ids.lock().unwrap()[0], id);
    }

    /// An answer lost on the way back.
    fn lost() -> crate::ops::fake::Answer {
        Err(CallError::Transport {
            message: "the connection dropped".into(),
            timeout: false,
        })
    }

    /// The note's PATCH answered `first`, then the note absent at each of the three looks: it is
    /// sent again and the row succeeds. The MS-RequestIds of the two sends.
    async fn sent_again_after(first: crate::ops::fake::Answer) -> Vec<uuid::Uuid> {
        use Method::{Get, Patch};
        let script = vec![with_n(0), first, with_n(0), with_n(0), with_n(0), with_n(0)];
        let api = crate::ops::fake::FakeApi::new(script);
        assert_eq!(note_n().apply(&api).await.unwrap(), Applied::Changed);
        assert_eq!(methods(&api), [Get, Patch, Get, Get, Get, Patch]);
        let ids = api.ids.lock().unwrap().clone();
        ids
    }

    /// A row that adds the note "n" to request 6.
    fn note_n() -> UpdateServiceRequest {
        UpdateServiceRequest {
            id: "6".into(),
            note: Some("n".into()),
            status: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn max_attempts_bounds_the_sends_of_a_note_whose_answers_are_lost() {
        use crate::ops::fake::FakeApi;
        let c = note_n();
        for max in [1, 2, 3] {
            let mut script = vec![with_n(0)];
            for _ in 0..10 {
                script.extend([lost(), with_n(0), with_n(0), with_n(0)]);
            }
            let mut api = FakeApi::new(script);
            api.max_sends = max;
            assert!(matches!(
                c.apply(&api).await,
                Err(CallError::Transport { .. })
            ));
            let patches = methods(&api)
                .iter()
                .filter(|m| **m == Method::Patch)
                .count();
            assert_eq!(patches, max, "--max-attempts {max}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_note_the_service_finishes_after_the_first_look_is_not_sent_again() {
        use crate::ops::fake::FakeApi;
        use Method::{Get, Patch};
        let c = note_n();
        // Lost; not there at the first look, there at the second: it went in, late.
        let api = FakeApi::new(vec![with_n(0), lost(), with_n(0), with_n(1)]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        assert_eq!(methods(&api), [Get, Patch, Get, Get]);
        // Lost, and not there at any of the three looks: it goes again, under the same id.
        let ids = sent_again_after(lost()).await;
        assert_eq!(ids[0], ids[1], "no answer came: the same MS-RequestId");
        // Lost every time, never there: the row fails with the transport error, after a bounded
        // number of sends.
        let mut script = vec![with_n(0)];
        for _ in 0..=crate::ops::LOST_ANSWERS {
            script.extend([lost(), with_n(0), with_n(0), with_n(0)]);
        }
        let api = FakeApi::new(script);
        assert!(matches!(
            c.apply(&api).await,
            Err(CallError::Transport { .. })
        ));
        let patches = methods(&api)
            .iter()
            .filter(|m| **m == Method::Patch)
            .count();
        assert_eq!(patches, crate::ops::LOST_ANSWERS + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_note_answered_504_after_the_service_applied_it_is_not_sent_again() {
        use crate::ops::fake::{fail, FakeApi};
        use Method::{Get, Patch};
        let c = note_n();
        let api = FakeApi::new(vec![with_n(0), fail(504, None), with_n(1)]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        assert_eq!(methods(&api), [Get, Patch, Get]);
        // Not applied after all (absent at every look): it goes again, under a new MS-RequestId
        // (the service answered the first).
        let ids = sent_again_after(fail(503, None)).await;
        assert_ne!(ids[0], ids[1], "an answer came: a new MS-RequestId");
    }

    #[tokio::test(start_paused = true)]
    async fn a_note_whose_looks_fail_ends_outcome_unknown_and_is_never_sent_twice() {
        use crate::ops::fake::{fail, FakeApi};
        use Method::{Get, Patch};
        let c = note_n();
        let script = vec![with_n(0), lost(), with_n(0), fail(503, None), with_n(0)];
        let api = FakeApi::new(script);
        let e = c.apply(&api).await.unwrap_err();
        assert_eq!(e.code(), "outcome_unknown");
        let msg = e.to_string();
        assert!(msg.contains("may or may not have been applied"), "{msg}");
        assert!(
            msg.contains("check service request 6 in Partner Center"),
            "{msg}"
        );
        assert_eq!(methods(&api), [Get, Patch, Get, Get, Get]);
        // A look that fails is made up for by a later one that finds the note.
        let script = vec![with_n(0), fail(504, None), fail(503, None), with_n(1)];
        let api = FakeApi::new(script);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        assert_eq!(methods(&api), [Get, Patch, Get, Get]);
    }

    #[test]
    fn notes_may_repeat_for_one_request() {
        let c = plan(&Row::new().with("service_request_id", "6").with("note", "x")).unwrap();
        assert!(c.target().is_none());
    }

    #[test]
    fn n_a_neither_adds_a_note_nor_clears_the_status() {
        for column in ["note", "new_status"] {
            let r = Row::new()
                .with("service_request_id", "616122292874576")
                .with(column, "#N/A");
            let problems = plan(&r).unwrap_err();
            assert_eq!(problems[0].code, "cannot_clear", "{column}");
            // Found by an outside tester: `#N/A` in note also said both cells were empty.
            assert_eq!(problems.len(), 1, "{column}: {problems:?}");
        }
    }

    /// Found by an outside tester: `#N/A` in a key said to leave the cell empty, which is itself
    /// refused.
    #[test]
    fn n_a_in_a_key_asks_for_the_value_not_an_empty_cell() {
        let r = Row::new()
            .with("service_request_id", "#N/A")
            .with("note", "x");
        let problems = plan(&r).unwrap_err();
        assert_eq!(problems[0].code, "cannot_clear");
        assert!(
            !problems[0].message.contains("leave the cell empty"),
            "{}",
            problems[0].message
        );
    }
}
