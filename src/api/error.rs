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
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                )
            }
        });
        ServiceError {
            status,
            code,
            message,
        }
    }

    /// The ETag sent with a billing-profile PUT was no longer current.
    pub fn is_stale_etag(&self) -> bool {
        self.status == 412 || (self.status == 400 && self.code.as_deref() == Some("2055"))
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, Error)]
pub enum CallError {
    #[error("{}", .0.message)]
    Service(ServiceError),
    /// The call timed out or the connection failed: the change may or may not have been applied.
    #[error("{message}")]
    Transport { message: String, timeout: bool },
    /// Credentials were refused even after a refresh; the run cannot go on.
    #[error("{0}")]
    Unauthorized(String),
    /// The answer could not be understood.
    #[error("{0}")]
    Decode(String),
    /// The run is stopping (error limit, refused credentials, interrupt); the call was not made.
    #[error("not attempted: {0}")]
    Aborted(String),
    /// pcbulk refused to send the write: what it read shows the service would refuse it.
    #[error("{message}")]
    Invalid { code: String, message: String },
}

impl CallError {
    /// The one retry decision: 408, 429, 5xx, timeouts and dropped connections are worth another try;
    /// other 4xx are the caller's fault and are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Service(e) => matches!(e.status, 408 | 429 | 500 | 502 | 503 | 504),
            CallError::Transport { .. } => true,
            CallError::Unauthorized(_)
            | CallError::Decode(_)
            | CallError::Aborted(_)
            | CallError::Invalid { .. } => false,
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
            CallError::Unauthorized(_) => "unauthorized".into(),
            CallError::Decode(_) => "bad_response".into(),
            CallError::Aborted(_) => "aborted".into(),
            CallError::Invalid { code, .. } => code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
