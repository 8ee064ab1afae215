//! Field checks shared by the operations: each returns the value as it will be sent, or a
//! [`Problem`] that says what was wrong and what would be accepted.

use super::{Problem, Row};

pub use crate::input::CLEAR;

/// Whether a (trimmed) cell asks to clear its field.
pub fn is_clear(value: &str) -> bool {
    value == CLEAR
}

/// `true`/`false`, `yes`/`no`, `1`/`0`, in any case, trimmed: the spellings of a yes-or-no cell.
pub fn yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Whether two cells of `column` say the same: as written, the same GUID in another case or with
/// braces (the service may echo a GUID in either case), in a yes-or-no column the same answer
/// in another spelling (`yes` and `True`), or in a column read in any case the same word in
/// another case (`Active` and `active`).
pub fn same_cell(column: &str, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if let (Ok(a), Ok(b)) = (guid("", a), guid("", b)) {
        return a == b;
    }
    if super::is_any_case(column) {
        return a.eq_ignore_ascii_case(b);
    }
    super::is_yes_no(column) && yes_no(a).is_some() && yes_no(a) == yes_no(b)
}

/// `#N/A` in an optional column Partner Center needs a value in: an empty cell keeps the field.
pub fn cannot_clear(column: &'static str) -> Problem {
    Problem::new(
        column,
        "cannot_clear",
        format!(
            "{column} is {CLEAR}, but Partner Center requires a value there and it cannot be cleared; \
             give a value, or leave the cell empty to keep the current one"
        ),
    )
}

/// `#N/A` in a column every row must fill in (a key, a support contact's name): there is nothing
/// to keep, so the only way is a value.
pub fn cannot_clear_required(column: &'static str) -> Problem {
    Problem::new(
        column,
        "cannot_clear",
        format!(
            "{column} is {CLEAR}, but every row needs a value there and it cannot be cleared; give \
             the value"
        ),
    )
}

/// A required cell: present, not blank, and not `#N/A`.
pub fn required<'r>(row: &'r Row, column: &'static str) -> Result<&'r str, Problem> {
    match row.get(column) {
        Some(_) if row.clears(column) => Err(cannot_clear_required(column)),
        Some(v) => Ok(v),
        None => Err(Problem::new(
            column,
            "missing_value",
            format!("{column} is empty; fill it in or remove the row"),
        )),
    }
}

/// An optional cell: `None` when empty (leave the field as it is); for `#N/A`, `""` (send the field
/// empty) where the field is `clearable` and a `cannot_clear` problem where it is not; else the
/// value as `check` returns it.
pub fn optional(
    row: &Row,
    column: &'static str,
    clearable: bool,
    check: impl FnOnce(&'static str, &str) -> Result<String, Problem>,
) -> Option<Result<String, Problem>> {
    let v = row.get(column)?;
    Some(match (row.clears(column), clearable) {
        (true, true) => Ok(String::new()),
        (true, false) => Err(cannot_clear(column)),
        (false, _) => check(column, v),
    })
}

/// A GUID in any case, with or without braces; sent lower-case and hyphenated.
pub fn guid(column: &'static str, value: &str) -> Result<String, Problem> {
    let inner = value
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(value);
    let inner = crate::input::row::trim(inner);
    // The hex groups checked a slice at a time (every row has several GUIDs): a third of the
    // instructions of a check of each byte by its position.
    let b = inner.as_bytes();
    let hex = |from: usize, to: usize| b[from..to].iter().all(u8::is_ascii_hexdigit);
    let ok = b.len() == 36
        && [b[8], b[13], b[18], b[23]] == [b'-'; 4]
        && hex(0, 8)
        && hex(9, 13)
        && hex(14, 18)
        && hex(19, 23)
        && hex(24, 36);
    if ok {
        Ok(inner.to_ascii_lowercase())
    } else {
        Err(Problem::new(
            column,
            "invalid_guid",
            format!(
                "{column} {value:?} is not a GUID; expected 32 hex digits as 8-4-4-4-12, \
                 e.g. 0c39d6d5-c70d-4c55-bc02-f620844f3fd1 (braces and upper case are fine)"
            ),
        ))
    }
}

/// A PartnerID (formerly MPN ID): digits only.
pub fn partner_id(column: &'static str, value: &str) -> Result<String, Problem> {
    if !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_partner_id",
            format!("{column} {value:?} is not a PartnerID; expected digits only, e.g. 4391507"),
        ))
    }
}

/// A service request id: documented as a GUID, numeric in practice; letters and digits.
pub fn token(column: &'static str, value: &str) -> Result<String, Problem> {
    if !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_id",
            format!(
                "{column} {value:?} is not a service request id; expected letters and digits only, \
                 e.g. 616122292874576"
            ),
        ))
    }
}

/// An e-mail address of the usual shape: one `@`, a dotted domain, no spaces.
pub fn email(column: &'static str, value: &str) -> Result<String, Problem> {
    let ok = value.len() <= 254
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == ';')
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_email",
            format!(
                "{column} {value:?} is not an e-mail address; expected e.g. support@contoso.com"
            ),
        ))
    }
}

/// A telephone number: digits with the usual separators (`+`, spaces, `-`, `.`, brackets).
pub fn phone(column: &'static str, value: &str) -> Result<String, Problem> {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let ok = digits >= 3
        && value.len() <= 40
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_phone",
            format!(
                "{column} {value:?} is not a telephone number; use digits with + - . ( ) or spaces, \
                 e.g. +1 425 555 0100"
            ),
        ))
    }
}

/// A web address: no spaces, a dotted host, optionally with a scheme.
pub fn website(column: &'static str, value: &str) -> Result<String, Problem> {
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or(value);
    let host = host.split('/').next().unwrap_or("");
    let ok = value.len() <= 2048
        && !value.chars().any(char::is_whitespace)
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_website",
            format!("{column} {value:?} is not a web address; expected e.g. www.contoso.com"),
        ))
    }
}

/// Text whose length (in characters) must lie within `min..=max`.
pub fn length(
    column: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, Problem> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_length",
            format!("{column} is {n} characters long; Partner Center accepts {min} to {max}"),
        ))
    }
}

/// An ISO 3166-1 alpha-2 country code (one of the 249 assigned); sent upper-case.
pub fn country(column: &'static str, value: &str) -> Result<String, Problem> {
    let up = value.to_ascii_uppercase();
    if super::countries::is_country(&up) {
        return Ok(up);
    }
    let hint = match up.as_str() {
        "UK" => " (the United Kingdom is GB)",
        "EL" => " (Greece is GR)",
        _ if up.len() == 3 => " (that looks like a 3-letter code; use the 2-letter one)",
        _ => "",
    };
    Err(Problem::new(
        column,
        "invalid_country",
        format!(
            "{column} {value:?} is not an ISO 3166-1 country code{hint}; expected two letters such as \
             US, FR, DE or SE"
        ),
    ))
}

/// A culture name such as `en-US` or `fr-FR`, or a language such as `en`.
pub fn culture(column: &'static str, value: &str) -> Result<String, Problem> {
    let mut parts = value.split('-');
    let lang = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && parts
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::new(
            column,
            "invalid_culture",
            format!(
                "{column} {value:?} is not a language or culture; expected e.g. en, en-US or fr-FR"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_accepts_braces_and_case_and_sends_lower_case() {
        let want = "0c39d6d5-c70d-4c55-bc02-f620844f3fd1";
        for v in [
            want,
            "0C39D6D5-C70D-4C55-BC02-F620844F3FD1",
            "{0c39d6d5-C70D-4c55-bc02-f620844f3fd1}",
        ] {
            assert_eq!(guid("customer_id", v).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn guid_refuses_near_misses_with_the_column_named() {
        for v in [
            "0c39d6d5-c70d-4c55-bc02-f620844f3fd",
            "0c39d6d5c70d4c55bc02f620844f3fd1x",
            "zz39d6d5-c70d-4c55-bc02-f620844f3fd1",
            "{0c39d6d5-c70d-4c55-bc02-f620844f3fd1",
        ] {
            let p = guid("customer_id", v).unwrap_err();
            assert_eq!(p.code, "invalid_guid");
            assert!(p.message.contains("customer_id"), "{}", p.message);
        }
    }

    #[test]
    fn partner_id_is_digits_only() {
        assert!(partner_id("support_mpn_id", "4391507").is_ok());
        assert!(partner_id("support_mpn_id", "43915O7").is_err());
        assert!(partner_id("support_mpn_id", "-4391507").is_err());
    }

    #[test]
    fn service_request_id_is_a_letters_and_digits_token() {
        assert!(token("service_request_id", "616122292874576").is_ok());
        assert!(token("service_request_id", "SR12ab").is_ok());
        assert!(token("service_request_id", "6161-2229").is_err());
        assert!(token("service_request_id", "../x").is_err());
    }

    #[test]
    fn email_shapes() {
        assert!(email("email", "a.b@contoso.co.uk").is_ok());
        for bad in [
            "a@b",
            "a b@c.com",
            "@c.com",
            "a@@c.com",
            "a@c..com",
            "a@c.com;b@d.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(length("first_name", &"é".repeat(50), 1, 50).is_ok());
        assert!(length("first_name", &"é".repeat(51), 1, 50).is_err());
    }

    #[test]
    fn country_is_two_letters_sent_upper_case() {
        assert_eq!(country("country", "se").unwrap(), "SE");
        assert!(country("country", "SWE").is_err());
        assert!(country("country", "S1").is_err());
        assert!(
            country("country", "XX").is_err(),
            "two letters, but not a country"
        );
        assert!(country("country", "uk").unwrap_err().message.contains("GB"));
    }

    #[test]
    fn phone_and_website() {
        assert!(phone("telephone", "+46 (8) 555-01.00").is_ok());
        assert!(phone("telephone", "call me").is_err());
        assert!(website("website", "https://www.contoso.com/support").is_ok());
        assert!(website("website", "contoso").is_err());
    }

    #[test]
    fn n_a_clears_where_clearable_and_is_cannot_clear_elsewhere() {
        let row = Row::new()
            .with("customer_id", "#N/A")
            .with("telephone", " #N/A ")
            .with("website", "#n/a");
        assert_eq!(
            required(&row, "customer_id").unwrap_err().code,
            "cannot_clear"
        );
        assert_eq!(
            optional(&row, "telephone", true, phone),
            Some(Ok(String::new()))
        );
        let refused = optional(&row, "telephone", false, phone)
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.code, "cannot_clear");
        assert!(refused.message.contains("telephone"), "{}", refused.message);
        assert_eq!(
            optional(&row, "website", true, website)
                .unwrap()
                .unwrap_err()
                .code,
            "invalid_website",
            "only #N/A exactly clears"
        );
        assert_eq!(
            optional(&row, "email", true, email),
            None,
            "empty: left as it is"
        );
    }
}
