//! The part of the demo tenant that makes it look like a partner's: named customers with domains and
//! billing profiles, each with several subscriptions of several offers (legacy and New Commerce,
//! some suspended, some still inside their cancellation window), supported by the indirect
//! resellers and sold through them, with seat counts. The shapes (which subscription is New
//! Commerce, suspended, refundable) follow a fixed pattern so tests and samples can name them;
//! quantities, offers, resellers and how many subscriptions each named customer has come from the
//! seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::tenant::{support_contact, Refundable, Subscription, PARTNER_MPN, PARTNER_TENANT};

/// How many named customers the demo tenant has besides the original four.
pub const NAMED_CUSTOMERS: usize = 26;

/// Hours a New Commerce seat added stays refundable (the reference's 7-day cancellation window).
pub const CANCELLATION_WINDOW_HOURS: u64 = 168;

const NAME_FIRST: &[&str] = &[
    "Adventure",
    "Alpine",
    "Bellows",
    "Blue Yonder",
    "Coho",
    "Consolidated",
    "Datum",
    "Fourth",
    "Graphic",
    "Humongous",
    "Lamna",
    "Liberty",
    "Lucerne",
    "Margie's",
    "Munson's",
    "Nod",
    "Proseware",
    "Relecloud",
    "School of Fine",
    "Southridge",
    "Tailwind",
    "Wide World",
    "Wingtip",
    "Woodgrove",
    "VanArsdel",
    "Fincher",
];
const NAME_SECOND: &[&str] = &[
    "Works",
    "Ski House",
    "College",
    "Airlines",
    "Winery",
    "Messenger",
    "Corporation",
    "Coffee",
    "Design Institute",
    "Insurance",
    "Healthcare",
    "Delicatessen",
    "Publishing",
    "Travel",
    "Pickles and Preserves",
    "Publishers",
    "Inc",
    "Logistics",
    "Art",
    "Video",
    "Traders",
    "Importers",
    "Toys",
    "Bank",
    "Ltd",
    "Architects",
];

/// Offers sold on legacy terms: offer id and name.
const LEGACY_OFFERS: &[(&str, &str)] = &[
    ("796B6B5F-613C-4E24-A17C-EBA730D49C02", "Office 365 E3"),
    ("91FD106F-4B2C-4938-95AC-F54F74E9A239", "Office 365 E1"),
    (
        "195416C1-3447-423A-B37B-EE59A99A19C4",
        "Exchange Online (Plan 1)",
    ),
    (
        "5C9FD4CC-EDCE-44A8-8E91-07DF09744609",
        "Microsoft 365 Business Premium",
    ),
    ("3451A3B0-8CDA-44A7-BAD7-C30BE81C4AAA", "Visio Plan 2"),
    ("A044B16A-1861-4308-8086-A3A3B506EAC2", "Project Plan 3"),
];

/// Offers sold on New Commerce terms: `product:sku:availability` ids, as New Commerce offers have.
const NCE_OFFERS: &[(&str, &str)] = &[
    (
        "CFQ7TTC0LFLX:0001:CFQ7TTC0K6KX",
        "Microsoft 365 E3 (New Commerce)",
    ),
    (
        "CFQ7TTC0LFK5:0002:CFQ7TTC0K5GT",
        "Microsoft 365 E5 (New Commerce)",
    ),
    (
        "CFQ7TTC0LH18:0001:CFQ7TTC0K3RL",
        "Microsoft 365 Business Basic (New Commerce)",
    ),
    (
        "CFQ7TTC0LCHC:0002:CFQ7TTC0K4FR",
        "Microsoft 365 Business Premium (New Commerce)",
    ),
    (
        "CFQ7TTC0LH16:0001:CFQ7TTC0K9PQ",
        "Exchange Online (Plan 1) (New Commerce)",
    ),
];

/// The support contacts (and resellers of record) subscriptions are spread over: the partner
/// itself and its three indirect resellers (tenant id, MPN id, name).
const SUPPORTERS: &[(&str, &str, &str)] = &[
    (PARTNER_TENANT, PARTNER_MPN, "Adatum Cloud (partner)"),
    (
        "e0000001-0000-4000-8000-000000000001",
        "4391507",
        "Trey Research",
    ),
    (
        "e0000002-0000-4000-8000-000000000002",
        "5123456",
        "Fabrikam Resellers",
    ),
    (
        "e0000003-0000-4000-8000-000000000003",
        "6789012",
        "Northwind Partners",
    ),
];

/// What a generated subscription is, by its place: `(customer index + subscription index) % 5`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    LegacyActive,
    /// New Commerce, bought a day ago: its seats can still be reduced.
    NceInWindow,
    /// New Commerce, bought months ago: no seat can be reduced until renewal.
    NcePastWindow,
    LegacySuspended,
}

fn shape(customer: usize, sub: usize) -> Shape {
    match (customer + sub) % 5 {
        1 => Shape::NceInWindow,
        3 => Shape::NcePastWindow,
        4 => Shape::LegacySuspended,
        _ => Shape::LegacyActive,
    }
}

/// The id of named customer `i` (`c2000000-0000-4000-8000-…`).
pub fn named_customer_id(i: usize) -> String {
    format!("c2000000-0000-4000-8000-{i:012x}")
}

/// The id of subscription `j` of named customer `i` (`d2<i>-0000-4000-8000-<j>`).
pub fn named_subscription_id(i: usize, j: usize) -> String {
    format!("d2{i:06x}-0000-4000-8000-{j:012x}")
}

/// The id of subscription `j` of load customer `i` (`d3<i>-0000-4000-8000-<j>`).
pub fn load_subscription_id(i: usize, j: usize) -> String {
    format!("d3{i:06x}-0000-4000-8000-{j:012x}")
}

/// Named customer `i`'s company name and its `onmicrosoft.com` domain.
pub fn named_company(i: usize) -> (String, String) {
    let first = NAME_FIRST[i % NAME_FIRST.len()];
    let second = NAME_SECOND[(i * 7 + 3) % NAME_SECOND.len()];
    let name = format!("{first} {second}");
    (name.clone(), domain_of(&name))
}

/// `"Margie's Travel"` → `"margiestravel.onmicrosoft.com"`.
pub fn domain_of(company: &str) -> String {
    let label: String = company
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{label}.onmicrosoft.com")
}

/// Makes the subscriptions of generated customers, from one random source seeded once.
pub struct Generator {
    rng: StdRng,
    /// Seconds since the epoch when the tenant was made: creation dates and cancellation windows
    /// are counted from it.
    now: u64,
}

impl Generator {
    pub fn new(seed: u64, now: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed ^ 0x7e4a_7c15_0000_0021),
            now,
        }
    }

    /// How many subscriptions named customer `i` has: 2 to 5, and 5 for the first, so that it has
    /// one of every shape.
    pub fn named_count(&mut self, i: usize) -> usize {
        if i == 0 {
            5
        } else {
            self.rng.random_range(2..=5)
        }
    }

    /// Subscription `j` of the `i`-th generated customer `customer_id`.
    pub fn subscription(
        &mut self,
        customer_id: &str,
        id: &str,
        i: usize,
        j: usize,
    ) -> Subscription {
        let shape = shape(i, j);
        let nce = matches!(shape, Shape::NceInWindow | Shape::NcePastWindow);
        let offers = if nce { NCE_OFFERS } else { LEGACY_OFFERS };
        let (offer_id, offer_name) = offers[self.rng.random_range(0..offers.len())];
        let (tenant, mpn, name) = SUPPORTERS[self.rng.random_range(0..SUPPORTERS.len())];
        let quantity = self.rng.random_range(1..=50u64);
        let days_ago = match shape {
            Shape::NceInWindow => 1,
            _ => self.rng.random_range(30..=400u64),
        };
        let created = self.now - days_ago * 86_400;
        let mut sub = Subscription::new(customer_id, offer_name, nce);
        sub.offer_id = offer_id.to_owned();
        sub.quantity = quantity;
        sub.partner_id = (mpn != PARTNER_MPN).then(|| mpn.to_owned());
        sub.support_contact = support_contact(customer_id, id, tenant, mpn, name);
        sub.creation_date = created;
        sub.auto_renew = self.rng.random_range(0..4) != 0;
        if shape == Shape::LegacySuspended {
            sub.status = "suspended".into();
            sub.suspension_reasons = vec!["PartnerInitiated".into()];
        }
        if nce {
            sub.billing_cycle = if self.rng.random_range(0..2) == 0 {
                "monthly"
            } else {
                "annual"
            }
            .into();
            sub.term_duration = "P1Y".into();
        }
        if shape == Shape::NceInWindow {
            sub.refundable = vec![Refundable {
                quantity,
                until: created + CANCELLATION_WINDOW_HOURS * 3600,
            }];
        }
        sub
    }
}

/// A billing profile for a generated customer, in the shape of the original four's.
pub fn generated_address(i: usize) -> Value {
    json!({
        "country": "US", "region": null, "city": "Redmond", "state": "WA",
        "addressLine1": format!("{} Main Street", i + 1), "addressLine2": null,
        "postalCode": "98052", "firstName": "Dana", "lastName": "Reyes",
        "phoneNumber": format!("0425555{:04}", i % 10_000)
    })
}
