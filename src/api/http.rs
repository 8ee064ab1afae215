//! Sending one call over HTTP with the headers Partner Center expects.

use std::time::Duration;

use futures::future::BoxFuture;
use uuid::Uuid;

use super::{CallError, Method, Request, Response};

/// The ids that identify one call to the service.
#[derive(Debug, Clone, Copy)]
pub struct CallIds {
    /// The idempotency key: the same on every retry of one call, new for the next call.
    pub request_id: Uuid,
    /// One per row, on all of that row's calls.
    pub correlation_id: Uuid,
}

/// Something that can send a call; the dispatcher is generic over it so its retry and throttle logic
/// can be tested with a scripted fake.
pub trait Transport: Send + Sync {
    /// Sends one attempt. Any HTTP answer is `Ok` (the caller judges the status); only a call that got
    /// no answer is `Err`.
    fn send<'a>(
        &'a self,
        req: &'a Request,
        ids: CallIds,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Response, CallError>>;
}

/// The real transport: reqwest with rustls.
pub struct HttpTransport {
    client: reqwest::Client,
    /// The base URL, parsed once, e.g. `https://api.partnercenter.microsoft.com`; each call only
    /// sets its path.
    base: reqwest::Url,
    /// The base URL's own path, without a trailing slash (usually empty).
    base_path: String,
    locale: String,
    application: String,
}

impl HttpTransport {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .user_agent(concat!("pcbulk/", env!("CARGO_PKG_VERSION")))
            // A redirect is never followed: it would send the call, its token and its body to
            // another address. It comes back as the answer, and the row fails.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = reqwest::Url::parse(base.trim_end_matches('/'))?;
        Ok(HttpTransport {
            client,
            base_path: base.path().trim_end_matches('/').to_owned(),
            base,
            locale: "en-US".into(),
            application: concat!("pcbulk/", env!("CARGO_PKG_VERSION")).into(),
        })
    }

    pub fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}/v1{}", self.base_path, path));
        url
    }

    /// A call as it goes on the wire: every header the reference lists, the body as JSON.
    pub fn request(&self, req: &Request, ids: CallIds, token: &str) -> reqwest::RequestBuilder {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut b = self
            .client
            .request(method, self.url(&req.path))
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/json")
            .header("MS-Contract-Version", "v1")
            .header("MS-RequestId", ids.request_id.to_string())
            .header("MS-CorrelationId", ids.correlation_id.to_string())
            .header("X-Locale", &self.locale)
            .header("MS-PartnerCenter-Application", &self.application);
        if let Some(etag) = &req.if_match {
            b = b.header("If-Match", format!("\"{}\"", etag.trim_matches('"')));
        }
        if let Some(body) = &req.body {
            b = b
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(body).expect("a JSON value serializes"));
        }
        b
    }
}

impl Transport for HttpTransport {
    fn send<'a>(
        &'a self,
        req: &'a Request,
        ids: CallIds,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Response, CallError>> {
        Box::pin(async move {
            let resp = self
                .request(req, ids, token)
                .send()
                .await
                .map_err(transport_error)?;
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header("Retry-After");
            let ms_cv = header("MS-CV");
            let body = read_bounded(resp).await?;
            Ok(Response {
                status,
                body,
                retry_after,
                ms_cv,
            })
        })
    }
}

/// The most of an answer's body pcbulk reads: Partner Center's answers are a few kilobytes.
pub const MAX_BODY: usize = 1 << 20;

/// Reads an answer's body, up to [`MAX_BODY`]: a larger (or endless) one is a failed exchange.
pub(crate) async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(CallError::Transport {
                message: format!(
                    "the answer was larger than {} MiB; pcbulk stopped reading it",
                    MAX_BODY >> 20
                ),
                timeout: false,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Describes a failed exchange without the URL's query or any header (no secret can leak).
fn transport_error(e: reqwest::Error) -> CallError {
    let timeout = e.is_timeout();
    let kind = if timeout {
        "the call timed out"
    } else if e.is_connect() {
        "could not connect to the service"
    } else if e.is_body() || e.is_decode() {
        "the connection dropped while reading the answer"
    } else {
        "the connection failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let message = if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({cause})")
    };
    CallError::Transport { message, timeout }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn a_call_url_is_the_base_its_path_and_v1() {
        let t = HttpTransport::new("https://example.test/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            t.url("/customers/a/profiles/billing").as_str(),
            "https://example.test/v1/customers/a/profiles/billing"
        );
        let t = HttpTransport::new("http://127.0.0.1:9/pc/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            t.url("/servicerequests/616122292874576").as_str(),
            "http://127.0.0.1:9/pc/v1/servicerequests/616122292874576"
        );
    }
}
