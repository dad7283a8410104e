//! Forwarding one client request: an attempt on the chosen arm's upstream and, when it
//! fails before anything reached the client and the route allows it, one on the other
//! arm. A failed attempt is recorded as its own upstream's error, never as a completion.

use std::error::Error as _;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::error::{GatewayError, TransportError};
use super::gateway::Gateway;
use super::headers::{X_SHOULD_RETRY, mark_response, upstream_request_headers};
use super::request::{RequestMeta, with_model};
use super::response::{ProxyBody, Recorder, StreamWatch};
use super::sse::SseObserver;
use crate::config::{FallbackMode, FallbackOn, Route, Upstream};
use crate::metrics::{FailureReason, Outcome, Role};
use crate::net::body::BoxBody;

/// A client request, read and routed, ready to be sent to either arm.
pub(super) struct Exchange<'a> {
    gateway: &'a Gateway,
    route_index: usize,
    route: &'a Route,
    method: Method,
    /// The path after `/v1`, with the query.
    rest: String,
    headers: HeaderMap,
    /// On an open gateway whose upstream has no key, the client's own credentials pass.
    client_credentials: Option<HeaderValue>,
    body: Bytes,
    meta: RequestMeta,
    expects_done: bool,
}

impl<'a> Exchange<'a> {
    pub fn new(
        gateway: &'a Gateway,
        route_index: usize,
        parts: Parts,
        body: Bytes,
        meta: RequestMeta,
        client_credentials: Option<HeaderValue>,
    ) -> Exchange<'a> {
        let path = parts.uri.path();
        let expects_done = path.ends_with("/chat/completions") || path == "/v1/completions";
        let rest = match parts.uri.query() {
            Some(query) => format!("{}?{query}", &path[3..]),
            None => path[3..].to_owned(),
        };
        Exchange {
            gateway,
            route_index,
            route: &gateway.config.routes[route_index],
            method: parts.method,
            rest,
            headers: upstream_request_headers(parts.headers),
            client_credentials,
            body,
            meta,
            expects_done,
        }
    }

    fn upstream_index(&self, role: Role) -> usize {
        match role {
            Role::Primary => self.route.primary,
            Role::Candidate | Role::Shadow => self.route.candidate.unwrap_or(self.route.primary),
        }
    }

    fn upstream(&self, role: Role) -> &Upstream {
        &self.gateway.config.upstreams[self.upstream_index(role)]
    }

    /// The arm that may answer when `role` fails, per the route's `fallback`.
    fn fallback_role(&self, role: Role) -> Option<Role> {
        self.route.candidate?;
        match (role, self.route.fallback) {
            (Role::Candidate, FallbackMode::CandidateToPrimary | FallbackMode::Both) => Some(Role::Primary),
            (Role::Primary, FallbackMode::Both) => Some(Role::Candidate),
            _ => None,
        }
    }

    async fn send(&self, role: Role) -> Result<Response<Incoming>, TransportError> {
        let index = self.upstream_index(role);
        let upstream = &self.gateway.config.upstreams[index];
        let runtime = &self.gateway.upstreams[index];
        let alias = self.meta.model.as_deref().and_then(|model| upstream.model_aliases.get(model)).map(String::as_str);
        let uri = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query(format!("{}{}", upstream.base_path, self.rest))
            .build()
            .map_err(|error| TransportError::Broken(format!("invalid upstream URI: {error}")))?;
        let mut request = Request::new(Full::new(with_model(&self.body, &self.meta, alias)));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        if let Some(authorization) = runtime.authorization.as_ref().or(self.client_credentials.as_ref()) {
            request.headers_mut().insert(header::AUTHORIZATION, authorization.clone());
        }
        let wait = upstream.timeouts.first_byte.min(upstream.timeouts.total);
        match tokio::time::timeout(wait, runtime.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if error.is_connect() => Err(TransportError::Connect(error_chain(&error))),
            Ok(Err(error)) => Err(TransportError::Broken(error_chain(&error))),
            Err(_) => Err(TransportError::FirstByteTimeout(wait)),
        }
    }

    fn record_failure(&self, role: Role, started: Instant, outcome: Outcome) {
        if let Some(arm) = self.gateway.metrics.route(self.route_index).arm(role) {
            arm.record(outcome, started.elapsed(), None);
        }
    }

    /// Wraps an upstream answer for the client; its metrics are recorded when it ends.
    fn respond(&self, response: Response<Incoming>, role: Role, started: Instant, fallback: bool) -> Response<BoxBody> {
        let (mut parts, incoming) = response.into_parts();
        let outcome = outcome_for_status(parts.status);
        let is_event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        let stream = is_event_stream.then(|| {
            parts.headers.remove(header::CONTENT_LENGTH);
            StreamWatch { observer: SseObserver::new(), expects_done: self.expects_done }
        });
        let index = self.upstream_index(role);
        mark_response(
            &mut parts.headers,
            &self.gateway.routes[self.route_index].name_header,
            &self.gateway.upstreams[index].name_header,
            fallback,
        );
        if fallback && outcome != Outcome::Ok {
            parts.headers.insert(X_SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        let recorder = Recorder::new(self.gateway.metrics.clone(), self.route_index, role, started, outcome);
        let timeouts = &self.gateway.config.upstreams[index].timeouts;
        let body = ProxyBody::new(incoming, stream, recorder, timeouts.idle, started + timeouts.total);
        Response::from_parts(parts, body.boxed_unsync())
    }
}

/// Sends the exchange to `role` and, if that fails in a way the route falls over for,
/// to the other arm.
pub(super) async fn forward(exchange: &Exchange<'_>, role: Role) -> Result<Response<BoxBody>, GatewayError> {
    let started = Instant::now();
    let first = exchange.send(role).await;
    let reason = match &first {
        Ok(response) => failure_reason(response.status()),
        Err(error) => Some(transport_reason(error)),
    };
    let fallback = reason
        .filter(|reason| may_fall_over(exchange.route.fallback_on, *reason))
        .and_then(|reason| Some((reason, exchange.fallback_role(role)?)));
    let Some((reason, other)) = fallback else {
        return match first {
            Ok(response) => Ok(exchange.respond(response, role, started, false)),
            Err(error) => {
                exchange.record_failure(role, started, Outcome::UpstreamError);
                Err(GatewayError::Upstream {
                    upstream: exchange.upstream(role).name.clone(),
                    error,
                    gave_up_after_retries: false,
                })
            }
        };
    };
    exchange.record_failure(role, started, outcome_for_reason(reason));
    drop(first);
    exchange.gateway.metrics.route(exchange.route_index).record_fallback(role, reason);
    tracing::info!(route = %exchange.route.name, from = %exchange.upstream(role).name, to = %exchange.upstream(other).name,
        reason = reason.as_str(), "falling back");
    let started = Instant::now();
    match exchange.send(other).await {
        Ok(response) => Ok(exchange.respond(response, other, started, true)),
        Err(error) => {
            exchange.record_failure(other, started, Outcome::UpstreamError);
            Err(GatewayError::Upstream {
                upstream: exchange.upstream(other).name.clone(),
                error,
                gave_up_after_retries: true,
            })
        }
    }
}

/// Why an answer counts as a failure, if it does.
fn failure_reason(status: StatusCode) -> Option<FailureReason> {
    match status.as_u16() {
        408 => Some(FailureReason::Status408),
        429 => Some(FailureReason::Status429),
        500..=599 => Some(FailureReason::Status5xx),
        400..=499 => Some(FailureReason::Status4xx),
        _ => None,
    }
}

fn transport_reason(error: &TransportError) -> FailureReason {
    match error {
        TransportError::Connect(_) | TransportError::Broken(_) => FailureReason::Connect,
        TransportError::FirstByteTimeout(_) => FailureReason::Timeout,
    }
}

fn may_fall_over(on: FallbackOn, reason: FailureReason) -> bool {
    match reason {
        FailureReason::Connect => on.connect,
        FailureReason::Timeout => on.timeout,
        FailureReason::Status5xx => on.status_5xx,
        FailureReason::Status429 => on.status_429,
        FailureReason::Status408 => on.status_408,
        FailureReason::Status4xx => on.status_4xx,
    }
}

fn outcome_for_reason(reason: FailureReason) -> Outcome {
    match reason {
        FailureReason::Status4xx => Outcome::ClientError,
        _ => Outcome::UpstreamError,
    }
}

fn outcome_for_status(status: StatusCode) -> Outcome {
    failure_reason(status).map_or(Outcome::Ok, outcome_for_reason)
}

/// An error with its causes, e.g. "client error (Connect): tcp connect error: Connection refused".
fn error_chain(error: &hyper_util::client::legacy::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
