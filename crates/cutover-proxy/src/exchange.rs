//! One client request, read and routed, and what can be done with it on either arm:
//! send it to the arm's upstream, classify what comes back (a `Failure`, or an answer to
//! commit to), hold a stream until its first token (`body::hold`), and wrap the answer
//! for the client (`body::answer`).

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::{Credential, FallbackMode, RouteId, Upstream};
use cutover_model::{Api, Outcome, Role};
use cutover_net::{body::BoxBody, pool::SendError};
use cutover_shadow::Tap;
use cutover_wire::sse::SseFramer;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Full;
use tokio::time::Instant;

use super::admission::Admitted;
use super::body::{self, EventStream, Held, HoldLimits, Meter, Recorder, StreamEnd, Tally, Teeing};
use super::breaker::{Admission, HealthReport};
use super::error::TransportError;
use super::expected::{Expected, is_event_stream};
use super::failure::{Failure, counts_as_failure, is_clients_fault, outcome_for_status};
use super::gateway::{Gateway, RouteContext};
use super::headers::{ForwardedHeaders, X_SHOULD_RETRY, mark_response};
use super::request::{RequestMeta, for_upstream};
use super::translation::{ArmBody, ArmRequest, ArmRequests};

/// A client request, read and routed, ready to be sent to either arm.
pub struct Exchange<'a> {
    pub gateway: &'a Gateway,
    pub route: RouteContext<'a>,
    method: Method,
    /// The client's URI: its path after `/v1`, with the query, follows each upstream's
    /// base path.
    uri: Uri,
    headers: ForwardedHeaders,
    /// On an open gateway whose upstream has no key, the client's own credentials pass.
    client_credential: Option<Credential>,
    body: Bytes,
    meta: RequestMeta,
    /// What a complete stream of the endpoint ends with.
    stream_end: StreamEnd,
    /// The API the client called (told by its path).
    api: Api,
    /// What the endpoint returns: an answer of another kind is an upstream fault.
    expected: Expected,
    /// How the request reaches each arm (`[primary, candidate]`): as it is, or translated
    /// for an upstream of the other API.
    arms: ArmRequests,
    /// The arm the split chose; an answer from the other one is a fallback.
    pub first_role: Role,
    tally: Tally,
    /// Whether this request's outcome on the chosen arm is in the evidence already: its
    /// first failed attempt there settles it, whatever a retry then answers.
    evidence_settled: AtomicBool,
    /// A mirrored request's side of the shadow comparison, taken by the answer the chosen
    /// arm commits (`body::Teeing`); dropped untaken, it reports that arm gave no answer.
    /// Locked once, briefly, when an answer is committed; never across an await.
    tap: Mutex<Option<Tap>>,
    /// Whether there is a tap at all: requests that are not mirrored never take the lock.
    tapped: bool,
    /// The client request's place in flight, handed to the answer it commits so that it
    /// is held until the answer's body is dropped (`None`: a mirror). Locked once, when
    /// the answer is committed.
    admitted: Mutex<Option<Admitted>>,
}

impl<'a> Exchange<'a> {
    pub fn new(gateway: &'a Gateway, parts: Parts, body: Bytes, meta: RequestMeta, routing: Routing) -> Exchange<'a> {
        let Routing { route, first_role, tally, client_credential, tap, admitted, arms } = routing;
        let path = parts.uri.path();
        let (stream_end, api) = (StreamEnd::for_path(path), Api::of_path(path));
        let expected = Expected::for_request(&parts.method, path, meta.stream);
        Exchange {
            gateway,
            route: gateway.route(route),
            method: parts.method,
            uri: parts.uri,
            headers: ForwardedHeaders::new(parts.headers),
            client_credential,
            body,
            meta,
            stream_end,
            api,
            expected,
            arms,
            first_role,
            tally,
            evidence_settled: AtomicBool::new(false),
            tapped: tap.is_some(),
            tap: Mutex::new(tap),
            admitted: Mutex::new(admitted),
        }
    }

    pub fn upstream_index(&self, role: Role) -> usize {
        self.route.config.upstream_of(role)
    }

    pub fn upstream(&self, role: Role) -> &Upstream {
        &self.gateway.config.upstreams[self.upstream_index(role)]
    }

    /// The arm that may answer when `role` fails, per the route's `fallback`: never one
    /// that cannot be given the request.
    pub fn fallback_role(&self, role: Role) -> Option<Role> {
        self.route.config.candidate?;
        let other = match (role, self.route.config.fallback) {
            (Role::Candidate, FallbackMode::CandidateToPrimary | FallbackMode::Both) => Role::Primary,
            (Role::Primary, FallbackMode::Both) => Role::Candidate,
            _ => return None,
        };
        (!self.arms.get(other).is_refused()).then_some(other)
    }

    /// Sends the request to `role`'s upstream, in an attempt that started at `started`.
    async fn send(&self, role: Role, started: Instant) -> Result<Response<ArmBody>, TransportError> {
        let index = self.upstream_index(role);
        let upstream = &self.gateway.config.upstreams[index];
        let runtime = &self.gateway.upstreams[index];
        let (path, body, translation) = match self.arms.get(role) {
            // The client's query is its API's (Claude Code's `?beta=true`), not the upstream's.
            ArmRequest::Translated(translation) => {
                let path = [upstream.base_path.as_str(), translation.upstream_path()].concat();
                (path, translation.body.clone(), Some(translation))
            }
            ArmRequest::AsIs | ArmRequest::Refused(_) => {
                (self.upstream_path(upstream), for_upstream(&self.body, &self.meta, upstream), None)
            }
        };
        let uri = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(TransportError::InvalidUri)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.for_attempt();
        runtime.identity.apply(request.headers_mut(), self.client_credential.as_ref());
        let wait = upstream.timeouts.first_byte.min(upstream.timeouts.total);
        let response = match runtime.connections.send(request, Some(started + wait)).await {
            Ok(response) => response,
            Err(SendError::Connect(source)) => return Err(TransportError::Connect { source }),
            Err(SendError::Broken(source)) => return Err(TransportError::Broken { source }),
            Err(SendError::HeadTimeout) => return Err(TransportError::FirstByteTimeout(wait)),
        };
        match translation {
            Some(translation) => translation.answer(response, upstream.timeouts.total).await,
            None => Ok(response.map(ArmBody::Upstream)),
        }
    }

    /// The upstream's path and query for this request: its base path, then the client's
    /// path after `/v1` and its query.
    fn upstream_path(&self, upstream: &Upstream) -> String {
        let (rest, query) = (&self.uri.path()[3..], self.uri.query());
        let mut path =
            String::with_capacity(upstream.base_path.len() + rest.len() + query.map_or(0, |query| query.len() + 1));
        path.push_str(&upstream.base_path);
        path.push_str(rest);
        if let Some(query) = query {
            path.push('?');
            path.push_str(query);
        }
        path
    }

    /// A request no arm gives evidence of (the arm the split chose could not be given it).
    pub fn forgo_evidence(&self) {
        self.evidence_settled.store(true, Relaxed);
    }

    /// A request the breaker kept from `role`'s upstream: no attempt, so no metric of one,
    /// but the rollout's evidence counts it against that arm, or an ejected candidate
    /// would stop accumulating the failures that should roll it back.
    pub fn record_skipped(&self, role: Role) {
        self.settle_evidence(role, Outcome::UpstreamError, Duration::ZERO);
    }

    /// A request the split gave to `chosen`, whose upstream the probes hold down, so
    /// another arm serves it: in the evidence it is a failure of `chosen` (a candidate
    /// that is down is failing its users, even though none of them sees it), and the
    /// arm that serves it in its place gives no evidence, as a fallback gives none.
    pub fn record_down(&self, chosen: Role) {
        if !self.evidence_settled.swap(true, Relaxed) {
            self.tally.record(chosen, Outcome::UpstreamError, Duration::ZERO, None);
        }
    }

    /// A failed attempt of `role` for this request, retried or not: an attempt in the
    /// metrics, and the request's outcome on that arm in the rollout's evidence if the
    /// split chose it. The evidence counts client requests, not attempts: one outcome per
    /// request on the chosen arm, failed if any attempt there failed (a retry that then
    /// succeeds hides nothing: the arm needed it), and none from the arm that only
    /// answered as its fallback.
    pub fn record_failure(&self, role: Role, started: Instant, outcome: Outcome) {
        let duration = self.record_attempt(role, started, outcome);
        self.settle_evidence(role, outcome, duration);
    }

    /// The request's one sample in the evidence, if `role` is the chosen arm and no
    /// earlier attempt there gave it already.
    fn settle_evidence(&self, role: Role, outcome: Outcome, duration: Duration) {
        if role == self.first_role && !self.evidence_settled.swap(true, Relaxed) {
            self.tally.record(role, outcome, duration, None);
        }
    }

    /// An attempt in the metrics only.
    fn record_attempt(&self, role: Role, started: Instant, outcome: Outcome) -> Duration {
        let duration = started.elapsed();
        if let Some(arm) = self.route.metrics.arm(role) {
            arm.record(outcome, duration, None);
        }
        duration
    }

    /// Sends the request to `role`'s upstream and classifies what comes back. A stream is
    /// held until its first token (and `stream_commit` after it) before it is committed.
    /// `admission` is what the upstream's breaker said; a committed answer reports back to
    /// it when its body ends (`None`: shadow copies, which never judge an upstream).
    pub async fn attempt(&self, role: Role, started: Instant, admission: Option<Admission>) -> Attempt {
        let response = match self.send(role, started).await {
            Ok(response) => response,
            Err(error) => return Attempt::Failed(Failure::Transport(error)),
        };
        let status = response.status();
        if counts_as_failure(status) && (!is_clients_fault(status) || self.route.config.fallback_on.status_4xx) {
            return Attempt::Failed(Failure::status(response));
        }
        if let Err(not_an_answer) = self.expected.check(status, response.headers()) {
            return Attempt::Failed(Failure::Transport(not_an_answer.into()));
        }
        if !(is_event_stream(response.headers()) && status.is_success()) {
            return Attempt::Committed(self.respond(response, role, started, None, admission));
        }
        let (parts, mut incoming) = response.into_parts();
        let timeouts = &self.upstream(role).timeouts;
        let limits = HoldLimits {
            first_token: timeouts.first_token,
            total: timeouts.total,
            commit: self.route.config.stream_commit,
        };
        let framer = SseFramer::watching_usage(body::usage_watch(&self.meta));
        match body::hold_with(&mut incoming, limits, started, framer).await {
            Ok(held) => {
                let response = Response::from_parts(parts, incoming);
                Attempt::Committed(self.respond(response, role, started, Some(held), admission))
            }
            Err(error) => Attempt::Failed(Failure::Transport(error)),
        }
    }

    /// Wraps an upstream answer for the client; its metrics are recorded when it ends.
    pub fn respond(
        &self,
        response: Response<ArmBody>,
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
            EventStream { held, end: self.stream_end, api: self.api }
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
        recorder.report_to(health);
        recorder.hold(self.admitted.lock().unwrap_or_else(PoisonError::into_inner).take());
        if fallback || self.evidence_settled.load(Relaxed) {
            recorder.leave_out_of_evidence();
        }
        let config = &self.gateway.config;
        let (status, streamed) = (parts.status, stream.is_some());
        let meter = Meter::for_answer(
            config,
            &self.gateway.metrics,
            self.route.id,
            &self.meta,
            index,
            role,
            self.first_role,
            status,
            streamed,
        );
        // Only the chosen arm's own answer is its side of a pair (a fallback's is not).
        let tap = if fallback || !self.tapped {
            None
        } else {
            self.tap.lock().unwrap_or_else(PoisonError::into_inner).take()
        };
        let teeing = tap.map(|tap| Teeing::new(tap, status, streamed, started));
        Response::from_parts(parts, body::answer(incoming, stream, recorder, (meter, teeing), timeouts, started))
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
    pub client_credential: Option<Credential>,
    /// Where this arm's answer goes when the request is one side of a mirrored pair.
    pub tap: Option<Tap>,
    /// The client request's place in flight (`None` for a mirror).
    pub admitted: Option<Admitted>,
    /// How the request reaches each arm (`translation::arm_requests`).
    pub arms: ArmRequests,
}

pub enum Attempt {
    /// The answer is the client's now: headers are on their way.
    Committed(Response<BoxBody>),
    Failed(Failure),
}
