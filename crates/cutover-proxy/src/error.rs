//! The gateway's own errors, and the one place they become responses: OpenAI-shaped, or
//! Anthropic-shaped for a client of the Messages API.

use std::time::Duration;

use cutover_metrics::{FailureReason, Overload};
use cutover_model::{Api, anthropic_error_type};
use cutover_net::body::{self, BoxBody, BoxError, Chain};
use cutover_wire::sse::StreamFault;
use http::{HeaderValue, Response, StatusCode, header};

use super::expected::NotAnAnswer;
use super::headers::{X_REQUEST_ID, X_SHOULD_RETRY};

/// Why an upstream attempt produced no answer the gateway could commit to. It keeps its
/// cause, says whether the same upstream may be tried again and whether it speaks
/// against the upstream's health, and derives the failure's metrics label.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect: {}", Chain(&**source))]
    Connect { source: BoxError },
    #[error("no response headers within {0:?}")]
    FirstByteTimeout(Duration),
    #[error("connection failed before the response: {}", Chain(&**source))]
    Broken { source: BoxError },
    #[error("connection failed before the response: invalid upstream URI: {0}")]
    InvalidUri(#[source] http::Error),
    #[error("no first token within {0:?}")]
    FirstTokenTimeout(Duration),
    /// An answer the gateway translates is read whole first; it did not come in time.
    #[error("no whole answer within {0:?}")]
    AnswerTimeout(Duration),
    #[error("the stream failed before its first token: {0}")]
    Stream(#[source] EarlyStreamError),
    /// A redirect, or a body of another type than the endpoint returns: the same upstream
    /// would answer the same again.
    #[error(transparent)]
    NotAnAnswer(#[from] NotAnAnswer),
}

impl TransportError {
    /// Whether the same upstream may be tried again: a silent upstream (a timeout) is
    /// abandoned at once, the time it took is not spent twice, and so is one whose answer
    /// is not an API's (a login page does not turn into an answer on a retry).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            TransportError::FirstByteTimeout(_)
                | TransportError::FirstTokenTimeout(_)
                | TransportError::AnswerTimeout(_)
                | TransportError::NotAnAnswer(_)
        )
    }

    /// Whether the failure speaks against the upstream's health (its breaker): every
    /// transport failure does.
    pub fn is_upstream_fault(&self) -> bool {
        true
    }

    /// The failure's low-cardinality metrics label.
    pub fn reason(&self) -> FailureReason {
        match self {
            TransportError::Connect { .. } | TransportError::Broken { .. } | TransportError::InvalidUri(_) => {
                FailureReason::Connect
            }
            TransportError::FirstByteTimeout(_)
            | TransportError::FirstTokenTimeout(_)
            | TransportError::AnswerTimeout(_) => FailureReason::Timeout,
            TransportError::Stream(_) => FailureReason::Stream,
            TransportError::NotAnAnswer(_) => FailureReason::InvalidAnswer,
        }
    }
}

/// How a stream failed while the gateway held it, before its first token.
#[derive(Debug, thiserror::Error)]
pub enum EarlyStreamError {
    #[error("the upstream closed the stream before the first token")]
    Closed,
    #[error("the stream broke: {0}")]
    Broke(#[source] BoxError),
    #[error(transparent)]
    Fault(#[from] StreamFault),
    #[error("the upstream sent an error event")]
    ErrorEvent,
}

/// Errors the gateway answers itself.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "Incorrect API key provided. Present a gateway key as `Authorization: Bearer <key>` or `x-api-key: <key>`."
    )]
    Unauthorized,
    #[error("Request body exceeds the gateway's limit of {limit} bytes.")]
    BodyTooLarge { limit: usize },
    #[error("Could not read the request body: {0}")]
    BodyRead(String),
    /// The client stopped sending its body, or sent it too slowly.
    #[error("The request body did not arrive in time.")]
    BodyTimeout,
    /// A path with `.` or `..` segments, raw or percent-encoded: an upstream that
    /// resolves them would serve what lies outside `/v1` with the gateway's key.
    #[error("The path {0} has `.` or `..` segments, which this gateway does not forward.")]
    DotSegments(String),
    #[error("We could not parse the JSON body of your request: {0}")]
    BadJson(String),
    #[error("{message}")]
    InvalidField { param: &'static str, message: String },
    #[error("No route of this gateway serves the model `{0}`.")]
    NoRoute(String),
    #[error("Unknown path {0}: this gateway serves the OpenAI and Anthropic APIs under /v1/.")]
    UnknownPath(String),
    /// The route's arm speaks another API than the client calls, and this endpoint is not
    /// one the gateway translates: forwarding as is would send one API's request to the other.
    #[error(
        "Upstream `{upstream}` of this model's route speaks the {speaks} API, and this gateway does not \
         translate this {called} API endpoint to it (only chat completions and Messages translate)."
    )]
    ApiMismatch { upstream: String, speaks: Api, called: Api },
    /// No arm of the route can be given the request: each speaks the other API, and the
    /// request carries what that API cannot.
    #[error("Upstream `{upstream}` of this model's route speaks the {speaks} API: {source}")]
    Untranslatable {
        upstream: String,
        speaks: Api,
        #[source]
        source: std::sync::Arc<cutover_translate::Untranslatable>,
    },
    #[error("Upstream `{upstream}` failed: {error}")]
    Upstream {
        upstream: String,
        #[source]
        error: TransportError,
        gave_up_after_retries: bool,
    },
    /// Past an admission limit: refused at once, before the body was read.
    #[error("{}", overload_message(*.overload, *.limit))]
    Overloaded { overload: Overload, limit: usize },
    /// Every upstream that could answer had its breaker open.
    #[error("Upstream `{upstream}` failed: its circuit breaker is open after repeated failures")]
    BreakerOpen { upstream: String },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyRead(_)
            | GatewayError::BadJson(_)
            | GatewayError::InvalidField { .. }
            | GatewayError::DotSegments(_)
            | GatewayError::ApiMismatch { .. }
            | GatewayError::Untranslatable { .. } => StatusCode::BAD_REQUEST,
            GatewayError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NoRoute(_) | GatewayError::UnknownPath(_) => StatusCode::NOT_FOUND,
            GatewayError::Upstream {
                error:
                    TransportError::FirstByteTimeout(_)
                    | TransportError::FirstTokenTimeout(_)
                    | TransportError::AnswerTimeout(_),
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream { .. } | GatewayError::BreakerOpen { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `(type, code, param)` of OpenAI's error object.
    fn kind(&self) -> (&'static str, Option<&'static str>, Option<&str>) {
        match self {
            GatewayError::Unauthorized => ("invalid_request_error", Some("invalid_api_key"), None),
            GatewayError::BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large"), None),
            GatewayError::BodyRead(_) | GatewayError::BadJson(_) => ("invalid_request_error", None, None),
            GatewayError::BodyTimeout => ("invalid_request_error", Some("request_timeout"), None),
            GatewayError::DotSegments(_) => ("invalid_request_error", Some("invalid_path"), None),
            GatewayError::InvalidField { param, .. } => ("invalid_request_error", None, Some(param)),
            GatewayError::NoRoute(_) => ("invalid_request_error", Some("model_not_found"), Some("model")),
            GatewayError::UnknownPath(_) => ("invalid_request_error", Some("unknown_url"), None),
            GatewayError::ApiMismatch { .. } => ("invalid_request_error", Some("api_not_translated"), None),
            GatewayError::Untranslatable { source, .. } => {
                ("invalid_request_error", Some("untranslatable_field"), Some(source.field.as_str()))
            }
            GatewayError::Upstream { .. } | GatewayError::BreakerOpen { .. } => {
                ("server_error", Some("upstream_unavailable"), None)
            }
            GatewayError::Overloaded { .. } => ("server_error", Some("gateway_overloaded"), None),
        }
    }

    /// The response for a client of `api`, in that API's error shape, under `request_id`
    /// (its `x-request-id`, and in Anthropic's body its `request_id`, as Anthropic writes).
    pub fn into_response(self, api: Api, request_id: HeaderValue) -> Response<BoxBody> {
        let text = match api {
            Api::OpenAi => {
                let (kind, code, param) = self.kind();
                body::openai_error(&self.to_string(), kind, param, code)
            }
            Api::Anthropic => {
                let kind = anthropic_error_type(self.status().as_u16());
                body::anthropic_error(&self.to_string(), kind, request_id.to_str().ok())
            }
        };
        let mut response = body::json(self.status(), text);
        response.headers_mut().insert(X_REQUEST_ID, request_id);
        if matches!(self, GatewayError::Upstream { gave_up_after_retries: true, .. }) {
            // The gateway has already retried and fallen back: an SDK retry would only
            // multiply the load on upstreams that are failing.
            response.headers_mut().insert(X_SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        if matches!(self, GatewayError::Overloaded { .. }) {
            // A place is free as soon as any request ends; the SDKs wait at least this.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn overload_message(overload: Overload, limit: usize) -> String {
    match overload {
        Overload::Gateway => {
            format!("The gateway has {limit} requests in flight, its limit (server.max_inflight); retry in a moment.")
        }
        Overload::Connection => format!(
            "This connection has {limit} requests in flight, the gateway's limit per connection \
             (server.max_inflight_per_connection); retry in a moment, or spread requests over more connections."
        ),
    }
}

/// An error as an SSE event in `api`'s shape, for failures after a stream has begun: SDKs
/// raise on it, where a stream that merely stops would pass for a complete answer.
/// Anthropic's is an `event: error` whose data is its error object.
pub fn stream_error_event(message: &str, api: Api) -> bytes::Bytes {
    bytes::Bytes::from(match api {
        Api::OpenAi => {
            format!("data: {}\n\n", body::openai_error(message, "server_error", None, Some("upstream_stream_error")))
        }
        Api::Anthropic => format!("event: error\ndata: {}\n\n", body::anthropic_error(message, "api_error", None)),
    })
}
