//! What an operation gives `pcbulk export`: which targets it walks and how a target's current values
//! become a row of the operation's own columns. Each operation file holds its own [`ExportSpec`];
//! the walking, paging, filtering and writing belong to the export command.

use futures::future::BoxFuture;
use serde_json::Value;

use super::json::{get, get_str};
use crate::api::{Api, CallError};

/// The targets an export walks, one row each (or none, when a target has nothing to export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The partner's customers (`GET /customers`, paged).
    Customers,
    /// Every subscription of every customer (`GET /customers/{c}/subscriptions`).
    Subscriptions,
    /// The items of one partner-wide listing, at this path (paged like the customers, if it is).
    PartnerList(&'static str),
    /// The partner itself: one target.
    Partner,
}

impl Walk {
    /// The context columns an export of this walk carries after the operation's own.
    pub fn context(self) -> &'static [&'static str] {
        match self {
            Walk::Customers => &["customer_name", "customer_domain"],
            Walk::Subscriptions => &[
                "customer_name",
                "customer_domain",
                "subscription_name",
                "offer_name",
            ],
            Walk::PartnerList(_) | Walk::Partner => &[],
        }
    }
}

/// What the walk knows of one target before it is read: the resources as listed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Found<'a> {
    pub customer: Option<&'a Value>,
    pub subscription: Option<&'a Value>,
    /// An item of a [`Walk::PartnerList`].
    pub item: Option<&'a Value>,
}

impl<'a> Found<'a> {
    /// The customer's id, as listed (empty if the listing gave none).
    pub fn customer_id(&self) -> &'a str {
        self.customer.and_then(|c| get_str(c, "id")).unwrap_or("")
    }

    /// The subscription's id, as listed.
    pub fn subscription_id(&self) -> &'a str {
        self.subscription
            .and_then(|s| get_str(s, "id"))
            .unwrap_or("")
    }

    /// A text field of the listed item (or `""`).
    pub fn item_str(&self, field: &str) -> &'a str {
        self.item.and_then(|i| get_str(i, field)).unwrap_or("")
    }

    /// The value of a context column ([`Walk::context`]) for this target.
    pub fn context(&self, column: &str) -> &'a str {
        fn field<'v>(v: Option<&'v Value>, f: &str) -> &'v str {
            v.and_then(|v| get_str(v, f)).unwrap_or("")
        }
        let company = self.customer.and_then(|c| get(c, "companyProfile"));
        match column {
            "customer_name" => field(company, "companyName"),
            "customer_domain" => field(company, "domain"),
            "subscription_name" => field(self.subscription, "friendlyName"),
            "offer_name" => field(self.subscription, "offerName"),
            _ => "",
        }
    }
}

/// One exported row: each column of the operation (and its own carried columns) with its value.
pub type ExportRow = Vec<(&'static str, String)>;

/// What a target read gives: its row, or `None` when the target has nothing to export (a
/// subscription with no support contact).
pub type ReadFn =
    for<'a> fn(&'a dyn Api, Found<'a>) -> BoxFuture<'a, Result<Option<ExportRow>, CallError>>;

/// How an operation is exported.
pub struct ExportSpec {
    pub walk: Walk,
    /// Columns the operation's rows carry beyond its own and the walk's context (a service
    /// request's `title`).
    pub carried: &'static [&'static str],
    /// Reads one target's current values (through `api`: paced and retried like apply's calls)
    /// and gives its row.
    pub read: ReadFn,
}

/// A JSON value as a cell: text as it is, numbers and booleans as JSON writes them, null as empty.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_columns_come_from_the_listed_customer_and_subscription() {
        let c = json!({"id": "c1", "companyProfile": {"companyName": "Contoso", "domain": "contoso.example"}});
        let s = json!({"id": "s1", "friendlyName": "Seats", "offerName": "Office 365 E3"});
        let f = Found {
            customer: Some(&c),
            subscription: Some(&s),
            item: None,
        };
        let got: Vec<&str> = Walk::Subscriptions
            .context()
            .iter()
            .map(|k| f.context(k))
            .collect();
        assert_eq!(
            got,
            ["Contoso", "contoso.example", "Seats", "Office 365 E3"]
        );
        assert_eq!((f.customer_id(), f.subscription_id()), ("c1", "s1"));
    }

    #[test]
    fn a_cell_keeps_text_exactly_and_writes_other_values_as_json() {
        assert_eq!(cell(Some(&json!("007"))), "007");
        assert_eq!(cell(Some(&json!(12))), "12");
        assert_eq!(cell(Some(&json!(true))), "true");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(None), "");
    }
}
