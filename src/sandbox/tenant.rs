//! The demo tenant the sandbox starts with: customers with billing profiles (including fields the
//! reference does not list), subscriptions (one New Commerce), resellers, service requests and the
//! partner's support profile. The files in `samples/` name these ids. Tailspin Toys is a customer the
//! partner sells to but holds no delegated admin role over: every call about it is refused (900308).
//! Besides these four, `catalog` adds the named customers that make the tenant look like a
//! partner's, and the options add load customers, each with subscriptions when asked.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::catalog;

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

/// Seats of a New Commerce subscription that can still be reduced, until when (seconds since the
/// epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refundable {
    pub quantity: u64,
    pub until: u64,
}

pub struct Subscription {
    pub customer_id: String,
    pub offer_id: String,
    pub offer_name: String,
    pub new_commerce: bool,
    /// camelCase SupportContact as the service returns it.
    pub support_contact: Value,
    pub friendly_name: String,
    pub quantity: u64,
    pub auto_renew: bool,
    /// `active` or `suspended`.
    pub status: String,
    pub suspension_reasons: Vec<String>,
    /// The MPN id of the indirect reseller of record; `None` for a subscription sold directly.
    pub partner_id: Option<String>,
    pub billing_cycle: String,
    pub term_duration: String,
    /// Seconds since the epoch.
    pub creation_date: u64,
    /// New Commerce seats still inside their cancellation window.
    pub refundable: Vec<Refundable>,
    pub etag: u64,
}

impl Subscription {
    /// An active, auto-renewing subscription of one seat, named after its offer, supported by the
    /// partner itself.
    pub fn new(customer_id: &str, offer_name: &str, new_commerce: bool) -> Self {
        Subscription {
            customer_id: customer_id.into(),
            offer_id: "91FD106F-4B2C-4938-95AC-F54F74E9A239".into(),
            offer_name: offer_name.into(),
            new_commerce,
            support_contact: Value::Null,
            friendly_name: offer_name.into(),
            quantity: 1,
            auto_renew: true,
            status: "active".into(),
            suspension_reasons: Vec::new(),
            partner_id: None,
            billing_cycle: if new_commerce { "annual" } else { "monthly" }.into(),
            term_duration: if new_commerce { "P1Y" } else { "P1M" }.into(),
            creation_date: 1_767_225_600, // 2026-01-01
            refundable: Vec::new(),
            etag: 1,
        }
    }
}

pub struct Customer {
    pub company_name: String,
    /// The customer's `onmicrosoft.com` domain (companyProfile.domain).
    pub domain: String,
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
    /// Each customer's subscription ids, in id order (subscriptions are never added or removed).
    pub by_customer: HashMap<String, Vec<String>>,
    /// When the tenant was made, in seconds since the epoch: New Commerce cancellation windows
    /// are counted from it.
    pub started: u64,
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

/// How big the demo tenant is, and the seed its generated part comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Size {
    pub seed: u64,
    /// Plain subscriptions added to Contoso (`d1000000-…`).
    pub extra_subscriptions: usize,
    /// Load customers with billing profiles (`c1000000-…`).
    pub extra_customers: usize,
    /// Subscriptions each load customer gets (`d3<customer>-…`).
    pub subscriptions_per_customer: usize,
}

impl Tenant {
    /// The demo tenant: the original four customers and their subscriptions exactly as the tests
    /// and samples know them, the named customers of `catalog`, and the load customers and
    /// subscriptions `size` asks for.
    pub fn demo(size: Size) -> Tenant {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut t = Tenant {
            customers: original_customers(),
            subscriptions: BTreeMap::new(),
            by_customer: HashMap::new(),
            started,
            service_requests: service_requests(),
            support_profile: json!({
                "email": "support@adatum.example", "telephone": "+1 425 555 0199",
                "website": "www.adatum.example/support", "profileType": "support_profile",
                "links": {"self": {"uri": "/v1/profiles/support", "method": "GET", "headers": []}},
                "attributes": {"objectType": "PartnerSupportProfile"}
            }),
            changes: Vec::new(),
        };
        for (id, sub) in original_subscriptions(size.extra_subscriptions) {
            t.add_subscription(id, sub);
        }
        let mut gen = catalog::Generator::new(size.seed, started);
        t.add_named_customers(&mut gen);
        t.add_load_customers(&mut gen, size);
        t
    }

    fn add_subscription(&mut self, id: String, sub: Subscription) {
        self.by_customer
            .entry(sub.customer_id.clone())
            .or_default()
            .push(id.clone());
        self.subscriptions.insert(id, sub);
    }

    /// The customers that make the tenant look like a partner's (`catalog::NAMED_CUSTOMERS`).
    fn add_named_customers(&mut self, gen: &mut catalog::Generator) {
        for i in 0..catalog::NAMED_CUSTOMERS {
            let id = catalog::named_customer_id(i);
            let (company, domain) = catalog::named_company(i);
            let billing = billing(
                &id,
                "Dana",
                "Reyes",
                &company,
                catalog::generated_address(i),
            );
            self.customers.insert(
                id.clone(),
                Customer {
                    company_name: company,
                    domain,
                    billing,
                    etag: 1,
                    delegated: true,
                },
            );
            for j in 0..gen.named_count(i) {
                let sid = catalog::named_subscription_id(i, j);
                let sub = gen.subscription(&id, &sid, i, j);
                self.add_subscription(sid, sub);
            }
        }
    }

    /// `--customers N` load customers with billing profiles, each with
    /// `--subscriptions-per-customer M` subscriptions.
    fn add_load_customers(&mut self, gen: &mut catalog::Generator, size: Size) {
        for i in 0..size.extra_customers {
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
            let domain = format!("loadcustomer{i}.onmicrosoft.com");
            self.customers.insert(
                id.clone(),
                Customer {
                    company_name: company,
                    domain,
                    billing,
                    etag: 1,
                    delegated: true,
                },
            );
            for j in 0..size.subscriptions_per_customer {
                let sid = catalog::load_subscription_id(i, j);
                let sub = gen.subscription(&id, &sid, i, j);
                self.add_subscription(sid, sub);
            }
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

    /// A customer's subscriptions, in id order.
    pub fn subscriptions_of<'t>(
        &'t self,
        customer_id: &str,
    ) -> impl Iterator<Item = (&'t String, &'t Subscription)> + 't {
        self.by_customer
            .get(customer_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subscriptions.get_key_value(id))
    }

    /// Everything, for `GET /_sandbox/state`.
    pub fn to_json(&self) -> Value {
        let customers: Vec<Value> = self
            .customers
            .iter()
            .map(|(id, c)| {
                let subs: Vec<Value> = self
                    .subscriptions_of(id)
                    .map(|(sid, s)| json!({
                        "id": sid, "offerName": s.offer_name, "newCommerce": s.new_commerce,
                        "supportContact": s.support_contact, "friendlyName": s.friendly_name,
                        "quantity": s.quantity, "autoRenewEnabled": s.auto_renew,
                        "status": s.status, "partnerId": s.partner_id,
                    }))
                    .collect();
                json!({"id": id, "companyName": c.company_name, "domain": c.domain, "delegatedAdmin": c.delegated, "billingProfile": self.billing_view(id), "subscriptions": subs})
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

/// Contoso, Fabrikam, Northwind and Tailspin, as the tests and samples know them.
fn original_customers() -> BTreeMap<String, Customer> {
    let mut customers = BTreeMap::new();
    customers.insert(CONTOSO.to_owned(), Customer {
        company_name: "Contoso Ltd".into(),
        domain: "contosoltd.onmicrosoft.com".into(),
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
        domain: "fabrikamsarl.onmicrosoft.com".into(),
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
        domain: "northwindab.onmicrosoft.com".into(),
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
        domain: "tailspintoys.onmicrosoft.com".into(),
        billing: billing(TAILSPIN, "Kai", "Moreno", "Tailspin Toys", json!({
            "country": "US", "region": null, "city": "Seattle", "state": "WA",
            "addressLine1": "500 Pine Street", "addressLine2": null,
            "postalCode": "98101", "firstName": "Kai", "lastName": "Moreno", "phoneNumber": "2065550123"
        })),
        etag: 1,
        delegated: false,
    });

    customers
}

/// One seeded subscription: id, customer, offer, New Commerce, seats, reseller of record's MPN id.
type SeededSubscription = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    u64,
    &'static str,
);

/// The original subscriptions as the tests and samples know them (ids, offers, seats, resellers);
/// kept as a table so a new one is one line, not a block of code.
#[rustfmt::skip]
const ORIGINAL_SUBSCRIPTIONS: [SeededSubscription; 8] = [
    ("d0000001-0000-4000-8000-000000000011", CONTOSO, "Office 365 E3", false, 25, "4391507"),
    ("d0000001-0000-4000-8000-000000000012", CONTOSO, "Exchange Online (Plan 1)", false, 10, "4391507"),
    ("d0000001-0000-4000-8000-000000000013", CONTOSO, "Microsoft 365 Business Premium", false, 15, "4391507"),
    ("d0000002-0000-4000-8000-000000000021", FABRIKAM, "Office 365 E1", false, 40, "5123456"),
    ("d0000002-0000-4000-8000-000000000022", FABRIKAM, "Microsoft 365 E5 (New Commerce)", true, 12, "5123456"),
    ("d0000003-0000-4000-8000-000000000031", NORTHWIND, "Office 365 E3", false, 30, "6789012"),
    ("d0000003-0000-4000-8000-000000000032", NORTHWIND, "Visio Plan 2", false, 5, "6789012"),
    ("d0000004-0000-4000-8000-000000000041", TAILSPIN, "Office 365 E1", false, 3, "4391507"),
];

/// The original subscriptions (ids, offers and support contacts as the tests and samples know
/// them; seats, resellers of record and the rest added), then `extra` plain ones for Contoso.
fn original_subscriptions(extra: usize) -> Vec<(String, Subscription)> {
    let table =
        ORIGINAL_SUBSCRIPTIONS
            .iter()
            .map(|&(id, customer, offer, nce, seats, reseller)| {
                let sub = seeded_subscription(id, customer, offer, nce, seats, Some(reseller));
                (id.to_owned(), sub)
            });
    let extras = (0..extra).map(|i| {
        let id = format!("d1000000-0000-4000-8000-{i:012x}");
        let sub = seeded_subscription(&id, CONTOSO, "Office 365 E1", false, 1, None);
        (id, sub)
    });
    table.chain(extras).collect()
}

/// One place that says what a seeded subscription looks like (supported by the partner itself,
/// New Commerce ones on the NCE offer), so the table's and the extra ones cannot drift apart.
fn seeded_subscription(
    id: &str,
    customer: &str,
    offer: &str,
    nce: bool,
    seats: u64,
    reseller: Option<&str>,
) -> Subscription {
    let mut sub = Subscription::new(customer, offer, nce);
    sub.support_contact = support_contact(
        customer,
        id,
        PARTNER_TENANT,
        PARTNER_MPN,
        "Adatum Cloud (partner)",
    );
    sub.quantity = seats;
    sub.partner_id = reseller.map(str::to_owned);
    if nce {
        sub.offer_id = "CFQ7TTC0LFK5:0002:CFQ7TTC0K5GT".into();
    }
    sub
}

/// The partner's service requests.
fn service_requests() -> BTreeMap<String, Value> {
    let mut service_requests = BTreeMap::new();
    for (id, title, status) in [
        ("616122292874576", "Cannot assign licenses", "open"),
        ("616122292874577", "Invoice question", "open"),
        ("616122292874578", "Tenant migration", "attention_needed"),
        ("616122292874579", "Password reset loop", "closed"),
    ] {
        service_requests.insert(
            id.to_owned(),
            json!({
                "title": title, "description": title, "severity": "moderate",
                "supportTopicId": "32444671", "supportTopicName": "Cannot manage my profile",
                "id": id, "status": status,
                "organization": {"id": CONTOSO, "name": "Contoso Ltd"},
                "productId": "15960",
                "createdDate": "2026-10-01T09:00:00Z", "lastModifiedDate": "2026-10-01T09:00:00Z",
                "lastClosedDate": "0001-01-01T00:00:00",
                "notes": [],
                "attributes": {"objectType": "ServiceRequest"}
            }),
        );
    }

    service_requests
}
