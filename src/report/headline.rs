//! The report's opening sentence: what a run did, in the words of the things it changed ("291
//! support contacts moved from Adatum Cloud to Fabrikam Resellers; 9 rows not applied: ..."),
//! built from the grouped rows ([`super::rows::Tally`]).

use super::rows::{OpRows, Tally};
use crate::ops::OpSpec;
use crate::text::count;

/// One column's change in a row's `change` cell: `field: "from" → "to"`, or `field: + "to"` for
/// what is added rather than replaced (a note), where `from` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: String,
}

/// The column changes a `change` cell lists (as `ops::describe_changes` writes them, joined with
/// `; `), or `None` when the cell is not in that form: a value may itself hold `; ` or `→`, so
/// the quotes are followed, not split on.
pub fn parse_change(cell: &str) -> Option<Vec<FieldChange>> {
    let mut rest = cell;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (field, after) = rest.split_once(": ")?;
        let (from, to, after) = match after.strip_prefix("+ ") {
            Some(added) => {
                let (to, after) = quoted(added)?;
                (None, to, after)
            }
            None => {
                let (from, after) = quoted(after)?;
                let (to, after) = quoted(after.strip_prefix(" → ")?)?;
                (Some(from), to, after)
            }
        };
        out.push(FieldChange {
            field: field.to_owned(),
            from,
            to,
        });
        rest = match after {
            "" => "",
            more => more.strip_prefix("; ")?,
        };
    }
    Some(out)
}

/// A value quoted as Rust's `{:?}` quotes it, and what follows it. `\"` and `\\` are undone;
/// other escapes (control characters) stay as written, which is how a reader should see them.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                e @ ('"' | '\\') => value.push(e),
                e => {
                    value.push('\\');
                    value.push(e);
                }
            },
            c => value.push(c),
        }
    }
    None
}

/// What an operation's rows are called in a sentence: its registry name in words ("support
/// contact" → "support contacts"); a partner-wide operation's one thing is "the support profile".
pub fn noun(op: Option<&OpSpec>, n: usize) -> String {
    let Some(op) = op else {
        return count(n, "row");
    };
    let words = op.name.replace('-', " ");
    if op.partner_wide {
        return format!("the {words}");
    }
    if n == 1 {
        return format!("1 {words}");
    }
    let plural = match words.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{stem}ies"),
        _ if words.ends_with('s') => format!("{words}es"),
        _ => format!("{words}s"),
    };
    format!("{n} {plural}")
}

/// How long a value may be in the sentence before it is cut (the groups below show it whole).
const VALUE_CHARS: usize = 60;

/// A value for the sentence: unquoted, `(empty)` when empty, cut at [`VALUE_CHARS`].
fn shown(v: &str) -> String {
    if v.is_empty() {
        return "(empty)".into();
    }
    cut(v, VALUE_CHARS)
}

/// `s` cut to at most `max` characters, at a space when there is one near the end, with `…`.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max).collect();
    let at = match head.rfind(' ') {
        Some(i) if i > max / 2 => i,
        _ => head.len(),
    };
    format!("{}…", head[..at].trim_end())
}

/// The one column change to name in the sentence, out of those every changed row shares: the
/// `name` column first (it says who), then one whose values are not GUIDs, then the first.
fn telling(common: &[FieldChange]) -> Option<&FieldChange> {
    let guid = |v: &str| crate::ops::check::guid("", v).is_ok();
    common
        .iter()
        .find(|c| c.field == "name")
        .or_else(|| {
            common
                .iter()
                .find(|c| !guid(&c.to) && !c.from.as_deref().is_some_and(guid))
        })
        .or_else(|| common.first())
}

/// An operation's clause: what its changed rows did (`would` in a plan), then those already so.
fn op_clause(o: &OpRows, would: bool) -> Option<String> {
    let verb = |done: &str, base: &str| match would {
        true => format!("would {base}"),
        false => done.to_owned(),
    };
    let mut parts = Vec::new();
    if o.changed > 0 {
        let what = noun(o.op, o.changed);
        let how = match telling(o.common.as_deref().unwrap_or(&[])) {
            Some(c) => match (&c.from, c.field.as_str()) {
                (None, f) => format!("{} {f} {}", verb("got the", "get the"), shown(&c.to)),
                (Some(from), _) if c.to.is_empty() => format!(
                    "{} {} cleared (was {})",
                    verb("had", "have"),
                    c.field,
                    shown(from)
                ),
                (Some(from), "name") if !from.is_empty() => format!(
                    "{} from {} to {}",
                    verb("moved", "move"),
                    shown(from),
                    shown(&c.to)
                ),
                (Some(from), f) => format!(
                    "{} {f} from {} to {}",
                    verb("changed", "change"),
                    shown(from),
                    shown(&c.to)
                ),
            },
            None if o.kinds > 1 => format!(
                "{} ({}{} distinct changes)",
                verb("changed", "change"),
                if o.more_kinds { "more than " } else { "" },
                o.kinds
            ),
            None => verb("changed", "change"),
        };
        parts.push(format!("{what} {how}"));
    }
    if o.unchanged > 0 {
        let were = match (o.op.is_some_and(|op| op.partner_wide), o.unchanged) {
            (true, _) | (false, 1) => "was",
            _ => "were",
        };
        parts.push(format!(
            "{} {were} already as asked",
            noun(o.op, o.unchanged)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// How long the main reason may be in the sentence.
const REASON_CHARS: usize = 110;

/// A message's first statement: up to its first `; `, or its first `. ` before a capital (an
/// "e.g. " does not end it), and before a bracket that follows it.
fn first_sentence(message: &str) -> &str {
    let mut end = message.find("; ").unwrap_or(message.len());
    for (i, _) in message.match_indices(". ") {
        if i < end && message[i + 2..].starts_with(|c: char| c.is_uppercase()) {
            end = i;
            break;
        }
    }
    let first = message[..end].trim();
    // What pcbulk adds in brackets says what to do, which the groups below show.
    match first.find(" (") {
        Some(i) if i >= 20 => &first[..i],
        _ => first,
    }
}

/// The rows not applied, with the reason most of them share (its first sentence).
fn not_applied_clause(t: &Tally) -> Option<String> {
    if t.not_applied == 0 {
        return None;
    }
    let n = count(t.not_applied, "row");
    let Some(top) = t.problem_groups().into_iter().next() else {
        return Some(format!("{n} not applied"));
    };
    let reason = match first_sentence(&top.message) {
        "" => top.code.clone(),
        m => cut(m.trim_end_matches('.'), REASON_CHARS),
    };
    Some(if top.count == t.not_applied {
        format!("{n} not applied: {reason}")
    } else {
        format!("{n} not applied, {} of them: {reason}", top.count)
    })
}

/// `s` ended with a full stop, unless it ends with one or with `…` already.
fn full_stop(mut s: String) -> String {
    if !s.ends_with(['.', '…']) {
        s.push('.');
    }
    s
}

/// The sentence that opens the report (plain text: the page escapes it).
pub fn sentence(t: &Tally, command: &str, outcome: Option<&str>) -> String {
    if outcome == Some("already_finished") {
        return "Nothing was sent: this file was already applied to this target.".into();
    }
    let would = command == "plan";
    let mut clauses: Vec<String> = t.ops.iter().filter_map(|o| op_clause(o, would)).collect();
    if t.valid > 0 {
        clauses.push(format!(
            "{} valid (nothing was sent)",
            count(t.valid, "row")
        ));
    }
    let nothing = clauses.is_empty();
    clauses.extend(not_applied_clause(t));
    match (nothing, clauses.is_empty()) {
        (_, true) => "No row was applied.".into(),
        (true, false) => full_stop(format!("Nothing changed; {}", clauses.join("; "))),
        (false, false) => {
            let s = clauses.join("; ");
            let mut c = s.chars();
            let first = c.next().map(|f| f.to_uppercase().collect::<String>());
            full_stop(format!("{}{}", first.unwrap_or_default(), c.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{by_name, OPERATIONS};
    use crate::results::Status;

    #[test]
    fn a_change_cell_is_read_back_into_its_columns_whatever_its_values_hold() {
        let cell = "name: \"A; b → \\\"c\\\"\" → \"Fabrikam\"; note: + \"hi\"; x: \"\" → \"\\n\"";
        let got = parse_change(cell).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].from.as_deref(), Some("A; b → \"c\""));
        assert_eq!(got[0].to, "Fabrikam");
        assert_eq!((got[1].field.as_str(), got[1].from.clone()), ("note", None));
        assert_eq!(got[2].to, "\\n");
        assert_eq!(parse_change("name: \"open"), None);
        assert_eq!(parse_change("something else"), None);
    }

    #[test]
    fn every_operation_has_a_noun_from_its_registry_name() {
        let nouns: Vec<String> = OPERATIONS.iter().map(|op| noun(Some(op), 2)).collect();
        assert_eq!(
            nouns,
            [
                "2 support contacts",
                "2 service requests",
                "the support profile",
                "2 billing profiles",
                "2 subscriptions"
            ]
        );
        assert_eq!(noun(by_name("support-contact"), 1), "1 support contact");
    }

    fn tally(op: &str) -> Tally {
        Tally::new(vec![by_name(op)])
    }

    fn add(t: &mut Tally, row: usize, status: Status, change: &str, code: &str, msg: &str) {
        let l = super::super::rows::Line {
            row,
            status,
            op: 0,
            change,
            code,
            message: msg,
            http_status: None,
        };
        t.add(l, String::new);
    }

    #[test]
    fn the_sentence_names_the_common_move_and_the_main_reason_rows_were_not_applied() {
        let mut t = tally("support-contact");
        for row in 1..=291 {
            let change = format!(
                "support_tenant_id: \"e{row}\" → \"f\"; name: \"Adatum Cloud\" → \"Fabrikam Resellers\""
            );
            add(&mut t, row, Status::Succeeded, &change, "", "");
        }
        let nce = "Updating the support contact is not supported for New Commerce subscriptions";
        for row in 292..=298 {
            add(&mut t, row, Status::Failed, "", "800002", nce);
        }
        for row in 299..=300 {
            add(
                &mut t,
                row,
                Status::Invalid,
                "",
                "invalid_guid",
                "bad. fix it",
            );
        }
        assert_eq!(
            sentence(&t, "apply", None),
            "291 support contacts moved from Adatum Cloud to Fabrikam Resellers; 9 rows not \
             applied, 7 of them: Updating the support contact is not supported for New Commerce \
             subscriptions."
        );
    }

    #[test]
    fn changes_that_share_nothing_are_counted_and_a_plan_says_would() {
        let mut t = tally("billing-profile");
        add(&mut t, 1, Status::Planned, "city: \"a\" → \"b\"", "", "");
        add(&mut t, 2, Status::Planned, "state: \"WA\" → \"\"", "", "");
        add(&mut t, 3, Status::Unchanged, "", "", "");
        assert_eq!(
            sentence(&t, "plan", None),
            "2 billing profiles would change (2 distinct changes), 1 billing profile was already \
             as asked."
        );
        let mut t = tally("billing-profile");
        add(&mut t, 1, Status::Succeeded, "state: \"WA\" → \"\"", "", "");
        assert_eq!(
            sentence(&t, "apply", None),
            "1 billing profile had state cleared (was WA)."
        );
    }

    #[test]
    fn a_partner_wide_change_and_a_run_where_nothing_changed_read_as_such() {
        let mut t = tally("support-profile");
        add(
            &mut t,
            1,
            Status::Succeeded,
            "email: \"a@x\" → \"b@x\"",
            "",
            "",
        );
        assert_eq!(
            sentence(&t, "apply", None),
            "The support profile changed email from a@x to b@x."
        );
        let mut t = tally("support-contact");
        add(&mut t, 1, Status::Invalid, "", "invalid_guid", "");
        assert_eq!(
            sentence(&t, "apply", None),
            "Nothing changed; 1 row not applied: invalid_guid."
        );
        assert_eq!(
            sentence(&tally("support-contact"), "apply", None),
            "No row was applied."
        );
    }

    #[test]
    fn the_main_reason_is_the_message_s_first_statement() {
        let m = "customer_id \"x\" is not a GUID; expected 8-4-4-4-12, e.g. 0c39d6d5";
        assert_eq!(first_sentence(m), "customer_id \"x\" is not a GUID");
        assert_eq!(first_sentence("See e.g. this. Then that"), "See e.g. this");
        assert_eq!(first_sentence("Not supported."), "Not supported.");
        assert_eq!(
            first_sentence("Not supported for New Commerce (the service refused this row: fix)"),
            "Not supported for New Commerce"
        );
    }

    #[test]
    fn long_values_are_cut_at_a_space() {
        assert_eq!(cut("abc def ghi", 9), "abc def…");
        assert_eq!(cut("abcdefghijk", 5), "abcde…");
        assert_eq!(cut("short", 9), "short");
    }
}
