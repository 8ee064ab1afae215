//! The partner's support profile: GET it, change e-mail / telephone / website, PUT the full resource.
//!
//! The reference PUTs to `/profiles/supportprofile` while the GET page and both SDKs use
//! `/profiles/support`; each call tries the documented path first and the other on 404 or 405.

use futures::future::BoxFuture;
use serde_json::Value;

use super::check::{email, optional, phone, website};
use super::export::{cell, ExportRow, ExportSpec, Found, Walk};
use super::json::{get_str, put};
use super::{
    check_call, resend, write_once, Applied, Change, Extra, OpSpec, Pending, Problem, Problems, Row,
};
use crate::api::{Api, CallError, Method, Request, Response};
use uuid::Uuid;

pub static SPEC: OpSpec = OpSpec {
    name: "support-profile",
    required: &[],
    one_of: &["email", "telephone", "website"],
    optional: &[],
    needs_an_optional: false,
    undo_keys: &[],
    undoable: &["email", "telephone", "website"],
    kept_beside: &[],
    in_china: true,
    partner_wide: true,
    yes_no: &[],
    any_case: &[],
    example: &[
        // The sandbox's demo partner: `pcbulk template` prints a row `apply --sandbox` applies.
        ("email", "partner-support@adatum.example"),
        ("telephone", "+1 425 555 0142"),
        ("website", "www.adatum.example/help"),
    ],
    plan,
    export: Some(&EXPORT),
};

/// Exported as one row: the partner's support profile as read.
pub static EXPORT: ExportSpec = ExportSpec {
    walk: Walk::Partner,
    carried: &[],
    read: export_row,
};

fn export_row<'a>(
    api: &'a dyn Api,
    _found: Found<'a>,
) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>> {
    Box::pin(async move {
        let profile = either_path(api, GET_PATHS, |p| Request::get(p))
            .await?
            .json()?;
        let row = ["email", "telephone", "website"]
            .into_iter()
            .map(|c| (c, cell(super::json::get(&profile, c))))
            .collect();
        Ok(Some(row))
    })
}

const GET_PATHS: [&str; 2] = ["/profiles/support", "/profiles/supportprofile"];
const PUT_PATHS: [&str; 2] = ["/profiles/supportprofile", "/profiles/support"];

#[derive(Debug)]
struct UpdateSupportProfile {
    /// (field as the service names it, new value)
    fields: Vec<(&'static str, String)>,
}

type CheckFn = fn(&'static str, &str) -> Result<String, Problem>;

fn plan(row: &Row) -> Result<Box<dyn Change>, Vec<Problem>> {
    let mut p = Problems::default();
    let mut fields = Vec::new();
    // The e-mail is where customers' support requests go: it can change, never be cleared.
    let columns: [(&'static str, bool, CheckFn); 3] = [
        ("email", false, email),
        ("telephone", true, phone),
        ("website", true, website),
    ];
    for (column, clearable, check) in columns {
        if let Some(v) = optional(row, column, clearable, check).and_then(|r| p.take(r)) {
            fields.push((column, v));
        }
    }
    if ["email", "telephone", "website"]
        .iter()
        .all(|c| row.get(c).is_none())
    {
        p.push(Problem::new(
            "email",
            "missing_value",
            "email, telephone and website are all empty; fill in at least one",
        ));
    }
    p.finish(|| Some(UpdateSupportProfile { fields }))
}

/// Sends `make(path)` to the first path, and to the second if the first is not found there.
async fn either_path(
    api: &dyn Api,
    paths: [&str; 2],
    make: impl Fn(&str) -> Request,
) -> Result<Response, CallError> {
    match api.call(make(paths[0])).await {
        Err(CallError::Service(e)) if matches!(e.status, 404 | 405) => {
            api.call(make(paths[1])).await
        }
        other => other,
    }
}

impl UpdateSupportProfile {
    /// The profile read, with this row's fields set; `None` when nothing would change.
    fn changed(&self, mut profile: Value) -> Option<Value> {
        let obj = profile.as_object_mut()?;
        let mut changed = false;
        for (field, value) in &self.fields {
            changed |= put(obj, field, value);
        }
        changed.then_some(profile)
    }
}

impl Change for UpdateSupportProfile {
    fn target(&self) -> Option<String> {
        Some("partner's support profile".into())
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let current = either_path(api, GET_PATHS, |p| Request::get(p))
                .await?
                .json()?;
            if !current.is_object() {
                return Err(CallError::Decode(
                    "the support profile read was not a JSON object".into(),
                ));
            }
            let before = self
                .fields
                .iter()
                .map(|(f, _)| (f.to_string(), get_str(&current, f).unwrap_or("").to_owned()))
                .collect();
            let Some(profile) = self.changed(current) else {
                return Ok(Applied::Unchanged);
            };
            api.record_before(before, Default::default());
            let put = |path| Request::put(path, profile.clone());
            let extra = Extra::new();
            match write_once(self, api, put(PUT_PATHS[0]), Uuid::new_v4(), &extra, None).await {
                Err(CallError::Service(e)) if matches!(e.status, 404 | 405) => {
                    write_once(self, api, put(PUT_PATHS[1]), Uuid::new_v4(), &extra, None).await?
                }
                other => other?,
            }
            Ok(Applied::Changed)
        })
    }

    fn describe(&self, before: &std::collections::BTreeMap<String, String>) -> String {
        super::describe_changes(before, self.fields.iter().map(|(f, v)| (*f, v.as_str())))
    }

    /// It went in if the profile now holds the row's values.
    fn landed<'a>(
        &'a self,
        api: &'a dyn Api,
        _extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async move {
            let current = either_path(api, GET_PATHS, |p| Request::get(p))
                .await?
                .json()?;
            Ok(Some(current.is_object() && self.changed(current).is_none()))
        })
    }

    /// The profile is read first. Holding the row's values, the write went through. Otherwise the
    /// journaled PUT goes again only if it is exactly what the row would PUT now (the profile as it
    /// stands with the row's fields set): the journal cannot be checked against the input for the
    /// fields the row does not name, so they are checked against the service.
    fn settle<'a>(
        &'a self,
        api: &'a dyn Api,
        pending: Pending,
        extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<Applied>, CallError>> {
        Box::pin(async move {
            let current = either_path(api, GET_PATHS, |p| Request::get(p))
                .await?
                .json()?;
            if !current.is_object() {
                return Ok(None);
            }
            match self.changed(current) {
                None => Ok(Some(Applied::Changed)),
                Some(want) if pending.request.body.as_ref() == Some(&want) => {
                    resend(self, api, pending, extra, false).await
                }
                Some(_) => Ok(None),
            }
        })
    }

    /// A PUT of a profile that holds the row's values, to one of the two paths; the other fields
    /// are the service's, checked when the write is settled.
    fn check_write(&self, call: &Request) -> Result<(), String> {
        check_call(call, Method::Put, &PUT_PATHS, None)?;
        let body = call.body.clone().unwrap_or_default();
        if !body.is_object() || self.changed(body).is_some() {
            return Err("its body does not hold the row's values".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_full_resource_goes_back_with_only_the_named_fields_changed() {
        let c = UpdateSupportProfile {
            fields: vec![("email", "new@contoso.com".into())],
        };
        let read = json!({
            "email": "old@contoso.com", "telephone": "1", "website": "w.com",
            "profileType": "support_profile",
            "links": {"self": {"uri": "/v1/profiles/support"}},
            "attributes": {"objectType": "PartnerSupportProfile"}
        });
        let mut want = read.clone();
        want["email"] = json!("new@contoso.com");
        assert_eq!(c.changed(read.clone()), Some(want));
        let same = UpdateSupportProfile {
            fields: vec![("email", "old@contoso.com".into())],
        };
        assert_eq!(same.changed(read), None);
    }

    #[tokio::test]
    async fn falls_back_to_the_other_documented_path_on_404() {
        use crate::ops::fake::{fail, ok, FakeApi};
        let read = json!({"email": "old@x.com", "telephone": "1", "website": "w.com", "profileType": "support_profile"});
        let api = FakeApi::new(vec![
            fail(404, None),
            ok(read),
            fail(405, None),
            ok(json!({})),
        ]);
        let c = UpdateSupportProfile {
            fields: vec![("email", "new@x.com".into())],
        };
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        let paths: Vec<_> = api
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.path))
            .collect();
        assert_eq!(
            paths,
            vec![
                "GET /profiles/support",
                "GET /profiles/supportprofile",
                "PUT /profiles/supportprofile",
                "PUT /profiles/support"
            ]
        );
    }

    #[tokio::test]
    async fn an_unknown_put_is_sent_again_only_if_it_is_what_the_row_would_put_now() {
        use crate::ops::fake::{ok, FakeApi};
        let c = UpdateSupportProfile {
            fields: vec![("email", "new@x.com".into())],
        };
        let read = json!({"email": "old@x.com", "telephone": "1", "website": "w.com"});
        let want = c.changed(read.clone()).unwrap();
        let pending = |body: Value| Pending {
            sent_at: None,
            answered: false,
            request: Request::put(PUT_PATHS[0], body),
            request_id: uuid::Uuid::new_v4(),
        };
        let none = Default::default();

        let api = FakeApi::new(vec![ok(read.clone()), ok(json!({}))]);
        let settled = c.settle(&api, pending(want.clone()), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap()[1].body.as_ref(), Some(&want));

        // A journal that changed a field the row does not name: not sent, applied afresh.
        let mut tampered = want.clone();
        tampered["website"] = json!("evil.example");
        assert_eq!(c.check_write(&pending(tampered.clone()).request), Ok(()));
        let api = FakeApi::new(vec![ok(read)]);
        let settled = c.settle(&api, pending(tampered), &none).await;
        assert_eq!(settled.unwrap(), None);
        assert_eq!(api.sent.lock().unwrap().len(), 1, "only the read");

        // The row's values are there: its PUT went through, and nothing more is sent.
        let api = FakeApi::new(vec![ok(want.clone())]);
        let settled = c.settle(&api, pending(want), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_journaled_put_must_hold_the_row_s_values_on_a_profile_path() {
        let c = UpdateSupportProfile {
            fields: vec![("email", "new@x.com".into())],
        };
        let ok = json!({"email": "new@x.com", "telephone": "1"});
        assert_eq!(
            c.check_write(&Request::put(PUT_PATHS[1], ok.clone())),
            Ok(())
        );
        let other = Request::put(PUT_PATHS[0], json!({"email": "evil@x.com"}));
        assert!(c.check_write(&other).is_err());
        assert!(c
            .check_write(&Request::put("/profiles/legalbusiness", ok))
            .is_err());
    }

    #[tokio::test]
    async fn no_put_when_nothing_changes() {
        use crate::ops::fake::{ok, FakeApi};
        let api = FakeApi::new(vec![ok(json!({"email": "same@x.com"}))]);
        let c = UpdateSupportProfile {
            fields: vec![("email", "same@x.com".into())],
        };
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Unchanged);
        assert_eq!(api.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn each_field_is_checked() {
        let errs = plan(&Row::new().with("email", "nope").with("website", "x y")).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|p| p.code).collect();
        assert_eq!(codes, vec!["invalid_email", "invalid_website"]);
    }

    #[test]
    fn n_a_clears_telephone_or_website_but_never_the_support_e_mail() {
        let r = Row::new().with("telephone", "#N/A").with("website", "#N/A");
        assert!(plan(&r).is_ok());
        let r = Row::new().with("email", "#N/A");
        assert_eq!(plan(&r).unwrap_err()[0].code, "cannot_clear");
        let cleared = UpdateSupportProfile {
            fields: vec![("telephone", String::new())],
        };
        let out = cleared
            .changed(json!({"email": "a@b.example", "telephone": "+1 425"}))
            .unwrap();
        assert_eq!(out["telephone"], "");
    }
}
