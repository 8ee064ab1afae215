//! Subscription support contact: `PUT /customers/{customer}/subscriptions/{subscription}/supportcontact`
//! with the reseller's tenant id, PartnerID and name.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::json;

use super::export::{cell, ExportRow, ExportSpec, Found, Walk};
use super::json::{get, get_str};

use super::check::{guid, partner_id, required};
use super::{check_call, write_once, Applied, Change, Extra, OpSpec, Problem, Problems, Row};
use crate::api::{Api, CallError, Method, Request};

pub static SPEC: OpSpec = OpSpec {
    name: "support-contact",
    required: &[
        "customer_id",
        "subscription_id",
        "support_tenant_id",
        "support_mpn_id",
        "name",
    ],
    one_of: &[],
    optional: &[],
    needs_an_optional: false,
    undo_keys: &["customer_id", "subscription_id"],
    undoable: &["support_tenant_id", "support_mpn_id", "name"],
    kept_beside: &[],
    in_china: false,
    partner_wide: false,
    yes_no: &[],
    any_case: &[],
    example: &[
        // The sandbox's demo tenant: `pcbulk template` prints a row `apply --sandbox` applies.
        ("customer_id", "c0000001-0000-4000-8000-000000000001"),
        ("subscription_id", "d0000001-0000-4000-8000-000000000011"),
        ("support_tenant_id", "e0000001-0000-4000-8000-000000000001"),
        ("support_mpn_id", "4391507"),
        ("name", "Trey Research"),
    ],
    plan,
    export: Some(&EXPORT),
};

/// Exported per subscription: its support contact as read. A subscription with no contact (404, or
/// a contact with nothing in it) has no row: there is nothing to keep or change.
pub static EXPORT: ExportSpec = ExportSpec {
    walk: Walk::Subscriptions,
    carried: &[],
    read: export_row,
};

fn export_row<'a>(
    api: &'a dyn Api,
    found: Found<'a>,
) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>> {
    Box::pin(async move {
        let (customer, subscription) = (found.customer_id(), found.subscription_id());
        let path = format!("/customers/{customer}/subscriptions/{subscription}/supportcontact");
        let contact = match api.call(Request::get(path)).await {
            Ok(resp) => resp.json()?,
            Err(CallError::Service(e)) if e.status == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        let field = |k: &str| cell(get(&contact, k));
        let values = [
            ("support_tenant_id", field("supportTenantId")),
            ("support_mpn_id", field("supportMpnId")),
            ("name", field("name")),
        ];
        if values.iter().all(|(_, v)| v.is_empty()) {
            return Ok(None);
        }
        let mut row = vec![
            ("customer_id", customer.to_owned()),
            ("subscription_id", subscription.to_owned()),
        ];
        row.extend(values);
        Ok(Some(row))
    })
}

#[derive(Debug)]
struct SetSupportContact {
    customer_id: String,
    subscription_id: String,
    support_tenant_id: String,
    support_mpn_id: String,
    name: String,
}

fn plan(row: &Row) -> Result<Box<dyn Change>, Vec<Problem>> {
    let mut p = Problems::default();
    let customer_id = p.take(required(row, "customer_id").and_then(|v| guid("customer_id", v)));
    let subscription_id =
        p.take(required(row, "subscription_id").and_then(|v| guid("subscription_id", v)));
    let support_tenant_id =
        p.take(required(row, "support_tenant_id").and_then(|v| guid("support_tenant_id", v)));
    let support_mpn_id =
        p.take(required(row, "support_mpn_id").and_then(|v| partner_id("support_mpn_id", v)));
    let name = p.take(required(row, "name").map(str::to_owned));
    p.finish(|| {
        Some(SetSupportContact {
            customer_id: customer_id?,
            subscription_id: subscription_id?,
            support_tenant_id: support_tenant_id?,
            support_mpn_id: support_mpn_id?,
            name: name?,
        })
    })
}

impl SetSupportContact {
    /// The contact read, as input columns.
    fn before(&self, current: &serde_json::Value) -> BTreeMap<String, String> {
        [
            ("support_tenant_id", "supportTenantId"),
            ("support_mpn_id", "supportMpnId"),
            ("name", "name"),
        ]
        .into_iter()
        .map(|(col, field)| {
            (
                col.to_owned(),
                get_str(current, field).unwrap_or("").to_owned(),
            )
        })
        .collect()
    }

    fn is_same(&self, before: &BTreeMap<String, String>) -> bool {
        before["support_tenant_id"].eq_ignore_ascii_case(&self.support_tenant_id)
            && before["support_mpn_id"] == self.support_mpn_id
            && before["name"] == self.name
    }

    fn path(&self) -> String {
        // Built by hand: this runs for every row, and `format!` costs several times more.
        let mut p = String::with_capacity(128);
        p.push_str("/customers/");
        p.push_str(&self.customer_id);
        p.push_str("/subscriptions/");
        p.push_str(&self.subscription_id);
        p.push_str("/supportcontact");
        p
    }

    /// In a plan, why the service will refuse the row when the subscription read shows it: New
    /// Commerce subscriptions take no support contact. [`CallError::Planned`] otherwise, and when
    /// the subscription cannot be read (the contact's own read went through: the row stays planned).
    /// Only a plan reads the subscription: an apply leaves the refusal to the service, at no cost.
    async fn new_commerce(&self, api: &dyn Api) -> CallError {
        let path = self.path();
        let subscription = path.trim_end_matches("/supportcontact");
        let read = api.call(Request::get(subscription)).await;
        let Ok(current) = read.and_then(|r| r.json()) else {
            return CallError::Planned;
        };
        if !super::subscription::is_new_commerce(&current) {
            return CallError::Planned;
        }
        CallError::Invalid {
            code: "new_commerce".into(),
            message: format!(
                "subscription {} is sold on New Commerce terms (offer {:?}), and Partner Center \
                 takes no support contact for New Commerce subscriptions: it would refuse this row. \
                 Nothing was sent; remove the row",
                self.subscription_id,
                get_str(&current, "offerName").unwrap_or("")
            ),
        }
    }

    fn body(&self) -> serde_json::Value {
        json!({
            "SupportTenantId": self.support_tenant_id,
            "SupportMpnId": self.support_mpn_id,
            "Name": self.name,
            "Attributes": {"ObjectType": "SupportContact"},
        })
    }
}

impl Change for SetSupportContact {
    fn target(&self) -> Option<String> {
        // Built by hand: this runs for every row checked, and `format!` costs several times more.
        let mut t = String::with_capacity("subscription ".len() + self.subscription_id.len());
        t.push_str("subscription ");
        t.push_str(&self.subscription_id);
        Some(t)
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let path = self.path();
            let current = match api.call(Request::get(path.clone())).await {
                Ok(resp) => Some(resp.json()?),
                // No contact to read: nothing to compare or put back.
                Err(CallError::Service(e)) if e.status == 404 => None,
                Err(e) => return Err(e),
            };
            if let Some(current) = current {
                let before = self.before(&current);
                if self.is_same(&before) {
                    return Ok(Applied::Unchanged);
                }
                api.record_before(before, Default::default());
            }
            let put = Request::put(path, self.body());
            match write_once(self, api, put, uuid::Uuid::new_v4(), &Extra::new(), None).await {
                Ok(()) => Ok(Applied::Changed),
                // A plan sends no write: it says on the row what the service would refuse.
                Err(CallError::Planned) => Err(self.new_commerce(api).await),
                Err(e) => Err(e),
            }
        })
    }

    fn describe(&self, before: &BTreeMap<String, String>) -> String {
        // GUIDs compare in any case: a tenant equal but for case is no change.
        let tenant = match before.get("support_tenant_id") {
            Some(t) if t.eq_ignore_ascii_case(&self.support_tenant_id) => t.as_str(),
            _ => self.support_tenant_id.as_str(),
        };
        super::describe_changes(
            before,
            [
                ("support_tenant_id", tenant),
                ("support_mpn_id", self.support_mpn_id.as_str()),
                ("name", self.name.as_str()),
            ],
        )
    }

    /// It went in if the contact now holds the row's values.
    fn landed<'a>(
        &'a self,
        api: &'a dyn Api,
        _extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async move {
            match api.call(Request::get(self.path())).await {
                Ok(resp) => Ok(Some(self.is_same(&self.before(&resp.json()?)))),
                Err(CallError::Service(e)) if e.status == 404 => Ok(Some(false)),
                Err(e) => Err(e),
            }
        })
    }

    /// The PUT is the row's own, to the letter: its path and its body come from the row alone.
    fn check_write(&self, call: &Request) -> Result<(), String> {
        check_call(call, Method::Put, &[self.path().as_str()], None)?;
        if call.body.as_ref() != Some(&self.body()) {
            return Err("its body is not the contact the row sets".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row<'static> {
        Row::new()
            .with("customer_id", "{0C39D6D5-C70D-4C55-BC02-F620844F3FD1}")
            .with("subscription_id", "C8D8FBAB-6A62-44DC-BE50-B7C74E43A296")
            .with("support_tenant_id", "3B33E682-00C3-41EE-9DD2-A548ADF56438")
            .with("support_mpn_id", "4391507")
            .with("name", " Trey Research ")
    }

    #[test]
    fn builds_the_documented_put_with_lower_case_ids() {
        let c = plan(&row()).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("0c39d6d5-c70d-4c55-bc02-f620844f3fd1"),
            "{dbg}"
        );
        let c = SetSupportContact {
            customer_id: "0c39d6d5-c70d-4c55-bc02-f620844f3fd1".into(),
            subscription_id: "c8d8fbab-6a62-44dc-be50-b7c74e43a296".into(),
            support_tenant_id: "3b33e682-00c3-41ee-9dd2-a548adf56438".into(),
            support_mpn_id: "4391507".into(),
            name: "Trey Research".into(),
        };
        assert_eq!(
            c.path(),
            "/customers/0c39d6d5-c70d-4c55-bc02-f620844f3fd1/subscriptions/c8d8fbab-6a62-44dc-be50-b7c74e43a296/supportcontact"
        );
        assert_eq!(c.body()["SupportMpnId"], "4391507");
        assert_eq!(
            c.body()["SupportTenantId"],
            "3b33e682-00c3-41ee-9dd2-a548adf56438"
        );
        assert_eq!(
            c.target().unwrap(),
            "subscription c8d8fbab-6a62-44dc-be50-b7c74e43a296"
        );
    }

    #[tokio::test]
    async fn reads_first_and_writes_nothing_when_the_contact_is_already_right() {
        use crate::ops::fake::{ok, FakeApi};
        let c = plan(&row()).unwrap();
        let same = json!({"supportTenantId": "3B33E682-00C3-41EE-9DD2-A548ADF56438", "supportMpnId": "4391507", "name": "Trey Research"});
        let api = FakeApi::new(vec![ok(same)]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Unchanged);
        assert_eq!(api.sent.lock().unwrap().len(), 1);

        let other = json!({"supportTenantId": "b0000000-0000-4000-8000-000000000000", "supportMpnId": "1000001", "name": "Adatum"});
        let api = FakeApi::new(vec![ok(other), ok(json!({}))]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        let before = api.before.lock().unwrap().clone();
        assert_eq!(before["support_mpn_id"], "1000001");
        assert_eq!(before["name"], "Adatum");
        assert_eq!(api.sent.lock().unwrap()[1].method.as_str(), "PUT");
    }

    #[test]
    fn reports_every_bad_cell_at_once() {
        let r = row()
            .with("customer_id", "not-a-guid")
            .with("support_mpn_id", "43-91507");
        let errs = plan(&r).unwrap_err();
        let cols: Vec<_> = errs.iter().map(|p| p.column.unwrap()).collect();
        assert_eq!(cols, vec!["customer_id", "support_mpn_id"]);
    }

    #[test]
    fn empty_required_cell_is_refused() {
        let mut r = Row::new();
        for (c, v) in SPEC.example {
            if *c != "name" {
                r.set(c, v);
            }
        }
        let errs = plan(&r).unwrap_err();
        assert_eq!(errs[0].code, "missing_value");
        assert_eq!(errs[0].column, Some("name"));
    }
}
