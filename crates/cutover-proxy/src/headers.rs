//! Which headers cross the gateway: hop-by-hop headers never do; neither do the
//! client's credentials (every header an API takes a key in), account identity meant for
//! another upstream, or cookies in either direction. The gateway's own response headers
//! are added here.

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
static NOT_FORWARDED: [HeaderName; 10] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::ACCEPT_ENCODING,
    header::AUTHORIZATION,
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
    HeaderName::from_static("openai-organization"),
    HeaderName::from_static("openai-project"),
    header::COOKIE,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

// Compared as names, not strings: two standard names compare as one byte each.
fn is_not_forwarded(name: &HeaderName) -> bool {
    NOT_FORWARDED.contains(name)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// The headers a `Connection` header names (hop-by-hop by the sender's word).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Removes hop-by-hop headers, including any that `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there are none (and so no `Connection` either): one walk over the names
    // tells, without allocating.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    for name in connection_named(headers) {
        headers.remove(name);
    }
    let hop: Vec<HeaderName> = headers.keys().filter(|name| is_hop_by_hop(name)).cloned().collect();
    for name in hop {
        headers.remove(name);
    }
}

/// A client request's headers as its attempts forward them: no hop-by-hop headers and
/// none that `is_not_forwarded` names. The client's map is kept as it came, read only:
/// hyper takes each request's headers by value, so every attempt needs a map of its own,
/// and building it in one pass over the client's headers, copying only what crosses,
/// costs less than removing what does not and then copying the rest for each attempt.
pub struct ForwardedHeaders {
    client: HeaderMap,
    /// What the client's `Connection` header names (almost always none: no allocation).
    connection_named: Vec<HeaderName>,
}

impl ForwardedHeaders {
    pub fn new(client: HeaderMap) -> ForwardedHeaders {
        let connection_named =
            if client.contains_key(header::CONNECTION) { connection_named(&client) } else { Vec::new() };
        ForwardedHeaders { client, connection_named }
    }

    /// A new map of the forwarded headers for one attempt, with room for the identity its
    /// upstream adds (`Identity::apply`: at most four headers).
    pub fn for_attempt(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.client.keys_len() + 4);
        for (name, value) in &self.client {
            if !(is_not_forwarded(name) || is_hop_by_hop(name) || self.connection_named.contains(name)) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers
    }
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
        let forwarded = ForwardedHeaders::new(headers).for_attempt();
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
        let forwarded = ForwardedHeaders::new(headers).for_attempt();
        let names: Vec<&str> = forwarded.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "anthropic-version"]);
    }

    #[test]
    fn every_attempt_gets_the_same_headers_values_of_a_repeated_name_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-trace", HeaderValue::from_static("a"));
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer gateway-key"));
        headers.append("x-trace", HeaderValue::from_static("b"));
        let forwarded = ForwardedHeaders::new(headers);
        let (first, retry) = (forwarded.for_attempt(), forwarded.for_attempt());
        assert_eq!(first, retry);
        let values: Vec<&HeaderValue> = first.get_all("x-trace").iter().collect();
        assert_eq!(values, ["a", "b"]);
        assert_eq!(first.len(), 2);
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
