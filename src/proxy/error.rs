//! The gateway's own errors, and the one place they become OpenAI-shaped responses.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};

use super::headers::X_SHOULD_RETRY;
use crate::net::body::{self, BoxBody};

/// Why an upstream attempt failed before it produced response headers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no response headers within {0:?}")]
    FirstByteTimeout(Duration),
    #[error("connection failed before the response: {0}")]
    Broken(String),
    #[error("no first token within {0:?}")]
    FirstTokenTimeout(Duration),
    #[error("the stream failed before its first token: {0}")]
    Stream(String),
    #[error("its circuit breaker is open after repeated failures")]
    BreakerOpen,
}

/// Errors the gateway answers itself.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("Incorrect API key provided. Present a gateway key as `Authorization: Bearer <key>`.")]
    Unauthorized,
    #[error("Request body exceeds the gateway's limit of {limit} bytes.")]
    BodyTooLarge { limit: usize },
    #[error("Could not read the request body: {0}")]
    BodyRead(String),
    #[error("We could not parse the JSON body of your request: {0}")]
    BadJson(String),
    #[error("{message}")]
    InvalidField { param: &'static str, message: String },
    #[error("No route of this gateway serves the model `{0}`.")]
    NoRoute(String),
    #[error("Unknown path {0}: this gateway serves the OpenAI API under /v1/.")]
    UnknownPath(String),
    #[error("Upstream `{upstream}` failed: {error}")]
    Upstream { upstream: String, error: TransportError, gave_up_after_retries: bool },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyRead(_) | GatewayError::BadJson(_) | GatewayError::InvalidField { .. } => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::NoRoute(_) | GatewayError::UnknownPath(_) => StatusCode::NOT_FOUND,
            GatewayError::Upstream {
                error: TransportError::FirstByteTimeout(_) | TransportError::FirstTokenTimeout(_),
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// `(type, code, param)` of OpenAI's error object.
    fn kind(&self) -> (&'static str, Option<&'static str>, Option<&'static str>) {
        match self {
            GatewayError::Unauthorized => ("invalid_request_error", Some("invalid_api_key"), None),
            GatewayError::BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large"), None),
            GatewayError::BodyRead(_) | GatewayError::BadJson(_) => ("invalid_request_error", None, None),
            GatewayError::InvalidField { param, .. } => ("invalid_request_error", None, Some(param)),
            GatewayError::NoRoute(_) => ("invalid_request_error", Some("model_not_found"), Some("model")),
            GatewayError::UnknownPath(_) => ("invalid_request_error", Some("unknown_url"), None),
            GatewayError::Upstream { .. } => ("server_error", Some("upstream_unavailable"), None),
        }
    }

    pub fn into_response(self) -> Response<BoxBody> {
        let (kind, code, param) = self.kind();
        let mut response = body::json(self.status(), body::openai_error(&self.to_string(), kind, param, code));
        if matches!(self, GatewayError::Upstream { gave_up_after_retries: true, .. }) {
            // The gateway has already retried and fallen back: an SDK retry would only
            // multiply the load on upstreams that are failing.
            response.headers_mut().insert(X_SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        response
    }
}

/// An OpenAI-shaped error as an SSE event, for failures after a stream has begun: SDKs
/// raise on it, where a stream that merely stops would pass for a complete answer.
pub fn stream_error_event(message: &str) -> bytes::Bytes {
    let error = body::openai_error(message, "server_error", None, Some("upstream_stream_error"));
    bytes::Bytes::from(format!("data: {error}\n\n"))
}
