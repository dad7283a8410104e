//! The pooled HTTP client of one upstream: keep-alive connections, TLS with the
//! webpki roots, HTTP/2 where the upstream offers it by ALPN, and the upstream's
//! connect timeout, new connections paced (`paced`). One per upstream, built at start-up.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::paced::Paced;

pub type UpstreamClient = Client<Paced<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// New connections to one upstream being established at once, at most: a burst of
/// streams queues briefly for connections (and reuses those that free up) rather than
/// flooding the upstream's accept queue into connect timeouts.
const CONNECTS_AT_ONCE: usize = 32;

pub fn build(connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .unwrap_or_else(|_| HttpsConnectorBuilder::new().with_webpki_roots())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(Paced::new(https, CONNECTS_AT_ONCE))
}
