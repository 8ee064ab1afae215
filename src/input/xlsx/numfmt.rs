//! Excel number formats, rendered as Excel shows the cell: `00000` turns 2134 into `02134`,
//! `000-000-0000` a phone number into `555-123-4567`, `0.00%` 0.125 into `12.50%`; dates and times
//! become ISO 8601 whatever their format.
//!
//! A small renderer of its own, bounded to what bulk files hold, rather than a crate: the one
//! candidate (`ssfmt`, at 0.1) follows SheetJS SSF rather than Excel (General cut to a display width,
//! `1.23457E+11` for a 12-digit number), carries a cache and a date library, and says nothing about
//! what it cannot render. Here every format is either rendered exactly or refused with a reason
//! ([`Format::compile`]): fractions, conditions (`[>100]`), locale and currency prefixes
//! (`[$-409]`), fill characters (`*`), scaling commas, engineering notation and fractional seconds
//! are refused, so a value never differs silently from what Excel shows. Colours (`[Red]`) change
//! nothing in the text and are ignored.
//!
//! Numbers are rounded as Excel rounds them: first to the 15 significant digits Excel keeps, then
//! half away from zero in decimal, so 2.675 shown with `0.00` is `2.68` as in Excel.

/// The format code of a built-in format id, for the ids whose text does not depend on the locale.
pub fn builtin(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "General",
        1 => "0",
        2 => "0.00",
        3 => "#,##0",
        4 => "#,##0.00",
        9 => "0%",
        10 => "0.00%",
        11 => "0.00E+00",
        12 => "# ?/?",
        13 => "# ??/??",
        14 => "mm-dd-yy",
        15 => "d-mmm-yy",
        16 => "d-mmm",
        17 => "mmm-yy",
        18 => "h:mm AM/PM",
        19 => "h:mm:ss AM/PM",
        20 => "h:mm",
        21 => "h:mm:ss",
        22 => "m/d/yy h:mm",
        37 => "#,##0 ;(#,##0)",
        38 => "#,##0 ;[Red](#,##0)",
        39 => "#,##0.00;(#,##0.00)",
        40 => "#,##0.00;[Red](#,##0.00)",
        45 => "mm:ss",
        46 => "[h]:mm:ss",
        47 => "mmss.0",
        48 => "##0.0E+0",
        49 => "@",
        _ => return None,
    })
}

/// The longest format code compiled: Excel's own limit is 255 characters.
const MAX_CODE: usize = 255;

/// A compiled format: how a number in a cell of that format is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// `General`, or Text (`@`), under which a number shows as in General.
    General,
    /// Date and/or time, written as ISO 8601.
    Date(DateKind),
    /// Up to three number sections: positive (or all), negative, zero.
    Number(Vec<Section>),
}

/// What part of a date-time a date format shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM-DDTHH:MM:SS`.
    DateTime,
    /// `HH:MM:SS`, the time of day.
    Time,
    /// `H:MM:SS`, hours counted past 24 (`[h]:mm:ss`).
    Elapsed,
}

/// One piece of a number section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `0`, `#` or `?`.
    Digit(u8),
    /// The decimal point.
    Point,
    /// Text shown as written.
    Lit(char),
}

/// One section of a number format, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    tokens: Vec<Token>,
    /// Groups of three digits separated by commas.
    thousands: bool,
    /// How many `%` signs (each multiplies by 100).
    percent: u32,
    /// `E+`/`E-` and the number of exponent digits, for scientific notation.
    exponent: Option<(bool, usize)>,
    /// The section is `General` itself.
    general: bool,
}

impl Format {
    /// Compiles a format code, or says why pcbulk cannot show a number in it exactly.
    pub fn compile(code: &str) -> Result<Format, String> {
        if code.len() > MAX_CODE {
            return Err("is longer than Excel allows".into());
        }
        let sections = split_sections(code)?;
        let numeric: Vec<&str> = sections.iter().take(3).map(String::as_str).collect();
        let plain: Vec<String> = numeric
            .iter()
            .map(|s| strip_colour(s))
            .collect::<Result<_, _>>()?;
        if plain.len() == 1 {
            let only = plain[0].trim();
            if only.eq_ignore_ascii_case("general") || only == "@" || only.is_empty() {
                return Ok(Format::General);
            }
        }
        if let Some(kind) = date_kind(&plain[0])? {
            if plain.len() > 1 {
                return Err("is a date format with several sections".into());
            }
            return Ok(Format::Date(kind));
        }
        let parsed = plain
            .iter()
            .map(|s| parse_section(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Format::Number(parsed))
    }

    /// A number as a cell of this format shows it.
    pub fn number(&self, v: f64, date1904: bool) -> Result<String, String> {
        if !v.is_finite() {
            return Err("holds a number Excel cannot show".into());
        }
        match self {
            Format::General => Ok(general(v)),
            Format::Date(kind) => date(v, *kind, date1904),
            Format::Number(sections) => Ok(number(sections, v)),
        }
    }
}

/// A number as Excel shows it in a General cell: at most 15 significant digits, no `.0`.
pub fn general(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    format!("{rounded}")
}

/// Splits a code at its unquoted `;`: at most four sections.
fn split_sections(code: &str) -> Result<Vec<String>, String> {
    let mut sections = vec![String::new()];
    let mut chars = code.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let cur = sections.last_mut().unwrap_or_else(|| unreachable!());
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '\\' | '_' | '*' if !quoted => {
                cur.push(c);
                cur.extend(chars.next());
            }
            ';' if !quoted => sections.push(String::new()),
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("has an unclosed quote".into());
    }
    if sections.len() > 4 {
        return Err("has more than four sections".into());
    }
    Ok(sections)
}

/// A section without its colour (`[Red]`, `[Color10]`); any other bracket but the elapsed-time
/// ones (`[h]`, `[mm]`, `[ss]`) is refused.
fn strip_colour(section: &str) -> Result<String, String> {
    const COLOURS: [&str; 8] = [
        "black", "blue", "cyan", "green", "magenta", "red", "white", "yellow",
    ];
    let mut out = String::new();
    let mut rest = section;
    while let Some(open) = find_unquoted(rest, '[') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find(']').ok_or("has an unclosed [")? + open;
        let inner = rest[open + 1..close].to_ascii_lowercase();
        let elapsed = !inner.is_empty() && inner.chars().all(|c| "hms".contains(c));
        if elapsed {
            out.push_str(&rest[open..=close]);
        } else if inner.starts_with('$') {
            return Err("has a locale or currency prefix ([$...])".into());
        } else if inner.starts_with(['<', '>', '=']) {
            return Err("has a condition ([<...], [>...], [=...])".into());
        } else if !COLOURS.contains(&inner.as_str())
            && !inner
                .strip_prefix("color")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!("has [{inner}], which pcbulk does not know"));
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The byte offset of the first `c` outside quotes and escapes.
fn find_unquoted(s: &str, want: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && matches!(c, '\\' | '_' | '*') {
            escaped = true;
        } else if !quoted && c == want {
            return Some(i);
        }
    }
    None
}

/// The letters of a section outside quotes and escapes, lower-cased.
fn bare_letters(section: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = section.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' | '_' | '*' if !quoted => {
                chars.next();
            }
            c if !quoted => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    out
}

/// Whether a section is a date or time format, and which; `None` for a number format.
fn date_kind(section: &str) -> Result<Option<DateKind>, String> {
    let bare = bare_letters(section)
        .replace("am/pm", "")
        .replace("a/p", "");
    let elapsed = bare.contains("[h") || bare.contains("[m") || bare.contains("[s");
    let bare = bare.replace(['[', ']'], "");
    let has = |c: char| bare.contains(c);
    if !(has('y') || has('d') || has('h') || has('s') || has('m') || elapsed) {
        return Ok(None);
    }
    if bare
        .chars()
        .any(|c| c.is_ascii_alphabetic() && !"ymdhs".contains(c))
    {
        return Err("is a date format with parts pcbulk does not know".into());
    }
    if bare.contains(['0', '#', '?']) {
        return Err("shows fractions of a second".into());
    }
    let day = has('y') || has('d');
    // `m` alone is a month; next to `h` or `s` it is minutes.
    let time = has('h') || has('s') || elapsed;
    let month_only = has('m') && !time;
    Ok(Some(match (day || month_only, time) {
        _ if elapsed => DateKind::Elapsed,
        (true, true) => DateKind::DateTime,
        (true, false) => DateKind::Date,
        (false, _) => DateKind::Time,
    }))
}

/// Parses one number section.
fn parse_section(section: &str) -> Result<Section, String> {
    let mut s = Section {
        tokens: Vec::new(),
        thousands: false,
        percent: 0,
        exponent: None,
        general: section.trim().eq_ignore_ascii_case("general"),
    };
    if s.general {
        return Ok(s);
    }
    let chars: Vec<char> = section.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '"' => i = quoted(&mut s, &chars, i),
            '\\' => {
                s.tokens.extend(chars.get(i).map(|&c| Token::Lit(c)));
                i += 1;
            }
            '_' => {
                s.tokens.push(Token::Lit(' '));
                i += 1;
            }
            '*' => {
                return Err("has a fill character (*), which depends on the column width".into())
            }
            '0' | '#' | '?' => s.tokens.push(Token::Digit(c as u8)),
            '.' if !s.tokens.contains(&Token::Point) => s.tokens.push(Token::Point),
            ',' => comma(&mut s, &chars[i..])?,
            '%' => {
                s.percent += 1;
                s.tokens.push(Token::Lit('%'));
            }
            'E' | 'e' if matches!(chars.get(i), Some('+' | '-')) => {
                i = exponent(&mut s, &chars, i)?;
            }
            '/' if s.tokens.iter().any(|t| matches!(t, Token::Digit(_))) => {
                return Err("shows a fraction".into())
            }
            '@' => return Err("mixes text (@) into a number section".into()),
            c if c.is_ascii_alphabetic() => {
                return Err(format!(
                    "has the letter {c:?} unquoted, which pcbulk does not know"
                ))
            }
            c => s.tokens.push(Token::Lit(c)),
        }
    }
    check_section(&s)?;
    Ok(s)
}

/// Quoted text from `at` (just past its opening quote), shown as it is; where reading goes on,
/// past the closing quote (a quote never closed runs to the end of the section).
fn quoted(s: &mut Section, chars: &[char], at: usize) -> usize {
    let mut i = at;
    while i < chars.len() && chars[i] != '"' {
        s.tokens.push(Token::Lit(chars[i]));
        i += 1;
    }
    i + 1
}

/// Scientific notation from `at` (its sign): zeros after the sign that end the section (`E+00`)
/// are the one form pcbulk shows as Excel does; anything else is refused rather than guessed.
/// Returns where reading goes on: the end.
fn exponent(s: &mut Section, chars: &[char], at: usize) -> Result<usize, String> {
    let plus = chars[at] == '+';
    let digits = chars[at + 1..].iter().take_while(|c| **c == '0').count();
    if digits == 0 || at + 1 + digits != chars.len() {
        return Err("has a scientific notation pcbulk does not know".into());
    }
    s.exponent = Some((plus, digits));
    Ok(chars.len())
}

/// A comma between digit placeholders groups thousands; one after the last scales by 1000.
fn comma(s: &mut Section, rest: &[char]) -> Result<(), String> {
    let after_digit = matches!(s.tokens.last(), Some(Token::Digit(_)));
    let before_digit = matches!(rest.first(), Some('0' | '#' | '?'));
    if after_digit && before_digit && !s.tokens.contains(&Token::Point) {
        s.thousands = true;
        Ok(())
    } else if after_digit {
        Err("scales by thousands (a comma after the digits)".into())
    } else {
        s.tokens.push(Token::Lit(','));
        Ok(())
    }
}

/// Refuses the shapes the renderer does not show exactly.
fn check_section(s: &Section) -> Result<(), String> {
    let int_digits = s
        .tokens
        .iter()
        .take_while(|t| **t != Token::Point)
        .filter(|t| matches!(t, Token::Digit(_)))
        .count();
    if s.exponent.is_some() && int_digits != 1 {
        return Err("has engineering notation (more than one digit before the point)".into());
    }
    if s.thousands {
        // Grouped digits sit together: no text between them.
        let first = s.tokens.iter().position(|t| matches!(t, Token::Digit(_)));
        let point = s.tokens.iter().position(|t| *t == Token::Point);
        let last = s.tokens[..point.unwrap_or(s.tokens.len())]
            .iter()
            .rposition(|t| matches!(t, Token::Digit(_)));
        if let (Some(a), Some(b)) = (first, last) {
            if s.tokens[a..=b].iter().any(|t| matches!(t, Token::Lit(_))) {
                return Err("groups thousands around text".into());
            }
        }
    }
    Ok(())
}

/// A number shown through its sections.
fn number(sections: &[Section], v: f64) -> String {
    let (section, minus) = match sections {
        [only] => (only, v < 0.0),
        [pos, neg, ..] if v < 0.0 => (neg, false),
        [_, _, zero, ..] if v == 0.0 => (zero, false),
        [pos, ..] => (pos, false),
        [] => return general(v),
    };
    let body = if section.general {
        general(v.abs())
    } else {
        render(section, v.abs())
    };
    if minus {
        format!("-{body}")
    } else {
        body
    }
}

/// Decimal digits of `v` (≥ 0) rounded to 15 significant digits, then half away from zero to
/// `places` decimals: the integer digits (no leading zeros) and exactly `places` fraction digits.
fn decimal(v: f64, places: usize) -> (String, String) {
    let sci = format!("{v:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    // digits[0] is the 10^exp place; keep the places down to 10^-places.
    let keep = exp + 1 + places as i64;
    let mut kept: Vec<u8> = if keep <= 0 {
        Vec::new()
    } else {
        (0..keep as usize)
            .map(|i| digits.get(i).copied().unwrap_or(0))
            .collect()
    };
    let next = if keep < 0 {
        0
    } else {
        digits.get(keep as usize).copied().unwrap_or(0)
    };
    if next >= 5 {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    // Left-pad so the fraction digits are all there.
    while kept.len() < places {
        kept.insert(0, 0);
    }
    let split = kept.len() - places;
    let int: String = kept[..split].iter().map(|d| (b'0' + d) as char).collect();
    let frac: String = kept[split..].iter().map(|d| (b'0' + d) as char).collect();
    (int.trim_start_matches('0').to_owned(), frac)
}

/// One section's text for a value ≥ 0.
fn render(s: &Section, v: f64) -> String {
    let v = v * 100f64.powi(s.percent as i32);
    let point = s.tokens.iter().position(|t| *t == Token::Point);
    let (int_toks, frac_toks) = match point {
        Some(p) => (&s.tokens[..p], &s.tokens[p + 1..]),
        None => (&s.tokens[..], &[][..]),
    };
    let places = frac_toks
        .iter()
        .filter(|t| matches!(t, Token::Digit(_)))
        .count();
    let (int, frac, exp) = match s.exponent {
        Some(_) => scientific(v, places),
        None => {
            let (i, f) = decimal(v, places);
            (i, f, 0)
        }
    };
    let mut out = integer_part(int_toks, &int, s.thousands);
    if point.is_some() {
        out.push('.');
        out.push_str(&fraction_part(frac_toks, &frac));
    }
    if let Some((plus, width)) = s.exponent {
        out.push('E');
        if exp < 0 {
            out.push('-');
        } else if plus {
            out.push('+');
        }
        out.push_str(&format!("{:0width$}", exp.unsigned_abs()));
    }
    out
}

/// Mantissa digits (one integer digit) and exponent of `v` in scientific notation.
fn scientific(v: f64, places: usize) -> (String, String, i64) {
    if v == 0.0 {
        return (String::new(), "0".repeat(places), 0);
    }
    let sci = format!("{v:.14e}");
    let exp: i64 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let scaled: f64 = format!("{}e0", sci.split_once('e').map_or(sci.as_str(), |(m, _)| m))
        .parse()
        .unwrap_or(v);
    let (int, frac) = decimal(scaled, places);
    if int.len() > 1 {
        // 9.995 rounded to 10.00: one more power of ten.
        let (int, frac) = decimal(scaled / 10.0, places);
        return (int, frac, exp + 1);
    }
    (int, frac, exp)
}

/// The integer placeholders filled right to left with `digits`; extra digits go at the first
/// placeholder, literals stay where they are.
fn integer_part(toks: &[Token], digits: &str, thousands: bool) -> String {
    let placeholders = toks.iter().filter(|t| matches!(t, Token::Digit(_))).count();
    if thousands {
        return grouped(toks, digits);
    }
    let mut ds: Vec<char> = digits.chars().collect();
    let mut out: Vec<String> = Vec::with_capacity(toks.len());
    let mut seen = 0;
    for t in toks.iter().rev() {
        match *t {
            Token::Lit(c) => out.push(c.to_string()),
            Token::Digit(kind) => {
                seen += 1;
                let mut cell = match ds.pop() {
                    Some(d) => d.to_string(),
                    None => empty_digit(kind).to_owned(),
                };
                if seen == placeholders {
                    let rest: String = ds.drain(..).collect();
                    cell = rest + &cell;
                }
                out.push(cell);
            }
            Token::Point => {}
        }
    }
    out.reverse();
    out.concat()
}

/// What a placeholder shows with no digit for it.
fn empty_digit(kind: u8) -> &'static str {
    match kind {
        b'0' => "0",
        b'?' => " ",
        _ => "",
    }
}

/// Integer digits grouped by thousands, padded to the `0` placeholders, between the literals
/// before and after the placeholders.
fn grouped(toks: &[Token], digits: &str) -> String {
    let first = toks
        .iter()
        .position(|t| matches!(t, Token::Digit(_)))
        .unwrap_or(0);
    let last = toks
        .iter()
        .rposition(|t| matches!(t, Token::Digit(_)))
        .unwrap_or(0);
    let zeros = toks.iter().filter(|t| **t == Token::Digit(b'0')).count();
    let mut padded = "0".repeat(zeros.saturating_sub(digits.len()));
    padded.push_str(digits);
    let mut body = String::new();
    for (i, c) in padded.chars().enumerate() {
        if i > 0 && (padded.len() - i) % 3 == 0 {
            body.push(',');
        }
        body.push(c);
    }
    let lit = |ts: &[Token]| -> String {
        ts.iter()
            .filter_map(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    };
    format!("{}{body}{}", lit(&toks[..first]), lit(&toks[last + 1..]))
}

/// The fraction placeholders filled left to right; trailing zeros dropped for `#`, spaces for `?`.
fn fraction_part(toks: &[Token], frac: &str) -> String {
    let ds: Vec<char> = frac.chars().collect();
    // The last significant digit: past it, `#` and `?` show no zero.
    let significant = ds.iter().rposition(|&d| d != '0').map_or(0, |p| p + 1);
    let mut out = String::new();
    let mut n = 0;
    for t in toks {
        match *t {
            Token::Lit(c) => out.push(c),
            Token::Digit(kind) => {
                let d = ds.get(n).copied().unwrap_or('0');
                if n < significant || kind == b'0' {
                    out.push(d);
                } else {
                    out.push_str(empty_digit(kind));
                }
                n += 1;
            }
            Token::Point => {}
        }
    }
    out
}

/// A date serial as ISO 8601.
fn date(v: f64, kind: DateKind, date1904: bool) -> Result<String, String> {
    const NO_DATE: &str = "holds a number no date has (Excel shows #####)";
    if !(0.0..2_958_466.0).contains(&v) {
        return Err(NO_DATE.into());
    }
    let secs = (v * 86_400.0).round() as i64;
    let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if kind == DateKind::Elapsed {
        return Ok(format!("{}:{mi:02}:{s:02}", secs / 3600));
    }
    if kind == DateKind::Time {
        return Ok(format!("{h:02}:{mi:02}:{s:02}"));
    }
    let serial = match kind {
        DateKind::Date => v.floor() as i64,
        _ => secs / 86_400,
    };
    let (y, m, d) = civil(serial, date1904).ok_or_else(|| String::from(NO_DATE))?;
    Ok(match kind {
        DateKind::Date => format!("{y:04}-{m:02}-{d:02}"),
        _ => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
    })
}

/// The calendar date of a serial day. In the 1900 system Excel counts 29 February 1900, a day that
/// never was (serial 60), and day 0: neither has an ISO date.
fn civil(serial: i64, date1904: bool) -> Option<(i64, u32, u32)> {
    let unix_days = if date1904 {
        serial - 24_107
    } else if serial >= 61 {
        serial - 25_569
    } else if (1..60).contains(&serial) {
        serial - 25_568
    } else {
        return None;
    };
    let (y, m, d) = from_days(unix_days);
    (y <= 9999).then_some((y, m, d))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(code: &str, v: f64) -> String {
        Format::compile(code)
            .unwrap_or_else(|e| panic!("{code}: {e}"))
            .number(v, false)
            .unwrap()
    }

    fn refused(code: &str) -> String {
        Format::compile(code).expect_err(code)
    }

    #[test]
    fn zero_padded_formats_keep_their_zeros() {
        assert_eq!(show("00000", 2134.0), "02134");
        assert_eq!(show("00000", 123456.0), "123456");
        assert_eq!(show("000-000-0000", 5_551_234_567.0), "555-123-4567");
        assert_eq!(show("(000) 000-0000", 5_551_234_567.0), "(555) 123-4567");
        assert_eq!(show("00000-0000", 21_341_234.0), "02134-1234");
        assert_eq!(show("\"FR\"00000", 1000.0), "FR01000");
        assert_eq!(show("\\#000", 7.0), "#007");
        assert_eq!(show("0_)", 7.0), "7 ");
    }

    #[test]
    fn the_builtin_number_formats_show_as_in_excel() {
        let b = |id, v| show(builtin(id).unwrap(), v);
        assert_eq!(b(0, 0.1 + 0.2), "0.3");
        assert_eq!(b(1, 2.5), "3");
        assert_eq!(b(1, -2.5), "-3");
        assert_eq!(b(2, 2.675), "2.68");
        assert_eq!(b(2, 0.0), "0.00");
        assert_eq!(b(3, 1_234_567.0), "1,234,567");
        assert_eq!(b(3, 12.0), "12");
        assert_eq!(b(3, 0.0), "0");
        assert_eq!(b(4, 1234.5), "1,234.50");
        assert_eq!(b(4, -1234.5), "-1,234.50");
        assert_eq!(b(9, 0.125), "13%");
        assert_eq!(b(10, 0.125), "12.50%");
        assert_eq!(b(11, 12345.0), "1.23E+04");
        assert_eq!(b(11, 0.000123), "1.23E-04");
        assert_eq!(b(11, 9.999), "1.00E+01");
        assert_eq!(b(11, 0.0), "0.00E+00");
        assert_eq!(b(37, -1234.0), "(1,234)");
        assert_eq!(b(37, 1234.0), "1,234 ");
        assert_eq!(b(40, -5.0), "(5.00)");
        assert_eq!(b(49, 2134.0), "2134");
    }

    #[test]
    fn optional_digits_and_sections() {
        assert_eq!(show("#.##", 5.0), "5.");
        assert_eq!(show("#.##", 0.5), ".5");
        assert_eq!(show("0.0#", 1.5), "1.5");
        assert_eq!(show("0.0#", 1.25), "1.25");
        assert_eq!(show("0.??", 1.5), "1.5 ");
        assert_eq!(show("0;\"neg \"0;\"zero\"", 0.0), "zero");
        assert_eq!(show("0;\"neg \"0;\"zero\"", -3.0), "neg 3");
        assert_eq!(show("[Red]0.0;[Blue]-0.0", -1.25), "-1.3");
        assert_eq!(show("General", 33_612_345_678.0), "33612345678");
        assert_eq!(show("@", 1e20), "100000000000000000000");
    }

    #[test]
    fn dates_and_times_are_iso_8601() {
        assert_eq!(show("dd/mm/yyyy", 46_349.0), "2026-11-23");
        assert_eq!(show(builtin(14).unwrap(), 46_349.75), "2026-11-23");
        assert_eq!(show(builtin(22).unwrap(), 46_349.75), "2026-11-23T18:00:00");
        assert_eq!(
            show("yyyy-mm-dd hh:mm:ss", 46_349.5 + 1.0 / 86_400.0),
            "2026-11-23T12:00:01"
        );
        assert_eq!(show("h:mm AM/PM", 0.75), "18:00:00");
        assert_eq!(show("[h]:mm:ss", 1.5), "36:00:00");
        assert_eq!(show("mmm-yy", 1.0), "1900-01-01");
        assert_eq!(show("d-mmm", 59.0), "1900-02-28");
        assert_eq!(show("d-mmm", 61.0), "1900-03-01");
        let f = Format::compile("yyyy-mm-dd").unwrap();
        assert_eq!(f.number(0.0, true).unwrap(), "1904-01-01");
        assert!(f.number(60.0, false).is_err(), "29 February 1900 never was");
        assert!(f.number(-1.0, false).is_err());
    }

    #[test]
    fn what_cannot_be_shown_exactly_is_refused() {
        assert!(refused("# ?/?").contains("fraction"));
        assert!(refused("[>100]0;0").contains("condition"));
        assert!(refused("[$-409]mmmm d, yyyy").contains("locale"));
        assert!(refused("[$€-407]#,##0.00").contains("locale"));
        assert!(refused("_(* #,##0_)").contains("fill"));
        assert!(refused("#,##0,").contains("thousands"));
        assert!(refused("##0.0E+0").contains("engineering"));
        assert!(refused("hh:mm:ss.000").contains("fractions of a second"));
        assert!(refused("0 \"x\" ;;;;").contains("four sections"));
        assert!(refused(&"0".repeat(300)).contains("longer"));
    }

    #[test]
    fn rounding_is_decimal_half_away_from_zero() {
        assert_eq!(decimal(0.5, 0), ("1".into(), String::new()));
        assert_eq!(decimal(1.005, 2), ("1".into(), "01".into()));
        assert_eq!(decimal(0.0, 2), (String::new(), "00".into()));
        assert_eq!(decimal(0.004, 2), (String::new(), "00".into()));
        assert_eq!(decimal(0.005, 2), (String::new(), "01".into()));
        assert_eq!(decimal(99.99, 1), ("100".into(), "0".into()));
        assert_eq!(decimal(1e300, 0).0.len(), 301);
    }
}
