//! The demo tenant the sandbox starts with: customers with billing profiles (including fields the
//! reference does not list), subscriptions (one New Commerce), resellers, service requests and the
//! partner's support profile. The files in `samples/` name these ids. Tailspin Toys is a customer the
//! partner sells to but holds no delegated admin role over: every call about it is refused (900308).

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub const CONTOSO: &str = "c0000001-0000-4000-8000-000000000001";
pub const FABRIKAM: &str = "c0000002-0000-4000-8000-000000000002";
pub const NORTHWIND: &str = "c0000003-0000-4000-8000-000000000003";
/// A customer without a delegated admin role for the partner.
pub const TAILSPIN: &str = "c0000004-0000-4000-8000-000000000004";

/// The partner itself: the support contact every subscription starts with.
pub const PARTNER_TENANT: &str = "b0000000-0000-4000-8000-000000000000";
pub const PARTNER_MPN: &str = "1000001";

pub struct Reseller {
    pub tenant_id: &'static str,
    pub mpn_id: &'static str,
    pub name: &'static str,
    /// False for a partner that exists but is not one of our indirect resellers (800016).
    pub indirect_reseller: bool,
}

pub const RESELLERS: &[Reseller] = &[
    Reseller {
        tenant_id: "e0000001-0000-4000-8000-000000000001",
        mpn_id: "4391507",
        name: "Trey Research",
        indirect_reseller: true,
    },
    Reseller {
        tenant_id: "e0000002-0000-4000-8000-000000000002",
        mpn_id: "5123456",
        name: "Fabrikam Resellers",
        indirect_reseller: true,
    },
    Reseller {
        tenant_id: "e0000003-0000-4000-8000-000000000003",
        mpn_id: "6789012",
        name: "Northwind Partners",
        indirect_reseller: true,
    },
    Reseller {
        tenant_id: "e0000009-0000-4000-8000-000000000009",
        mpn_id: "9000009",
        name: "Litware Direct",
        indirect_reseller: false,
    },
];

pub struct Subscription {
    pub customer_id: String,
    pub offer_name: String,
    pub new_commerce: bool,
    /// camelCase SupportContact as the service returns it.
    pub support_contact: Value,
}

pub struct Customer {
    pub company_name: String,
    /// camelCase billing profile, without `attributes` (added on read with the current etag).
    pub billing: Value,
    pub etag: u64,
    /// Whether the partner holds a delegated admin role over this customer's tenant.
    pub delegated: bool,
}

/// Everything the sandbox holds.
pub struct Tenant {
    pub customers: BTreeMap<String, Customer>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub service_requests: BTreeMap<String, Value>,
    pub support_profile: Value,
    /// Human-readable record of every change, in order.
    pub changes: Vec<String>,
}

/// A SupportContact as the service returns it.
pub fn support_contact(customer: &str, sub: &str, tenant_id: &str, mpn: &str, name: &str) -> Value {
    json!({
        "supportTenantId": tenant_id, "supportMpnId": mpn, "name": name,
        "links": {"self": {"uri": format!("/customers/{customer}/subscriptions/{sub}/supportcontact"), "method": "Get", "headers": []}},
        "attributes": {"objectType": "SupportContact"}
    })
}

fn billing(id: &str, first: &str, last: &str, company: &str, address: Value) -> Value {
    json!({
        "id": id,
        "firstName": first,
        "middleName": "",
        "lastName": last,
        "email": format!("{}.{}@{}.example", first.to_lowercase(), last.to_lowercase(), company.split(' ').next().unwrap_or("x").to_lowercase()),
        "culture": "en-US",
        "language": "en",
        "companyName": company,
        "defaultAddress": address,
        "links": {"self": {"uri": format!("/v1/customers/{id}/profiles/billing"), "method": "GET", "headers": []}},
    })
}

impl Tenant {
    /// The demo tenant. `extra_subscriptions` adds that many plain subscriptions to Contoso
    /// (`d1000000-…`, numbered from 0) and `extra_customers` that many customers with billing
    /// profiles (`c1000000-…`), for load tests.
    pub fn demo(extra_subscriptions: usize, extra_customers: usize) -> Tenant {
        let mut customers = BTreeMap::new();
        customers.insert(CONTOSO.to_owned(), Customer {
            company_name: "Contoso Ltd".into(),
            billing: billing(CONTOSO, "Ann", "Lee", "Contoso Ltd", json!({
                "country": "US", "region": null, "city": "Redmond", "state": "WA",
                "addressLine1": "One Microsoft Way", "addressLine2": null, "addressLine3": "Building 7",
                "postalCode": "98052", "firstName": "Ann", "lastName": "Lee", "phoneNumber": "4255550100",
                "district": "King County"
            })),
            etag: 1,
            delegated: true,
        });
        customers.insert(FABRIKAM.to_owned(), Customer {
            company_name: "Fabrikam SARL".into(),
            billing: billing(FABRIKAM, "Élodie", "Martin", "Fabrikam SARL", json!({
                "country": "FR", "region": null, "city": "Lyon", "state": null,
                "addressLine1": "12 rue de la République", "addressLine2": null,
                "postalCode": "69002", "firstName": "Élodie", "lastName": "Martin", "phoneNumber": "+33 4 72 00 00 00"
            })),
            etag: 1,
            delegated: true,
        });
        customers.insert(NORTHWIND.to_owned(), Customer {
            company_name: "Northwind AB".into(),
            billing: billing(NORTHWIND, "Åsa", "Lindqvist", "Northwind AB", json!({
                "country": "SE", "region": null, "city": "Malmö", "state": null,
                "addressLine1": "Storgatan 1", "addressLine2": "Plan 3",
                "postalCode": "211 34", "firstName": "Åsa", "lastName": "Lindqvist", "phoneNumber": "+46 40 123 45 67"
            })),
            etag: 1,
            delegated: true,
        });
        customers.insert(TAILSPIN.to_owned(), Customer {
            company_name: "Tailspin Toys".into(),
            billing: billing(TAILSPIN, "Kai", "Moreno", "Tailspin Toys", json!({
                "country": "US", "region": null, "city": "Seattle", "state": "WA",
                "addressLine1": "500 Pine Street", "addressLine2": null,
                "postalCode": "98101", "firstName": "Kai", "lastName": "Moreno", "phoneNumber": "2065550123"
            })),
            etag: 1,
            delegated: false,
        });

        for i in 0..extra_customers {
            let id = format!("c1000000-0000-4000-8000-{i:012x}");
            let company = format!("Load Customer {i}");
            let billing = billing(
                &id,
                "Test",
                "User",
                &company,
                json!({
                    "country": "US", "region": null, "city": "Redmond", "state": "WA",
                    "addressLine1": format!("{i} Main Street"), "addressLine2": null, "addressLine3": "Suite 1",
                    "postalCode": "98052", "firstName": "Test", "lastName": "User", "phoneNumber": "4255550100",
                    "district": "King County"
                }),
            );
            customers.insert(
                id,
                Customer {
                    company_name: company,
                    billing,
                    etag: 1,
                    delegated: true,
                },
            );
        }

        let mut subscriptions = BTreeMap::new();
        let mut add = |id: String, customer: &str, offer: &str, nce: bool| {
            let contact = support_contact(
                customer,
                &id,
                PARTNER_TENANT,
                PARTNER_MPN,
                "Adatum Cloud (partner)",
            );
            subscriptions.insert(
                id,
                Subscription {
                    customer_id: customer.into(),
                    offer_name: offer.into(),
                    new_commerce: nce,
                    support_contact: contact,
                },
            );
        };
        add(
            "d0000001-0000-4000-8000-000000000011".into(),
            CONTOSO,
            "Office 365 E3",
            false,
        );
        add(
            "d0000001-0000-4000-8000-000000000012".into(),
            CONTOSO,
            "Exchange Online (Plan 1)",
            false,
        );
        add(
            "d0000001-0000-4000-8000-000000000013".into(),
            CONTOSO,
            "Microsoft 365 Business Premium",
            false,
        );
        add(
            "d0000002-0000-4000-8000-000000000021".into(),
            FABRIKAM,
            "Office 365 E1",
            false,
        );
        add(
            "d0000002-0000-4000-8000-000000000022".into(),
            FABRIKAM,
            "Microsoft 365 E5 (New Commerce)",
            true,
        );
        add(
            "d0000003-0000-4000-8000-000000000031".into(),
            NORTHWIND,
            "Office 365 E3",
            false,
        );
        add(
            "d0000003-0000-4000-8000-000000000032".into(),
            NORTHWIND,
            "Visio Plan 2",
            false,
        );
        add(
            "d0000004-0000-4000-8000-000000000041".into(),
            TAILSPIN,
            "Office 365 E1",
            false,
        );
        for i in 0..extra_subscriptions {
            add(
                format!("d1000000-0000-4000-8000-{i:012x}"),
                CONTOSO,
                "Office 365 E1",
                false,
            );
        }

        let mut service_requests = BTreeMap::new();
        for (id, title, status) in [
            ("616122292874576", "Cannot assign licenses", "open"),
            ("616122292874577", "Invoice question", "open"),
            ("616122292874578", "Tenant migration", "attention_needed"),
            ("616122292874579", "Password reset loop", "closed"),
        ] {
            service_requests.insert(id.to_owned(), json!({
                "title": title, "description": title, "severity": "moderate",
                "supportTopicId": "32444671", "supportTopicName": "Cannot manage my profile",
                "id": id, "status": status,
                "organization": {"id": CONTOSO, "name": "Contoso Ltd"},
                "productId": "15960",
                "createdDate": "2026-10-01T09:00:00Z", "lastModifiedDate": "2026-10-01T09:00:00Z",
                "lastClosedDate": "0001-01-01T00:00:00",
                "notes": [],
                "attributes": {"objectType": "ServiceRequest"}
            }));
        }

        Tenant {
            customers,
            subscriptions,
            service_requests,
            support_profile: json!({
                "email": "support@adatum.example", "telephone": "+1 425 555 0199",
                "website": "www.adatum.example/support", "profileType": "support_profile",
                "links": {"self": {"uri": "/v1/profiles/support", "method": "GET", "headers": []}},
                "attributes": {"objectType": "PartnerSupportProfile"}
            }),
            changes: Vec::new(),
        }
    }

    /// The billing profile as a GET returns it, with its current etag.
    pub fn billing_view(&self, customer_id: &str) -> Option<Value> {
        let c = self.customers.get(customer_id)?;
        let mut v = c.billing.clone();
        v["attributes"] =
            json!({"etag": etag_text(customer_id, c.etag), "objectType": "CustomerBillingProfile"});
        Some(v)
    }

    /// Everything, for `GET /_sandbox/state`.
    pub fn to_json(&self) -> Value {
        let customers: Vec<Value> = self
            .customers
            .iter()
            .map(|(id, c)| {
                let subs: Vec<Value> = self
                    .subscriptions
                    .iter()
                    .filter(|(_, s)| s.customer_id == *id)
                    .map(|(sid, s)| json!({"id": sid, "offerName": s.offer_name, "newCommerce": s.new_commerce, "supportContact": s.support_contact}))
                    .collect();
                json!({"id": id, "companyName": c.company_name, "delegatedAdmin": c.delegated, "billingProfile": self.billing_view(id), "subscriptions": subs})
            })
            .collect();
        let resellers: Vec<Value> = RESELLERS
            .iter()
            .map(|r| json!({"tenantId": r.tenant_id, "mpnId": r.mpn_id, "name": r.name, "indirectReseller": r.indirect_reseller}))
            .collect();
        json!({
            "customers": customers,
            "resellers": resellers,
            "serviceRequests": self.service_requests.values().collect::<Vec<_>>(),
            "supportProfile": self.support_profile,
            "changes": self.changes,
        })
    }
}

/// An opaque etag that changes with every write.
pub fn etag_text(customer_id: &str, version: u64) -> String {
    let short: String = customer_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    format!("{short}-{version:06}")
}
