//! Header names → canonical column names: case, spaces, `_` and `-` are ignored, and a few aliases that
//! users type are accepted (`Partner ID` for `support_mpn_id`, say).

/// `Customer ID`, `customer_id`, `customer-id` and `CustomerId` all become `customerid`.
pub fn normalize(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Other names users give a column, as (normalized alias, canonical column).
const ALIASES: &[(&str, &str)] = &[
    ("partnerid", "support_mpn_id"),
    ("mpnid", "support_mpn_id"),
    ("supportpartnerid", "support_mpn_id"),
    ("resellerpartnerid", "support_mpn_id"),
    ("resellermpnid", "support_mpn_id"),
    ("resellertenantid", "support_tenant_id"),
    ("customertenantid", "customer_id"),
    ("servicerequest", "service_request_id"),
    ("servicerequestnumber", "service_request_id"),
    ("srid", "service_request_id"),
    ("srnumber", "service_request_id"),
    ("addressline1", "address_line1"),
    ("addressline2", "address_line2"),
    ("zip", "postal_code"),
    ("zipcode", "postal_code"),
    ("postcode", "postal_code"),
];

/// The canonical column a header names, if it names one of `known` (canonical names) directly or by
/// alias.
pub fn canonical<'a>(header: &str, known: &[&'a str]) -> Option<&'a str> {
    let n = normalize(header);
    if let Some(c) = known.iter().find(|k| normalize(k) == n) {
        return Some(c);
    }
    let target = ALIASES.iter().find(|(a, _)| *a == n).map(|(_, c)| *c)?;
    known.iter().find(|k| **k == target).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_column_match() {
        let known = ["customer_id", "support_mpn_id"];
        for h in [
            "Customer ID",
            "customer_id",
            "customer-id",
            "CustomerId",
            " CUSTOMERID ",
        ] {
            assert_eq!(canonical(h, &known), Some("customer_id"), "{h}");
        }
        assert_eq!(canonical("Partner ID", &known), Some("support_mpn_id"));
        assert_eq!(canonical("MPN-ID", &known), Some("support_mpn_id"));
        assert_eq!(canonical("Customer Name", &known), None);
    }

    #[test]
    fn alias_only_matches_when_its_column_is_known() {
        assert_eq!(canonical("Partner ID", &["customer_id"]), None);
    }
}
