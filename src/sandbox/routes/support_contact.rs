//! `/v1/customers/{customer}/subscriptions/{subscription}/supportcontact`: a subscription's support
//! contact (the indirect reseller that supports it), read with GET and replaced with PUT.

use axum::http::StatusCode;
use serde_json::Value;

use super::common::{error, is_guid, text, Answer};
use super::subscriptions::subscription;
use crate::sandbox::tenant::{
    support_contact, Reseller, Tenant, PARTNER_MPN, PARTNER_TENANT, RESELLERS,
};

/// GET: the subscription's support contact.
pub(super) fn get_support_contact(t: &Tenant, c: &str, sub: &str) -> Result<Answer, Answer> {
    subscription(t, c, sub).map(|sub| (StatusCode::OK, sub.support_contact.clone()))
}

/// PUT: replaces the support contact with an indirect reseller of the partner's (or the partner
/// itself), as the service checks it: the body's fields, then the reseller they name.
pub(super) fn put_support_contact(
    t: &mut Tenant,
    c: &str,
    sub: &str,
    b: &Value,
) -> Result<Answer, Answer> {
    let existing = subscription(t, c, sub)?;
    if existing.new_commerce {
        return Err(error(
            400,
            800002,
            "Updating the support contact is not supported for New Commerce subscriptions",
        ));
    }
    let (tenant_id, mpn, name) = contact_fields(b)?;
    check_reseller(&tenant_id, mpn)?;
    let contact = support_contact(c, sub, &tenant_id, mpn, name);
    let sub_entry = t.subscriptions.get_mut(sub).expect("checked above");
    let before = sub_entry
        .support_contact
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    sub_entry.support_contact = contact.clone();
    t.changes.push(format!(
        "subscription {sub} ({c}): support contact {before} → {name} ({mpn})"
    ));
    Ok((StatusCode::OK, contact))
}

/// The body's tenant id (lower-cased), MPN id and name, refused as one 400 when any is malformed,
/// as the service answers before it looks the reseller up.
fn contact_fields(b: &Value) -> Result<(String, &str, &str), Answer> {
    let tenant_id = text(b, "SupportTenantId")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mpn = text(b, "SupportMpnId").unwrap_or("");
    let name = text(b, "Name").unwrap_or("").trim();
    if !is_guid(&tenant_id)
        || mpn.is_empty()
        || !mpn.bytes().all(|x| x.is_ascii_digit())
        || name.is_empty()
    {
        return Err(error(
            400,
            800002,
            "Invalid input: SupportTenantId must be a GUID, SupportMpnId digits, Name not empty",
        ));
    }
    Ok((tenant_id, mpn, name))
}

/// The partner itself, the contact every subscription starts with, which may be put back.
const PARTNER: Reseller = Reseller {
    tenant_id: PARTNER_TENANT,
    mpn_id: PARTNER_MPN,
    name: "the partner",
    indirect_reseller: true,
};

/// Whether `mpn` may support the subscription: a known indirect reseller (or the partner), whose
/// tenant is `tenant_id`; each refusal carries the service's own code.
fn check_reseller(tenant_id: &str, mpn: &str) -> Result<(), Answer> {
    let found = RESELLERS.iter().find(|r| r.mpn_id == mpn);
    let Some(reseller) = found.or((mpn == PARTNER_MPN).then_some(&PARTNER)) else {
        return Err(error(404, 800015, &format!("PartnerID {mpn} isn't found")));
    };
    if !reseller.indirect_reseller {
        return Err(error(
            400,
            800016,
            &format!("PartnerID {mpn} isn't a valid Indirect Reseller"),
        ));
    }
    if reseller.tenant_id != tenant_id {
        return Err(error(
            400,
            800002,
            &format!("SupportTenantId {tenant_id} is not the tenant of PartnerID {mpn}"),
        ));
    }
    Ok(())
}
