//! The credential of a request: the token of its `Authorization: Bearer …` header, read
//! the same way on every listener (both spellings of the scheme that clients send).

use http::{HeaderMap, header};

/// The bytes after `Bearer ` (or `bearer `) in the `Authorization` header, as sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer "))
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
}
