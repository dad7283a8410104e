//! The admin listener's HTTP service: routing, bearer authentication and JSON answers.
//! Generic over the request body, so tests drive it without a socket (`admin/tests.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use cutover_alerts::AlertBoard;
use cutover_metrics::{RouteGauges, UpstreamGauges, render, render_notifications, render_process};
use cutover_model::view::{AlertsView, NotifierTest, NotifierTests};
use cutover_net::{
    auth::bearer_token,
    body::{self, BoxBody, BoxError},
};
use cutover_notify::Notifications;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::json;

use super::actor;
use super::dashboard::{self, Series};
use super::readiness::Readiness;
use crate::proxy::SharedGateway;
use cutover_control::{Command, ControlError, RolloutControl};

#[derive(Clone)]
pub struct AdminService {
    inner: Arc<Admin>,
}

struct Admin {
    /// The request path's runtime in force, read for the admin token, metrics and breaker
    /// states; loaded once per request, like the proxy's.
    gateway: SharedGateway,
    control: Arc<RolloutControl>,
    /// The alert evaluator's published states.
    alerts: Arc<AlertBoard>,
    notifications: Notifications,
    /// The dashboard's time series, recorded while the service lives.
    series: Arc<Series>,
    /// This gateway's part in a fleet (`/admin/fleet`, the `cutover_fleet_*` gauges).
    fleet: Option<Arc<cutover_control::fleet::Fleet>>,
    /// Whether a drain has begun, for `/readyz`.
    readiness: Arc<Readiness>,
}

impl AdminService {
    /// Without alerts or notifiers (tests of the rollout API).
    pub fn new(gateway: SharedGateway, control: Arc<RolloutControl>) -> Self {
        AdminService::watching(gateway, control, Arc::default(), Notifications::default())
    }

    /// With the alert evaluator's board and the notifiers.
    pub fn watching(
        gateway: SharedGateway,
        control: Arc<RolloutControl>,
        alerts: Arc<AlertBoard>,
        notifications: Notifications,
    ) -> Self {
        let series = dashboard::start_series(&gateway);
        let readiness = Arc::new(Readiness::default());
        AdminService {
            inner: Arc::new(Admin { gateway, control, alerts, notifications, series, fleet: None, readiness }),
        }
    }

    /// With the server's drain flag, which `/readyz` reports.
    pub fn with_readiness(mut self, readiness: Arc<Readiness>) -> Self {
        if let Some(admin) = Arc::get_mut(&mut self.inner) {
            admin.readiness = readiness;
        }
        self
    }

    /// With this gateway's part in a fleet, if it is one of a fleet.
    pub fn with_fleet(mut self, fleet: Option<Arc<cutover_control::fleet::Fleet>>) -> Self {
        if let Some(admin) = Arc::get_mut(&mut self.inner) {
            admin.fleet = fleet;
        }
        self
    }
}

/// Any request body will do: hyper's `Incoming` on the listener, a `String` in tests.
impl<B> hyper::service::Service<Request<B>> for AdminService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let admin = self.inner.clone();
        Box::pin(async move { Ok(admin.handle(request).await) })
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<BoxBody> {
    let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
    body::json(status, body::openai_error(&message.into(), kind, None, None))
}

fn ok_json(value: &impl serde::Serialize) -> Response<BoxBody> {
    body::json(StatusCode::OK, serde_json::to_vec(value).unwrap_or_default())
}

/// A refused command as the admin API answers it: its status, its message.
fn refused(failure: ControlError) -> Response<BoxBody> {
    let status = match failure {
        ControlError::UnknownRoute(_) => StatusCode::NOT_FOUND,
        ControlError::InvalidWeight(_) | ControlError::InvalidShare(_) | ControlError::NoCandidate(_) => {
            StatusCode::BAD_REQUEST
        }
        ControlError::NoPlan(_) | ControlError::Conflict(_) => StatusCode::CONFLICT,
        ControlError::Store(_) | ControlError::Unsaved { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, failure.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: f64,
}

/// `{"share": 0.1}`; `{"share": null}` goes back to the configuration's share.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowBody {
    share: Option<f64>,
}

impl Admin {
    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Response<BoxBody>
    where
        B: http_body::Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (request.method(), segments.as_slice()) {
            (&Method::GET, ["healthz"]) => body::json(StatusCode::OK, r#"{"status":"ok"}"#),
            (&Method::GET, ["readyz"]) => self.readiness.answer(&self.gateway.load()),
            (&Method::GET, ["metrics"]) => self.metrics_text(),
            (&Method::GET, ["dashboard", ..]) => dashboard::asset(&path)
                .unwrap_or_else(|| error(StatusCode::NOT_FOUND, format!("unknown admin path {path}"))),
            (_, ["admin", ..]) => {
                if let Some(refusal) = self.refusal(request.headers()) {
                    return refusal;
                }
                self.admin(request, &segments[1..]).await
            }
            _ => error(StatusCode::NOT_FOUND, format!("unknown admin path {path}")),
        }
    }

    fn metrics_text(&self) -> Response<BoxBody> {
        let gateway = self.gateway.load();
        let gauges = gateway.live.routes().map(|_, route| RouteGauges {
            weight_percent: f64::from(route.weight_bp()) / 100.0,
            step: route.step(),
            undecided: route.undecided_since().is_some(),
        });
        let breakers = gateway.breakers_open();
        // Up: the active probes say so and the breaker (passive health) lets traffic through.
        let upstreams: Vec<UpstreamGauges<'_>> = gateway
            .config
            .upstreams
            .iter()
            .zip(breakers)
            .zip(gateway.upstream_health())
            .zip(gateway.upstream_connections())
            .map(|(((upstream, open), health), connections)| UpstreamGauges {
                name: &upstream.name,
                up: health.is_up() && !open,
                breaker_open: open,
                connections: connections.open,
                connection_waits: connections.waited,
            })
            .collect();
        let mut page = render(&gateway.metrics, &gauges, &upstreams);
        super::shadow::render_agreement(&mut page, &gateway.config, &gateway.live);
        self.alerts.render(&mut page);
        render_notifications(&mut page, &self.notifications.counts());
        render_process(&mut page);
        if let Some(fleet) = &self.fleet {
            fleet.render_metrics(&mut page);
        }
        body::response(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", page)
    }

    /// `None` when the request may proceed, else the refusal to send.
    fn refusal(&self, headers: &http::HeaderMap) -> Option<Response<BoxBody>> {
        let gateway = self.gateway.load();
        let Some(token) = &gateway.config.admin_token else {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "the admin API is disabled: set admin.token_env in the config",
            ));
        };
        let presented = bearer_token(headers).unwrap_or_default();
        (!token.matches(presented)).then(|| error(StatusCode::UNAUTHORIZED, "missing or wrong admin bearer token"))
    }

    async fn admin<B>(self: &Arc<Self>, request: Request<B>, segments: &[&str]) -> Response<BoxBody>
    where
        B: http_body::Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = request.method().clone();
        let actor = match actor::actor(request.headers()) {
            Ok(actor) => actor,
            Err(refusal) => return error(StatusCode::BAD_REQUEST, refusal),
        };
        match (&method, segments) {
            // Served from the controller's published views: no lock, no state file, so
            // these answer on the async worker.
            (&Method::GET, ["rollouts"]) => ok_json(&self.control.list()),
            (&Method::GET, ["upstreams"]) => ok_json(&self.upstreams()),
            (&Method::GET, ["rollouts", route]) => self.control.get(route).map_or_else(refused, |view| ok_json(&view)),
            (&Method::POST, ["rollouts", route, "weight"]) => match read_json::<WeightBody, _>(request).await {
                Ok(body) => self.run_command(route, Command::SetWeight(body.weight), actor).await,
                Err(refusal) => refusal,
            },
            (&Method::POST, ["rollouts", route, "shadow"]) => match read_json::<ShadowBody, _>(request).await {
                Ok(body) => {
                    let (control, route) = (self.control.clone(), (*route).to_owned());
                    let set = tokio::task::spawn_blocking(move || control.set_shadow(&route, body.share, &actor)).await;
                    match set {
                        Ok(Ok(view)) => ok_json(&view),
                        Ok(Err(failure)) => refused(failure),
                        Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("command failed: {join}")),
                    }
                }
                Err(refusal) => refusal,
            },
            (&Method::GET, ["shadow", route, "diffs"]) => {
                let gateway = self.gateway.load();
                let dimension = query_value(request.uri().query(), "dimension");
                match super::shadow::diffs(&gateway.config, &gateway.live, route, dimension.as_deref()) {
                    Ok(diffs) => ok_json(&diffs),
                    Err(failure @ super::shadow::DiffsError::UnknownRoute(_)) => {
                        error(StatusCode::NOT_FOUND, failure.to_string())
                    }
                    Err(failure) => error(StatusCode::BAD_REQUEST, failure.to_string()),
                }
            }
            (&Method::POST, ["rollouts", route, verb]) => {
                let full =
                    query_value(request.uri().query(), "full").is_some_and(|value| value == "true" || value == "1");
                let command = match *verb {
                    "pause" => Command::Pause,
                    "resume" => Command::Resume,
                    "promote" if full => Command::PromoteFull,
                    "promote" => Command::Promote,
                    "abort" | "rollback" => Command::Abort,
                    "retry" => Command::Retry,
                    _ => return error(StatusCode::NOT_FOUND, format!("unknown rollout command {verb:?}")),
                };
                self.run_command(route, command, actor).await
            }
            (&Method::GET, ["dashboard"]) => {
                let since = query_value(request.uri().query(), "since").and_then(|since| since.parse().ok());
                ok_json(&dashboard::data(&self.gateway, &self.series, since.unwrap_or(i64::MIN)))
            }
            (&Method::GET, ["alerts"]) => ok_json(&AlertsView { alerts: self.alerts.statuses().to_vec() }),
            (&Method::POST, ["alerts", "test"]) => {
                let notifier = query_value(request.uri().query(), "notifier");
                ok_json(&self.test_notifications(notifier.as_deref()).await)
            }
            (&Method::GET, ["fleet"]) => match &self.fleet {
                Some(fleet) => ok_json(&fleet.status().await),
                None => ok_json(&cutover_control::fleet::single_status()),
            },
            (&Method::GET, ["cost"]) => self.cost(request.uri().query()),
            (&Method::GET, ["events"]) => {
                let route = query_value(request.uri().query(), "route");
                let limit =
                    query_value(request.uri().query(), "limit").and_then(|limit| limit.parse().ok()).unwrap_or(100);
                let control = self.control.clone();
                let result = tokio::task::spawn_blocking(move || control.events(route.as_deref(), limit)).await;
                match result {
                    Ok(Ok(events)) => ok_json(&events),
                    Ok(Err(failure)) => refused(failure),
                    Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("events task failed: {join}")),
                }
            }
            _ => error(StatusCode::NOT_FOUND, format!("unknown admin endpoint {method} /admin/{}", segments.join("/"))),
        }
    }
}

impl Admin {
    /// Each upstream's health, active (the probes, with their last error and recent
    /// changes) and passive (the breaker). No key or secret: `base_url` holds none (`check`).
    fn upstreams(&self) -> Vec<serde_json::Value> {
        let gateway = self.gateway.load();
        let events = gateway.health_log.recent();
        gateway
            .config
            .upstreams
            .iter()
            .zip(gateway.breakers_open())
            .zip(gateway.upstream_health())
            .map(|((upstream, open), health)| {
                let probe = health.summary();
                let changes: Vec<_> = events.iter().filter(|event| event.upstream == upstream.name).collect();
                json!({
                    "name": upstream.name,
                    "base_url": upstream.base_url,
                    "up": probe.up && !open,
                    "breaker_open": open,
                    "probe": probe,
                    "changes": changes,
                })
            })
            .collect()
    }

    /// Posts a test message to `notifier` (every notifier without one), and says how each
    /// receiver answered. The URLs are never shown.
    async fn test_notifications(&self, notifier: Option<&str>) -> NotifierTests {
        let names = match notifier {
            Some(name) => vec![name.to_owned()],
            None => self.notifications.names(),
        };
        let message = cutover_notify::Message {
            severity: cutover_model::Severity::Info,
            text: "[info] cutover test notification: this notifier is reachable".to_owned(),
            json: json!({"source": "cutover", "type": "test", "severity": "info", "text": "cutover test notification"}),
        };
        let mut results = Vec::new();
        for name in names {
            let result = self.notifications.test(&name, &message).await;
            results.push(match result {
                Ok(status) => NotifierTest { notifier: name, ok: true, status: Some(status.as_u16()), error: None },
                Err(error) => NotifierTest { notifier: name, ok: false, status: None, error: Some(error.to_string()) },
            });
        }
        NotifierTests { results }
    }

    /// `GET /admin/cost?route=R&since=24h`: spend per arm and the monthly projection.
    fn cost(&self, query: Option<&str>) -> Response<BoxBody> {
        use cutover_cost::{ReportError, checked_report, now_seconds, parse_since};
        let gateway = self.gateway.load();
        let route = query_value(query, "route");
        let report = parse_since(query_value(query, "since").as_deref())
            .and_then(|since| checked_report(&gateway.metrics.cost, route.as_deref(), since, now_seconds()));
        match report {
            Ok(report) => ok_json(&report),
            Err(failure @ ReportError::UnknownRoute(_)) => error(StatusCode::NOT_FOUND, failure.to_string()),
            Err(failure) => error(StatusCode::BAD_REQUEST, failure.to_string()),
        }
    }

    /// Runs a rollout command on a blocking thread (it writes the state file).
    async fn run_command(&self, route: &str, command: Command, actor: String) -> Response<BoxBody> {
        let control = self.control.clone();
        let route = route.to_owned();
        match tokio::task::spawn_blocking(move || control.command(&route, command, &actor)).await {
            Ok(Ok(view)) => ok_json(&view),
            Ok(Err(failure)) => refused(failure),
            Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("command failed: {join}")),
        }
    }
}

async fn read_json<T, B>(request: Request<B>) -> Result<T, Response<BoxBody>>
where
    T: serde::de::DeserializeOwned,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let bytes: Bytes = match Limited::new(request.into_body(), 64 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(failure) => return Err(error(StatusCode::BAD_REQUEST, format!("cannot read the body: {failure}"))),
    };
    serde_json::from_slice(&bytes)
        .map_err(|failure| error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {failure}")))
}

fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value.to_owned())
}
