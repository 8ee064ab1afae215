//! HTTPS for the sandbox (`pcbulk sandbox --tls --tls-ca-out PATH`): a certificate authority and a
//! server certificate it signed, both made at start (rcgen) and never stored but for the CA's
//! certificate, which a client is told to trust (`SSL_CERT_FILE=PATH`). Connections speak HTTP/2
//! or HTTP/1.1, as the client's ALPN asks: the production TLS path, end to end, on loopback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What `--tls` asks for.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Where the CA's certificate (PEM) is written.
    pub ca_out: PathBuf,
    /// Names the server certificate holds beside `127.0.0.1`, `::1` and `localhost` (`--tls-name`):
    /// for a client that reaches the sandbox by another name, through a proxy that maps it.
    pub names: Vec<String>,
}

/// What to do when the CA's path is refused (see [`crate::fsafe`]).
const CA_FIX: &str = "give --tls-ca-out another path";

/// The server's TLS settings, after the CA's certificate was written to `tls.ca_out`.
pub fn server_config(tls: &Tls) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let made = certificates(&tls.names).map_err(|e| {
        std::io::Error::other(format!("cannot make the sandbox's certificate: {e}"))
    })?;
    write_ca(&tls.ca_out, made.ca_pem.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(made.chain, made.key)
        })
        .map_err(|e| std::io::Error::other(format!("cannot set up TLS: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA's certificate, readable by its owner only and never written through a link, as every
/// file pcbulk writes.
fn write_ca(path: &Path, pem: &[u8]) -> std::io::Result<()> {
    crate::fsafe::replace(path, pem, crate::fsafe::Access::Owner, CA_FIX).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot write the CA certificate to {}: {e}", path.display()),
        )
    })
}

struct Made {
    ca_pem: String,
    /// The server's certificate, then the CA's.
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// A CA, and a server certificate it signed for loopback and `names`. A certificate that is its own
/// CA would do for some clients, but rustls (rightly) refuses a CA certificate as a server's.
fn certificates(names: &[String]) -> Result<Made, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "pcbulk sandbox CA (made at start)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut all = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ];
    all.extend(names.iter().cloned());
    let mut leaf = CertificateParams::new(all)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "pcbulk sandbox");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
    Ok(Made {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    })
}

/// Calls served, by HTTP version (`GET /_sandbox/http-versions`): how a test tells that HTTP/2 was
/// negotiated.
#[derive(Debug, Default)]
pub struct Versions {
    http1: AtomicU64,
    http2: AtomicU64,
}

impl Versions {
    pub fn count(&self, version: http::Version) {
        let n = match version {
            http::Version::HTTP_2 => &self.http2,
            _ => &self.http1,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "HTTP/1.1": self.http1.load(Ordering::Relaxed),
            "HTTP/2": self.http2.load(Ordering::Relaxed),
        })
    }
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until `stopped`: each connection's handshake and calls on a
/// task of their own.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    mut stopped: oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let tcp = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors, or a connection reset before it was taken: the next.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
