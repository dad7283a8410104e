//! The mock's error answers: fault responses with their headers, and requests it cannot
//! parse, all in OpenAI's error shape.

use http::{HeaderValue, Response, StatusCode};

use super::chat_request::Invalid;
use super::faults::FaultKind;
use super::runtime::{Runtime, error_json};
use crate::net::body::{BoxBody, json};

/// The response for a fault answered with a status, `None` for the other faults.
pub(super) fn fault_response(runtime: &Runtime, kind: FaultKind) -> Option<Response<BoxBody>> {
    let errors = &runtime.errors;
    let response = match kind {
        FaultKind::Status500 => json(StatusCode::INTERNAL_SERVER_ERROR, errors.server_error.clone()),
        FaultKind::Status503 => json(StatusCode::SERVICE_UNAVAILABLE, errors.overloaded.clone()),
        FaultKind::ContextLengthExceeded => json(StatusCode::BAD_REQUEST, errors.context_length.clone()),
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
        FaultKind::ResetBeforeHeaders
        | FaultKind::NoAnswer
        | FaultKind::SlowFirstToken(_)
        | FaultKind::StreamCut
        | FaultKind::StreamStall
        | FaultKind::MalformedChunk
        | FaultKind::NoDone => return None,
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
