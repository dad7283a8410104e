//! The mock's error answers: fault responses with their headers (in the shape of the API
//! spoken), and requests it cannot parse (OpenAI's shape; Anthropic mode has its own in
//! [`super::anthropic`]).

use cutover_net::body::{self, BoxBody, json};
use http::{HeaderValue, Response, StatusCode, header};

use super::anthropic;
use super::chat_request::Invalid;
use super::config::Api;
use super::faults::FaultKind;
use super::runtime::{Runtime, error_json};

/// The login page a redirect points to and an "account suspended" answer shows.
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
    <body><h1>Your account is suspended</h1><p>Please sign in to continue.</p></body></html>\n";

/// A whole chat completion, sent with the wrong `Content-Type`.
const MISLABELLED_COMPLETION: &str = r#"{"id":"chatcmpl-mislabelled","object":"chat.completion","created":0,\
    "model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},\
    "finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

/// A whole Anthropic message, sent with the wrong `Content-Type`.
const MISLABELLED_MESSAGE: &str = r#"{"id":"msg_mislabelled","type":"message","role":"assistant","model":"mock",\
    "content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,\
    "usage":{"input_tokens":1,"output_tokens":1}}"#;

/// The response for a fault answered with a status or a wrong body, `None` for the
/// other faults. `streamed`: whether the request asked for a stream.
pub(super) fn fault_response(runtime: &Runtime, kind: FaultKind, streamed: bool) -> Option<Response<BoxBody>> {
    let errors = &runtime.errors;
    let response = match kind {
        FaultKind::Status500 => json(StatusCode::INTERNAL_SERVER_ERROR, errors.server_error.clone()),
        FaultKind::Status503 => json(StatusCode::SERVICE_UNAVAILABLE, errors.overloaded.clone()),
        FaultKind::Status529 => json(anthropic::overloaded_status(), errors.overloaded.clone()),
        FaultKind::ContextLengthExceeded => json(StatusCode::BAD_REQUEST, errors.context_length.clone()),
        // Anthropic refuses with a whole answer whose `stop_reason` is "refusal".
        FaultKind::ContentFilter if runtime.api == Api::Anthropic => return None,
        FaultKind::ContentFilter => json(StatusCode::BAD_REQUEST, errors.content_filter.clone()),
        FaultKind::RateLimited { retry_after } => {
            let mut response = json(StatusCode::TOO_MANY_REQUESTS, errors.rate_limited.clone());
            if let Some(after) = retry_after {
                let headers = response.headers_mut();
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                headers.insert("retry-after", HeaderValue::from(secs));
                headers.insert("retry-after-ms", HeaderValue::from(after.as_millis() as u64));
            }
            response
        }
        FaultKind::Redirect => {
            let mut response = body::response(StatusCode::FOUND, "text/html; charset=utf-8", HTML_PAGE);
            response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/login?next=%2Fv1"));
            response
        }
        FaultKind::Html200 => body::response(StatusCode::OK, "text/html; charset=utf-8", HTML_PAGE),
        FaultKind::WrongContentType => {
            let content_type = if streamed { "application/json" } else { "text/plain; charset=utf-8" };
            let whole = if runtime.api == Api::Anthropic { MISLABELLED_MESSAGE } else { MISLABELLED_COMPLETION };
            body::response(StatusCode::OK, content_type, whole)
        }
        FaultKind::ResetBeforeHeaders
        | FaultKind::NoAnswer
        | FaultKind::SlowFirstToken(_)
        | FaultKind::StreamCut
        | FaultKind::StreamStall
        | FaultKind::MalformedChunk
        | FaultKind::NoDone
        | FaultKind::ErrorEvent => return None,
    };
    Some(response)
}

/// `400` for a body that is not the JSON the endpoint expects.
pub(super) fn bad_request(error: &serde_json::Error) -> Response<BoxBody> {
    let message = format!("We could not parse the JSON body of your request: {error}");
    json(StatusCode::BAD_REQUEST, error_json(&message, "invalid_request_error", None, None))
}

/// `404 model_not_found` for a chat request naming a model the mock does not serve.
pub(super) fn model_not_found(model: &str) -> Response<BoxBody> {
    let message = format!("The model `{model}` does not exist or you do not have access to it.");
    json(StatusCode::NOT_FOUND, error_json(&message, "invalid_request_error", Some("model"), Some("model_not_found")))
}

/// `400` for a request OpenAI would refuse before answering.
pub(super) fn invalid_request(invalid: &Invalid) -> Response<BoxBody> {
    let body = error_json(&invalid.message, "invalid_request_error", Some(invalid.param), invalid.code);
    json(StatusCode::BAD_REQUEST, body)
}

/// `400` for a well-formed request with an unusable `param`.
pub(super) fn invalid_param(param: &str, message: &str) -> Response<BoxBody> {
    json(StatusCode::BAD_REQUEST, error_json(message, "invalid_request_error", Some(param), None))
}
