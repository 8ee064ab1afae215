//! `pcbulk sandbox`: an HTTP server on loopback that behaves like Partner Center as the reference
//! describes it — state, validation, error bodies, idempotency by MS-RequestId, stale ETags, tokens.
//!
//! Written from `shared/reference/partner-center-api.md`, not from the client: nothing here uses the
//! client's request, response or parsing code (`crate::api`, `crate::ops`), so a misreading on one side
//! cannot hide behind the same misreading on the other.

mod catalog;
pub mod faults;
mod routes;
pub mod tenant;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use routes::Shared;

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub seed: u64,
    /// Lifetime of access tokens issued by the token endpoint.
    pub token_lifetime: Duration,
    /// How long a refresh token stays usable after a newer one was issued.
    pub refresh_grace: Duration,
    /// Extra plain subscriptions for Contoso, for load tests.
    pub extra_subscriptions: usize,
    /// Extra customers with billing profiles, for load tests.
    pub extra_customers: usize,
    /// Subscriptions each extra customer gets.
    pub subscriptions_per_customer: usize,
    /// The most items a page of a paged listing holds (a `size` asking for fewer is honoured).
    pub page_size: usize,
    /// Write `links.next.uri` with `/v1/` in it, alternately `/v1/customers?…` and
    /// `v1/customers?…`, as some answers in the wild do.
    pub next_with_v1: bool,
    /// Throttling, latency and faults.
    pub knobs: faults::Knobs,
    /// Whether a write sent again under an MS-RequestId already seen gets the first call's answer
    /// (the reference's idempotency) or is applied again, as by a service that does not recognise
    /// retries.
    pub replay: bool,
    /// What the service refuses that a kind simulator would let pass.
    pub rules: Rules,
    /// HTTPS with a certificate made at start (`--tls`), instead of plain HTTP.
    pub tls: Option<tls::Tls>,
}

/// Which support-profile path serves which method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfilePaths {
    /// Both `/profiles/support` and `/profiles/supportprofile` serve GET and PUT: the reference says
    /// a client must work with either.
    Both,
    /// As the reference pages have it: GET on `/profiles/support`, PUT on `/profiles/supportprofile`.
    Pages,
    /// As the SDKs have it: GET and PUT on `/profiles/support` only.
    Sdk,
}

/// The reference's rules the sandbox can enforce. Each is on where the reference speaks and off
/// where it is silent (see `Rules::default`).
#[derive(Debug, Clone)]
pub struct Rules {
    /// Which support-profile path serves which method (reference silent on which is right: both).
    pub profile_paths: ProfilePaths,
    /// Refuse an If-Match that is not a quoted ETag ("If-Match: \"<etag>\" (quoted)").
    pub quoted_if_match: bool,
    /// 403 for app-only tokens on the App+User-only operations (900329) and for customers the
    /// partner holds no delegated role over (900308).
    pub token_kinds: bool,
    /// Refuse billing and support-profile bodies that break the documented limits or leave out
    /// fields the profile has ("a PUT is a full replacement"), instead of wiping those fields.
    pub full_bodies: bool,
    /// Answer 502, 503 and 504 with a gateway's HTML or empty body instead of Partner Center's
    /// JSON error (reference silent: off).
    pub gateway_bodies: bool,
    /// Let a subscription PATCH change `partnerId`, the reseller of record (the reference does not
    /// show it writable: off, and a changed `partnerId` is refused).
    pub writable_partner_id: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            profile_paths: ProfilePaths::Both,
            quoted_if_match: true,
            token_kinds: true,
            full_bodies: true,
            gateway_bodies: false,
            writable_partner_id: false,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            token_lifetime: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(60),
            extra_subscriptions: 0,
            extra_customers: 0,
            subscriptions_per_customer: 0,
            page_size: 5,
            next_with_v1: false,
            knobs: faults::Knobs::default(),
            replay: true,
            rules: Rules::default(),
            tls: None,
        }
    }
}

/// A sandbox serving in the background of this process.
pub struct Running {
    pub addr: SocketAddr,
    /// `https` with `--tls`, else `http`.
    scheme: &'static str,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The base URL to give the client (`--base-url`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The tenant as `GET /_sandbox/state` shows it.
    pub fn state(&self) -> Value {
        self.shared.state_json()
    }

    /// Every change applied so far, one sentence each.
    pub fn changes(&self) -> Vec<String> {
        self.shared.changes()
    }

    /// Writes applied so far, by `"<METHOD> /v1/<path>"`, as `GET /_sandbox/writes` shows them.
    pub fn writes(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.writes()
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

/// Binds and starts serving; returns once the socket is listening.
pub async fn start(opts: Options) -> std::io::Result<Running> {
    if !opts.listen.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the sandbox listens on loopback only (127.0.0.1 or [::1]), not {}",
                opts.listen
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    // The CA is written before `start` returns, so before the sandbox says where it listens.
    let tls = opts.tls.as_ref().map(tls::server_config).transpose()?;
    let shared = Arc::new(Shared::new(opts));
    let app = with_versions(routes::router(Arc::clone(&shared)));
    let (stop, stopped) = oneshot::channel::<()>();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match tls {
        Some(config) => tokio::spawn(tls::serve(listener, app, config, stopped)),
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        }),
    };
    Ok(Running {
        addr,
        scheme,
        shared,
        stop: Some(stop),
        task,
    })
}

/// `app`, counting the calls it serves by HTTP version (the sandbox's own `/_sandbox` pages aside),
/// with `GET /_sandbox/http-versions` showing the counts.
fn with_versions(app: axum::Router) -> axum::Router {
    let versions = Arc::new(tls::Versions::default());
    let shown = Arc::clone(&versions);
    app.route(
        "/_sandbox/http-versions",
        axum::routing::get(move || async move { axum::Json(shown.json()) }),
    )
    .layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            if !req.uri().path().starts_with("/_sandbox") {
                versions.count(req.version());
            }
            next.run(req)
        },
    ))
}
