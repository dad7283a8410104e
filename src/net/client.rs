//! The pooled HTTP client of one upstream: keep-alive connections, TLS with the
//! webpki roots, HTTP/2 where the upstream offers it by ALPN, and the upstream's
//! connect timeout, new connections paced (`paced`). One per upstream, built at start-up
//! (and again on a reload that changes how it connects).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::paced::Paced;
use crate::config::{MAX_CONNECTING, Upstream};

pub type UpstreamClient = Client<Paced<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// The client of one upstream: its connect timeout, and at most `max_connecting` new
/// connections being opened at once (`upstreams.*.max_connecting`, see `paced`).
pub fn for_upstream(upstream: &Upstream) -> UpstreamClient {
    build_paced(upstream.timeouts.connect, upstream.max_connecting)
}

/// A client with the default pacing, for webhooks.
pub fn build(connect_timeout: Duration) -> UpstreamClient {
    build_paced(connect_timeout, MAX_CONNECTING)
}

fn build_paced(connect_timeout: Duration, max_connecting: usize) -> UpstreamClient {
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
        .build(Paced::new(https, max_connecting))
}
