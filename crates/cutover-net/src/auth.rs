//! The credential of a request: the token of its `Authorization: Bearer …` header, read
//! the same way on every listener (both spellings of the scheme that clients send), or
//! on the proxy the `x-api-key` header that Anthropic's SDKs send instead.

use cutover_config::{Credential, identity::X_API_KEY};
use http::{HeaderMap, HeaderValue, header};

/// The bytes after `Bearer ` (or `bearer `) in the `Authorization` header, as sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer "))
}

/// The key a client of the proxy presents: its bearer token, else its `x-api-key`.
pub fn client_key(headers: &HeaderMap) -> Option<&[u8]> {
    bearer_token(headers).or_else(|| headers.get(X_API_KEY).map(HeaderValue::as_bytes))
}

/// The header the client presented its key in, as sent: what an open gateway passes to an
/// upstream that has no key of its own.
pub fn client_credential(headers: &HeaderMap) -> Option<Credential> {
    [header::AUTHORIZATION, X_API_KEY]
        .into_iter()
        .find_map(|name| headers.get(&name).cloned().map(|value| (name, value)))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn token(value: &'static str) -> Option<Vec<u8>> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        bearer_token(&headers).map(<[u8]>::to_vec)
    }

    #[test]
    fn both_spellings_of_the_scheme_give_the_token_as_sent() {
        assert_eq!(token("Bearer sk-1"), Some(b"sk-1".to_vec()));
        assert_eq!(token("bearer sk-1"), Some(b"sk-1".to_vec()));
        assert_eq!(token("Bearer  sk-1"), Some(b" sk-1".to_vec()));
        assert_eq!(token("Basic c2s="), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_proxy_client_may_present_its_key_as_a_bearer_token_or_in_x_api_key() {
        let mut headers = HeaderMap::new();
        headers.insert(X_API_KEY, HeaderValue::from_static("sk-ant"));
        assert_eq!(client_key(&headers), Some(&b"sk-ant"[..]));
        assert_eq!(client_credential(&headers).map(|(name, _)| name), Some(X_API_KEY));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(client_key(&headers), Some(&b"sk-1"[..]));
        assert_eq!(client_credential(&headers).map(|(name, _)| name), Some(header::AUTHORIZATION));
        assert_eq!(client_key(&HeaderMap::new()), None);
    }
}
