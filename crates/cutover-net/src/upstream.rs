//! The one way cutover talks to an upstream: every call to it — proxied traffic, shadow
//! copies, health probes, `cutover validate` — goes through its `UpstreamConnections`, so
//! an upstream that refuses what the gateway sends is refused the same way whichever
//! caller sent it. Plain HTTP goes through the in-task HTTP/1 pool (`pool`), TLS through
//! the hyper-util client (`client`), which negotiates HTTP/2 by ALPN. Both send the
//! request line in origin form with the upstream's `Host` (`:authority` on HTTP/2).

use std::sync::Arc;

use bytes::Bytes;
use cutover_config::Upstream;
use http::{HeaderValue, Request, Response, uri::Authority, uri::Scheme};
use http_body_util::Full;
use tokio::time::Instant;

use super::cap::{ConnectionCaps, OpenCap};
use super::client::{self, UpstreamClient};
use super::pool::{Http1Pool, SendError, UpstreamBody};

/// The connections of one upstream. Cloning shares them.
#[derive(Clone)]
pub enum UpstreamConnections {
    /// Plain HTTP: connections driven in the caller's task.
    Plain(Arc<Http1Pool>),
    /// TLS: hyper-util's client, HTTP/2 where the upstream offers it, and the places and
    /// counts of its connections.
    Tls(Arc<UpstreamClient>, OpenCap),
}

/// How an upstream's connections stand, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Open or being opened now, idle ones included.
    pub open: usize,
    /// Times so far a request (or, over TLS, a connect) found `max_connections` reached
    /// and waited: for a connection to free up, or for a place to open its own.
    pub waited: u64,
}

impl UpstreamConnections {
    pub fn for_upstream(upstream: &Upstream) -> UpstreamConnections {
        UpstreamConnections::built(upstream, upstream.max_connections)
    }

    /// The connections of an upstream's health probes: its traffic's when it has no
    /// `max_connections`; else connections of their own beside the cap, built the same
    /// way, so that an upstream busy up to its cap is not taken for a down one while a
    /// probe waits behind its traffic (the upstream then sees one connection more).
    pub fn for_probes(upstream: &Upstream, traffic: &UpstreamConnections) -> UpstreamConnections {
        match upstream.max_connections {
            None => traffic.clone(),
            Some(_) => UpstreamConnections::built(upstream, None),
        }
    }

    fn built(upstream: &Upstream, open: Option<usize>) -> UpstreamConnections {
        // A request waits for a connection within its first-byte deadline, and so does a
        // connect for a place under the cap.
        let open_wait = upstream.timeouts.first_byte.min(upstream.timeouts.total);
        let caps = ConnectionCaps { connecting: upstream.max_connecting, open, open_wait };
        if upstream.scheme == Scheme::HTTP {
            let port = upstream.authority.port_u16().unwrap_or(80);
            let address = format!("{}:{port}", upstream.authority.host());
            let host = host_header(&upstream.scheme, &upstream.authority);
            let pool = Http1Pool::new(address, host, upstream.timeouts.connect, caps);
            return UpstreamConnections::Plain(Arc::new(pool));
        }
        let (client, cap) = client::build_paced(upstream.timeouts.connect, caps, &upstream.extra_roots);
        UpstreamConnections::Tls(Arc::new(client), cap)
    }

    /// Whether connections built for `before` serve `after` as well (a reload that
    /// changes none of what they were built from keeps them, idle connections included).
    pub fn serve_both(before: &Upstream, after: &Upstream) -> bool {
        before.scheme == after.scheme
            && before.authority == after.authority
            && before.timeouts.connect == after.timeouts.connect
            && before.max_connecting == after.max_connecting
            && before.max_connections == after.max_connections
            && before.extra_roots == after.extra_roots
    }

    /// How its connections stand now.
    pub fn counts(&self) -> ConnectionCounts {
        let cap = match self {
            UpstreamConnections::Plain(pool) => pool.open_cap(),
            UpstreamConnections::Tls(_, cap) => cap,
        };
        ConnectionCounts { open: cap.open(), waited: cap.waited() }
    }

    /// Sends `request`, whose URI is absolute (the upstream's scheme and authority), and
    /// returns the response head with its body still to be read. With `head_by`, the head
    /// is due by then, a wait for a connection included (`SendError::HeadTimeout`).
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        head_by: Option<Instant>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        match self {
            UpstreamConnections::Plain(pool) => {
                pool.send(request, head_by).await.map(|response| response.map(UpstreamBody::Pooled))
            }
            UpstreamConnections::Tls(client, _) => {
                let sent = client.request(request);
                let outcome = match head_by {
                    Some(deadline) => {
                        tokio::time::timeout_at(deadline, sent).await.map_err(|_| SendError::HeadTimeout)?
                    }
                    None => sent.await,
                };
                match outcome {
                    Ok(response) => Ok(response.map(UpstreamBody::Shared)),
                    Err(error) if error.is_connect() => Err(SendError::Connect(error.into())),
                    Err(error) => Err(SendError::Broken(error.into())),
                }
            }
        }
    }
}

/// `Host` for an authority: its port only when it is not the scheme's default (RFC 9110
/// §7.2: a server may compare it with what it serves, and `host:80` is not `host`).
pub fn host_header(scheme: &Scheme, authority: &Authority) -> HeaderValue {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    HeaderValue::from_str(&host).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(scheme: Scheme, authority: &str) -> String {
        let authority: Authority = authority.parse().unwrap();
        host_header(&scheme, &authority).to_str().unwrap().to_owned()
    }

    #[test]
    fn host_names_the_port_only_when_it_is_not_the_schemes_default() {
        assert_eq!(host(Scheme::HTTP, "127.0.0.1:8001"), "127.0.0.1:8001");
        assert_eq!(host(Scheme::HTTP, "relay.internal:80"), "relay.internal");
        assert_eq!(host(Scheme::HTTP, "relay.internal"), "relay.internal");
        assert_eq!(host(Scheme::HTTPS, "relay.internal:443"), "relay.internal");
        assert_eq!(host(Scheme::HTTPS, "relay.internal:80"), "relay.internal:80");
        assert_eq!(host(Scheme::HTTP, "[::1]:8001"), "[::1]:8001");
    }
}
