//! Which headers cross the gateway: hop-by-hop headers never do, and the gateway's own
//! response headers are added here.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_CUTOVER_UPSTREAM: HeaderName = HeaderName::from_static("x-cutover-upstream");
pub const X_CUTOVER_ROUTE: HeaderName = HeaderName::from_static("x-cutover-route");
pub const X_CUTOVER_FALLBACK: HeaderName = HeaderName::from_static("x-cutover-fallback");
pub const X_SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");
/// Azure OpenAI's credential header: a client credential like `Authorization`.
const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the gateway sets itself.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers, including any that `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there are none (and so no `Connection` either): one walk over the names
    // tells, without allocating.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let hop: Vec<HeaderName> = headers.keys().filter(|name| is_hop_by_hop(name)).cloned().collect();
    for name in hop {
        headers.remove(name);
    }
}

/// Prepares the client's headers for an upstream: no hop-by-hop headers, no `host`
/// (the client sets the upstream's), no `content-length` (recomputed from the body,
/// which a model alias may change), no `accept-encoding` (the gateway reads the
/// response to find usage, so it asks for identity), no client credentials.
pub fn upstream_request_headers(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    for name in [header::HOST, header::CONTENT_LENGTH, header::ACCEPT_ENCODING, header::AUTHORIZATION, API_KEY] {
        headers.remove(name);
    }
    headers
}

/// Marks a response with the route and upstream that answered it.
pub fn mark_response(headers: &mut HeaderMap, route: &HeaderValue, upstream: &HeaderValue, fallback: bool) {
    strip_hop_by_hop(headers);
    headers.insert(X_CUTOVER_ROUTE, route.clone());
    headers.insert(X_CUTOVER_UPSTREAM, upstream.clone());
    if fallback {
        headers.insert(X_CUTOVER_FALLBACK, HeaderValue::from_static("true"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer gateway-key"));
        headers.insert("x-stainless-lang", HeaderValue::from_static("python"));
        let forwarded = upstream_request_headers(headers);
        assert_eq!(forwarded.len(), 1);
        assert!(forwarded.contains_key("x-stainless-lang"));
    }
}
