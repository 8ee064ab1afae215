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

/// One `--map 'THEIR HEADER=column'`: the input column a user names (as they typed it, trimmed)
/// read as one of pcbulk's columns (canonical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub header: String,
    pub column: &'static str,
}

impl ColumnMap {
    /// Parses `HEADER=column`, split at the last `=` (a header may hold one; a column name never
    /// does). `known` are the canonical columns; aliases name them too. A column that is none of
    /// them is refused, naming them all.
    pub fn parse(flag: &str, known: &[&'static str]) -> Result<ColumnMap, String> {
        let Some((header, column)) = flag.rsplit_once('=') else {
            return Err(format!(
                "{flag:?} is not HEADER=column: give the input's header, then = and the column \
                 it holds, e.g. --map 'Tenant ID=customer_id'"
            ));
        };
        let header = header.trim();
        if header.is_empty() {
            return Err(format!("{flag:?} names no header before the ="));
        }
        let column = canonical(column, known).ok_or_else(|| {
            format!(
                "{:?} is not a column pcbulk reads; the columns are: {}",
                column.trim(),
                known.join(", ")
            )
        })?;
        Ok(ColumnMap {
            header: header.to_owned(),
            column,
        })
    }

    /// Whether a header cell of the input is this mapping's header (matched as headers are).
    pub fn names(&self, header: &str) -> bool {
        normalize(header) == normalize(&self.header)
    }

    /// The mapping as a run's identity records it: `header=column`, with the header as the input
    /// has it (`header`, trimmed), so one mapping typed two ways is one mapping.
    pub fn recorded(header: &str, column: &str) -> String {
        format!("{}={column}", header.trim())
    }

    /// The flag that gives this mapping, quoted for a shell: `--map 'Tenant ID=customer_id'`.
    pub fn flag(header: &str, column: &str) -> String {
        format!("--map '{}={column}'", header.trim().replace('\'', r"'\''"))
    }
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
    fn a_mapping_names_a_known_column_by_any_spelling_and_splits_at_the_last_equals() {
        let known = ["customer_id", "support_mpn_id"];
        let m = ColumnMap::parse(" Tenant ID = Customer ID ", &known).unwrap();
        assert_eq!((m.header.as_str(), m.column), ("Tenant ID", "customer_id"));
        assert!(m.names("tenant_id") && !m.names("Tenant"));
        let m = ColumnMap::parse("a=b=MPN ID", &known).unwrap();
        assert_eq!((m.header.as_str(), m.column), ("a=b", "support_mpn_id"));
        let e = ColumnMap::parse("Kunde=client", &known).unwrap_err();
        assert!(
            e.contains("\"client\"") && e.contains("customer_id, support_mpn_id"),
            "{e}"
        );
        assert!(ColumnMap::parse("customer_id", &known).is_err());
        assert!(ColumnMap::parse(" =customer_id", &known).is_err());
        assert_eq!(
            ColumnMap::flag("O'Brien", "name"),
            r"--map 'O'\''Brien=name'"
        );
    }

    #[test]
    fn alias_only_matches_when_its_column_is_known() {
        assert_eq!(canonical("Partner ID", &["customer_id"]), None);
    }
}
