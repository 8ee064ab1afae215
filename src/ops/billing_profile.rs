//! A customer's billing profile: GET it (with its ETag), change only the named fields, PUT the full
//! resource back with `If-Match` and the ETag in `Attributes`. Every field the GET returned, known or
//! not, goes back unchanged. A stale ETag (412, or 400 with code 2055) means someone wrote in between:
//! read again and re-apply, a bounded number of times.

use futures::future::BoxFuture;
use serde_json::Value;

use super::check::{country, culture, email, length, optional, phone, required};
use super::export::{cell, ExportRow, ExportSpec, Found, Walk};
use super::json::{get, get_str, object_mut, put};
use super::{
    check_call, resend, write_once, Applied, Change, Extra, OpSpec, Pending, Problem, Problems, Row,
};
use crate::api::{Api, CallError, Method, Request};
use uuid::Uuid;

/// The fields a row may change: all optional, each put back by undo.
const FIELD_COLUMNS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "culture",
    "language",
    "company_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "region",
    "phone_number",
    "address_first_name",
    "address_last_name",
];

/// The fields Partner Center needs a value in (a documented minimum length of one or more, or a
/// profile that cannot work without them): `#N/A` there makes the row invalid.
const NEVER_CLEARED: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "culture",
    "language",
    "address_line1",
    "country",
];

pub static SPEC: OpSpec = OpSpec {
    name: "billing-profile",
    required: &["customer_id"],
    one_of: &[],
    optional: FIELD_COLUMNS,
    needs_an_optional: true,
    undo_keys: &["customer_id"],
    undoable: FIELD_COLUMNS,
    // See `UpdateBillingProfile::kept_state`.
    kept_beside: &[("country", "state")],
    in_china: true,
    partner_wide: false,
    yes_no: &[],
    // `check::country` reads the code in any case.
    any_case: &["country"],
    example: &[
        // The sandbox's demo tenant: `pcbulk template` prints a row `apply --sandbox` applies.
        ("customer_id", "c0000001-0000-4000-8000-000000000001"),
        ("email", "billing@contoso.example"),
        ("address_line1", "1 Microsoft Way"),
        ("city", "Redmond"),
        ("state", "WA"),
        ("postal_code", "98052"),
        ("country", "US"),
        ("phone_number", "4255550111"),
    ],
    plan,
    export: Some(&EXPORT),
};

/// Exported per customer: every field a row may change, as the profile holds it.
pub static EXPORT: ExportSpec = ExportSpec {
    walk: Walk::Customers,
    carried: &[],
    read: export_row,
};

fn export_row<'a>(
    api: &'a dyn Api,
    found: Found<'a>,
) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>> {
    Box::pin(async move {
        let customer = found.customer_id();
        let path = format!("/customers/{customer}/profiles/billing");
        let profile = api.call(Request::get(path)).await?.json()?;
        let address = get(&profile, "defaultAddress");
        let mut row = vec![("customer_id", customer.to_owned())];
        for (column, in_address, field) in FIELDS {
            let from = if *in_address { address } else { Some(&profile) };
            row.push((*column, cell(from.and_then(|o| get(o, field)))));
        }
        Ok(Some(row))
    })
}

/// How many times a stale ETag is answered by reading again before the row fails.
pub const MAX_ETAG_ROUNDS: u32 = 5;

/// Where each column lives in the resource: (column, in defaultAddress?, field).
const FIELDS: &[(&str, bool, &str)] = &[
    ("first_name", false, "firstName"),
    ("last_name", false, "lastName"),
    ("email", false, "email"),
    ("culture", false, "culture"),
    ("language", false, "language"),
    ("company_name", false, "companyName"),
    ("address_line1", true, "addressLine1"),
    ("address_line2", true, "addressLine2"),
    ("city", true, "city"),
    ("state", true, "state"),
    ("postal_code", true, "postalCode"),
    ("country", true, "country"),
    ("region", true, "region"),
    ("phone_number", true, "phoneNumber"),
    ("address_first_name", true, "firstName"),
    ("address_last_name", true, "lastName"),
];

#[derive(Debug)]
struct UpdateBillingProfile {
    customer_id: String,
    /// (in defaultAddress?, field, new value; `""` clears the field)
    changes: Vec<(bool, &'static str, String)>,
}

/// The documented limits, per column.
fn check(column: &'static str, v: &str) -> Result<String, Problem> {
    match column {
        "first_name" | "last_name" | "address_first_name" | "address_last_name" => {
            length(column, v, 1, 50)
        }
        "email" => email(column, v),
        "culture" | "language" => culture(column, v),
        "address_line1" => length(column, v, 1, 200),
        "address_line2" => length(column, v, 0, 200),
        "state" => length(column, v, 0, 2),
        "country" => country(column, v),
        "phone_number" => phone(column, v),
        _ => length(column, v, 1, 200),
    }
}

fn plan(row: &Row) -> Result<Box<dyn Change>, Vec<Problem>> {
    let mut p = Problems::default();
    let customer_id =
        p.take(required(row, "customer_id").and_then(|v| super::check::guid("customer_id", v)));
    let mut changes = Vec::new();
    for (column, in_address, field) in FIELDS {
        let clearable = !NEVER_CLEARED.contains(column);
        if let Some(v) = optional(row, column, clearable, check).and_then(|r| p.take(r)) {
            changes.push((*in_address, *field, v));
        }
    }
    if changes.is_empty() && FIELDS.iter().all(|(c, _, _)| row.get(c).is_none()) {
        p.push(Problem::new(
            "customer_id",
            "nothing_to_change",
            "every billing field is empty; fill in at least one field to change",
        ));
    }
    p.finish(|| {
        Some(UpdateBillingProfile {
            customer_id: customer_id?,
            changes,
        })
    })
}

impl UpdateBillingProfile {
    fn path(&self) -> String {
        format!("/customers/{}/profiles/billing", self.customer_id)
    }

    /// The profile read, with this row's fields set; `None` when nothing would change.
    fn changed(&self, mut profile: Value) -> Option<Value> {
        let obj = profile.as_object_mut()?;
        let mut changed = false;
        for (in_address, field, value) in &self.changes {
            let target = if *in_address {
                object_mut(obj, "defaultAddress")
            } else {
                &mut *obj
            };
            changed |= put(target, field, value);
        }
        changed.then_some(profile)
    }
}

/// Some countries need a phone number on the billing address (600051 otherwise): checked on the
/// profile as it would be written, since the phone may be in the profile already or in the row.
fn phone_where_required(profile: &Value) -> Result<(), CallError> {
    let address = get(profile, "defaultAddress");
    let country = address
        .and_then(|a| get_str(a, "country"))
        .unwrap_or("")
        .to_ascii_uppercase();
    let phone = address
        .and_then(|a| get_str(a, "phoneNumber"))
        .unwrap_or("")
        .trim();
    if phone.is_empty() && super::countries::PHONE_REQUIRED.contains(&country.as_str()) {
        return Err(CallError::Invalid {
            code: "phone_required".into(),
            message: format!(
                "column \"phone_number\": Partner Center requires a phone number for billing addresses \
                 in {country}, and the profile has none; add a phone_number to the row (nothing was written)"
            ),
        });
    }
    Ok(())
}

impl UpdateBillingProfile {
    /// The named fields as read, by input column; with a new country, also the state the row
    /// keeps (see [`UpdateBillingProfile::kept_state`]).
    fn before(&self, current: &Value) -> std::collections::BTreeMap<String, String> {
        let address = get(current, "defaultAddress");
        let value = |in_address: bool, field: &str| {
            let from = if in_address { address } else { Some(current) };
            from.and_then(|o| get_str(o, field))
                .unwrap_or("")
                .to_owned()
        };
        let mut before: std::collections::BTreeMap<String, String> = self
            .changes
            .iter()
            .filter_map(|(in_address, field, _)| {
                let column = FIELDS
                    .iter()
                    .find(|(_, a, f)| a == in_address && f == field)?
                    .0;
                Some((column.to_owned(), value(*in_address, field)))
            })
            .collect();
        let state = value(true, "state");
        if self.new_country().is_some() && !before.contains_key("state") && !state.is_empty() {
            before.insert("state".into(), state);
        }
        before
    }

    fn new_country(&self) -> Option<&str> {
        self.changes
            .iter()
            .find(|(a, f, _)| *a && *f == "country")
            .map(|(_, _, v)| v.as_str())
    }

    /// A warning for a state the row keeps (it names no `state`) while moving the address to a
    /// country whose addresses have none, e.g. "WA" kept on a move to DE.
    fn kept_state(&self, before: &std::collections::BTreeMap<String, String>) -> Option<String> {
        let country = self.new_country()?;
        let named = self.changes.iter().any(|(a, f, _)| *a && *f == "state");
        let state = before.get("state").filter(|s| !s.is_empty())?;
        let moved = before.get("country").is_some_and(|c| c != country);
        (moved && !named && !super::countries::USES_STATE.contains(&country)).then(|| {
            format!(
                "warning: state {state:?} is kept, but {country} addresses have no state; \
                 put #N/A in the state column to clear it"
            )
        })
    }
}

fn etag_of(profile: &Value) -> Option<String> {
    get(profile, "attributes")
        .and_then(|a| get_str(a, "etag"))
        .map(|e| e.trim_matches('"').to_owned())
        .filter(|e| !e.is_empty())
}

impl Change for UpdateBillingProfile {
    fn describe(&self, before: &std::collections::BTreeMap<String, String>) -> String {
        let column = |in_address: bool, field: &str| {
            FIELDS
                .iter()
                .find(|(_, a, f)| *a == in_address && *f == field)
                .map_or(field.to_owned(), |c| c.0.to_owned())
        };
        let after: Vec<(String, &str)> = self
            .changes
            .iter()
            .map(|(a, f, v)| (column(*a, f), v.as_str()))
            .collect();
        let mut text = super::describe_changes(before, after.iter().map(|(c, v)| (c.as_str(), *v)));
        if let Some(warning) = self.kept_state(before) {
            text.push_str("; ");
            text.push_str(&warning);
        }
        text
    }

    /// It went in if the profile now holds the row's values.
    fn landed<'a>(
        &'a self,
        api: &'a dyn Api,
        _extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async move {
            let current = api.call(Request::get(self.path())).await?.json()?;
            Ok(Some(self.changed(current).is_none()))
        })
    }

    fn target(&self) -> Option<String> {
        Some(format!("billing profile of customer {}", self.customer_id))
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let mut round = 0;
            loop {
                round += 1;
                let current = api.call(Request::get(self.path())).await?.json()?;
                let etag = etag_of(&current).ok_or_else(|| {
                    CallError::Decode("the billing profile read carried no attributes.etag".into())
                })?;
                let before = self.before(&current);
                let Some(profile) = self.changed(current) else {
                    return Ok(Applied::Unchanged);
                };
                phone_where_required(&profile)?;
                api.record_before(before, Default::default());
                let put = Request::put(self.path(), profile).if_match(etag);
                match write_once(self, api, put, Uuid::new_v4(), &Extra::new(), None).await {
                    Ok(()) => return Ok(Applied::Changed),
                    Err(CallError::Service(e)) if e.is_stale_etag() && round < MAX_ETAG_ROUNDS => {
                        continue
                    }
                    Err(CallError::Service(e)) if e.is_stale_etag() => {
                        let mut e = e;
                        e.message = format!(
                            "{} (the profile changed under every one of {MAX_ETAG_ROUNDS} attempts; \
                             someone else is editing it, try again later)",
                            e.message.trim_end_matches('.')
                        );
                        return Err(CallError::Service(e));
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// The profile is read first. Holding the row's values, the write went through. Otherwise the
    /// journaled PUT goes again only if it is exactly what the row would PUT now (the profile as it
    /// stands, with its ETag, and the row's fields set); else the row is applied afresh.
    fn settle<'a>(
        &'a self,
        api: &'a dyn Api,
        pending: Pending,
        extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<Applied>, CallError>> {
        Box::pin(async move {
            let current = api.call(Request::get(self.path())).await?.json()?;
            if !current.is_object() {
                return Ok(None);
            }
            let etag = etag_of(&current);
            match self.changed(current) {
                None => Ok(Some(Applied::Changed)),
                Some(want)
                    if pending.request.body.as_ref() == Some(&want)
                        && pending.request.if_match == etag =>
                {
                    resend(self, api, pending, extra, false).await
                }
                Some(_) => Ok(None),
            }
        })
    }

    /// A PUT to the row's customer, of a profile that holds the row's values, with the ETag its body
    /// carries; the other fields are the service's, checked when the write is settled.
    fn check_write(&self, call: &Request) -> Result<(), String> {
        let body = call.body.clone().unwrap_or_default();
        let etag = etag_of(&body).ok_or("its body carries no ETag")?;
        check_call(call, Method::Put, &[self.path().as_str()], Some(&etag))?;
        if self.changed(body).is_some() {
            return Err("its body does not hold the row's values".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile() -> Value {
        json!({
            "id": "a58ceba5-60ac-48e4-a0bc-2a855811807a",
            "firstName": "Ann", "middleName": "Q", "lastName": "Lee",
            "email": "old@contoso.com", "culture": "en-US", "language": "en",
            "companyName": "Contoso",
            "defaultAddress": {"country": "US", "city": "Redmond", "state": "WA",
                "addressLine1": "One Microsoft Way", "addressLine3": "Bldg 7", "district": "King",
                "postalCode": "98052", "phoneNumber": "4255555555"},
            "links": {"self": {"uri": "/v1/customers/x/profiles/billing", "method": "GET", "headers": []}},
            "attributes": {"etag": "abc", "objectType": "CustomerBillingProfile"}
        })
    }

    #[test]
    fn only_named_fields_change_and_unknown_fields_survive() {
        let c = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![
                (false, "email", "new@contoso.com".into()),
                (true, "city", "Seattle".into()),
            ],
        };
        let out = c.changed(profile()).unwrap();
        let mut want = profile();
        want["email"] = json!("new@contoso.com");
        want["defaultAddress"]["city"] = json!("Seattle");
        assert_eq!(out, want);
        assert_eq!(etag_of(&out).as_deref(), Some("abc"));
    }

    #[test]
    fn same_values_mean_unchanged() {
        let c = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(true, "city", "Redmond".into())],
        };
        assert_eq!(c.changed(profile()), None);
    }

    #[test]
    fn documented_limits() {
        let long = "x".repeat(51);
        let r = Row::new()
            .with("customer_id", "0c39d6d5-c70d-4c55-bc02-f620844f3fd1")
            .with("state", "Washington")
            .with("country", "USA")
            .with("first_name", &long);
        let errs = plan(&r).unwrap_err();
        let cols: Vec<_> = errs.iter().map(|p| p.column.unwrap()).collect();
        assert_eq!(cols, vec!["first_name", "state", "country"]);
    }

    fn with_etag(etag: &str) -> Value {
        let mut p = profile();
        p["attributes"]["etag"] = json!(etag);
        p
    }

    fn change() -> UpdateBillingProfile {
        UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(false, "email", "new@contoso.com".into())],
        }
    }

    #[tokio::test]
    async fn an_unknown_put_is_sent_again_only_if_it_is_what_the_row_would_put_now() {
        use crate::ops::fake::{ok, FakeApi};
        let c = change();
        let want = c.changed(with_etag("e1")).unwrap();
        let pending = |body: Value, etag: &str| Pending {
            sent_at: None,
            answered: false,
            request: Request::put(c.path(), body).if_match(etag),
            request_id: uuid::Uuid::new_v4(),
        };
        let none = Default::default();

        let api = FakeApi::new(vec![ok(with_etag("e1")), ok(json!({}))]);
        let settled = c.settle(&api, pending(want.clone(), "e1"), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap()[1].body.as_ref(), Some(&want));

        // A journal that changed a field the row does not name: not sent, applied afresh.
        let mut tampered = want.clone();
        tampered["companyName"] = json!("Evil Corp");
        let api = FakeApi::new(vec![ok(with_etag("e1"))]);
        let settled = c.settle(&api, pending(tampered, "e1"), &none).await;
        assert_eq!(settled.unwrap(), None);
        assert_eq!(api.sent.lock().unwrap().len(), 1, "only the read");

        // The row's values are there: its PUT went through, and nothing more is sent.
        let api = FakeApi::new(vec![ok(want.clone())]);
        let settled = c.settle(&api, pending(want.clone(), "e1"), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap().len(), 1);
    }

    /// A resume sends the crashed run's PUT again (the profile did not hold the row's values yet),
    /// and that run's copy lands in between: the resend is refused with a stale ETag the copy
    /// caused. The row's values are there: the row changed the profile, it is not applied afresh
    /// (which would find its values and call it unchanged).
    #[tokio::test]
    async fn a_resent_put_refused_as_stale_because_the_crashed_run_s_copy_landed_is_a_change() {
        use crate::ops::fake::{fail, ok, FakeApi};
        let c = change();
        let want = c.changed(with_etag("e1")).unwrap();
        let pending = || Pending {
            sent_at: None,
            answered: false,
            request: Request::put(c.path(), want.clone()).if_match("e1"),
            request_id: uuid::Uuid::new_v4(),
        };
        let none = Default::default();
        let mut landed = want.clone();
        landed["attributes"]["etag"] = json!("e2");
        let api = FakeApi::new(vec![ok(with_etag("e1")), fail(412, None), ok(landed)]);
        let settled = c.settle(&api, pending(), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap().len(), 3, "read, PUT, look");

        // Someone else's write made it stale, without the row's values: applied afresh.
        let api = FakeApi::new(vec![
            ok(with_etag("e1")),
            fail(412, None),
            ok(with_etag("e2")),
        ]);
        let settled = c.settle(&api, pending(), &none).await;
        assert_eq!(settled.unwrap(), None);
    }

    /// A PUT whose answer was lost, not found at any look, is sent again; the first copy lands
    /// after the last look and makes the second stale. The row changed the profile: a change.
    #[tokio::test(start_paused = true)]
    async fn a_put_sent_again_refused_as_stale_because_its_first_copy_landed_late_is_a_change() {
        use crate::ops::fake::{fail, ok, FakeApi};
        let lost = Err(CallError::Transport {
            message: "timed out".into(),
            timeout: true,
        });
        let c = change();
        let mut landed = c.changed(with_etag("e1")).unwrap();
        landed["attributes"]["etag"] = json!("e2");
        let mut script = vec![ok(with_etag("e1")), lost];
        script.extend((0..crate::ops::LOOKS).map(|_| ok(with_etag("e1"))));
        script.extend([fail(412, None), ok(landed)]);
        let api = FakeApi::new(script);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        let sent = api.sent.lock().unwrap();
        let methods: Vec<_> = sent.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["GET", "PUT", "GET", "GET", "GET", "PUT", "GET"]);
    }

    #[test]
    fn a_journaled_put_must_hold_the_row_s_values_and_its_own_etag() {
        let c = change();
        let want = c.changed(with_etag("e1")).unwrap();
        let put = |body: Value, etag: &str| Request::put(c.path(), body).if_match(etag);
        assert_eq!(c.check_write(&put(want.clone(), "e1")), Ok(()));
        assert!(
            c.check_write(&put(want.clone(), "e2")).is_err(),
            "another ETag"
        );
        assert!(
            c.check_write(&put(profile(), "abc")).is_err(),
            "not the row's email"
        );
        let elsewhere = Request::put("/customers/y/profiles/billing", want).if_match("e1");
        assert!(c.check_write(&elsewhere).is_err());
    }

    #[tokio::test]
    async fn stale_etag_means_read_again_and_put_with_the_new_one() {
        use crate::ops::fake::{fail, ok, FakeApi};
        for stale in [fail(412, None), fail(400, Some("2055"))] {
            let api = FakeApi::new(vec![
                ok(with_etag("e1")),
                stale,
                ok(with_etag("e2")),
                ok(json!({})),
            ]);
            assert_eq!(change().apply(&api).await.unwrap(), Applied::Changed);
            let sent = api.sent.lock().unwrap();
            let methods: Vec<_> = sent.iter().map(|r| r.method.as_str()).collect();
            assert_eq!(methods, vec!["GET", "PUT", "GET", "PUT"]);
            assert_eq!(sent[1].if_match.as_deref(), Some("e1"));
            assert_eq!(sent[3].if_match.as_deref(), Some("e2"));
            assert_eq!(sent[3].body.as_ref().unwrap()["attributes"]["etag"], "e2");
            assert_eq!(sent[3].body.as_ref().unwrap()["middleName"], "Q");
        }
    }

    #[tokio::test]
    async fn stale_etag_every_time_fails_after_the_bound() {
        use crate::ops::fake::{fail, ok, FakeApi};
        let mut script = Vec::new();
        for i in 0..MAX_ETAG_ROUNDS {
            script.push(ok(with_etag(&format!("e{i}"))));
            script.push(fail(412, None));
        }
        let api = FakeApi::new(script);
        let err = change().apply(&api).await.unwrap_err();
        assert!(err.to_string().contains("someone else is editing"), "{err}");
        assert_eq!(api.sent.lock().unwrap().len(), 2 * MAX_ETAG_ROUNDS as usize);
    }

    #[tokio::test]
    async fn other_errors_are_not_taken_for_stale_etags() {
        use crate::ops::fake::{fail, ok, FakeApi};
        let api = FakeApi::new(vec![ok(with_etag("e1")), fail(400, Some("600051"))]);
        let err = change().apply(&api).await.unwrap_err();
        assert_eq!(err.code(), "600051");
        assert_eq!(api.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_country_that_needs_a_phone_gets_one_or_nothing_is_written() {
        use crate::ops::fake::{ok, FakeApi};
        let mut no_phone = with_etag("e1");
        no_phone["defaultAddress"]["phoneNumber"] = json!("");
        let to_hungary = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(true, "country", "HU".into())],
        };
        let api = FakeApi::new(vec![ok(no_phone.clone())]);
        let err = to_hungary.apply(&api).await.unwrap_err();
        assert_eq!(err.code(), "phone_required");
        assert_eq!(api.sent.lock().unwrap().len(), 1, "only the read");
        let with_phone = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![
                (true, "country", "HU".into()),
                (true, "phoneNumber", "+36 1 234 5678".into()),
            ],
        };
        let api = FakeApi::new(vec![ok(no_phone), ok(json!({}))]);
        assert_eq!(with_phone.apply(&api).await.unwrap(), Applied::Changed);
    }

    #[test]
    fn a_row_with_only_the_customer_is_refused() {
        let r = Row::new().with("customer_id", "0c39d6d5-c70d-4c55-bc02-f620844f3fd1");
        assert_eq!(plan(&r).unwrap_err()[0].code, "nothing_to_change");
    }

    const CUSTOMER: &str = "0c39d6d5-c70d-4c55-bc02-f620844f3fd1";

    #[test]
    fn n_a_clears_an_optional_field_and_the_change_shows_what_it_held() {
        let r = Row::new()
            .with("customer_id", CUSTOMER)
            .with("phone_number", "#N/A")
            .with("address_first_name", "#N/A");
        let c = plan(&r).unwrap();
        let mut with_names = profile();
        with_names["defaultAddress"]["firstName"] = json!("Ann");
        let cleared = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![
                (true, "phoneNumber", String::new()),
                (true, "firstName", String::new()),
            ],
        };
        let before = cleared.before(&with_names);
        assert_eq!(
            c.describe(&before),
            r#"phone_number: "4255555555" → ""; address_first_name: "Ann" → """#
        );
        let out = cleared.changed(with_names).unwrap();
        assert_eq!(out["defaultAddress"]["phoneNumber"], "");
        assert_eq!(out["defaultAddress"]["firstName"], "");
        assert_eq!(
            out["firstName"], "Ann",
            "the profile's own name is another field"
        );
    }

    #[test]
    fn clearing_a_field_that_holds_nothing_writes_nothing() {
        let c = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(true, "addressLine2", String::new())],
        };
        assert_eq!(c.changed(profile()), None);
    }

    #[test]
    fn n_a_on_a_field_the_service_requires_is_cannot_clear_naming_the_column() {
        for column in [
            "first_name",
            "last_name",
            "email",
            "address_line1",
            "country",
        ] {
            let r = Row::new()
                .with("customer_id", CUSTOMER)
                .with(column, "#N/A");
            let errs = plan(&r).unwrap_err();
            assert_eq!(errs[0].code, "cannot_clear", "{column}");
            assert_eq!(errs[0].column, Some(column));
            assert!(errs[0].message.contains(column), "{}", errs[0].message);
        }
        let r = Row::new().with("customer_id", "#N/A").with("city", "Lund");
        assert_eq!(plan(&r).unwrap_err()[0].code, "cannot_clear");
    }

    #[test]
    fn a_move_to_a_country_without_states_warns_about_the_state_kept() {
        let to_de = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(true, "country", "DE".into())],
        };
        let before = to_de.before(&profile());
        assert_eq!(before.get("state").map(String::as_str), Some("WA"));
        let text = to_de.describe(&before);
        assert!(
            text.starts_with(r#"country: "US" → "DE"; warning: state "WA" is kept"#),
            "{text}"
        );
        assert!(text.contains("#N/A"), "{text}");
        let clearing = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![
                (true, "country", "DE".into()),
                (true, "state", String::new()),
            ],
        };
        let text = clearing.describe(&clearing.before(&profile()));
        assert_eq!(text, r#"country: "US" → "DE"; state: "WA" → """#);
        let to_ca = UpdateBillingProfile {
            customer_id: "x".into(),
            changes: vec![(true, "country", "CA".into())],
        };
        assert!(!to_ca
            .describe(&to_ca.before(&profile()))
            .contains("warning"));
    }
}
