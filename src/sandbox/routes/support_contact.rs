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
    // The partner itself, the contact every subscription starts with, may be put back.
    let partner = Reseller {
        tenant_id: PARTNER_TENANT,
        mpn_id: PARTNER_MPN,
        name: "the partner",
        indirect_reseller: true,
    };
    let found = RESELLERS.iter().find(|r| r.mpn_id == mpn);
    let Some(reseller) = found.or((mpn == PARTNER_MPN).then_some(&partner)) else {
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
