//! `--where COLUMN=VALUE`: which exported rows are kept. COLUMN is matched as an input header is
//! (case, spaces, `_` and `-` aside, and the aliases) against the export's own columns; values are
//! compared trimmed, GUIDs in any case and with or without braces, yes-or-no columns' answers in
//! any spelling, the words an operation reads in any case (statuses, country codes) in any case.

use crate::error::{usage, Error};
use crate::input::header::canonical;
use crate::ops::check::same_cell;

/// One `--where` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: &'static str,
    /// The value asked for, trimmed.
    value: String,
}

impl Filter {
    /// Reads `COLUMN=VALUE` against the export's `columns`; an unknown column is a usage error
    /// naming the columns there are.
    pub fn parse(flag: &str, columns: &[&'static str]) -> Result<Filter, Error> {
        let Some((name, value)) = flag.split_once('=') else {
            usage!("--where {flag:?} is not COLUMN=VALUE, e.g. --where support_tenant_id=3b33e682-00c3-41ee-9dd2-a548adf56438");
        };
        let Some(column) = canonical(name, columns) else {
            usage!(
                "--where {:?}: the export has no column {:?}; its columns are {}",
                crate::api::error::clean(flag, &[]),
                crate::api::error::clean(name.trim(), &[]),
                columns.join(", ")
            );
        };
        Ok(Filter {
            column,
            value: crate::input::row::trim(value).to_owned(),
        })
    }

    /// Whether `value` (a row's cell in the filter's column) is the one asked for: trimmed, a GUID
    /// in any case, a yes-or-no column's answer in any spelling, a status in any case
    /// ([`same_cell`]).
    pub fn holds(&self, value: &str) -> bool {
        same_cell(self.column, &self.value, crate::input::row::trim(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[&str] = &[
        "customer_id",
        "support_tenant_id",
        "support_mpn_id",
        "customer_name",
    ];

    #[test]
    fn a_column_is_matched_as_a_header_is_and_a_guid_in_any_case() {
        let f = Filter::parse(
            "Support Tenant ID={3B33E682-00C3-41EE-9DD2-A548ADF56438}",
            COLUMNS,
        )
        .unwrap();
        assert_eq!(f.column, "support_tenant_id");
        assert!(f.holds("3b33e682-00c3-41ee-9dd2-a548adf56438"));
        assert!(!f.holds("3b33e682-00c3-41ee-9dd2-a548adf56439"));
        let alias = Filter::parse("partner id= 4391507 ", COLUMNS).unwrap();
        assert_eq!(alias.column, "support_mpn_id");
        assert!(alias.holds("4391507"));
        let name = Filter::parse("customer_name=Contoso", COLUMNS).unwrap();
        assert!(!name.holds("contoso"), "text is compared exactly");
    }

    #[test]
    fn where_auto_renew_yes_keeps_rows_whose_cell_says_true_in_any_spelling() {
        let f = Filter::parse("auto_renew= yes ", &["auto_renew", "friendly_name"]).unwrap();
        for kept in ["true", "True", "1", "YES"] {
            assert!(f.holds(kept), "{kept}");
        }
        for dropped in ["false", "no", "0", ""] {
            assert!(!f.holds(dropped), "{dropped}");
        }
        let text = Filter::parse("friendly_name=yes", &["auto_renew", "friendly_name"]).unwrap();
        assert!(
            !text.holds("true"),
            "only a yes-or-no column compares answers"
        );
    }

    /// Found by an outside tester: `--where subscription_status=Active` kept no row.
    #[test]
    fn where_a_status_in_another_case_keeps_rows_in_that_status() {
        let columns = &["subscription_status", "new_status", "friendly_name"];
        let f = Filter::parse("subscription_status=Active", columns).unwrap();
        assert!(f.holds("active") && f.holds("ACTIVE"));
        assert!(!f.holds("suspended"));
        assert!(Filter::parse("new_status=Attention_Needed", columns)
            .unwrap()
            .holds("attention_needed"));
        let text = Filter::parse("friendly_name=Active", columns).unwrap();
        assert!(!text.holds("active"), "free text is compared as written");
    }

    #[test]
    fn an_unknown_column_names_the_columns_there_are() {
        let e = Filter::parse("reseller=1", COLUMNS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column \"reseller\""), "{e}");
        assert!(e.contains("customer_id, support_tenant_id"), "{e}");
        assert!(Filter::parse("no equals sign", COLUMNS).is_err());
    }
}
