//! One client request, read and routed, and what can be done with it on either arm:
//! send it to the arm's upstream, hold a stream until its first token, and wrap the
//! answer for the client.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::breaker::{Admission, HealthReport};
use super::error::TransportError;
use super::gateway::{Gateway, RouteContext};
use super::headers::{X_SHOULD_RETRY, mark_response, upstream_request_headers};
use super::request::{RequestMeta, with_model};
use super::response::{ProxyBody, Recorder, StreamWatch, Tally};
use super::retry;
use super::sse::SseFramer;
use crate::config::{FallbackMode, RouteId, Upstream};
use crate::metrics::{FailureReason, Outcome, Role};
use crate::net::body::BoxBody;

/// A client request, read and routed, ready to be sent to either arm.
pub struct Exchange<'a> {
    pub gateway: &'a Gateway,
    pub route: RouteContext<'a>,
    method: Method,
    /// The path after `/v1`, with the query.
    rest: String,
    headers: HeaderMap,
    /// On an open gateway whose upstream has no key, the client's own credentials pass.
    client_credentials: Option<HeaderValue>,
    body: Bytes,
    meta: RequestMeta,
    expects_done: bool,
    /// The arm the split chose; an answer from the other one is a fallback.
    pub first_role: Role,
    tally: Tally,
}

impl<'a> Exchange<'a> {
    pub fn new(gateway: &'a Gateway, parts: Parts, body: Bytes, meta: RequestMeta, routing: Routing) -> Exchange<'a> {
        let Routing { route, first_role, tally, client_credentials } = routing;
        let path = parts.uri.path();
        let expects_done = path.ends_with("/chat/completions") || path == "/v1/completions";
        let rest = match parts.uri.query() {
            Some(query) => format!("{}?{query}", &path[3..]),
            None => path[3..].to_owned(),
        };
        Exchange {
            gateway,
            route: gateway.route(route),
            method: parts.method,
            rest,
            headers: upstream_request_headers(parts.headers),
            client_credentials,
            body,
            meta,
            expects_done,
            first_role,
            tally,
        }
    }

    pub fn upstream_index(&self, role: Role) -> usize {
        match role {
            Role::Primary => self.route.config.primary,
            Role::Candidate | Role::Shadow => self.route.config.candidate.unwrap_or(self.route.config.primary),
        }
    }

    pub fn upstream(&self, role: Role) -> &Upstream {
        &self.gateway.config.upstreams[self.upstream_index(role)]
    }

    /// The arm that may answer when `role` fails, per the route's `fallback`.
    pub fn fallback_role(&self, role: Role) -> Option<Role> {
        self.route.config.candidate?;
        match (role, self.route.config.fallback) {
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

    /// A request the breaker kept from `role`'s upstream: no attempt, so no metric of one,
    /// but the rollout's evidence counts it against that arm, or an ejected candidate
    /// would stop accumulating the failures that should roll it back.
    pub fn record_skipped(&self, role: Role) {
        self.tally.record(role, Outcome::UpstreamError, Duration::ZERO, None);
    }

    pub fn record_failure(&self, role: Role, started: Instant, outcome: Outcome) {
        let duration = started.elapsed();
        if let Some(arm) = self.route.metrics.arm(role) {
            arm.record(outcome, duration, None);
        }
        self.tally.record(role, outcome, duration, None);
    }

    /// Sends the request to `role`'s upstream and classifies what comes back. A stream is
    /// held until its first token (and `stream_commit` after it) before it is committed.
    /// `admission` is what the upstream's breaker said; a committed answer reports back to
    /// it when its body ends (`None`: shadow copies, which never judge an upstream).
    pub async fn attempt(&self, role: Role, started: Instant, admission: Option<Admission>) -> Attempt {
        let response = match self.send(role).await {
            Ok(response) => response,
            Err(error) => {
                let reason = match error {
                    TransportError::FirstByteTimeout(_) => FailureReason::Timeout,
                    _ => FailureReason::Connect,
                };
                return Attempt::Failed(Failure::transport(reason, error));
            }
        };
        if let Some(reason) = failure_reason(response.status())
            && (reason != FailureReason::Status4xx || self.route.config.fallback_on.status_4xx)
        {
            let retry_after = retry::retry_after(response.headers());
            return Attempt::Failed(Failure { reason, answer: Some(response), transport: None, retry_after });
        }
        let is_event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        if !(is_event_stream && response.status().is_success()) {
            return Attempt::Committed(self.respond(response, role, started, None, admission));
        }
        let (parts, mut incoming) = response.into_parts();
        match self.hold_stream(&mut incoming, role, started).await {
            Ok(held) => {
                let response = Response::from_parts(parts, incoming);
                Attempt::Committed(self.respond(response, role, started, Some(held), admission))
            }
            Err(failure) => Attempt::Failed(failure),
        }
    }

    /// Reads a stream until its first token and `stream_commit` beyond, so that a stream
    /// that stays silent, breaks, errs or sends garbage before then can still fall over.
    async fn hold_stream(&self, incoming: &mut Incoming, role: Role, started: Instant) -> Result<Held, Failure> {
        let timeouts = &self.upstream(role).timeouts;
        let token_deadline = started + timeouts.first_token.min(timeouts.total);
        let mut held = Held { framer: SseFramer::new(), events: Vec::new(), ttft: None };
        loop {
            let until = match held.ttft {
                None => token_deadline,
                Some(ttft) => started + ttft + self.route.config.stream_commit,
            };
            if held.ttft.is_some() && Instant::now() >= until {
                return Ok(held);
            }
            let frame = match tokio::time::timeout_at(until, incoming.frame()).await {
                Err(_) if held.ttft.is_some() => return Ok(held),
                Err(_) => {
                    let error = TransportError::FirstTokenTimeout(timeouts.first_token);
                    return Err(Failure::transport(FailureReason::Timeout, error));
                }
                Ok(None) if held.framer.saw_finish() || held.framer.saw_done() => return Ok(held),
                Ok(None) => return Err(Failure::stream("the upstream closed the stream before the first token")),
                Ok(Some(Err(error))) => return Err(Failure::stream(&format!("the stream broke: {error}"))),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let ready = held.framer.push(data).map_err(|fault| Failure::stream(&fault.to_string()))?;
            if held.framer.saw_error() {
                return Err(Failure::stream("the upstream sent an error event"));
            }
            if !ready.is_empty() {
                held.events.push(ready);
            }
            if held.ttft.is_none() && held.framer.saw_token() {
                held.ttft = Some(started.elapsed());
            }
        }
    }

    /// Wraps an upstream answer for the client; its metrics are recorded when it ends.
    pub fn respond(
        &self,
        response: Response<Incoming>,
        role: Role,
        started: Instant,
        held: Option<Held>,
        admission: Option<Admission>,
    ) -> Response<BoxBody> {
        let (mut parts, incoming) = response.into_parts();
        let outcome = outcome_for_status(parts.status);
        let fallback = role != self.first_role;
        let metrics = self.gateway.metrics.clone();
        let mut recorder = Recorder::new(metrics, self.tally.clone(), self.route.id, role, started, outcome);
        let stream = held.map(|held| {
            parts.headers.remove(header::CONTENT_LENGTH);
            recorder.ttft = held.ttft;
            StreamWatch { framer: held.framer, expects_done: self.expects_done, held: held.events.into_iter() }
        });
        let index = self.upstream_index(role);
        let route_header = &self.route.runtime.name_header;
        mark_response(&mut parts.headers, route_header, &self.gateway.upstreams[index].name_header, fallback);
        if fallback && outcome != Outcome::Ok {
            parts.headers.insert(X_SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        let timeouts = &self.gateway.config.upstreams[index].timeouts;
        let health =
            admission.map(|admission| HealthReport::new(self.gateway.upstreams[index].breaker.clone(), admission));
        let body = ProxyBody::new(incoming, stream, recorder, health, timeouts, started);
        Response::from_parts(parts, body.boxed_unsync())
    }
}

/// What the gateway decided about a request before forwarding it.
pub struct Routing {
    pub route: RouteId,
    /// The arm the split chose.
    pub first_role: Role,
    pub tally: Tally,
    /// The client's own `Authorization`, passed to an upstream without a key of its own
    /// (only on an open gateway).
    pub client_credentials: Option<HeaderValue>,
}

/// A stream's beginning, read while the gateway could still fall over.
pub struct Held {
    framer: SseFramer,
    events: Vec<Bytes>,
    ttft: Option<Duration>,
}

pub enum Attempt {
    /// The answer is the client's now: headers are on their way.
    Committed(Response<BoxBody>),
    Failed(Failure),
}

/// An attempt that failed before anything reached the client.
pub struct Failure {
    pub reason: FailureReason,
    /// The upstream's own answer (an HTTP error), passed to the client if nothing better comes.
    pub answer: Option<Response<Incoming>>,
    pub transport: Option<TransportError>,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn transport(reason: FailureReason, error: TransportError) -> Failure {
        Failure { reason, answer: None, transport: Some(error), retry_after: None }
    }

    fn stream(message: &str) -> Failure {
        Failure::transport(FailureReason::Stream, TransportError::Stream(message.to_owned()))
    }

    /// Not an attempt: the breaker kept the request away from the upstream.
    pub fn breaker_open() -> Failure {
        Failure::transport(FailureReason::BreakerOpen, TransportError::BreakerOpen)
    }

    /// Whether the same upstream may be tried again. A silent upstream (a timeout) is
    /// abandoned at once, and so is an answer that is the client's own fault.
    pub fn retryable(&self) -> bool {
        !matches!(self.reason, FailureReason::Timeout | FailureReason::Status4xx | FailureReason::BreakerOpen)
    }

    /// Whether the failure speaks against the upstream's health (its breaker).
    pub fn is_upstream_fault(&self) -> bool {
        !matches!(self.reason, FailureReason::Status4xx | FailureReason::BreakerOpen)
    }

    pub fn outcome(&self) -> Outcome {
        outcome_for_reason(self.reason)
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
