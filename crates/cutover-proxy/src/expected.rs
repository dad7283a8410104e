//! What an upstream's answer must look like to be one. An API answers with a final status
//! and the media type its endpoint returns; a relay with an expired account, a captive
//! portal or a wrong base URL answers with a redirect or an HTML page and a 200. Such an
//! answer is an upstream fault like a 5xx: it falls back, counts for the breaker and in
//! the rollout's evidence, and never reaches the client as if it were the answer.
//!
//! The check reads the status and the `Content-Type` header only, never the body, so it
//! costs nothing on the hot path. An answer without `Content-Type` passes (the SDKs parse
//! such bodies too); one that names a type other than the endpoint's is refused. Where the
//! gateway does not know what an endpoint returns (audio, file contents), only the status
//! is judged.

use http::{HeaderMap, Method, StatusCode, header};

/// What the endpoint a request called returns on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A JSON document (`application/json`, or a `+json` type).
    Json,
    /// A server-sent event stream (`text/event-stream`): a request that asked for one.
    EventStream,
    /// A body of any type (speech audio, file contents, endpoints the gateway does not
    /// know): only the status is judged.
    Any,
}

/// Why an answer is not one an API gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnAnswer {
    #[error("answered {0}, a redirect, which an API does not send (the gateway follows none)")]
    Redirect(StatusCode),
    #[error("answered {0}, an informational status, as its final answer")]
    Informational(StatusCode),
    #[error("answered {status} with Content-Type `{content_type}` where the endpoint returns JSON")]
    NotJson { status: StatusCode, content_type: String },
    #[error("answered {status} with Content-Type `{content_type}` to a request for a stream (text/event-stream)")]
    NotEventStream { status: StatusCode, content_type: String },
}

/// The longest `Content-Type` an error message repeats.
const SHOWN_CONTENT_TYPE: usize = 64;

impl Expected {
    /// What `method path` returns, for a request that asked for a stream or not.
    pub fn for_request(method: &Method, path: &str, streamed: bool) -> Expected {
        const STREAMING: [&str; 4] = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"];
        const JSON: [&str; 7] = [
            "/v1/embeddings",
            "/v1/moderations",
            "/v1/images/generations",
            "/v1/images/edits",
            "/v1/images/variations",
            "/v1/models",
            "/v1/messages/count_tokens",
        ];
        let known = STREAMING.contains(&path)
            || JSON.contains(&path)
            || (*method == Method::GET && path.starts_with("/v1/models/"));
        match (known, streamed && STREAMING.contains(&path) && *method == Method::POST) {
            (false, _) => Expected::Any,
            (true, true) => Expected::EventStream,
            (true, false) => Expected::Json,
        }
    }

    /// Whether an answer with `status` and `headers` is one this endpoint gives. Error
    /// statuses (4xx, 5xx) pass: they are judged as failures by their status.
    pub fn check(self, status: StatusCode, headers: &HeaderMap) -> Result<(), NotAnAnswer> {
        if status.is_informational() {
            return Err(NotAnAnswer::Informational(status));
        }
        if status.is_redirection() {
            return Err(NotAnAnswer::Redirect(status));
        }
        if !status.is_success() || self == Expected::Any {
            return Ok(());
        }
        let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
        let media_type = media_type(value.as_bytes());
        let fits = match self {
            Expected::Json => is_json(media_type),
            Expected::EventStream => media_type.eq_ignore_ascii_case(b"text/event-stream"),
            Expected::Any => true,
        };
        if fits {
            return Ok(());
        }
        let shown = &value.as_bytes()[..value.len().min(SHOWN_CONTENT_TYPE)];
        let content_type = String::from_utf8_lossy(shown).into_owned();
        Err(match self {
            Expected::EventStream => NotAnAnswer::NotEventStream { status, content_type },
            Expected::Json | Expected::Any => NotAnAnswer::NotJson { status, content_type },
        })
    }
}

/// Whether an answer is an event stream, the one kind the gateway holds and frames.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// The media type of a `Content-Type` value: before its parameters, trimmed.
fn media_type(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&byte| byte == b';').unwrap_or(value.len());
    value[..end].trim_ascii()
}

/// `application/json`, or a structured `+json` type (`application/problem+json`).
fn is_json(media_type: &[u8]) -> bool {
    media_type.eq_ignore_ascii_case(b"application/json")
        || (media_type.len() > 5 && media_type[media_type.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn typed(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    const CHAT: &str = "/v1/chat/completions";

    #[test]
    fn each_endpoint_expects_what_it_returns() {
        let post = Method::POST;
        assert_eq!(Expected::for_request(&post, CHAT, false), Expected::Json);
        assert_eq!(Expected::for_request(&post, CHAT, true), Expected::EventStream);
        assert_eq!(Expected::for_request(&post, "/v1/responses", true), Expected::EventStream);
        assert_eq!(Expected::for_request(&post, "/v1/completions", true), Expected::EventStream);
        assert_eq!(Expected::for_request(&post, "/v1/embeddings", false), Expected::Json);
        assert_eq!(Expected::for_request(&post, "/v1/embeddings", true), Expected::Json, "embeddings never stream");
        assert_eq!(Expected::for_request(&Method::GET, "/v1/models", false), Expected::Json);
        assert_eq!(Expected::for_request(&Method::GET, "/v1/models/gpt-4.1", false), Expected::Json);
        assert_eq!(Expected::for_request(&Method::GET, "/v1/responses", false), Expected::Json);
        for path in ["/v1/audio/speech", "/v1/files/file-1/content", "/v1/audio/transcriptions", "/v1/unknown"] {
            assert_eq!(Expected::for_request(&post, path, true), Expected::Any, "{path}");
        }
    }

    #[test]
    fn redirects_and_informational_finals_are_never_answers() {
        for expected in [Expected::Json, Expected::EventStream, Expected::Any] {
            for code in [301, 302, 303, 304, 307, 308] {
                let status = StatusCode::from_u16(code).unwrap();
                assert_eq!(expected.check(status, &typed("application/json")), Err(NotAnAnswer::Redirect(status)));
            }
            let early_hints = StatusCode::from_u16(103).unwrap();
            assert_eq!(expected.check(early_hints, &HeaderMap::new()), Err(NotAnAnswer::Informational(early_hints)));
        }
    }

    #[test]
    fn an_html_page_with_200_is_not_a_json_answer() {
        let refused = Expected::Json.check(StatusCode::OK, &typed("text/html; charset=utf-8"));
        let expected = NotAnAnswer::NotJson { status: StatusCode::OK, content_type: "text/html; charset=utf-8".into() };
        assert_eq!(refused, Err(expected));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "answered 200 OK with Content-Type `text/html; charset=utf-8` where the endpoint returns JSON"
        );
        assert!(
            Expected::Json.check(StatusCode::OK, &typed("text/event-stream")).is_err(),
            "a stream nobody asked for"
        );
        assert!(Expected::Json.check(StatusCode::OK, &typed("text/plain")).is_err());
    }

    #[test]
    fn json_is_recognised_in_any_case_with_parameters_and_as_a_suffix() {
        for content_type in
            ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/problem+json"]
        {
            assert_eq!(Expected::Json.check(StatusCode::OK, &typed(content_type)), Ok(()), "{content_type}");
        }
        assert!(Expected::Json.check(StatusCode::OK, &typed("+json")).is_err(), "a suffix alone is no type");
        assert!(Expected::Json.check(StatusCode::OK, &typed("application/jsonp")).is_err());
    }

    #[test]
    fn a_stream_request_needs_an_event_stream() {
        assert_eq!(Expected::EventStream.check(StatusCode::OK, &typed("text/event-stream; charset=utf-8")), Ok(()));
        let whole = Expected::EventStream.check(StatusCode::OK, &typed("application/json"));
        assert_eq!(
            whole,
            Err(NotAnAnswer::NotEventStream { status: StatusCode::OK, content_type: "application/json".into() })
        );
    }

    #[test]
    fn error_statuses_an_untyped_answer_and_unknown_endpoints_pass() {
        assert_eq!(Expected::Json.check(StatusCode::BAD_GATEWAY, &typed("text/html")), Ok(()), "judged by its status");
        assert_eq!(Expected::Json.check(StatusCode::OK, &HeaderMap::new()), Ok(()));
        assert_eq!(Expected::Any.check(StatusCode::OK, &typed("audio/mpeg")), Ok(()));
        assert_eq!(Expected::Any.check(StatusCode::OK, &typed("text/html")), Ok(()));
    }

    #[test]
    fn a_long_content_type_is_cut_in_the_message() {
        let long = format!("text/html; {}", "x".repeat(500));
        let Err(NotAnAnswer::NotJson { content_type, .. }) = Expected::Json.check(StatusCode::OK, &typed(&long)) else {
            panic!("refused")
        };
        assert_eq!(content_type.len(), SHOWN_CONTENT_TYPE);
    }
}
