//! Partner Center's error bodies, and the one place that says which failures are worth retrying.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

/// An error answer from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    /// Partner Center's `code`, as text (it arrives as a number or a string).
    pub code: Option<String>,
    pub message: String,
}

/// The usual error body: `{"code": 2055, "description": "...", "data": [...], "source": "..."}`.
/// The throttling body: `{"statusCode": 429, "message": "Rate limit is exceeded. ..."}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default, alias = "Code")]
    code: Option<Value>,
    #[serde(default, alias = "Description")]
    description: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
    #[serde(default, alias = "StatusCode")]
    status_code: Option<Value>,
}

fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

impl ServiceError {
    /// Reads an error answer; a body that is not one of the known shapes still yields an error that
    /// says what came back.
    /// The error an answer describes, its words cleaned ([`clean`]) and `secrets` masked: a service
    /// that echoes the token back in its error does not get it into the results or onto a screen.
    pub fn from_response_masking(status: u16, body: &[u8], secrets: &[&str]) -> Self {
        let mut e = ServiceError::from_response(status, body);
        e.message = clean(&e.message, secrets);
        e.code = e.code.map(|c| clean(&c, secrets));
        e
    }

    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let body = body
            .strip_prefix(b"\xef\xbb\xbf".as_slice())
            .unwrap_or(body);
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let (code, message) = match parsed {
            Some(b) => {
                let code = b.code.as_ref().and_then(code_text);
                let message = b.description.or(b.message).filter(|m| !m.trim().is_empty());
                let _ = b.status_code;
                (code, message)
            }
            None => (None, None),
        };
        let message = message.unwrap_or_else(|| {
            if (300..400).contains(&status) {
                return format!(
                    "HTTP {status}: the service answered with a redirect, which pcbulk never \
                     follows (the call and its token would go to another address); check the \
                     --base-url or the proxy in between"
                );
            }
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status} with an empty body")
            } else if text.starts_with('<') {
                gateway_page(status, text)
            } else {
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                )
            }
        });
        ServiceError {
            status,
            code: code.map(|c| clean(&c, &[])),
            message: clean(&message, &[]),
        }
    }

    /// The ETag sent with a billing-profile PUT was no longer current.
    pub fn is_stale_etag(&self) -> bool {
        self.status == 412 || (self.status == 400 && self.code.as_deref() == Some("2055"))
    }
}

/// An HTML page where Partner Center answers JSON: a gateway or proxy's, named by its title, or
/// else by the start of its text, rather than copied whole into the results.
fn gateway_page(status: u16, page: &str) -> String {
    let lower = page.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|i| i + "<title>".len())
        .and_then(|from| lower[from..].find("</title>").map(|len| (from, from + len)))
        .and_then(|(from, to)| page.get(from..to))
        .map(str::to_owned);
    let said = title.unwrap_or_else(|| page_text(page));
    let said: String = said.split_whitespace().collect::<Vec<_>>().join(" ");
    let said: String = said.chars().take(120).collect();
    match said.is_empty() {
        true => format!("HTTP {status} with an HTML page from a gateway or proxy"),
        false => format!("HTTP {status} with an HTML page from a gateway or proxy: {said}"),
    }
}

/// A page's text without its tags (what a browser would show, roughly).
fn page_text(page: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in page.chars().take(4096) {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The most characters of a service's words pcbulk keeps (results, journal, terminal).
pub const MAX_MESSAGE: usize = 1000;

/// A service's words made safe to write anywhere: each secret replaced by `***`, control and
/// escape characters shown as `\u{..}` instead of reaching a terminal raw, and at most
/// [`MAX_MESSAGE`] characters.
pub fn clean(text: &str, secrets: &[&str]) -> String {
    // Only what can be shown is looked at (a secret may straddle the cut).
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let cut = text
        .char_indices()
        .nth(MAX_MESSAGE + 1 + longest)
        .map_or(text.len(), |(i, _)| i);
    let mut text = text[..cut].to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        for form in secret_forms(s) {
            text = mask(&text, &form);
        }
    }
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE + 4));
    for (n, c) in text.chars().enumerate() {
        if n == MAX_MESSAGE {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The forms a server may echo a secret in: as it is, URL-encoded, and base64 (standard and URL
/// alphabets, padded or not).
fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    let mut forms = vec![secret.to_owned()];
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(encoded.replace('+', "%20"));
    forms.push(encoded);
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.push(engine.encode(secret).trim_end_matches('=').to_owned());
    }
    forms.dedup();
    forms
}

/// Replaces with `***` every stretch of `text` that is a piece of `secret` at least 12 bytes long
/// (or the whole secret, if shorter), in any letter case: a server that echoes a token lower-cased
/// or cut short still leaks it.
fn mask(text: &str, secret: &str) -> String {
    let (t, s) = (text.as_bytes(), secret.as_bytes());
    let least = s.len().min(12);
    if least < 4 || t.len() < least {
        return text.to_owned();
    }
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    let mut masked = false;
    while i < t.len() {
        let mut best = 0;
        if t.len() - i >= least {
            for j in 0..=s.len() - least {
                let k = t[i..]
                    .iter()
                    .zip(&s[j..])
                    .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                    .count();
                best = best.max(k);
            }
        }
        if best >= least {
            out.extend_from_slice(b"***");
            i += best;
            masked = true;
        } else {
            out.push(t[i]);
            i += 1;
        }
    }
    if masked {
        String::from_utf8_lossy(&out).into_owned()
    } else {
        text.to_owned()
    }
}

/// What this machine ran out of, when an error or one of its causes says so (too many open files,
/// no memory): a local limit, which no retry, network or proxy change mends, said as what it is.
pub fn os_resource(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(e);
    while let Some(err) = next {
        let code = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error);
        if let Some(what) = code.and_then(resource_named) {
            return Some(what);
        }
        next = err.source();
    }
    None
}

#[cfg(unix)]
fn resource_named(code: i32) -> Option<&'static str> {
    match code {
        libc::EMFILE => Some(
            "pcbulk ran out of open files (Too many open files): raise its limit (`ulimit -n`), \
             or lower --concurrency",
        ),
        libc::ENFILE => Some(
            "the system ran out of open files (its limit for all programs is reached): close \
             programs or raise the system's limit (fs.file-max), then run again",
        ),
        libc::ENOMEM | libc::ENOBUFS => Some(
            "the system ran out of memory (or network buffers): close programs or lower \
             --concurrency, then run again",
        ),
        _ => None,
    }
}

#[cfg(not(unix))]
fn resource_named(_code: i32) -> Option<&'static str> {
    None
}

/// Why a call did not succeed.
#[derive(Debug, Clone, Error)]
pub enum CallError {
    #[error("{}", .0.message)]
    Service(ServiceError),
    /// The call timed out or the connection failed: the change may or may not have been applied.
    #[error("{message}")]
    Transport { message: String, timeout: bool },
    /// No connection could be made (refused, no such host, TLS handshake, connect timeout): the
    /// call was not sent.
    #[error("{0}")]
    Unreachable(String),
    /// Credentials were refused even after a refresh; the run cannot go on.
    #[error("{0}")]
    Unauthorized(String),
    /// The answer could not be understood.
    #[error("{0}")]
    Decode(String),
    /// The run is stopping (error limit, refused credentials, interrupt); the call was not made.
    #[error("not attempted: {0}")]
    Aborted(String),
    /// `--from-plan`: what the row read is no longer what the plan read; the write was not sent.
    #[error("{0}")]
    Drifted(String),
    /// `plan`: the write a row would send, not sent (a plan only reads).
    #[error("not sent: a plan only reads")]
    Planned,
    /// pcbulk refused to send the write: what it read shows the service would refuse it.
    #[error("{message}")]
    Invalid { code: String, message: String },
    /// A write may or may not have been applied, and looking at the service could not tell: it is
    /// not sent again (what to check is in the message).
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl CallError {
    /// The one retry decision: 408, 429, 5xx, timeouts and dropped connections are worth another try;
    /// other 4xx are the caller's fault and are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Service(e) => matches!(e.status, 408 | 429 | 500 | 502 | 503 | 504),
            CallError::Transport { .. } | CallError::Unreachable(_) => true,
            CallError::Unauthorized(_)
            | CallError::Decode(_)
            | CallError::Aborted(_)
            | CallError::Planned
            | CallError::Drifted(_)
            | CallError::Invalid { .. }
            | CallError::OutcomeUnknown(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Service(e) => Some(e.status),
            _ => None,
        }
    }

    /// The code for the results file: Partner Center's own, else a pcbulk one.
    pub fn code(&self) -> String {
        match self {
            CallError::Service(e) => e
                .code
                .clone()
                .unwrap_or_else(|| format!("http_{}", e.status)),
            CallError::Transport { timeout: true, .. } => "timeout".into(),
            CallError::Transport { .. } => "connection_failed".into(),
            CallError::Unreachable(_) => "unreachable".into(),
            CallError::Unauthorized(_) => "unauthorized".into(),
            CallError::Decode(_) => "bad_response".into(),
            CallError::Aborted(_) => "aborted".into(),
            CallError::Planned => String::new(),
            CallError::Drifted(_) => "drifted".into(),
            CallError::Invalid { code, .. } => code.clone(),
            CallError::OutcomeUnknown(_) => "outcome_unknown".into(),
        }
    }
}

#[cfg(test)]
mod resource_tests {
    use super::*;

    /// A connect that failed for want of file descriptors was said to be an unreachable service.
    #[cfg(unix)]
    #[test]
    fn too_many_open_files_is_named_not_taken_for_the_network() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp open error")]
        struct Wrapper(#[source] std::io::Error);
        let emfile = Wrapper(std::io::Error::from_raw_os_error(libc::EMFILE));
        assert!(os_resource(&emfile).unwrap().contains("ulimit -n"));
        let enfile = std::io::Error::from_raw_os_error(libc::ENFILE);
        assert!(os_resource(&enfile).unwrap().contains("open files"));
        let enomem = std::io::Error::from_raw_os_error(libc::ENOMEM);
        assert!(os_resource(&enomem).unwrap().contains("out of memory"));
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_resource(&Wrapper(refused)), None);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_gateway_s_html_page_is_named_by_its_title_not_copied_into_the_results() {
        let page = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad \
                     Gateway</h1></center><hr><center>nginx</center></body></html>";
        let e = super::ServiceError::from_response(502, page);
        assert_eq!(
            e.message,
            "HTTP 502 with an HTML page from a gateway or proxy: 502 Bad Gateway"
        );
        let e =
            super::ServiceError::from_response(504, b"<!DOCTYPE html><p>upstream\n timed out</p>");
        assert_eq!(
            e.message,
            "HTTP 504 with an HTML page from a gateway or proxy: upstream timed out"
        );
        let e = super::ServiceError::from_response(503, b"<html><body></body></html>");
        assert_eq!(
            e.message,
            "HTTP 503 with an HTML page from a gateway or proxy"
        );
    }

    use super::*;

    #[test]
    fn a_secret_echoed_encoded_lower_cased_or_cut_short_is_masked_too() {
        let secret = "Sup3r/Secret+Token\"Q=&x";
        for echoed in [
            "token=Sup3r%2FSecret%2BToken%22Q%3D%26x".to_owned(),
            "sup3r/secret+token\"q=&x".to_owned(),
            "prefix Sup3r/Secret+Token\"Q".to_owned(),
            {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(secret)
            },
        ] {
            let c = clean(&format!("bad token {echoed} end"), &[secret]);
            assert!(c.contains("***"), "{echoed} → {c}");
            assert!(!c.to_lowercase().contains("secret+token"), "{echoed} → {c}");
            assert!(!c.contains("U2VjcmV0"), "{echoed} → {c}");
        }
        assert_eq!(
            clean("nothing to hide here", &[secret]),
            "nothing to hide here"
        );
    }

    #[test]
    fn a_service_s_words_are_masked_escaped_and_bounded() {
        let body = format!(
            "{{\"code\":\"600\",\"description\":\"bad token eyJ-secret-1234 \\u001b[31mred\\u0007 {}\"}}",
            "x".repeat(5000)
        );
        let e = ServiceError::from_response_masking(400, body.as_bytes(), &["eyJ-secret-1234"]);
        assert!(!e.message.contains("eyJ-secret-1234"), "{}", e.message);
        assert!(e.message.contains("***"));
        assert!(!e.message.contains('\u{1b}') && !e.message.contains('\u{7}'));
        assert!(e.message.contains("\\u{1b}[31mred"), "{}", &e.message[..60]);
        assert!(e.message.chars().count() <= MAX_MESSAGE + 1);
        assert_eq!(e.code.as_deref(), Some("600"));
    }

    #[test]
    fn numeric_and_string_codes_read_the_same() {
        let a = ServiceError::from_response(
            400,
            br#"{"code": 2055, "description": "Etag is no longer valid", "source": "PartnerFD"}"#,
        );
        let b = ServiceError::from_response(
            400,
            br#"{"code": "2055", "description": "Etag is no longer valid"}"#,
        );
        assert_eq!(a, b);
        assert!(a.is_stale_etag());
        assert_eq!(a.message, "Etag is no longer valid");
    }

    #[test]
    fn throttling_body_shape_and_bom() {
        let e = ServiceError::from_response(
            429,
            "\u{feff}{\"statusCode\":429,\"message\":\"Rate limit is exceeded. Try again in 57 seconds.\"}".as_bytes(),
        );
        assert_eq!(e.code, None);
        assert!(e.message.contains("57 seconds"));
        assert!(CallError::Service(e).is_retryable());
    }

    #[test]
    fn a_body_that_is_not_json_still_says_what_came_back() {
        let e = ServiceError::from_response(502, b"<html>Bad Gateway</html>");
        assert!(e.message.contains("Bad Gateway"), "{}", e.message);
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let svc = |s| {
            CallError::Service(ServiceError {
                status: s,
                code: None,
                message: String::new(),
            })
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(svc(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 417] {
            assert!(!svc(s).is_retryable(), "{s}");
        }
        assert!(CallError::Transport {
            message: "reset".into(),
            timeout: false
        }
        .is_retryable());
    }
}
