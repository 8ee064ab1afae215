//! `expected_<column>` preconditions: a cell that says what the target must still hold in
//! `<column>` for the row to be applied. `pcbulk undo` writes them beside every value it puts back
//! (the value the run set), so that an undo reverts a target only while it still holds what the run
//! left there; any file may carry them. An empty cell checks nothing; `#N/A` expects the field empty.
//!
//! The check runs where `--from-plan` holds a row to its plan: after the row has read the target,
//! before its write (see `dispatch`), against the before-values the row records. A row whose target
//! holds something else fails as `drifted` and nothing is sent for it; `--force` skips the check.

use std::collections::BTreeMap;

use super::check::{is_clear, same_cell};
use super::OpSpec;
use crate::input::header::normalize;

/// How a precondition column's header starts: `expected_name` holds the expected `name`.
pub const PREFIX: &str = "expected_";

/// What an `expected_...` header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// One of pcbulk's columns.
    Column(&'static str),
    /// `expected_` followed by no column pcbulk reads (the part after the prefix, as written).
    Unknown(String),
}

/// The column a precondition header names. A header written with the [`PREFIX`] always is one (and
/// a column pcbulk does not read after it is an error to report); one spelt another way
/// (`Expected Name`) is one only when the rest is a column, so an admin's own `Expected revenue`
/// stays their own column.
pub fn named(header: &str) -> Option<Named> {
    let h = header.trim();
    let prefixed = h
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &h[PREFIX.len()..]);
    let n = normalize(h);
    let rest = n.strip_prefix("expected").filter(|r| !r.is_empty());
    let column = rest.and_then(|r| {
        super::all_columns()
            .into_iter()
            .find(|c| *c != "operation" && normalize(c) == r)
    });
    match (column, prefixed) {
        (Some(c), _) => Some(Named::Column(c)),
        (None, Some(rest)) => Some(Named::Unknown(rest.to_owned())),
        (None, None) => None,
    }
}

/// Why `op` cannot hold `column` to an expected value, if it cannot: only the values an operation
/// reads before it writes them (what `undo` puts back) can be compared.
pub fn refused(op: &OpSpec, column: &str, header: &str) -> Option<String> {
    if op.undoable.contains(&column) {
        return None;
    }
    let why = if op.undo_keys.contains(&column) {
        format!("{column} names the row's target, which the row does not change")
    } else if op.columns().any(|c| c == column) {
        format!("{} cannot read {column} back before writing", op.name)
    } else {
        format!("{} has no column {column}", op.name)
    };
    Some(format!(
        "column \"{header}\": {why}, so it cannot be held to an expected value (an expected_ \
         column can hold: {}). Remove or rename the column; nothing was sent",
        op.undoable
            .iter()
            .map(|c| format!("{PREFIX}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// One row's precondition: `column` must hold `expected` when the row reads its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub column: &'static str,
    /// The value expected, as the cell holds it (`#N/A`: empty).
    pub expected: String,
    /// The row's own value for the column: what the target holds when the row leaves the column
    /// out of its before-values (it does so only when the target already holds the row's value).
    pub row_value: String,
}

/// `Some(why)` when a row's target does not hold what its preconditions expect. `before` is what
/// the row recorded when it read the target (`None`: there was nothing to read, so every field
/// is empty).
pub fn unmet(
    preconditions: &[Precondition],
    before: Option<&BTreeMap<String, String>>,
) -> Option<String> {
    let what: Vec<String> = preconditions
        .iter()
        .filter_map(|p| {
            let expected = if is_clear(&p.expected) {
                ""
            } else {
                p.expected.as_str()
            };
            let (now, holds) = match before.map(|b| b.get(p.column)) {
                Some(Some(now)) => (now.as_str(), same_cell(p.column, expected, now)),
                // Left out of what the row read: the target holds the row's own value already (a
                // row with an expected cell and no value of its own is refused before it is sent).
                Some(None) => (
                    p.row_value.as_str(),
                    same_cell(p.column, expected, &p.row_value)
                        || normalize(expected) == normalize(&p.row_value),
                ),
                None => ("", expected.is_empty()),
            };
            (!holds).then(|| format!("{}: expected {expected:?}, found {now:?}", p.column))
        })
        .collect();
    (!what.is_empty()).then(|| {
        format!(
            "not applied: the target changed since its expected values were taken ({}); it was \
             left as it is. Give --force to apply the row anyway",
            what.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(column: &'static str, expected: &str) -> Precondition {
        Precondition {
            column,
            expected: expected.into(),
            row_value: String::new(),
        }
    }

    fn before(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_header_names_a_precondition_spelt_as_headers_are_and_an_admin_s_own_stays_theirs() {
        assert_eq!(named("expected_name"), Some(Named::Column("name")));
        assert_eq!(named(" Expected Name "), Some(Named::Column("name")));
        assert_eq!(
            named("EXPECTED_Support MPN ID"),
            Some(Named::Column("support_mpn_id"))
        );
        assert_eq!(
            named("expected_revenue"),
            Some(Named::Unknown("revenue".into()))
        );
        assert_eq!(named("Expected revenue"), None, "the admin's own column");
        assert_eq!(named("expected"), None);
        assert_eq!(
            named("expected_operation"),
            Some(Named::Unknown("operation".into()))
        );
        assert_eq!(named("name"), None);
    }

    #[test]
    fn only_a_value_the_operation_reads_back_can_be_expected() {
        let sc = crate::ops::by_name("support-contact").unwrap();
        assert!(refused(sc, "name", "expected_name").is_none());
        let key = refused(sc, "customer_id", "expected_customer_id").unwrap();
        assert!(key.contains("names the row's target"), "{key}");
        assert!(key.contains("expected_support_mpn_id"), "{key}");
        let sr = crate::ops::by_name("service-request").unwrap();
        let note = refused(sr, "note", "expected_note").unwrap();
        assert!(note.contains("cannot read note back"), "{note}");
        assert!(refused(sr, "new_status", "expected_new_status").is_none());
        let other = refused(sc, "city", "Expected City").unwrap();
        assert!(
            other.contains("\"Expected City\": support-contact has no column city"),
            "{other}"
        );
    }

    #[test]
    fn a_target_that_still_holds_the_expected_value_passes_and_one_changed_since_is_named() {
        let held = [pre("name", "Trey Research"), pre("support_mpn_id", "")];
        assert_eq!(
            unmet(&held, Some(&before(&[("name", "Trey Research")]))),
            None
        );
        let why = unmet(&held, Some(&before(&[("name", "Colleague")]))).unwrap();
        assert!(
            why.contains(r#"name: expected "Trey Research", found "Colleague""#),
            "{why}"
        );
        assert!(why.contains("--force"), "{why}");
        assert!(
            !why.contains("support_mpn_id"),
            "an empty cell checks nothing: {why}"
        );
    }

    #[test]
    fn expected_auto_renew_yes_is_met_by_a_subscription_that_reads_true() {
        let held = [pre("auto_renew", "yes")];
        assert_eq!(unmet(&held, Some(&before(&[("auto_renew", "true")]))), None);
        assert!(unmet(&held, Some(&before(&[("auto_renew", "false")]))).is_some());
        let text = [pre("friendly_name", "yes")];
        assert!(unmet(&text, Some(&before(&[("friendly_name", "true")]))).is_some());
    }

    #[test]
    fn expected_subscription_status_active_is_met_by_a_subscription_that_reads_active() {
        let held = [pre("subscription_status", "Active")];
        let now = before(&[("subscription_status", "active")]);
        assert_eq!(unmet(&held, Some(&now)), None);
        let suspended = before(&[("subscription_status", "suspended")]);
        assert!(unmet(&held, Some(&suspended)).is_some());
        let country = [pre("country", "us")];
        assert_eq!(unmet(&country, Some(&before(&[("country", "US")]))), None);
    }

    #[test]
    fn guids_compare_in_any_case_and_n_a_expects_the_field_empty() {
        let tenant = [pre(
            "support_tenant_id",
            "{3B33E682-00C3-41EE-9DD2-A548ADF56438}",
        )];
        let now = before(&[("support_tenant_id", "3b33e682-00c3-41ee-9dd2-a548adf56438")]);
        assert_eq!(unmet(&tenant, Some(&now)), None);
        let cleared = [pre("telephone", "#N/A")];
        assert_eq!(unmet(&cleared, Some(&before(&[("telephone", "")]))), None);
        assert!(unmet(&cleared, Some(&before(&[("telephone", "+1 425")]))).is_some());
    }

    #[test]
    fn nothing_to_read_is_every_field_empty_and_a_value_left_out_is_the_row_s_own() {
        let name = [pre("name", "Trey Research")];
        assert!(unmet(&name, None).unwrap().contains(r#"found """#));
        let status = [Precondition {
            column: "new_status",
            expected: "closed".into(),
            row_value: "Closed".into(),
        }];
        assert_eq!(unmet(&status, Some(&before(&[]))), None);
        let status = [Precondition {
            row_value: "open".into(),
            ..status[0].clone()
        }];
        assert!(unmet(&status, Some(&before(&[]))).is_some());
    }
}
