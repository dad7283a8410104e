//! The pooled hyper-util client: keep-alive connections, TLS with the webpki roots (and
//! an upstream's own CAs, `ca_file`), HTTP/2 where the server offers it by ALPN, the
//! connect timeout, new connections paced (`paced`). It sets `Host` (HTTP/1.1) or
//! `:authority` (HTTP/2) from the request's absolute URI and sends the request line in
//! origin form. Upstreams reach it through `upstream::UpstreamConnections`, webhooks
//! directly.

use std::time::Duration;

use bytes::Bytes;
use cutover_config::MAX_CONNECTING;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::cap::{ConnectionCaps, OpenCap};
use super::paced::Paced;

pub type UpstreamClient = Client<Paced<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// A client with the default pacing and only the web roots trusted, for webhooks.
pub fn build(connect_timeout: Duration) -> UpstreamClient {
    let caps = ConnectionCaps { connecting: MAX_CONNECTING, open: None, open_wait: Duration::ZERO };
    build_paced(connect_timeout, caps, &[]).0
}

/// A client that opens at most `caps.connecting` connections at once, keeps at most
/// `caps.open` open, and trusts `extra_roots` besides the web roots; and the places and
/// counts of its connections.
pub fn build_paced(
    connect_timeout: Duration,
    caps: ConnectionCaps,
    extra_roots: &[CertificateDer<'static>],
) -> (UpstreamClient, OpenCap) {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(extra_roots))
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let paced = Paced::new(https, caps);
    let cap = paced.open_cap().clone();
    let client = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(paced);
    (client, cap)
}

/// TLS 1.2 and 1.3 with ring, trusting the webpki roots (Mozilla's, built in: the
/// system's trust store is not read) and `extra_roots`.
fn tls_config(extra_roots: &[CertificateDer<'static>]) -> ClientConfig {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    // Each certificate was parsed as PEM when the config was loaded; one that is not a
    // CA rustls can use is skipped here, and the upstream's TLS errors name the issuer.
    let (added, ignored) = roots.add_parsable_certificates(extra_roots.iter().cloned());
    if ignored > 0 {
        tracing::warn!(added, ignored, "some ca_file certificates cannot be used as trust anchors");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // ring supports the default versions; should it not, the process's default
        // provider (ring too: the only one built in) gets the same roots.
        Err(_) => ClientConfig::builder().with_root_certificates(roots).with_no_client_auth(),
    }
}
