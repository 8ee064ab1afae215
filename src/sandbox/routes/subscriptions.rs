//! `/v1/customers/{customer}/subscriptions`: a customer's subscriptions (the whole collection, as
//! the reference shows it, unpaged), one subscription by id, and its update by PATCH.
//!
//! The PATCH takes the full resource as read (what the reference asks) or only the fields to
//! change; of what it carries, `friendlyName`, `quantity`, `autoRenewEnabled` and `status`
//! (`active`/`suspended`) change the subscription, and `partnerId` only under
//! `--writable-partner-id`. The rest of a full body is read-only and left as it is. The refusals
//! follow the reference's error codes: 800091 for a change to a suspended subscription other than
//! reactivating it, 900117 and 800090 for New Commerce seats cut beyond what is still inside its
//! cancellation window, 2002 and 800067 for seat counts out of bounds, 800015 and 800016 for a
//! reseller of record that is not found or not one of the partner's indirect resellers.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::common::{customer_not_found, error, field, Answer};
use crate::sandbox::catalog::CANCELLATION_WINDOW_HOURS;
use crate::sandbox::tenant::{Refundable, Subscription, Tenant, PARTNER_MPN, RESELLERS};

/// The most seats a subscription may have (800067 above it).
const MAX_SEATS: u64 = 10_000;
/// The longest friendly name accepted.
const MAX_NAME: usize = 256;

/// The subscription `sub` of customer `c`, or the service's refusal: 20002 for a customer the
/// partner has no relationship with, 404 with 20003 for a subscription it does not have.
pub(super) fn subscription<'t>(
    t: &'t Tenant,
    c: &str,
    sub: &str,
) -> Result<&'t Subscription, Answer> {
    if !t.customers.contains_key(c) {
        return Err(customer_not_found(c));
    }
    t.subscriptions
        .get(sub)
        .filter(|x| x.customer_id == c)
        .ok_or_else(|| {
            error(
                404,
                20003,
                &format!("Subscription {sub} was not found for customer {c}"),
            )
        })
}

/// GET `/v1/customers/{c}/subscriptions`: every subscription of the customer.
pub(super) fn list_subscriptions(t: &Tenant, c: &str) -> Result<Answer, Answer> {
    if !t.customers.contains_key(c) {
        return Err(customer_not_found(c));
    }
    let now = now_secs();
    let items: Vec<Value> = t
        .subscriptions_of(c)
        .map(|(id, s)| view(t, id, s, now))
        .collect();
    Ok((
        StatusCode::OK,
        json!({
            "totalCount": items.len(), "items": items,
            "links": {"self": {"uri": format!("/customers/{c}/subscriptions"), "method": "GET", "headers": []}},
            "attributes": {"objectType": "Collection"}
        }),
    ))
}

/// GET `/v1/customers/{c}/subscriptions/{s}`.
pub(super) fn get_subscription(t: &Tenant, c: &str, sub: &str) -> Result<Answer, Answer> {
    let found = subscription(t, c, sub)?;
    Ok((StatusCode::OK, view(t, sub, found, now_secs())))
}

/// A Subscription resource as the service returns it.
fn view(t: &Tenant, id: &str, s: &Subscription, now: u64) -> Value {
    let mut v = json!({
        "id": id, "offerId": s.offer_id, "offerName": s.offer_name,
        "friendlyName": s.friendly_name, "quantity": s.quantity, "unitType": "Licenses",
        "creationDate": date(s.creation_date), "effectiveStartDate": date(s.creation_date),
        "commitmentEndDate": date(commitment_end(t, s)),
        "status": s.status, "autoRenewEnabled": s.auto_renew,
        "billingType": "license", "billingCycle": s.billing_cycle,
        "termDuration": s.term_duration, "partnerId": s.partner_id,
        "contractType": "subscription", "isTrial": false, "isMicrosoftProduct": true,
        "orderId": format!("{:X}", xxhash_rust::xxh3::xxh3_64(id.as_bytes())),
    });
    if !s.suspension_reasons.is_empty() {
        v["suspensionReasons"] = json!(s.suspension_reasons);
    }
    if s.new_commerce {
        let open: Vec<&Refundable> = s.refundable.iter().filter(|r| r.until > now).collect();
        let details: Vec<Value> = open
            .iter()
            .map(|r| json!({"quantity": r.quantity, "allowedUntilDateTime": date(r.until)}))
            .collect();
        let total: u64 = open.iter().map(|r| r.quantity).sum();
        v["refundableQuantity"] = json!({"totalQuantity": total, "details": details});
    }
    v["links"] = json!({"self": {"uri": format!("/customers/{}/subscriptions/{id}", s.customer_id), "method": "GET", "headers": []}});
    v["attributes"] = json!({"etag": format!("{id}-{:06}", s.etag), "objectType": "Subscription"});
    v
}

/// The end of the term the subscription is in when the tenant was made.
fn commitment_end(t: &Tenant, s: &Subscription) -> u64 {
    let term: u64 = if s.term_duration == "P1Y" { 365 } else { 30 } * 86_400;
    let elapsed = t.started.saturating_sub(s.creation_date);
    s.creation_date + (elapsed / term + 1) * term
}

/// The writable fields a PATCH body carries (absent and `null` both mean "leave it").
#[derive(Default)]
struct Wanted {
    friendly_name: Option<String>,
    quantity: Option<u64>,
    auto_renew: Option<bool>,
    status: Option<String>,
    partner_id: Option<String>,
}

fn invalid(what: &str) -> Answer {
    error(400, 800002, &format!("Invalid input: {what}"))
}

impl Wanted {
    fn read(b: &Value) -> Result<Wanted, Answer> {
        let given = |k: &str| field(b, k).filter(|v| !v.is_null());
        let mut w = Wanted::default();
        if let Some(v) = given("friendlyName") {
            let name = v
                .as_str()
                .ok_or_else(|| invalid("friendlyName must be text"))?;
            if name.chars().count() > MAX_NAME {
                return Err(invalid(&format!(
                    "friendlyName is longer than {MAX_NAME} characters"
                )));
            }
            w.friendly_name = Some(name.to_owned());
        }
        if let Some(v) = given("quantity") {
            w.quantity = Some(seats(v)?);
        }
        if let Some(v) = given("autoRenewEnabled") {
            w.auto_renew = Some(
                v.as_bool()
                    .ok_or_else(|| invalid("autoRenewEnabled must be true or false"))?,
            );
        }
        if let Some(v) = given("status") {
            let st = v.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
            if st != "active" && st != "suspended" {
                return Err(invalid("status must be active or suspended"));
            }
            w.status = Some(st);
        }
        if let Some(v) = given("partnerId") {
            let id = v
                .as_str()
                .ok_or_else(|| invalid("partnerId must be text"))?;
            w.partner_id = Some(id.trim().to_owned());
        }
        Ok(w)
    }
}

/// A seat count: a whole number from 1 to `MAX_SEATS`.
fn seats(v: &Value) -> Result<u64, Answer> {
    let n = v
        .as_f64()
        .ok_or_else(|| invalid("quantity must be a number"))?;
    if n.fract() != 0.0 {
        return Err(invalid(&format!(
            "quantity must be a whole number, not {v}"
        )));
    }
    if n < 1.0 {
        return Err(error(
            400,
            2002,
            "Subscription quantity is not within minimum and maximum allowed quantity",
        ));
    }
    if n > MAX_SEATS as f64 {
        return Err(error(
            403,
            800067,
            "The desired seat count exceeded the maximum seat count allowed per subscription",
        ));
    }
    Ok(n as u64)
}

/// PATCH `/v1/customers/{c}/subscriptions/{s}`: changes what the body asks, or refuses it whole.
pub(super) fn patch_subscription(
    writable_partner_id: bool,
    t: &mut Tenant,
    c: &str,
    sub: &str,
    b: &Value,
) -> Result<Answer, Answer> {
    let current = subscription(t, c, sub)?;
    let wanted = Wanted::read(b)?;
    let said = differences(current, &wanted);
    if current.status == "suspended" && said.iter().any(|d| !d.starts_with("status ")) {
        return Err(error(
            400,
            800091,
            "Cannot update a subscription with suspended status",
        ));
    }
    if let Some(p) = wanted
        .partner_id
        .as_deref()
        .filter(|p| current.partner_id.as_deref() != Some(*p))
    {
        reseller_of_record(p, writable_partner_id)?;
    }
    let now = now_secs();
    if let Some(q) = wanted
        .quantity
        .filter(|q| *q < current.quantity && current.new_commerce)
    {
        seats_may_go(current, current.quantity - q, now)?;
    }
    let s = t.subscriptions.get_mut(sub).expect("checked above");
    apply(s, wanted, now);
    let answer = view(t, sub, &t.subscriptions[sub], now);
    let line = if said.is_empty() {
        "written, nothing changed".to_owned()
    } else {
        said.join("; ")
    };
    t.changes.push(format!("subscription {sub} ({c}): {line}"));
    Ok((StatusCode::OK, answer))
}

/// "quantity 10 → 12" for each field the body changes.
fn differences(s: &Subscription, w: &Wanted) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = w.friendly_name.as_ref().filter(|n| **n != s.friendly_name) {
        out.push(format!("friendlyName {:?} → {n:?}", s.friendly_name));
    }
    if let Some(q) = w.quantity.filter(|q| *q != s.quantity) {
        out.push(format!("quantity {} → {q}", s.quantity));
    }
    if let Some(a) = w.auto_renew.filter(|a| *a != s.auto_renew) {
        out.push(format!("autoRenewEnabled {} → {a}", s.auto_renew));
    }
    if let Some(st) = w.status.as_ref().filter(|st| **st != s.status) {
        out.push(format!("status {} → {st}", s.status));
    }
    if let Some(p) = w
        .partner_id
        .as_ref()
        .filter(|p| s.partner_id.as_ref() != Some(*p))
    {
        out.push(format!(
            "partnerId {} → {p}",
            s.partner_id.as_deref().unwrap_or("none")
        ));
    }
    out
}

/// Whether `mpn` may become the reseller of record: one of the partner's indirect resellers, and
/// only where the field is writable.
fn reseller_of_record(mpn: &str, writable: bool) -> Result<(), Answer> {
    let Some(r) = RESELLERS.iter().find(|r| r.mpn_id == mpn) else {
        if mpn == PARTNER_MPN {
            return Err(error(
                400,
                800016,
                &format!("MPN Id {mpn} is not a valid Indirect Reseller"),
            ));
        }
        return Err(error(404, 800015, &format!("MPN Id {mpn} is not found")));
    };
    if !r.indirect_reseller {
        return Err(error(
            400,
            800016,
            &format!("MPN Id {mpn} is not a valid Indirect Reseller"),
        ));
    }
    if !writable {
        return Err(invalid(
            "partnerId, the reseller of record, cannot be changed by this call",
        ));
    }
    Ok(())
}

/// A New Commerce subscription gives back only seats still inside their cancellation window.
fn seats_may_go(s: &Subscription, cut: u64, now: u64) -> Result<(), Answer> {
    let open: u64 = s
        .refundable
        .iter()
        .filter(|r| r.until > now)
        .map(|r| r.quantity)
        .sum();
    if open == 0 {
        let days = CANCELLATION_WINDOW_HOURS / 24;
        return Err(error(400, 900117, &format!("You have passed your {days}-day cancellation window. We are unable to cancel your purchase")));
    }
    if cut > open {
        return Err(error(400, 800090, &format!("Subscription quantity cannot be decreased by {cut}: only {open} seats are still inside their cancellation window")));
    }
    Ok(())
}

fn apply(s: &mut Subscription, w: Wanted, now: u64) {
    if let Some(q) = w.quantity {
        if s.new_commerce && q > s.quantity {
            let until = now + CANCELLATION_WINDOW_HOURS * 3600;
            s.refundable.push(Refundable {
                quantity: q - s.quantity,
                until,
            });
        } else if s.new_commerce && q < s.quantity {
            give_back(&mut s.refundable, s.quantity - q, now);
        }
        s.quantity = q;
    }
    if let Some(n) = w.friendly_name {
        s.friendly_name = n;
    }
    if let Some(a) = w.auto_renew {
        s.auto_renew = a;
    }
    if let Some(st) = w.status {
        s.suspension_reasons = if st == "suspended" {
            vec!["PartnerInitiated".into()]
        } else {
            Vec::new()
        };
        s.status = st;
    }
    if let Some(p) = w.partner_id {
        s.partner_id = Some(p);
    }
    s.etag += 1;
}

/// Takes `cut` refundable seats back, the most recently added first.
fn give_back(refundable: &mut Vec<Refundable>, mut cut: u64, now: u64) {
    for r in refundable.iter_mut().rev().filter(|r| r.until > now) {
        let taken = r.quantity.min(cut);
        r.quantity -= taken;
        cut -= taken;
    }
    refundable.retain(|r| r.quantity > 0);
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-10-01T09:00:00Z`.
fn date(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}
