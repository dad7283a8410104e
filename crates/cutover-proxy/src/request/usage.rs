//! Asking for streamed usage on the client's behalf: a streamed chat or legacy completion
//! whose client did not set `stream_options.include_usage` gets it, so that its cost is
//! known; the answer's framer then strips the usage again (`cutover_wire::usage::strip_usage`), and the client
//! sees the stream it asked for. The body is spliced, not re-serialized, and a body that
//! needs no change is passed on as it came.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use cutover_wire::usage::Endpoint;
use http::{HeaderMap, header};

use super::RequestMeta;

const INCLUDE_USAGE: &str = r#"{"include_usage":true}"#;
/// The member added to a body without `stream_options`: alone, or before other members.
const STREAM_OPTIONS: &str = r#""stream_options":{"include_usage":true}"#;
const STREAM_OPTIONS_THEN_MORE: &str = r#""stream_options":{"include_usage":true},"#;

/// Notes the request's endpoint in `meta` and, when `inject` allows and the client did
/// not ask, asks for streamed usage (`meta.usage_injected`). For an endpoint whose usage
/// is read, the upstream is asked for an uncompressed answer: the gateway reads it.
pub fn ask_for_usage(body: Bytes, meta: &mut RequestMeta, path: &str, inject: bool, headers: &mut HeaderMap) -> Bytes {
    meta.endpoint = Endpoint::of_path(path);
    if meta.endpoint.is_none() {
        return body;
    }
    headers.remove(header::ACCEPT_ENCODING);
    let streamed_completion = matches!(meta.endpoint, Some(Endpoint::Chat | Endpoint::Completions)) && meta.stream;
    if !(streamed_completion && inject) {
        return body;
    }
    let (at, replacement) = match meta.stream_options_span {
        None => {
            let Some(open) = body.iter().position(|byte| *byte == b'{') else { return body };
            let empty = body[open + 1..].trim_ascii_start().first() == Some(&b'}');
            ((open + 1, open + 1), Cow::Borrowed(if empty { STREAM_OPTIONS } else { STREAM_OPTIONS_THEN_MORE }))
        }
        Some((start, end)) => match with_include_usage(&body[start..end]) {
            Some(options) => ((start, end), Cow::Owned(options)),
            None => return body,
        },
    };
    meta.usage_injected = true;
    splice(&body, meta, at, &replacement)
}

/// `stream_options` with `include_usage` set, or `None` when the client asked already
/// (or sent something that is not an object, left for the upstream to refuse).
fn with_include_usage(options: &[u8]) -> Option<String> {
    if options == b"null" {
        return Some(INCLUDE_USAGE.to_owned());
    }
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(options).ok()?;
    if object.get("include_usage") == Some(&serde_json::Value::Bool(true)) {
        return None;
    }
    object.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
    serde_json::to_string(&object).ok()
}

/// The body with `range` replaced; the spans of `meta` after it moved along.
fn splice(body: &Bytes, meta: &mut RequestMeta, (start, end): (usize, usize), replacement: &str) -> Bytes {
    let mut spliced = BytesMut::with_capacity(body.len() - (end - start) + replacement.len());
    spliced.extend_from_slice(&body[..start]);
    spliced.extend_from_slice(replacement.as_bytes());
    spliced.extend_from_slice(&body[end..]);
    let shift = |span: &mut Option<(usize, usize)>| {
        if let Some((from, to)) = span.as_mut()
            && *from >= end
        {
            *from = *from - end + start + replacement.len();
            *to = *to - end + start + replacement.len();
        }
    };
    shift(&mut meta.model_span);
    meta.stream_options_span = Some((start, start + replacement.len())).filter(|_| start != end);
    spliced.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{parse_meta, with_model};

    fn asked(body: &'static str, inject: bool) -> (String, RequestMeta) {
        let body = Bytes::from_static(body.as_bytes());
        let mut meta = parse_meta(&body).unwrap();
        let asked = ask_for_usage(body, &mut meta, "/v1/chat/completions", inject, &mut HeaderMap::new());
        (String::from_utf8(asked.to_vec()).unwrap(), meta)
    }

    #[test]
    fn a_streaming_client_that_did_not_ask_is_asked_for_and_the_rest_kept() {
        let (body, meta) = asked(r#"{"model":"gpt-4.1","stream":true,"messages":[]}"#, true);
        assert_eq!(body, r#"{"stream_options":{"include_usage":true},"model":"gpt-4.1","stream":true,"messages":[]}"#);
        assert!(meta.usage_injected);
        // The model span moved with the splice: an alias still replaces the model only.
        let renamed = with_model(&Bytes::from(body), &meta, Some("relay/gpt-4.1"));
        assert!(std::str::from_utf8(&renamed).unwrap().contains(r#""model":"relay/gpt-4.1","stream":true"#));
    }

    #[test]
    fn existing_stream_options_get_include_usage_and_keep_their_other_keys() {
        let (body, meta) = asked(r#"{"stream":true,"stream_options":{"x":1},"model":"m"}"#, true);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["stream_options"], serde_json::json!({"x":1,"include_usage":true}));
        assert_eq!(value["model"], "m");
        assert!(meta.usage_injected);
        let (body, _) = asked(r#"{"stream":true,"stream_options":null}"#, true);
        assert_eq!(body, r#"{"stream":true,"stream_options":{"include_usage":true}}"#);
    }

    #[test]
    fn a_client_that_asked_or_a_route_that_does_not_inject_keeps_its_body_untouched() {
        let original = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        let (body, meta) = asked(original, true);
        assert_eq!((body.as_str(), meta.usage_injected), (original, false));
        let (body, meta) = asked(r#"{"stream":true}"#, false);
        assert_eq!((body.as_str(), meta.usage_injected), (r#"{"stream":true}"#, false));
        let (body, meta) = asked(r#"{"stream":false}"#, true);
        assert_eq!((body.as_str(), meta.usage_injected), (r#"{"stream":false}"#, false));
    }

    #[test]
    fn the_body_is_shared_not_copied_when_nothing_changes() {
        let body = Bytes::from_static(br#"{"model":"m","input":"x"}"#);
        let mut meta = parse_meta(&body).unwrap();
        let same = ask_for_usage(body.clone(), &mut meta, "/v1/embeddings", true, &mut HeaderMap::new());
        assert_eq!(same.as_ptr(), body.as_ptr());
        assert_eq!(meta.endpoint, Some(Endpoint::Embeddings));
    }
}
