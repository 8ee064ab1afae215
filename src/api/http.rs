//! Sending one call over HTTP with the headers Partner Center expects.
//!
//! Every call pcbulk makes — to the service, through a proxy, for a token — goes out on one client
//! built by [`client`]: reqwest (hyper's pooled connections, rustls), trusting the operating
//! system's store (or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) plus the web PKI roots, speaking
//! HTTP/2 wherever TLS offers it (ALPN) and HTTP/1.1 elsewhere, going through the proxy the
//! environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus `NO_PROXY`), and never
//! following a redirect: a 3xx comes back as the answer, and the row fails naming it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
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

/// How long a connection may sit unused before it is closed rather than used again.
const IDLE: Duration = Duration::from_secs(90);

/// The TLS settings every client shares, made once per process: reading the system's store takes
/// milliseconds, and a client is made again after a kept connection fails.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    static TLS: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(make_tls_config).clone()
}

fn make_tls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // The system's store, or what SSL_CERT_FILE / SSL_CERT_DIR name instead: a corporate CA or a
    // TLS-inspecting proxy's is there, not among the web PKI roots.
    let native = rustls_native_certs::load_native_certs();
    named_store_is_usable(&native)?;
    for e in &native.errors {
        tracing::warn!("a trusted certificate could not be read: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("{added} certificates trusted beside the web PKI roots");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// An `SSL_CERT_FILE` or `SSL_CERT_DIR` the admin set replaces the system's store: one that cannot
/// be read, or a file with no certificate in it, would leave only the web PKI roots and fail every
/// call through the corporate proxy it was set for, named as an untrusted certificate. Refused
/// before anything is sent, naming the variable.
fn named_store_is_usable(native: &rustls_native_certs::CertificateResult) -> Result<(), String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let fix = "name a PEM file (or a directory of them) holding the CA to trust, or unset it";
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let f = std::path::PathBuf::from(f);
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(&f)
            .map_err(|e| format!("SSL_CERT_FILE={} cannot be read ({e}): {fix}", f.display()))?
            .filter_map(Result::ok)
            .collect();
        // A PEM block is not yet a certificate: one a trust store would take must be in it.
        let (usable, _) = rustls::RootCertStore::empty().add_parsable_certificates(certs);
        if usable == 0 {
            return Err(format!(
                "SSL_CERT_FILE={} holds no PEM certificate: {fix}",
                f.display()
            ));
        }
    }
    match native.errors.first() {
        Some(e) => Err(format!(
            "the certificates SSL_CERT_FILE/SSL_CERT_DIR name cannot be read ({e}): {fix}"
        )),
        None => Ok(()),
    }
}

/// How a [`client`] keeps its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Kept for the next call when an answer has been read.
    Kept,
    /// Closed after each call: every call gets a new connection.
    Fresh,
}

/// The one HTTP client configuration, for calls to `target` (a base URL or a token URL). A loopback
/// target (the sandbox, a test server) goes through a proxy only when the proxy itself is on this
/// machine: a proxy elsewhere cannot reach this machine's loopback, and `NO_PROXY` often forgets to
/// say so.
fn builder(target: &str, connect_timeout: Duration) -> anyhow::Result<reqwest::ClientBuilder> {
    let tls = tls_config().map_err(anyhow::Error::msg)?;
    let b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // A redirect is never followed: it would send the call, its token and its body to another
        // address. It comes back as the answer, and the row fails.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(IDLE);
    let env = Matcher::from_env();
    let Some(found) = proxy_for(target, &env) else {
        return Ok(b.no_proxy());
    };
    let proxy = reqwest::Proxy::all(found.uri().to_string())?;
    Ok(b.proxy(match found.basic_auth() {
        Some(auth) => proxy.custom_http_auth(auth.clone()),
        None => proxy,
    }))
}

/// A client for calls to `target` (see [`builder`]).
pub fn client(
    target: &str,
    connect_timeout: Duration,
    pooling: Pooling,
) -> anyhow::Result<reqwest::Client> {
    let b = builder(target, connect_timeout)?;
    let b = match pooling {
        Pooling::Kept => b,
        Pooling::Fresh => b.pool_max_idle_per_host(0),
    };
    Ok(b.build()?)
}

/// The client for token requests: [`builder`]'s, with a deadline on the whole request.
pub fn token_client(token_url: &str) -> anyhow::Result<reqwest::Client> {
    let b = builder(token_url, Duration::from_secs(10))?;
    Ok(b.timeout(Duration::from_secs(30)).build()?)
}

/// The proxy calls to `target` go through, as the environment names it (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, minus `NO_PROXY`): one target, so decided once. A loopback target (the
/// sandbox, a test server) never goes through a proxy: a proxy elsewhere cannot reach this
/// machine's loopback, and `NO_PROXY` often forgets to say so.
fn proxy_for(target: &str, env: &Matcher) -> Option<Intercept> {
    if crate::target::is_loopback(target) {
        return None;
    }
    env.intercept(&target.parse::<http::Uri>().ok()?)
}

/// The proxy calls to `target` go through, as messages name it: its host and port (never the user
/// and password a proxy URL may hold) and the variable that names it.
fn proxy_shown(target: &str) -> Option<String> {
    let found = proxy_for(target, &Matcher::from_env())?;
    let uri = found.uri();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => 1080,
    });
    let variable = proxy_variable(&target.parse().ok()?);
    Some(format!(
        "the proxy {}:{port} that {variable} names",
        uri.host()?
    ))
}

/// Which variable names the proxy for `dst`, as hyper's matcher reads them: the scheme's own
/// (upper case first) when it holds a proxy URL, else `ALL_PROXY` / `all_proxy`.
fn proxy_variable(dst: &http::Uri) -> &'static str {
    let own: [&'static str; 2] = match dst.scheme_str() {
        Some("https") => ["HTTPS_PROXY", "https_proxy"],
        _ => ["HTTP_PROXY", "http_proxy"],
    };
    let first_set = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|n| std::env::var(n).ok().map(|v| (n, v)))
    };
    match first_set(own) {
        Some((name, v))
            if Matcher::builder()
                .http(&v)
                .https(&v)
                .build()
                .intercept(dst)
                .is_some() =>
        {
            name
        }
        _ => first_set(["ALL_PROXY", "all_proxy"]).map_or("ALL_PROXY", |(n, _)| n),
    }
}

/// How long calls go on new connections only after a kept one failed under a call.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The real transport.
pub struct HttpTransport {
    /// `{base}` as given: what a client is made again for.
    base: String,
    /// The proxy calls go through, as messages name it ([`proxy_shown`]).
    proxy: Option<String>,
    connect_timeout: Duration,
    /// Calls on kept connections. Made again (its idle connections dropped) when the service
    /// closed a kept connection under a call: the others, as old, are likely closed too.
    kept: Mutex<reqwest::Client>,
    /// Calls on new connections: a read sent again after its kept connection was lost, and every
    /// call for [`FRESH_FOR`] after that, which a service that closes connections soon after each
    /// answer (without saying so) needs.
    fresh: reqwest::Client,
    fresh_until: Mutex<Option<Instant>>,
    /// Writes (method and path) a kept connection lost under them: the dispatcher looks for each,
    /// and the one it sends again goes on a new connection, not on another kept one the service
    /// may close the same way (each such resend would be lost in turn).
    lost_writes: Mutex<std::collections::HashSet<(Method, String)>>,
    timeout: Duration,
    /// `{base}/v1`, e.g. `https://api.partnercenter.microsoft.com/v1`; each call appends its path.
    prefix: String,
    /// `prefix` parsed once: a call's URL is this one with its path set, not a whole URL parsed
    /// again (scheme, host, port) on every call.
    prefix_url: url::Url,
    /// Every header that is the same on every call, `Authorization` included, built once per token
    /// rather than once per call: a call clones it and adds its ids.
    headers: Mutex<Option<(String, http::HeaderMap)>>,
}

const USER_AGENT: &str = concat!("pcbulk/", env!("CARGO_PKG_VERSION"));
const MS_CONTRACT_VERSION: HeaderName = HeaderName::from_static("ms-contract-version");
const MS_REQUESTID: HeaderName = HeaderName::from_static("ms-requestid");
const MS_CORRELATIONID: HeaderName = HeaderName::from_static("ms-correlationid");
const MS_CONTINUATION_TOKEN: HeaderName = HeaderName::from_static("ms-continuationtoken");
const X_LOCALE: HeaderName = HeaderName::from_static("x-locale");
const MS_PARTNERCENTER_APPLICATION: HeaderName =
    HeaderName::from_static("ms-partnercenter-application");

/// A call that got no answer, and whether it may have reached the service (it went out, and the
/// connection was lost before the answer came) rather than never left (no connection).
struct Failed {
    error: CallError,
    lost: bool,
}

impl From<CallError> for Failed {
    fn from(error: CallError) -> Self {
        Failed { error, lost: false }
    }
}

impl HttpTransport {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The base URL is checked (scheme, host) before it comes here; this parse only normalises.
        let base = url::Url::parse(base.trim_end_matches('/'))?;
        let prefix = format!("{}/v1", base.as_str().trim_end_matches('/'));
        let prefix_url = url::Url::parse(&prefix)?;
        let base = base.as_str().to_owned();
        let connect_timeout = Duration::from_secs(10).min(timeout);
        Ok(HttpTransport {
            kept: Mutex::new(client(&base, connect_timeout, Pooling::Kept)?),
            fresh: client(&base, connect_timeout, Pooling::Fresh)?,
            proxy: proxy_shown(&base),
            base,
            connect_timeout,
            fresh_until: Mutex::new(None),
            lost_writes: Mutex::new(std::collections::HashSet::new()),
            timeout,
            prefix,
            prefix_url,
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

    /// The URL of a call's path (which may carry a query): [`Self::url`], parsed.
    fn call_url(&self, path: &str) -> url::Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.prefix_url.clone();
        let mut full = String::with_capacity(url.path().len() + path.len());
        full.push_str(url.path());
        full.push_str(path);
        url.set_path(&full);
        url.set_query(query);
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
        *last = Some((token.to_owned(), h.clone()));
        Ok(h)
    }

    /// A call as it goes on the wire: every header the reference lists, the body as JSON.
    pub fn request(
        &self,
        req: &Request,
        ids: CallIds,
        token: &str,
    ) -> Result<reqwest::Request, CallError> {
        let method = match req.method {
            Method::Get => http::Method::GET,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
        };
        let mut out = reqwest::Request::new(method, self.call_url(&req.path));
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
        if let Some(token) = &req.continuation {
            let v = HeaderValue::try_from(token.as_str()).map_err(|_| CallError::Transport {
                message: "the continuation token holds characters a header cannot carry".into(),
                timeout: false,
            })?;
            h.insert(MS_CONTINUATION_TOKEN, v);
        }
        if let Some(body) = &req.body {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let body = Bytes::from(serde_json::to_vec(body).expect("a JSON value serializes"));
            *out.body_mut() = Some(body.into());
        }
        Ok(out)
    }

    /// The client for the next call: kept connections, unless one was lost under a call just now.
    fn pick(&self) -> (reqwest::Client, Pooling) {
        let fresh_until = *self.fresh_until.lock().unwrap_or_else(|p| p.into_inner());
        if fresh_until.is_some_and(|t| Instant::now() < t) {
            return (self.fresh.clone(), Pooling::Fresh);
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (kept, Pooling::Kept)
    }

    /// Drops every idle connection (a new client in place of the old) and sends calls on new
    /// connections for a while: after one the service closed under a call, the others, as old, are
    /// likely closed too.
    fn forget_idle(&self) {
        let mut until = self.fresh_until.lock().unwrap_or_else(|p| p.into_inner());
        if until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        *until = Some(Instant::now() + FRESH_FOR);
        drop(until);
        match client(&self.base, self.connect_timeout, Pooling::Kept) {
            Ok(c) => *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = c,
            Err(e) => tracing::debug!("the client was not made again: {e:#}"),
        }
    }

    /// Sends one call and reads its answer, bounded by [`MAX_BODY`].
    async fn exchange(
        &self,
        client: &reqwest::Client,
        call: reqwest::Request,
    ) -> Result<Response, Failed> {
        let resp = client.execute(call).await.map_err(|e| Failed {
            lost: !e.is_connect() && !e.is_timeout(),
            error: transport_error_via(e, self.proxy.as_deref()),
        })?;
        // An answer that says it is too large is refused before it is waited for.
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large().into());
        }
        let mut answer = answer(resp.status(), resp.headers(), Vec::new());
        answer.body = read_bounded_reqwest(resp).await?;
        Ok(answer)
    }

    /// Whether `req` is a write a kept connection lost, which the dispatcher now sends again
    /// (forgotten here: the next loss marks it anew). The set is empty but after such a loss, so
    /// a call copies its path only then.
    fn take_lost_write(&self, req: &Request) -> bool {
        let mut lost = self.lost_writes.lock().unwrap_or_else(|p| p.into_inner());
        !lost.is_empty() && lost.remove(&(req.method, req.path.clone()))
    }

    /// One attempt, and once more on a new connection for a read that a kept connection lost: the
    /// service may have closed the connection as the read went out, and reading twice changes
    /// nothing. A write so lost is left to the dispatcher, which looks before it sends again.
    async fn attempt(
        &self,
        req: &Request,
        ids: CallIds,
        token: &str,
    ) -> Result<Response, CallError> {
        let resent = req.method != Method::Get && self.take_lost_write(req);
        let (client, pooling) = match resent {
            true => (self.fresh.clone(), Pooling::Fresh),
            false => self.pick(),
        };
        match self.exchange(&client, self.request(req, ids, token)?).await {
            Err(f) if f.lost && pooling == Pooling::Kept => {
                self.forget_idle();
                if req.method != Method::Get {
                    (self.lost_writes.lock())
                        .unwrap_or_else(|p| p.into_inner())
                        .insert((req.method, req.path.clone()));
                    return Err(f.error);
                }
                let again = self.request(req, ids, token)?;
                self.exchange(&self.fresh, again).await.map_err(|f| f.error)
            }
            answer => answer.map_err(|f| f.error),
        }
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
            match tokio::time::timeout(self.timeout, self.attempt(req, ids, token)).await {
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
    } else if let Some(problem) = certificate_problem(e) {
        format!("{kind}: {problem}")
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

/// How a call that met a certificate this machine does not trust begins its message: no retry
/// can fix that, so the dispatcher stops the run at the first (see `Dispatcher::note_reachability`).
pub const UNTRUSTED: &str = "the service's TLS certificate is not trusted";

/// What to do about a certificate this machine does not trust, when that is what `e` comes from.
fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        // An `io::Error` names its inner error in its text but skips it in its chain.
        let mut inner = s;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        if let Some(rustls::Error::InvalidCertificate(why)) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(format!(
                "{UNTRUSTED} ({why:?}): its issuer is neither in \
                 this machine's trust store nor among the web PKI roots; if a corporate CA or a \
                 TLS-inspecting proxy issued it, set SSL_CERT_FILE to that CA's PEM file"
            ));
        }
        src = s.source();
    }
    None
}

/// Describes a failed exchange without the URL's query or any header. A call that could not
/// connect was not sent.
fn transport_error(e: reqwest::Error) -> CallError {
    transport_error_via(e, None)
}

/// [`transport_error`] for a call that went through `proxy` ([`proxy_shown`]): one that could not
/// connect names the proxy as the one to check, since the service itself was never reached.
fn transport_error_via(e: reqwest::Error, proxy: Option<&str>) -> CallError {
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
    let local = super::error::os_resource(&e).is_some() || certificate_problem(&e).is_some();
    let proxy = proxy.filter(|_| e.is_connect() && !local);
    let kind = match proxy {
        Some(p) if timeout => format!("could not connect in time to the service through {p}"),
        Some(p) => format!("could not connect to the service through {p}"),
        None => kind.to_owned(),
    };
    match (describe(&kind, &e), proxy) {
        (CallError::Transport { message, .. }, Some(_)) => CallError::Unreachable(format!(
            "{message}; check that proxy, or set NO_PROXY to go around it"
        )),
        (CallError::Transport { message, .. }, None) if e.is_connect() => {
            CallError::Unreachable(message)
        }
        (CallError::Transport { message, .. }, None) => CallError::Transport { message, timeout },
        (other, _) => other,
    }
}

/// A token request to `token_url` that got no answer, said as [`transport_error`] says a call's.
pub(crate) fn token_error(e: reqwest::Error, token_url: &str) -> CallError {
    let timeout = e.is_timeout();
    let message = match transport_error_via(e, proxy_shown(token_url).as_deref()) {
        CallError::Transport { message, .. } | CallError::Unreachable(message) => message,
        other => other.to_string(),
    };
    CallError::Transport {
        message: message.replacen("the service", "the token authority", 1),
        timeout,
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    fn ids() -> CallIds {
        CallIds {
            request_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
        }
    }

    #[test]
    fn a_call_goes_to_the_base_path_and_v1_with_the_reference_s_headers() {
        let t = HttpTransport::new("http://127.0.0.1:9/pc/", Duration::from_secs(1)).unwrap();
        let req =
            Request::put("/customers/a/profiles/billing", serde_json::json!({})).if_match("abc");
        let call = t.request(&req, ids(), "token").unwrap();
        assert_eq!(
            call.url().as_str(),
            "http://127.0.0.1:9/pc/v1/customers/a/profiles/billing"
        );
        let h = call.headers();
        assert_eq!(h[http::header::IF_MATCH], "\"abc\"");
        assert_eq!(h[MS_CONTRACT_VERSION], "v1");
        assert_eq!(h[http::header::CONTENT_TYPE], "application/json");
        assert!(h[http::header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn the_proxy_is_the_one_for_the_scheme_unless_no_proxy_or_loopback_says_direct() {
        let env = Matcher::builder()
            .https("http://proxy.corp.test:3128")
            .http("http://plain.corp.test:8080")
            .no("pcbulk-sandbox.test, .internal.test")
            .build();
        let via = |t: &str| proxy_for(t, &env).map(|i| i.uri().to_string());
        assert_eq!(
            via("https://api.partnercenter.microsoft.com").as_deref(),
            Some("http://proxy.corp.test:3128/")
        );
        assert_eq!(
            via("http://service.example.test:8080").as_deref(),
            Some("http://plain.corp.test:8080/")
        );
        assert_eq!(
            via("https://pcbulk-sandbox.test:8443"),
            None,
            "NO_PROXY names it"
        );
        assert_eq!(
            via("https://pc.internal.test"),
            None,
            "NO_PROXY names its domain"
        );
        assert_eq!(via("https://127.0.0.1:8443"), None, "loopback");
        assert_eq!(via("https://localhost:8443"), None, "loopback");
    }

    #[test]
    fn a_call_url_set_on_the_parsed_prefix_is_the_url_parsed_whole() {
        for base in ["https://example.test/", "http://127.0.0.1:9/pc/"] {
            let t = HttpTransport::new(base, Duration::from_secs(1)).unwrap();
            for path in [
                "/customers/a/profiles/billing",
                "/customers?size=100&seek=a b",
                "/customers/a b/subscriptions/%41/../x",
                "/servicerequests/616122292874576?",
            ] {
                let whole = url::Url::parse(&t.url(path)).unwrap();
                assert_eq!(t.call_url(path), whole, "{base} {path}");
            }
        }
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
