//! Which headers cross the gateway: hop-by-hop headers never do; neither do the
//! client's credentials (every header an API takes a key in), account identity meant for
//! another upstream, or cookies in either direction. The gateway's own response headers
//! are added here.

use cutover_config::identity::{OPENAI_ORGANIZATION, OPENAI_PROJECT, X_API_KEY};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_CUTOVER_UPSTREAM: HeaderName = HeaderName::from_static("x-cutover-upstream");
pub const X_CUTOVER_ROUTE: HeaderName = HeaderName::from_static("x-cutover-route");
pub const X_CUTOVER_FALLBACK: HeaderName = HeaderName::from_static("x-cutover-fallback");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// Request headers never forwarded as the client sent them: the client's credentials
/// (OpenAI's and most relays' `Authorization`, Azure's `api-key`, Anthropic's
/// `x-api-key`, Google's `x-goog-api-key`), which carry the gateway key, and the OpenAI
/// account identity, which names the client's account with another upstream (an
/// upstream gets its own from its config); cookies belong to the gateway's origin, not
/// the upstream's. Plus what the gateway sets itself: `host` (the upstream's),
/// `content-length` (recomputed from the body, which a model alias may change) and
/// `accept-encoding` (the gateway reads answers to find usage, so it asks for identity).
const NOT_FORWARDED: [HeaderName; 10] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::ACCEPT_ENCODING,
    header::AUTHORIZATION,
    HeaderName::from_static("api-key"),
    X_API_KEY,
    HeaderName::from_static("x-goog-api-key"),
    OPENAI_ORGANIZATION,
    OPENAI_PROJECT,
    header::COOKIE,
];

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

/// Prepares the client's headers for an upstream: no hop-by-hop headers and none of
/// `NOT_FORWARDED`.
pub fn upstream_request_headers(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    for name in &NOT_FORWARDED {
        headers.remove(name);
    }
    headers
}

/// Marks a response with the route and upstream that answered it. An upstream's cookies
/// are dropped: set on the gateway's origin, they would be sent back to every upstream.
pub fn mark_response(headers: &mut HeaderMap, route: &HeaderValue, upstream: &HeaderValue, fallback: bool) {
    strip_hop_by_hop(headers);
    headers.remove(header::SET_COOKIE);
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

    #[test]
    fn no_client_credential_account_identity_or_cookie_reaches_an_upstream() {
        let mut headers = HeaderMap::new();
        for name in ["authorization", "api-key", "x-api-key", "x-goog-api-key", "proxy-authorization"] {
            headers.insert(name, HeaderValue::from_static("sk-gateway-key"));
        }
        headers.insert("openai-organization", HeaderValue::from_static("org-clients"));
        headers.insert("openai-project", HeaderValue::from_static("proj_clients"));
        headers.insert(header::COOKIE, HeaderValue::from_static("session=1"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let forwarded = upstream_request_headers(headers);
        let names: Vec<&str> = forwarded.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "anthropic-version"]);
    }

    #[test]
    fn an_upstreams_cookies_do_not_reach_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("relay_session=abc"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        mark_response(&mut headers, &HeaderValue::from_static("default"), &HeaderValue::from_static("relay"), false);
        assert!(!headers.contains_key(header::SET_COOKIE));
        assert_eq!(headers[X_CUTOVER_UPSTREAM], "relay");
    }
}
