//! Sending one call over HTTP with the headers Partner Center expects.
//!
//! Calls go out on kept HTTP/1.1 connections (hyper's connection API, rustls), with every header built
//! once where it can be: at tens of thousands of calls a second, reqwest's per-call URL parsing,
//! redirect and retry layers, and then hyper's own keyed pool, cost more than the call itself (see
//! the README's wire benchmark). When the environment names
//! a proxy for the service's address (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus `NO_PROXY`),
//! the same request goes through reqwest instead, which speaks to proxies. A loopback address is
//! always reached directly.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use uuid::Uuid;

use super::{CallError, Method, Request, Response};

/// The ids that identify one call to the service.
#[derive(Debug, Clone, Copy)]
pub struct CallIds {
    /// The idempotency key: kept for a retry of a call whose attempt got no answer (the service may
    /// have it under way), new after any answer and for the next call.
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

    /// Where calls go, for messages ("cannot reach https://...").
    fn target(&self) -> String {
        "the service".into()
    }

    /// How long one attempt may take before it counts as timed out (`--timeout`).
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// How long a connection may sit unused before it is closed rather than used again.
const IDLE: Duration = Duration::from_secs(90);

/// Connections to the service: each carries one call at a time, and is kept for the next when its
/// answer has been read. hyper's own pooled client does the same with more steps per call (a keyed
/// pool, the Host header and the request's form worked out on every call), which at tens of
/// thousands of calls a second cost more than the rest of a call; there is one service here, so one
/// list of connections.
struct Pool {
    connector: Https,
    /// Where connections go (scheme and authority).
    origin: http::Uri,
    idle: Mutex<Vec<(Sender, std::time::Instant)>>,
    /// Until when calls go on new connections only: set when the service closed a kept connection
    /// under a call, which a service that closes connections soon after each answer (without
    /// saying so) would do to every kept one.
    fresh_until: Mutex<Option<std::time::Instant>>,
}

/// How long calls go on new connections only after a kept one failed under a call.
const FRESH_FOR: Duration = Duration::from_secs(1);

impl Pool {
    /// A connection that is ready for a call: an idle one (`true`: kept), else a new one.
    async fn checkout(&self) -> Result<(Sender, bool), CallError> {
        let fresh_until = *self.fresh_until.lock().unwrap_or_else(|p| p.into_inner());
        if fresh_until.is_some_and(|t| std::time::Instant::now() < t) {
            return Ok((self.connect().await?, false));
        }
        loop {
            let kept = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match kept {
                Some((mut sender, since)) if since.elapsed() < IDLE => {
                    if sender.ready().await.is_ok() {
                        return Ok((sender, true));
                    }
                    // Closed by the service meanwhile: the next one.
                }
                Some(_) => {}
                None => return Ok((self.connect().await?, false)),
            }
        }
    }

    /// Closes every idle connection: after one the service closed under a call, the others, as old,
    /// are likely closed too.
    fn forget_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.fresh_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now() + FRESH_FOR);
    }

    async fn connect(&self) -> Result<Sender, CallError> {
        use tower_service::Service;
        let cannot = |e: &(dyn std::error::Error + 'static)| {
            unreachable(describe("could not connect to the service", e))
        };
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| cannot(&*e))?;
        let io = connector
            .call(self.origin.clone())
            .await
            .map_err(|e| cannot(&*e))?;
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .writev(false)
            .handshake(io)
            .await
            .map_err(|e| cannot(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.ready().await.map_err(|e| cannot(&e))?;
        Ok(sender)
    }

    /// Puts a connection whose answer has been read back for the next call.
    fn checkin(&self, sender: Sender) {
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((sender, std::time::Instant::now()));
        }
    }

    /// Sends one call and reads its answer (on a new connection with `fresh`). A call that a kept
    /// connection could not take (closed before the request was written) goes on a new one: it was
    /// not sent. A call a kept connection lost without an answer is [`Failed::on_kept`]: the
    /// service may have closed it as the call went out (a keep-alive timeout), so a read is sent
    /// again on a new connection by the caller; a write is left to the dispatcher, which looks
    /// before it sends again.
    async fn exchange(
        &self,
        mut call: http::Request<Full<Bytes>>,
        mut fresh: bool,
    ) -> Result<Response, Failed> {
        let (resp, sender) = loop {
            let (mut sender, kept) = if fresh {
                (self.connect().await?, false)
            } else {
                self.checkout().await?
            };
            match sender.try_send_request(call).await {
                Ok(resp) => break (resp, sender),
                Err(mut e) => {
                    if kept {
                        self.forget_idle();
                    }
                    match e.take_message() {
                        Some(unsent) if !fresh => {
                            call = unsent;
                            fresh = true;
                        }
                        _ => {
                            return Err(Failed {
                                error: describe("the connection failed", e.error()),
                                on_kept: kept,
                            })
                        }
                    }
                }
            }
        };
        let (parts, body) = resp.into_parts();
        // An answer that says it is too large is refused before it is waited for.
        let declared = parts.headers.get(http::header::CONTENT_LENGTH);
        if declared
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large().into());
        }
        let body = read_bounded(body).await?;
        self.checkin(sender);
        Ok(answer(parts.status, &parts.headers, body))
    }
}

/// A call that failed, and whether it failed on a kept connection without an answer.
struct Failed {
    error: CallError,
    on_kept: bool,
}

impl From<CallError> for Failed {
    fn from(error: CallError) -> Self {
        Failed {
            error,
            on_kept: false,
        }
    }
}

/// How calls leave the process.
enum Wire {
    /// Straight to the service: hyper, pooled connections.
    Direct(Box<Pool>),
    /// Through the proxy the environment names: reqwest.
    Proxied(reqwest::Client),
}

/// The real transport.
pub struct HttpTransport {
    wire: Wire,
    timeout: Duration,
    /// `{base}/v1`, e.g. `https://api.partnercenter.microsoft.com/v1`; each call appends its path.
    prefix: String,
    /// On a direct connection, a call names only its path (`/v1/...`, after the base URL's own
    /// path), and the service by the `Host` header.
    path_prefix: String,
    host: Option<HeaderValue>,
    /// Every header that is the same on every call, `Authorization` included, built once per token
    /// rather than once per call: a call clones it and adds its ids.
    headers: Mutex<Option<(String, http::HeaderMap)>>,
}

const USER_AGENT: &str = concat!("pcbulk/", env!("CARGO_PKG_VERSION"));
const MS_CONTRACT_VERSION: HeaderName = HeaderName::from_static("ms-contract-version");
const MS_REQUESTID: HeaderName = HeaderName::from_static("ms-requestid");
const MS_CORRELATIONID: HeaderName = HeaderName::from_static("ms-correlationid");
const X_LOCALE: HeaderName = HeaderName::from_static("x-locale");
const MS_PARTNERCENTER_APPLICATION: HeaderName =
    HeaderName::from_static("ms-partnercenter-application");

impl HttpTransport {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The base URL is checked (scheme, host) before it comes here; this parse only normalises.
        let base = url::Url::parse(base.trim_end_matches('/'))?;
        let prefix = format!("{}/v1", base.as_str().trim_end_matches('/'));
        let uri: http::Uri = prefix.parse()?;
        let connect_timeout = Duration::from_secs(10).min(timeout);
        // Loopback (the sandbox, a test server) never goes through a proxy: a proxy elsewhere
        // cannot reach this machine's loopback, and `NO_PROXY` often forgets to say so.
        let proxied = !crate::config::is_loopback(base.as_str())
            && hyper_util::client::proxy::matcher::Matcher::from_env()
                .intercept(&uri)
                .is_some();
        let wire = if proxied {
            Wire::Proxied(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(connect_timeout)
                    // A redirect is never followed: it would send the call, its token and its body
                    // to another address. It comes back as the answer, and the row fails.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            )
        } else {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http.set_connect_timeout(Some(connect_timeout));
            http.enforce_http(false);
            let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth();
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            // hyper never follows a redirect: a 3xx comes back as the answer, and the row fails.
            let origin = http::Uri::builder()
                .scheme(uri.scheme_str().unwrap_or("https"))
                .authority(host_port(&uri))
                .path_and_query("/")
                .build()?;
            Wire::Direct(Box::new(Pool {
                connector: https,
                origin,
                idle: Mutex::new(Vec::new()),
                fresh_until: Mutex::new(None),
            }))
        };
        let host = match &wire {
            Wire::Direct(_) => Some(HeaderValue::try_from(host_port(&uri))?),
            Wire::Proxied(_) => None,
        };
        Ok(HttpTransport {
            wire,
            timeout,
            prefix,
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
            host,
            headers: Mutex::new(None),
        })
    }

    /// The full URL of a call's path.
    pub fn url(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.prefix.len() + path.len());
        url.push_str(&self.prefix);
        url.push_str(path);
        url
    }

    /// The headers every call with `token` carries.
    fn headers(&self, token: &str) -> Result<http::HeaderMap, CallError> {
        let mut last = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, h)) = &*last {
            if t == token {
                return Ok(h.clone());
            }
        }
        let mut bearer =
            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| CallError::Transport {
                message: "the access token holds characters a header cannot carry".into(),
                timeout: false,
            })?;
        bearer.set_sensitive(true);
        let mut h = http::HeaderMap::with_capacity(12);
        h.insert(http::header::AUTHORIZATION, bearer);
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        h.insert(MS_CONTRACT_VERSION, HeaderValue::from_static("v1"));
        h.insert(X_LOCALE, HeaderValue::from_static("en-US"));
        h.insert(
            MS_PARTNERCENTER_APPLICATION,
            HeaderValue::from_static(USER_AGENT),
        );
        h.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        if let Some(host) = &self.host {
            h.insert(http::header::HOST, host.clone());
        }
        *last = Some((token.to_owned(), h.clone()));
        Ok(h)
    }

    /// A call as it goes on the wire: every header the reference lists, the body as JSON.
    pub fn request(
        &self,
        req: &Request,
        ids: CallIds,
        token: &str,
    ) -> Result<http::Request<Bytes>, CallError> {
        let method = match req.method {
            Method::Get => http::Method::GET,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
        };
        let target = match self.wire {
            Wire::Direct(_) => {
                let mut t = String::with_capacity(self.path_prefix.len() + req.path.len());
                t.push_str(&self.path_prefix);
                t.push_str(&req.path);
                t
            }
            Wire::Proxied(_) => self.url(&req.path),
        };
        let uri = http::Uri::try_from(target).map_err(|_| CallError::Transport {
            message: "the call's path is not a valid URL".into(),
            timeout: false,
        })?;
        let body = match &req.body {
            Some(body) => Bytes::from(serde_json::to_vec(body).expect("a JSON value serializes")),
            None => Bytes::new(),
        };
        let mut out = http::Request::new(body);
        *out.method_mut() = method;
        *out.uri_mut() = uri;
        let h = out.headers_mut();
        *h = self.headers(token)?;
        h.insert(MS_REQUESTID, uuid_value(ids.request_id));
        h.insert(MS_CORRELATIONID, uuid_value(ids.correlation_id));
        if let Some(etag) = &req.if_match {
            let v =
                HeaderValue::try_from(format!("\"{}\"", etag.trim_matches('"'))).map_err(|_| {
                    CallError::Transport {
                        message: "the ETag holds characters a header cannot carry".into(),
                        timeout: false,
                    }
                })?;
            h.insert(http::header::IF_MATCH, v);
        }
        if req.body.is_some() {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Ok(out)
    }

    async fn exchange(&self, call: http::Request<Bytes>) -> Result<Response, Failed> {
        match &self.wire {
            Wire::Direct(pool) => pool.exchange(call.map(Full::new), false).await,
            Wire::Proxied(client) => {
                let call = reqwest::Request::try_from(call.map(reqwest::Body::from))
                    .map_err(transport_error)?;
                let resp = client.execute(call).await.map_err(transport_error)?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = read_bounded_reqwest(resp).await?;
                Ok(answer(status, &headers, body))
            }
        }
    }
}

/// `host[:port]` as the `Host` header names it: the port only when it is not the scheme's own.
fn host_port(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let default = match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    };
    match uri.port_u16() {
        Some(p) if p != default => format!("{host}:{p}"),
        _ => host.to_owned(),
    }
}

fn uuid_value(id: Uuid) -> HeaderValue {
    let mut buf = Uuid::encode_buffer();
    let s = id.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).expect("a UUID is a valid header value")
}

const MS_CV: HeaderName = HeaderName::from_static("ms-cv");

fn answer(status: http::StatusCode, headers: &http::HeaderMap, body: Vec<u8>) -> Response {
    let header = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Response {
        status: status.as_u16(),
        body,
        retry_after: header(http::header::RETRY_AFTER),
        ms_cv: header(MS_CV),
    }
}

impl Transport for HttpTransport {
    fn target(&self) -> String {
        self.prefix.trim_end_matches("/v1").to_owned()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn send<'a>(
        &'a self,
        req: &'a Request,
        ids: CallIds,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Response, CallError>> {
        Box::pin(async move {
            let call = self.request(req, ids, token)?;
            let exchange = async {
                match self.exchange(call).await {
                    // A read lost on a kept connection goes once more, on a new one: reading
                    // twice changes nothing, and the service may have closed the connection as
                    // the read went out.
                    Err(f) if f.on_kept && req.method == Method::Get => match &self.wire {
                        Wire::Direct(pool) => {
                            let again = self.request(req, ids, token)?;
                            pool.exchange(again.map(Full::new), true)
                                .await
                                .map_err(|f| f.error)
                        }
                        Wire::Proxied(_) => Err(f.error),
                    },
                    answer => answer.map_err(|f| f.error),
                }
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(answer) => answer,
                Err(_) => Err(CallError::Transport {
                    message: "the call timed out".into(),
                    timeout: true,
                }),
            }
        })
    }
}

/// The most of an answer's body pcbulk reads: Partner Center's answers are a few kilobytes.
pub const MAX_BODY: usize = 1 << 20;

fn too_large() -> CallError {
    CallError::Transport {
        message: format!(
            "the answer was larger than {} MiB; pcbulk stopped reading it",
            MAX_BODY >> 20
        ),
        timeout: false,
    }
}

/// Reads an answer's body, up to [`MAX_BODY`]: a larger (or endless) one is a failed exchange.
async fn read_bounded(mut body: hyper::body::Incoming) -> Result<Vec<u8>, CallError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| describe("the connection dropped while reading the answer", &e))?;
        if let Ok(chunk) = frame.into_data() {
            if out.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
    }
    Ok(out)
}

/// [`read_bounded`] for an answer that came through reqwest (a proxied call, a token request).
pub(crate) async fn read_bounded_reqwest(
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// "kind (innermost cause)": the error chain's last word, without the URL or any header (no secret
/// can leak).
fn describe(kind: &str, e: &(dyn std::error::Error + 'static)) -> CallError {
    let mut cause = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let message = if let Some(what) = super::error::os_resource(e) {
        // This machine's limit, not the network: said as that.
        format!("{kind}: {what}")
    } else if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({cause})")
    };
    CallError::Transport {
        message,
        timeout: false,
    }
}

/// A connection that could not be made: the call was not sent.
fn unreachable(e: CallError) -> CallError {
    match e {
        CallError::Transport { message, .. } => CallError::Unreachable(message),
        other => other,
    }
}

/// Describes a failed reqwest exchange without the URL's query or any header.
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
    match describe(kind, &e) {
        CallError::Transport { message, .. } if e.is_connect() => CallError::Unreachable(message),
        CallError::Transport { message, .. } => CallError::Transport { message, timeout },
        other => other,
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn the_host_header_names_the_port_only_when_it_is_not_the_scheme_s_own() {
        let host = |u: &str| host_port(&u.parse::<http::Uri>().unwrap());
        assert_eq!(
            host("https://api.partnercenter.microsoft.com/v1"),
            "api.partnercenter.microsoft.com"
        );
        assert_eq!(host("https://example.test:443/v1"), "example.test");
        assert_eq!(host("http://example.test:80/v1"), "example.test");
        assert_eq!(host("http://127.0.0.1:18090/v1"), "127.0.0.1:18090");
        assert_eq!(host("http://[::1]:8080/v1"), "[::1]:8080");
        assert_eq!(host("https://example.test:8443/pc/v1"), "example.test:8443");
    }

    #[test]
    fn a_direct_call_names_its_path_after_the_base_path_and_the_host_apart() {
        let t = HttpTransport::new("http://127.0.0.1:9/pc/", Duration::from_secs(1)).unwrap();
        let req = Request {
            method: Method::Get,
            path: "/customers/a/profiles/billing".into(),
            body: None,
            if_match: None,
        };
        let ids = CallIds {
            request_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
        };
        let call = t.request(&req, ids, "token").unwrap();
        assert_eq!(call.uri(), "/pc/v1/customers/a/profiles/billing");
        assert_eq!(call.headers()[http::header::HOST], "127.0.0.1:9");
    }

    #[test]
    fn a_call_url_is_the_base_its_path_and_v1() {
        let t = HttpTransport::new("https://example.test/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            t.url("/customers/a/profiles/billing"),
            "https://example.test/v1/customers/a/profiles/billing"
        );
        let t = HttpTransport::new("http://127.0.0.1:9/pc/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            t.url("/servicerequests/616122292874576"),
            "http://127.0.0.1:9/pc/v1/servicerequests/616122292874576"
        );
    }
}
