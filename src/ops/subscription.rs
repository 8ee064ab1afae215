//! A subscription's own settings: `GET /customers/{customer}/subscriptions/{subscription}`, then
//! `PATCH` the full resource as read with the row's fields changed (its friendly name, auto-renew,
//! seat count and status), as the reference's update pages ask: "A full Subscription resource is
//! required in the request body".
//!
//! The reseller of record (`partnerId`) is not one of them: the public reference does not show it
//! writable by this PATCH (docs/SANDBOX.md cites the pages), so a row that fills in a reseller's
//! PartnerID is refused before anything is sent rather than applied without it.
//!
//! What the service will refuse is its to say (the row fails with its code), except where the read
//! already shows it: a New Commerce seat cut beyond the seats still inside their cancellation
//! window is reported by `plan` on its row, before anything is sent.

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::check::{cannot_clear, guid, is_clear, optional, required, yes_no};
use super::export::{ExportRow, ExportSpec, Found, Walk};
use super::json::{get, get_str, set};
use super::{
    check_call, resend, write_once, Applied, Change, Extra, OpSpec, Pending, Problem, Problems, Row,
};
use crate::api::{Api, CallError, Method, Request};

/// The fields a row may change: all optional, each put back by undo.
const FIELD_COLUMNS: &[&str] = &[
    "friendly_name",
    "auto_renew",
    "quantity",
    "subscription_status",
];

pub static SPEC: OpSpec = OpSpec {
    name: "subscription",
    required: &["customer_id", "subscription_id"],
    one_of: &[],
    optional: FIELD_COLUMNS,
    needs_an_optional: true,
    undo_keys: &["customer_id", "subscription_id"],
    undoable: FIELD_COLUMNS,
    kept_beside: &[],
    // The Subscription resource pages apply to Partner Center operated by 21Vianet too.
    in_china: true,
    partner_wide: false,
    yes_no: &["auto_renew"],
    any_case: &["subscription_status"],
    example: &[
        // The sandbox's demo tenant: `pcbulk template` prints a row `apply --sandbox` applies (a
        // legacy subscription, whose seats may go down as well as up).
        ("customer_id", "c2000000-0000-4000-8000-000000000000"),
        ("subscription_id", "d2000000-0000-4000-8000-000000000000"),
        ("friendly_name", "Sales team E3"),
        ("auto_renew", "yes"),
        ("quantity", "25"),
        ("subscription_status", "active"),
    ],
    plan,
    export: Some(&EXPORT),
};

/// Exported per subscription, from the subscription as the customer's listing gives it (the whole
/// resource: no second read), each field as a row holds it and as undo puts it back.
pub static EXPORT: ExportSpec = ExportSpec {
    walk: Walk::Subscriptions,
    carried: &[],
    read: export_row,
};

fn export_row<'a>(
    _api: &'a dyn Api,
    found: Found<'a>,
) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>> {
    Box::pin(async move {
        let Some(subscription) = found.subscription else {
            return Ok(None);
        };
        let mut row = vec![
            ("customer_id", found.customer_id().to_owned()),
            ("subscription_id", found.subscription_id().to_owned()),
        ];
        for (column, field) in [
            ("friendly_name", "friendlyName"),
            ("auto_renew", "autoRenewEnabled"),
            ("quantity", "quantity"),
            ("subscription_status", "status"),
        ] {
            row.push((column, shown(subscription, field)));
        }
        Ok(Some(row))
    })
}

/// The statuses a row may set.
const SETTABLE: &[&str] = &["active", "suspended"];

/// The statuses the Subscription resource documents. A row may hold any of them, so that a file
/// holding a subscription's current values (an export) applies as `unchanged`; only
/// [`SETTABLE`] ones may differ from what the subscription holds.
const STATUSES: &[&str] = &[
    "none",
    "active",
    "pending",
    "suspended",
    "expired",
    "disabled",
    "deleted",
];

/// The most seats a row may ask for. The service sets each offer's own maximum (and refuses above
/// it with its code); this bound only keeps a mistyped number from being sent at all.
pub const MAX_QUANTITY: u64 = 1_000_000;

/// The column a reseller's PartnerID lands in: `reseller_partner_id` and `partner_id` are
/// aliases of a support contact's `support_mpn_id`.
const RESELLER_COLUMN: &str = "support_mpn_id";

#[derive(Debug)]
struct UpdateSubscription {
    customer_id: String,
    subscription_id: String,
    friendly_name: Option<String>,
    auto_renew: Option<bool>,
    quantity: Option<u64>,
    /// Lower case, one of [`STATUSES`].
    status: Option<&'static str>,
}

/// `true`/`false`, `yes`/`no`, `1`/`0`, in any case.
pub fn auto_renew(column: &'static str, value: &str) -> Result<bool, Problem> {
    yes_no(value).ok_or_else(|| {
        Problem::new(
            column,
            "invalid_auto_renew",
            format!("{column} {value:?} is not yes or no; use true/false, yes/no or 1/0"),
        )
    })
}

/// A seat count: a whole number from 1 to [`MAX_QUANTITY`], digits only (no sign, decimal point,
/// exponent or thousands separator, which are a different number in another locale).
pub fn quantity(column: &'static str, value: &str) -> Result<u64, Problem> {
    let v = value.trim();
    let bad = |why: &str| {
        Problem::new(
            column,
            "invalid_quantity",
            format!("{column} {value:?} {why}; give a whole number of seats from 1 to {MAX_QUANTITY}, e.g. 25"),
        )
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a whole number"));
    }
    // Leading zeros say nothing; more digits than the bound has are above it.
    let digits = v.trim_start_matches('0');
    if digits.len() > MAX_QUANTITY.to_string().len() {
        return Err(bad("is more seats than any subscription has"));
    }
    match digits.parse::<u64>().unwrap_or(0) {
        0 => Err(bad("is no seat at all (to end a subscription, suspend it)")),
        n if n > MAX_QUANTITY => Err(bad("is more seats than any subscription has")),
        n => Ok(n),
    }
}

/// A documented subscription status, in any case, as its lower-case name.
fn status(column: &'static str, value: &str) -> Result<&'static str, Problem> {
    let v = value.trim().to_ascii_lowercase();
    STATUSES.iter().find(|s| **s == v).copied().ok_or_else(|| {
        Problem::new(
            column,
            "invalid_status",
            format!(
                "{column} {value:?} is not a subscription status; a row sets {}",
                SETTABLE.join(" or ")
            ),
        )
    })
}

/// A row that fills in a reseller's PartnerID asks for what this operation cannot do.
fn reseller_refused(row: &Row) -> Option<Problem> {
    row.get(RESELLER_COLUMN)?;
    Some(Problem::new(
        RESELLER_COLUMN,
        "reseller_not_writable",
        "pcbulk cannot change a subscription's reseller of record: the public Partner Center \
         reference does not show partnerId writable by the subscription update (the reseller of \
         record is set when the subscription is bought). Nothing was sent for this row; empty the \
         cell (or remove the column) to apply the row's other changes, and use a support-contact \
         row to change which reseller supports the subscription",
    ))
}

fn plan(row: &Row) -> Result<Box<dyn Change>, Vec<Problem>> {
    let mut p = Problems::default();
    let customer_id = p.take(required(row, "customer_id").and_then(|v| guid("customer_id", v)));
    let subscription_id =
        p.take(required(row, "subscription_id").and_then(|v| guid("subscription_id", v)));
    // A subscription always has a name (the offer's, when it is bought): there is none to clear to.
    let friendly_name =
        optional(row, "friendly_name", false, |_, v| Ok(v.to_owned())).and_then(|r| p.take(r));
    let auto_renew = field(&mut p, row, "auto_renew", auto_renew);
    let quantity = field(&mut p, row, "quantity", quantity);
    let status = field(&mut p, row, "subscription_status", status);
    if let Some(refused) = reseller_refused(row) {
        p.push(refused);
    }
    if FIELD_COLUMNS.iter().all(|c| row.get(c).is_none()) {
        p.push(Problem::new(
            "customer_id",
            "nothing_to_change",
            format!(
                "every subscription field is empty; fill in at least one of {}",
                FIELD_COLUMNS.join(", ")
            ),
        ));
    }
    p.finish(|| {
        Some(UpdateSubscription {
            customer_id: customer_id?,
            subscription_id: subscription_id?,
            friendly_name,
            auto_renew,
            quantity,
            status,
        })
    })
}

/// A required field of the resource, optional in the row: empty leaves it, `#N/A` cannot clear it.
fn field<T>(
    p: &mut Problems,
    row: &Row,
    column: &'static str,
    parse: fn(&'static str, &str) -> Result<T, Problem>,
) -> Option<T> {
    match row.get(column) {
        None => None,
        Some(v) if is_clear(v) => p.take(Err(cannot_clear(column))),
        Some(v) => p.take(parse(column, v)),
    }
}

/// What a row asks of one field, as its column and the resource's field name.
enum Wanted<'a> {
    Name(&'a str),
    AutoRenew(bool),
    Quantity(u64),
    Status(&'static str),
}

impl Wanted<'_> {
    fn column(&self) -> &'static str {
        match self {
            Wanted::Name(_) => "friendly_name",
            Wanted::AutoRenew(_) => "auto_renew",
            Wanted::Quantity(_) => "quantity",
            Wanted::Status(_) => "subscription_status",
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Wanted::Name(_) => "friendlyName",
            Wanted::AutoRenew(_) => "autoRenewEnabled",
            Wanted::Quantity(_) => "quantity",
            Wanted::Status(_) => "status",
        }
    }

    /// The value as the results' `change` column and the journal show it.
    fn text(&self) -> String {
        match self {
            Wanted::Name(n) => (*n).to_owned(),
            Wanted::AutoRenew(a) => a.to_string(),
            Wanted::Quantity(q) => q.to_string(),
            Wanted::Status(s) => (*s).to_owned(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Wanted::Name(n) => json!(n),
            Wanted::AutoRenew(a) => json!(a),
            Wanted::Quantity(q) => json!(q),
            Wanted::Status(s) => json!(s),
        }
    }
}

/// A field of the resource as read, as text: a status in lower case, a whole number without a
/// fraction, a missing field empty.
fn shown(resource: &Value, field: &str) -> String {
    match get(resource, field) {
        Some(Value::String(s)) if field == "status" => s.to_ascii_lowercase(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl UpdateSubscription {
    fn path(&self) -> String {
        let mut p = String::with_capacity(128);
        p.push_str("/customers/");
        p.push_str(&self.customer_id);
        p.push_str("/subscriptions/");
        p.push_str(&self.subscription_id);
        p
    }

    /// The fields the row names, in column order.
    fn wanted(&self) -> Vec<Wanted<'_>> {
        let name = self.friendly_name.as_deref().map(Wanted::Name);
        let renew = self.auto_renew.map(Wanted::AutoRenew);
        let seats = self.quantity.map(Wanted::Quantity);
        let status = self.status.map(Wanted::Status);
        [name, renew, seats, status].into_iter().flatten().collect()
    }

    /// The named fields as read, by input column: what undo puts back.
    fn before(&self, current: &Value) -> BTreeMap<String, String> {
        self.wanted()
            .iter()
            .map(|w| (w.column().to_owned(), shown(current, w.field())))
            .collect()
    }

    /// The named fields whose value the resource does not hold yet.
    fn pending<'s>(&'s self, current: &Value) -> Vec<Wanted<'s>> {
        self.wanted()
            .into_iter()
            .filter(|w| shown(current, w.field()) != w.text())
            .collect()
    }

    /// The resource read, with this row's fields set; `None` when it holds them already. A status
    /// a row may hold but not set (`expired`, say) is refused unless the subscription has it.
    fn changed(&self, mut current: Value) -> Result<Option<Value>, CallError> {
        let pending = self.pending(&current);
        if pending.is_empty() {
            return Ok(None);
        }
        if let Some(Wanted::Status(s)) = pending
            .iter()
            .find(|w| matches!(w, Wanted::Status(s) if !SETTABLE.contains(s)))
        {
            return Err(CallError::Invalid {
                code: "invalid_status".into(),
                message: format!(
                    "column \"subscription_status\": the subscription is {:?}, and a row can set \
                     it to {} only, not {s:?}; nothing was written",
                    shown(&current, "status"),
                    SETTABLE.join(" or ")
                ),
            });
        }
        let obj = current.as_object_mut().ok_or_else(|| {
            CallError::Decode("the subscription read is not a JSON object".into())
        })?;
        for w in &pending {
            set(obj, w.field(), w.json());
        }
        Ok(Some(current))
    }

    /// Why the service will refuse the row, when the read already shows it: a New Commerce seat
    /// cut larger than the seats still inside their cancellation window.
    fn foreseen(&self, current: &Value, now: SystemTime) -> Option<CallError> {
        let wanted = self.quantity?;
        let seats = get(current, "quantity").and_then(Value::as_u64)?;
        if wanted >= seats || !is_new_commerce(current) {
            return None;
        }
        let cut = seats - wanted;
        let open = refundable(current, now)?;
        if cut <= open.seats {
            return None;
        }
        let message = if open.seats == 0 {
            format!(
                "column \"quantity\": {seats} → {wanted} gives back {cut} seats of a New Commerce \
                 subscription, but none of its seats is still inside its cancellation window, and \
                 Partner Center refuses the cut; seats can be reduced at renewal{}. Nothing was sent",
                get_str(current, "commitmentEndDate")
                    .map(|d| format!(" (the term ends {d})"))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "column \"quantity\": {seats} → {wanted} gives back {cut} seats of a New Commerce \
                 subscription, but only {} of them are still inside their cancellation window{}, \
                 and Partner Center refuses a larger cut; the lowest it takes now is {}. Nothing was sent",
                open.seats,
                open.until.map(|d| format!(" (until {d})")).unwrap_or_default(),
                seats - open.seats
            )
        };
        Some(CallError::Invalid {
            code: "past_cancellation_window".into(),
            message,
        })
    }
}

/// Whether a subscription is sold on New Commerce terms: its offer id is a catalog item's
/// `product:sku:availability`, where a legacy offer's is a GUID.
pub fn is_new_commerce(subscription: &Value) -> bool {
    let offer = get_str(subscription, "offerId").unwrap_or("");
    let parts: Vec<&str> = offer.split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

/// The seats of a New Commerce subscription that may still be given back, and the last moment one
/// of them may.
struct Refundable {
    seats: u64,
    until: Option<String>,
}

/// What `refundableQuantity` says may be given back at `now`: the details whose
/// `allowedUntilDateTime` is still ahead. `None` when the read does not say (no refundable quantity,
/// or a date pcbulk cannot read): then the service decides alone.
fn refundable(subscription: &Value, now: SystemTime) -> Option<Refundable> {
    let r = get(subscription, "refundableQuantity").filter(|r| r.is_object())?;
    let Some(details) = get(r, "details").and_then(Value::as_array) else {
        let total = get(r, "totalQuantity").and_then(Value::as_u64)?;
        return Some(Refundable {
            seats: total,
            until: None,
        });
    };
    let mut open = Refundable {
        seats: 0,
        until: None,
    };
    for d in details {
        let seats = get(d, "quantity").and_then(Value::as_u64)?;
        let until = get_str(d, "allowedUntilDateTime")?;
        let at = humantime::parse_rfc3339_weak(until.trim_end_matches('Z')).ok()?;
        if at > now {
            open.seats = open.seats.saturating_add(seats);
            open.until = Some(until.to_owned());
        }
    }
    Some(open)
}

impl Change for UpdateSubscription {
    /// The subscription's own settings: a support contact for it is another target (a row of each
    /// may stand in one file), though both touch the subscription.
    fn target(&self) -> Option<String> {
        Some(format!("settings of subscription {}", self.subscription_id))
    }

    /// As a support-contact row's target, so that rows of both operations on one subscription run
    /// one after another, in input order.
    fn touches(&self) -> Option<String> {
        Some(format!("subscription {}", self.subscription_id))
    }

    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>> {
        Box::pin(async move {
            let path = self.path();
            let current = api.call(Request::get(path.clone())).await?.json()?;
            let before = self.before(&current);
            let foreseen = self.foreseen(&current, SystemTime::now());
            let Some(body) = self.changed(current)? else {
                return Ok(Applied::Unchanged);
            };
            api.record_before(before, Default::default());
            let patch = Request::patch(path, body);
            match write_once(self, api, patch, uuid::Uuid::new_v4(), &Extra::new(), None).await {
                Ok(()) => Ok(Applied::Changed),
                // A plan sends no write: it says on the row what the service would refuse.
                Err(CallError::Planned) => Err(foreseen.unwrap_or(CallError::Planned)),
                Err(e) => Err(e),
            }
        })
    }

    fn describe(&self, before: &BTreeMap<String, String>) -> String {
        let after: Vec<(&str, String)> = self
            .wanted()
            .iter()
            .map(|w| (w.column(), w.text()))
            .collect();
        super::describe_changes(before, after.iter().map(|(c, v)| (*c, v.as_str())))
    }

    /// It went in if the subscription now holds the row's values.
    fn landed<'a>(
        &'a self,
        api: &'a dyn Api,
        _extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async move {
            let current = api.call(Request::get(self.path())).await?.json()?;
            Ok(Some(self.pending(&current).is_empty()))
        })
    }

    /// The subscription is read first. Holding the row's values, the write went through. Otherwise
    /// the journaled PATCH goes again only if it is exactly what the row would send now (the
    /// resource as it stands, with the row's fields set): a body read before someone else's change
    /// would put their change back. Else the row is applied afresh.
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
            match self.changed(current) {
                Ok(None) => Ok(Some(Applied::Changed)),
                Ok(Some(want)) if pending.request.body.as_ref() == Some(&want) => {
                    resend(self, api, pending, extra, false).await
                }
                Ok(Some(_)) | Err(_) => Ok(None),
            }
        })
    }

    /// A PATCH of the row's subscription, with no If-Match, whose body holds the row's values; the
    /// other fields are the service's, checked when the write is settled.
    fn check_write(&self, call: &Request) -> Result<(), String> {
        check_call(call, Method::Patch, &[self.path().as_str()], None)?;
        match &call.body {
            Some(body) if body.is_object() && self.pending(body).is_empty() => Ok(()),
            _ => Err("its body does not hold the row's values".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::fake::{fail, ok, FakeApi};

    const CUSTOMER: &str = "c2000000-0000-4000-8000-000000000000";
    const SUB: &str = "d2000000-0000-4000-8000-000000000003";

    fn row() -> Row<'static> {
        Row::new()
            .with("customer_id", CUSTOMER)
            .with("subscription_id", SUB)
    }

    fn change(r: &Row) -> UpdateSubscription {
        let mut p = Problems::default();
        let c = UpdateSubscription {
            customer_id: CUSTOMER.into(),
            subscription_id: SUB.into(),
            friendly_name: r.get("friendly_name").map(str::to_owned),
            auto_renew: field(&mut p, r, "auto_renew", auto_renew),
            quantity: field(&mut p, r, "quantity", quantity),
            status: field(&mut p, r, "subscription_status", status),
        };
        assert!(plan(r).is_ok(), "{:?}", plan(r).err());
        c
    }

    /// A New Commerce subscription as the service returns it, with `open` seats refundable until
    /// `until`.
    fn nce(seats: u64, open: u64, until: &str) -> Value {
        json!({
            "id": SUB, "offerId": "CFQ7TTC0LFLX:0001:CFQ7TTC0K6KX", "friendlyName": "E3",
            "quantity": seats, "status": "active", "autoRenewEnabled": true, "partnerId": "4391507",
            "commitmentEndDate": "2027-01-01T00:00:00Z",
            "refundableQuantity": {"totalQuantity": open, "details": [{"quantity": open, "allowedUntilDateTime": until}]},
            "attributes": {"etag": "x", "objectType": "Subscription"}
        })
    }

    fn legacy() -> Value {
        json!({
            "id": SUB, "offerId": "796B6B5F-613C-4E24-A17C-EBA730D49C02", "friendlyName": "Office 365 E3",
            "quantity": 10, "status": "active", "autoRenewEnabled": false, "partnerId": null,
            "links": {"self": {"uri": "/customers/x/subscriptions/y", "method": "GET", "headers": []}},
            "attributes": {"etag": "e", "objectType": "Subscription"}
        })
    }

    #[test]
    fn auto_renew_is_yes_or_no_in_any_of_its_spellings() {
        for v in ["true", "TRUE", "Yes", "1", " yes "] {
            assert_eq!(auto_renew("auto_renew", v), Ok(true), "{v}");
        }
        for v in ["false", "No", "0", "FALSE"] {
            assert_eq!(auto_renew("auto_renew", v), Ok(false), "{v}");
        }
        for v in ["y", "2", "-1", "on", "", "yes please", "1e0"] {
            let p = auto_renew("auto_renew", v).unwrap_err();
            assert_eq!(p.code, "invalid_auto_renew", "{v}");
            assert!(p.message.contains("yes/no"), "{}", p.message);
        }
    }

    #[test]
    fn quantity_is_a_whole_number_of_seats_and_hostile_numbers_are_refused_without_a_panic() {
        assert_eq!(quantity("quantity", "25"), Ok(25));
        assert_eq!(quantity("quantity", " 5 "), Ok(5));
        assert_eq!(quantity("quantity", "007"), Ok(7));
        assert_eq!(quantity("quantity", "1000000"), Ok(MAX_QUANTITY));
        for v in [
            "-1",
            "0",
            "000",
            "1e3",
            "2.5",
            "25.0",
            "+3",
            "1,000",
            "1 000",
            "99999999999999999999",
            "184467440737095516160",
            "1000001",
            "",
            "٣",
            "0x10",
        ] {
            let p = quantity("quantity", v).unwrap_err();
            assert_eq!(p.code, "invalid_quantity", "{v}");
            assert!(
                p.message.contains("whole number of seats"),
                "{v}: {}",
                p.message
            );
        }
        let long = "9".repeat(100_000);
        assert!(quantity("quantity", &long).is_err());
    }

    #[test]
    fn a_status_may_be_any_documented_one_but_unknown_words_are_refused() {
        assert_eq!(status("subscription_status", "Suspended"), Ok("suspended"));
        assert_eq!(status("subscription_status", "EXPIRED"), Ok("expired"));
        let p = status("subscription_status", "paused").unwrap_err();
        assert_eq!(p.code, "invalid_status");
        assert!(p.message.contains("active or suspended"), "{}", p.message);
    }

    #[test]
    fn n_a_is_cannot_clear_on_every_field_and_a_row_must_change_something() {
        for column in FIELD_COLUMNS {
            let errs = plan(&row().with(column, "#N/A")).unwrap_err();
            assert_eq!(errs[0].code, "cannot_clear", "{column}");
            assert_eq!(errs[0].column, Some(*column));
        }
        assert_eq!(plan(&row()).unwrap_err()[0].code, "nothing_to_change");
    }

    #[test]
    fn a_row_that_names_a_reseller_of_record_is_refused_whole() {
        let errs = plan(
            &row()
                .with("quantity", "5")
                .with("support_mpn_id", "4391507"),
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].code, "reseller_not_writable");
        assert!(errs[0]
            .message
            .contains("cannot change a subscription's reseller of record"));
        assert!(
            errs[0].message.contains("empty the cell"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn a_subscription_row_and_a_support_contact_row_touch_the_same_subscription() {
        let sub = plan(&row().with("quantity", "5")).unwrap();
        let contact = (crate::ops::support_contact::SPEC.plan)(
            &row()
                .with("subscription_id", &SUB.to_ascii_uppercase())
                .with("support_tenant_id", "e0000001-0000-4000-8000-000000000001")
                .with("support_mpn_id", "4391507")
                .with("name", "Trey Research"),
        )
        .unwrap();
        assert_eq!(sub.touches(), contact.touches());
        assert_ne!(
            sub.target(),
            contact.target(),
            "not duplicates of each other"
        );
    }

    #[test]
    fn the_full_resource_goes_back_with_only_the_named_fields_changed() {
        let c = change(&row().with("quantity", "12").with("auto_renew", "yes"));
        let out = c.changed(legacy()).unwrap().unwrap();
        let mut want = legacy();
        want["quantity"] = json!(12);
        want["autoRenewEnabled"] = json!(true);
        assert_eq!(out, want);
        let before = c.before(&legacy());
        assert_eq!(
            c.describe(&before),
            r#"auto_renew: "false" → "true"; quantity: "10" → "12""#
        );
    }

    #[test]
    fn current_values_change_nothing_even_a_status_a_row_cannot_set() {
        let mut expired = legacy();
        expired["status"] = json!("Expired");
        let c = change(
            &row()
                .with("friendly_name", "Office 365 E3")
                .with("quantity", "10")
                .with("auto_renew", "no")
                .with("subscription_status", "expired"),
        );
        assert_eq!(c.changed(expired.clone()).unwrap(), None);
        let err = c.changed(legacy()).unwrap_err();
        assert_eq!(err.code(), "invalid_status");
        assert!(err.to_string().contains(r#"is "active""#), "{err}");
    }

    #[tokio::test]
    async fn reads_first_and_writes_nothing_when_the_subscription_holds_the_row_s_values() {
        let c = change(&row().with("quantity", "10"));
        let api = FakeApi::new(vec![ok(legacy())]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Unchanged);
        assert_eq!(api.sent.lock().unwrap().len(), 1);

        let c = change(&row().with("quantity", "11"));
        let api = FakeApi::new(vec![ok(legacy()), ok(json!({}))]);
        assert_eq!(c.apply(&api).await.unwrap(), Applied::Changed);
        let sent = api.sent.lock().unwrap();
        assert_eq!(sent[1].method.as_str(), "PATCH");
        assert_eq!(sent[1].if_match, None);
        assert_eq!(sent[1].body.as_ref().unwrap()["attributes"]["etag"], "e");
        assert_eq!(api.before.lock().unwrap()["quantity"], "10");
    }

    #[tokio::test]
    async fn the_service_s_refusal_is_the_row_s_failure_with_its_code() {
        let c = change(&row().with("quantity", "5"));
        let api = FakeApi::new(vec![
            ok(nce(10, 0, "2020-01-01T00:00:00Z")),
            fail(400, Some("900117")),
        ]);
        assert_eq!(c.apply(&api).await.unwrap_err().code(), "900117");
    }

    #[test]
    fn a_new_commerce_cut_beyond_the_refundable_seats_is_foreseen_from_the_read() {
        let now = SystemTime::now();
        let later = humantime::format_rfc3339_seconds(now + std::time::Duration::from_secs(86_400))
            .to_string();
        let cut_to = |n: &str| change(&row().with("quantity", n));
        // Every seat past its window.
        let gone = cut_to("5")
            .foreseen(&nce(10, 4, "2020-01-01T00:00:00.1234567Z"), now)
            .unwrap();
        assert_eq!(gone.code(), "past_cancellation_window");
        assert!(gone.to_string().contains("none of its seats"), "{gone}");
        assert!(gone.to_string().contains("2027-01-01"), "{gone}");
        // Four seats still refundable: a cut of four is taken, of five is not.
        assert!(cut_to("6").foreseen(&nce(10, 4, &later), now).is_none());
        let more = cut_to("5").foreseen(&nce(10, 4, &later), now).unwrap();
        assert!(more.to_string().contains("only 4 of them"), "{more}");
        assert!(
            more.to_string().contains("the lowest it takes now is 6"),
            "{more}"
        );
        // Seats added, a legacy subscription, or a read that does not say: the service decides.
        assert!(cut_to("12").foreseen(&nce(10, 0, &later), now).is_none());
        assert!(cut_to("1").foreseen(&legacy(), now).is_none());
        let mut unsaid = nce(10, 0, "soon");
        assert!(
            cut_to("1").foreseen(&unsaid, now).is_none(),
            "a date it cannot read"
        );
        unsaid["refundableQuantity"] = Value::Null;
        assert!(cut_to("1").foreseen(&unsaid, now).is_none());
    }

    #[tokio::test]
    async fn a_plan_reports_the_foreseen_refusal_on_the_row_and_apply_leaves_it_to_the_service() {
        let c = change(&row().with("quantity", "5"));
        let api = PlanApi(FakeApi::new(vec![ok(nce(10, 0, "2020-01-01T00:00:00Z"))]));
        let err = c.apply(&api).await.unwrap_err();
        assert_eq!(err.code(), "past_cancellation_window");
        let c = change(&row().with("quantity", "11"));
        let api = PlanApi(FakeApi::new(vec![ok(nce(10, 0, "2020-01-01T00:00:00Z"))]));
        assert!(matches!(c.apply(&api).await, Err(CallError::Planned)));
    }

    /// A plan's view of the service: reads answered, writes not sent.
    struct PlanApi(FakeApi);

    impl Api for PlanApi {
        fn call(&self, req: Request) -> BoxFuture<'_, Result<crate::api::Response, CallError>> {
            match req.method {
                Method::Get => self.0.call(req),
                _ => Box::pin(async { Err(CallError::Planned) }),
            }
        }

        fn resend(
            &self,
            req: Request,
            _id: uuid::Uuid,
        ) -> BoxFuture<'_, Result<crate::api::Response, CallError>> {
            self.call(req)
        }

        fn record_before(&self, values: BTreeMap<String, String>, extra: Extra) {
            self.0.record_before(values, extra)
        }
    }

    #[test]
    fn a_journaled_patch_must_be_the_row_s_own() {
        let c = change(&row().with("friendly_name", "Sales"));
        let body = c.changed(legacy()).unwrap().unwrap();
        let patch = |b: Value| Request::patch(c.path(), b);
        assert_eq!(c.check_write(&patch(body.clone())), Ok(()));
        assert!(
            c.check_write(&patch(legacy())).is_err(),
            "not the row's name"
        );
        assert!(c.check_write(&patch(body.clone()).if_match("e")).is_err());
        assert!(c.check_write(&Request::put(c.path(), body)).is_err());
    }

    #[tokio::test]
    async fn an_unknown_patch_is_sent_again_only_if_it_is_what_the_row_would_send_now() {
        let c = change(&row().with("friendly_name", "Sales"));
        let want = c.changed(legacy()).unwrap().unwrap();
        let pending = |body: Value| Pending {
            sent_at: None,
            answered: false,
            request: Request::patch(c.path(), body),
            request_id: uuid::Uuid::new_v4(),
        };
        let none = Extra::new();
        let api = FakeApi::new(vec![ok(legacy()), ok(json!({}))]);
        let settled = c.settle(&api, pending(want.clone()), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
        assert_eq!(api.sent.lock().unwrap()[1].body.as_ref(), Some(&want));

        // Someone changed the seats since: the old body would put them back.
        let mut moved = legacy();
        moved["quantity"] = json!(30);
        let api = FakeApi::new(vec![ok(moved)]);
        assert_eq!(
            c.settle(&api, pending(want.clone()), &none).await.unwrap(),
            None
        );
        assert_eq!(api.sent.lock().unwrap().len(), 1, "only the read");

        // The name is there: the write went in.
        let api = FakeApi::new(vec![ok(want.clone())]);
        let settled = c.settle(&api, pending(want), &none).await;
        assert_eq!(settled.unwrap(), Some(Applied::Changed));
    }
}
