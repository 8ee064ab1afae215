//! The Partner Center client: what a call is, what comes back, and how errors are read.
//!
//! Operations build [`Request`]s and call them through the [`Api`] trait; the dispatcher implements it
//! (rate limit, retries, tokens) on top of a [`http::Transport`].

pub mod auth;
pub mod error;
pub mod http;
pub mod token_store;

use futures::future::BoxFuture;
use serde_json::Value;

pub use error::{CallError, ServiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// One Partner Center call, relative to `{base}/v1`.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Lower-case path under `/v1`, starting with `/`.
    pub path: String,
    pub body: Option<Value>,
    /// The ETag for `If-Match`, unquoted; it is sent quoted.
    pub if_match: Option<String>,
    /// The `MS-ContinuationToken` a listing's `links.next` gave, for its next page.
    pub continuation: Option<String>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Request {
            method: Method::Get,
            path: path.into(),
            body: None,
            if_match: None,
            continuation: None,
        }
    }

    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Request {
            method: Method::Put,
            path: path.into(),
            body: Some(body),
            if_match: None,
            continuation: None,
        }
    }

    pub fn patch(path: impl Into<String>, body: Value) -> Self {
        Request {
            method: Method::Patch,
            path: path.into(),
            body: Some(body),
            if_match: None,
            continuation: None,
        }
    }

    /// The customer tenant the call concerns (`/customers/{id}/...`), for per-customer throttling.
    pub fn customer(&self) -> Option<&str> {
        let mut parts = self.path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next()) {
            (Some("customers"), Some(id)) if !id.is_empty() => Some(id),
            _ => None,
        }
    }

    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// The next page of a listing: sent with the `MS-ContinuationToken` header.
    pub fn continuation(mut self, token: impl Into<String>) -> Self {
        self.continuation = Some(token.into());
        self
    }
}

/// What the service answered to one call.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After`, raw (seconds or an HTTP date).
    pub retry_after: Option<String>,
    /// The service's own trace ids, kept for the results file.
    pub ms_cv: Option<String>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body without a leading UTF-8 byte-order mark, which some responses carry.
    pub fn text(&self) -> &[u8] {
        self.body
            .strip_prefix(b"\xef\xbb\xbf".as_slice())
            .unwrap_or(&self.body)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, CallError> {
        serde_json::from_slice(self.text()).map_err(|e| {
            CallError::Decode(format!(
                "the service answered {} with a body that is not JSON ({e})",
                self.status
            ))
        })
    }
}

/// Calls Partner Center. The dispatcher's implementation rate-limits, retries, authenticates and
/// journals.
pub trait Api: Send + Sync {
    /// Sends one call (retrying it as policy allows) and returns the successful response, or the
    /// error that ended it. A new call gets a new MS-RequestId.
    fn call(&self, req: Request) -> BoxFuture<'_, Result<Response, CallError>>;

    /// Sends again a call whose outcome is unknown, with its original MS-RequestId, so the service
    /// can recognise it as the same call.
    fn resend(
        &self,
        req: Request,
        request_id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Response, CallError>>;

    /// Sends a write whose outcome, when unknown, the caller settles by looking at the service:
    /// like [`Api::resend`], except that an attempt with no answer is not sent again blindly (its
    /// error comes back at once), and neither is a write answered 408 or 5xx (a gateway may
    /// answer so after the service applied it). Answers that
    /// say the write was not applied (429, a 401 the token renewal fixes) are retried here.
    fn send_unrepeatable(
        &self,
        req: Request,
        request_id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Response, CallError>> {
        self.resend(req, request_id)
    }

    /// How many times one write may be sent in all (`--max-attempts`, the first included): a write
    /// sent again after its answer was lost (and a look showed it had not landed) counts too.
    fn max_sends(&self) -> usize {
        6
    }

    /// How long one call may take before it counts as timed out (`--timeout`): what the waits
    /// before looking for a write whose outcome is unknown are measured in.
    fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(30)
    }

    /// Records what a row found before changing it (by input column), for undo; `extra` holds what
    /// a resume needs beyond columns.
    fn record_before(
        &self,
        values: std::collections::BTreeMap<String, String>,
        extra: std::collections::BTreeMap<String, Value>,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_before_json_is_stripped() {
        let r = Response {
            status: 200,
            body: b"\xef\xbb\xbf{\"email\":\"a@b.c\"}".to_vec(),
            ..Response::default()
        };
        assert_eq!(r.json().unwrap()["email"], "a@b.c");
        let not_json = Response {
            status: 200,
            body: b"<html>".to_vec(),
            ..Response::default()
        };
        assert!(matches!(not_json.json(), Err(CallError::Decode(_))));
    }
}
