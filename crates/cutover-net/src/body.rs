//! Response bodies: the boxed body type every listener answers with, builders for the
//! small JSON and text answers the gateway composes itself, and an error's text with
//! its causes (`Chain`), as those answers and the logs tell a transport failure.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// The error type carried by bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One body type for all responses, whether composed in memory or streamed from an upstream.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes` in full.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A response with `status`, a `content-type` and a body held in memory.
pub fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<BoxBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// OpenAI's error object, `{"error": {"message", "type", "param", "code"}}`: the one shape
/// of every error the gateway itself answers, on the API, the admin API and inside streams.
pub fn openai_error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "param": param, "code": code}}).to_string()
}

/// The body of an Anthropic Messages API error: `{"type":"error","error":{"type":…,"message":…}}`,
/// with the `request_id` Anthropic's answers carry beside it when there is one (an error
/// event inside a stream has none).
pub fn anthropic_error(message: &str, kind: &str, request_id: Option<&str>) -> String {
    let mut error = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}});
    if let Some(id) = request_id {
        error["request_id"] = serde_json::Value::from(id);
    }
    error.to_string()
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<BoxBody> {
    response(status, "application/json", body)
}

/// An error followed by its causes, e.g. "client error (Connect): tcp connect error:
/// Connection refused": what clients have always read of a transport failure.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
