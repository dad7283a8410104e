//! The proxy's HTTP service: the pipeline from a client request to the forwarded answer,
//! with the gateway's own failures turned into errors at the end, in the shape of the API
//! the client called (OpenAI's, or Anthropic's on the Messages paths). It takes
//! any request body, so tests drive it in-process, without a socket.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use cutover_config::{RouteId, StickySource};
use cutover_model::{Api, Role};
use cutover_net::{
    auth::{client_credential, client_key},
    body::{BoxBody, BoxError},
};
use http::{HeaderValue, Request, Response};
use http_body::Body;

use super::admission::{Admission, Admitted};
use super::body::Tally;
use super::error::GatewayError;
use super::exchange::{Exchange, Routing};
use super::forward::forward;
use super::gateway::{Gateway, SharedGateway};
use super::headers::X_CUTOVER_ROUTE;
use super::path::has_dot_segment;
use super::request::{
    RequestMeta, ask_for_usage, discard_body, is_json_request, parse_meta, read_body, takes_json_body,
};
use super::translation::{ArmRequests, Unservable};
use super::{shadow, split};

/// The proxy listener's service. The listener clones it for each client connection: a
/// clone shares the gateway in force and the admission limits, and counts its own
/// connection's requests in flight.
pub struct ProxyService {
    gateway: SharedGateway,
    admission: Admission,
    /// This connection's requests in flight.
    connection: Arc<AtomicUsize>,
}

impl ProxyService {
    pub fn new(gateway: SharedGateway, admission: Admission) -> ProxyService {
        ProxyService { gateway, admission, connection: Arc::default() }
    }
}

/// A service for another connection: its own count of requests in flight.
impl Clone for ProxyService {
    fn clone(&self) -> ProxyService {
        ProxyService::new(self.gateway.clone(), self.admission)
    }
}

/// Any request body will do: hyper's from a listener, or one made up in a test.
impl<B> hyper::service::Service<Request<B>> for ProxyService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        // The one read of the configuration per request: an owned `Arc`, because the
        // request (and its stream) outlives this call and must finish on the gateway it
        // started with even if a reload swaps another in meanwhile.
        let gateway = self.gateway.load_full();
        // Before the body is read: a refused request holds neither its body nor an upstream.
        let admitted = self
            .admission
            .admit(&gateway.metrics, &self.connection)
            .map_err(|overload| GatewayError::Overloaded { overload, limit: self.admission.limit(overload) });
        Box::pin(async move {
            // Both clones are cheap (a known method, a refcounted URI): no per-request copy.
            let (method, uri) = (request.method().clone(), request.uri().clone());
            let handled = match admitted {
                Ok(admitted) => handle(&gateway, request, admitted).await,
                Err(error) => {
                    let (parts, body) = request.into_parts();
                    discard_body(body, &parts.headers).await;
                    Err(error.into())
                }
            };
            match handled {
                Ok(response) => Ok(response),
                Err(Refusal { error, route }) => {
                    let (path, request_id) = (uri.path(), request_id());
                    let status = error.status().as_u16();
                    tracing::info!(%method, path, status, request_id = request_id.to_str().unwrap_or(""), %error,
                        "request refused");
                    let mut response = error.into_response(Api::of_path(path), request_id);
                    if let Some(route) = route {
                        response
                            .headers_mut()
                            .insert(X_CUTOVER_ROUTE, gateway.route(route).runtime.name_header.clone());
                    }
                    Ok(response)
                }
            }
        })
    }
}

/// A request the gateway answers itself, and the route it was on once one was chosen.
struct Refusal {
    error: GatewayError,
    route: Option<RouteId>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Refusal {
        Refusal { error, route: None }
    }
}

/// A new `x-request-id` for an answer the gateway writes itself, in OpenAI's shape
/// (`req_` and 32 hex digits), also logged with the refusal so the two can be matched.
fn request_id() -> HeaderValue {
    let id = format!("req_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("req_unknown"))
}

async fn handle<B>(
    gateway: &Arc<Gateway>,
    request: Request<B>,
    admitted: Admitted,
) -> Result<Response<BoxBody>, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path != "/v1" && !path.starts_with("/v1/") {
        discard_body(body, &parts.headers).await;
        return Err(GatewayError::UnknownPath(path.to_owned()).into());
    }
    if has_dot_segment(path) {
        discard_body(body, &parts.headers).await;
        return Err(GatewayError::DotSegments(path.to_owned()).into());
    }
    // Gateway keys are compared without the spaces a client may leave around them.
    let token = client_key(&parts.headers).map(<[u8]>::trim_ascii);
    let key_name = token.and_then(|token| gateway.gateway_key_name(token));
    if gateway.gateway_keys_required() && key_name.is_none() {
        discard_body(body, &parts.headers).await;
        return Err(GatewayError::Unauthorized.into());
    }
    let server = &gateway.config.server;
    let body = read_body(body, &parts.headers, server.max_body_bytes, server.body_timeouts).await?;
    if body.is_empty() && takes_json_body(&parts.method, path) {
        return Err(GatewayError::BadJson(format!("the body is empty: {path} takes a JSON object")).into());
    }
    let meta =
        if is_json_request(&parts.method, &parts.headers, &body) { parse_meta(&body)? } else { RequestMeta::default() };
    let route_id = gateway
        .route_for(meta.model.as_deref())
        .ok_or_else(|| GatewayError::NoRoute(meta.model.clone().unwrap_or_default()))?;
    let route = gateway.route(route_id);
    let refused = |error| Refusal { error, route: Some(route_id) };
    let mut tally = Tally { stats: route.live.stats(), control: false, user: None };
    // The arm the split chose when its upstream is down and another serves the user.
    let mut rerouted_from = None;
    let role = match route.config.candidate {
        Some(_) => {
            let sticky_key: Option<&[u8]> = match &route.config.sticky {
                StickySource::Header(name) => parts.headers.get(name).map(|value| value.as_bytes()),
                StickySource::BodyUser => meta.user.as_deref().map(str::as_bytes),
                // With named keys the name identifies the client; an open gateway hashes
                // whatever credential the client presented.
                StickySource::GatewayKey => key_name.map(str::as_bytes).or(token),
            };
            let (bucket, user) = route.bucket(sticky_key);
            let weight = route.live.weight_bp();
            tally.user = user;
            tally.control = split::is_control(bucket, weight);
            let chosen = if split::is_candidate(bucket, weight) { Role::Candidate } else { Role::Primary };
            let served = split::arm_for_health(chosen, route.config.fallback, |role| {
                gateway.upstream_up(route.config.upstream_of(role))
            });
            if served != chosen {
                gateway.upstreams[route.config.upstream_of(chosen)].health.count_rerouted();
                rerouted_from = Some(chosen);
            }
            served
        }
        None => Role::Primary,
    };
    let client_credential = if gateway.gateway_keys_required() { None } else { client_credential(&parts.headers) };
    let (mut parts, mut meta) = (parts, meta);
    let body = ask_for_usage(body, &mut meta, parts.uri.path(), route.config.inject_stream_usage, &mut parts.headers);
    let api = Api::of_path(parts.uri.path());
    let arms = ArmRequests::new(&gateway.config, route.config, api, parts.uri.path(), &body, &meta);
    // An arm that cannot be given the request (its API cannot carry it) leaves it to the
    // other, and neither gives evidence of it: it says nothing of either's health.
    let (role, untranslated) = match arms.servable(role) {
        Ok(served) => (served, served != role),
        Err(why) => {
            let upstream = &gateway.config.upstreams[route.config.upstream_of(role)];
            let (upstream, speaks) = (upstream.name.clone(), upstream.api);
            return Err(refused(match why {
                Unservable::Endpoint => GatewayError::ApiMismatch { upstream, speaks, called: api },
                Unservable::Request(source) => GatewayError::Untranslatable { upstream, speaks, source },
            }));
        }
    };
    // Only the primary arm is mirrored: a candidate-arm request already is the candidate's,
    // and one the primary serves because the candidate is down is still the candidate's;
    // never to a candidate that cannot be given the request.
    let tap = if role == Role::Primary
        && rerouted_from.is_none()
        && !untranslated
        && route.config.candidate.is_some()
        && !arms.get(Role::Candidate).is_refused()
    {
        let mirrored = shadow::Mirrored {
            parts: &parts,
            body: &body,
            meta: &meta,
            tally: &tally,
            client_credential: client_credential.clone(),
            arms: &arms,
        };
        shadow::mirror(gateway, route, mirrored)
    } else {
        None
    };
    let routing =
        Routing { route: route_id, first_role: role, tally, client_credential, tap, admitted: Some(admitted), arms };
    let exchange = Exchange::new(gateway, parts, body, meta, routing);
    if let Some(chosen) = rerouted_from {
        exchange.record_down(chosen);
    }
    if untranslated {
        exchange.forgo_evidence();
    }
    forward(&exchange, role).await.map_err(refused)
}

#[cfg(test)]
mod tests;
