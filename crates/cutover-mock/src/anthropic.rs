//! The edges of the mock's Anthropic mode (`--api anthropic`): the headers every request
//! must carry (`x-api-key`, `anthropic-version`), Anthropic's error shape with the kind
//! each status implies, the error bodies of its faults, and its model list.
//! `/v1/messages` itself is [`super::messages`].

use bytes::Bytes;
use cutover_model::anthropic_error_type;
use cutover_net::body::{BoxBody, json};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use super::runtime::{ErrorBodies, Runtime};
use super::wire::quote;

/// The header carrying the API key (Anthropic ignores `Authorization` for keys).
const KEY_HEADER: &str = "x-api-key";

/// The header every request must carry, as the real API demands.
const VERSION_HEADER: &str = "anthropic-version";

/// `created_at` of every listed model: fixed, so answers are reproducible.
const CREATED_AT: &str = "2025-01-01T00:00:00Z";

/// Anthropic's status 529, its "overloaded" (the `http` crate has no name for it).
pub(super) fn overloaded_status() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// `{"type":"error","error":{"type":…,"message":…}}`, the kind the one `status` implies.
pub(super) fn error_body(status: StatusCode, message: &str) -> Bytes {
    // Spelled out so that `type` comes first, as Anthropic writes it.
    Bytes::from(format!(
        r#"{{"type":"error","error":{{"type":"{}","message":{}}}}}"#,
        anthropic_error_type(status.as_u16()),
        quote(message)
    ))
}

/// An error response in Anthropic's shape.
pub(super) fn error(status: StatusCode, message: &str) -> Response<BoxBody> {
    json(status, error_body(status, message))
}

/// The bodies of the auth failure and of the faults answered with an error.
pub(super) fn error_bodies(name: &str) -> ErrorBodies {
    let body = |status: u16, message: &str| error_body(StatusCode::from_u16(status).unwrap_or_default(), message);
    ErrorBodies {
        unauthorized: body(401, "invalid x-api-key"),
        server_error: body(500, &format!("Internal server error (simulated by mock {name}).")),
        overloaded: body(529, "Overloaded"),
        rate_limited: body(
            429,
            &format!("This request would exceed the rate limit for your organization (simulated by mock {name})."),
        ),
        context_length: body(400, "prompt is too long: 210000 tokens > 200000 maximum"),
        // Unused: Anthropic refuses with a whole answer (`stop_reason` "refusal").
        content_filter: body(400, "Output blocked by content filtering policy (simulated)."),
    }
}

/// The answer to a request lacking what Anthropic requires of every request: the
/// configured key in `x-api-key` (401), then an `anthropic-version` (400); `None` when
/// it has both.
pub(super) fn refusal(runtime: &Runtime, headers: &HeaderMap) -> Option<Response<BoxBody>> {
    if let Some(key) = &runtime.api_key
        && headers.get(KEY_HEADER).map(HeaderValue::as_bytes) != Some(&key[..])
    {
        return Some(json(StatusCode::UNAUTHORIZED, runtime.errors.unauthorized.clone()));
    }
    if !headers.contains_key(VERSION_HEADER) {
        return Some(error(StatusCode::BAD_REQUEST, "anthropic-version: header is required"));
    }
    None
}

/// One entry of `GET /v1/models`, and the body of `GET /v1/models/{id}`.
pub(super) fn model_json(id: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": CREATED_AT})
}

/// `GET /v1/models`: every model on one page.
pub(super) fn model_list(models: &[String]) -> Value {
    json!({
        "data": models.iter().map(|id| model_json(id)).collect::<Vec<_>>(),
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last(),
    })
}

/// The `404` message for a model the mock does not serve, as Anthropic words it.
pub(super) fn unknown_model(model: &str) -> String {
    format!("model: {model}")
}
