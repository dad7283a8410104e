//! Configuration: `cutover.toml` is parsed (`raw`), then validated into the immutable
//! runtime types below (`validate`), reporting every problem with its key path.
//! Secrets are read from the environment at load time and never printed.

pub mod identity;
mod load;
mod name;
mod plan;
mod pricing;
mod problem;
mod raw;
mod route_id;
mod secret;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod validate;
mod validate_plan;
mod validate_state;
mod validate_watch;
mod watch_plan;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cutover_model::{AlertMetric, Api, Comparison, Criteria, Criterion, NotifierFormat, Role, Severity};
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;

pub use identity::{Credential, Identity};
pub use load::{load_file, load_str};
pub use pricing::{ModelPrice, OTHER_MODEL, PriceTable, unpriced_models};
pub use problem::{ConfigErrors, ConfigProblem};
pub use route_id::{PerRoute, RouteId};
pub use secret::Secret;
pub use validate_state::{DEFAULT_LEASE, FleetConfig};
pub use validate_watch::{DEFAULT_ALERT_WINDOW, DEFAULT_REPEAT_INTERVAL, default_alert_rules};

/// The whole validated configuration. Immutable: a new one replaces it whole.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    /// Gateway keys clients present; empty means an open gateway.
    pub gateway_keys: Vec<GatewayKey>,
    /// Bearer token of the admin API; `None` leaves `/admin/*` closed (401) except
    /// on loopback listeners, see `admin`.
    pub admin_token: Option<Secret>,
    pub upstreams: Vec<Arc<Upstream>>,
    pub routes: PerRoute<Arc<Route>>,
    pub prices: HashMap<(usize, String), Price>,
    /// `prices` for the request path: looked up by borrowed names, labels shared.
    pub pricing: PriceTable,
    /// The rules in force: those of the file, else `default_alert_rules`.
    pub alerts: Vec<AlertRule>,
    /// Whether `alerts` are the defaults (the file has no `[[alerts]]`).
    pub alerts_are_defaults: bool,
    pub notifiers: Vec<Notifier>,
    pub health: HealthConfig,
    pub state_path: PathBuf,
    /// `[state] backend = "postgres"`: the shared database of a fleet; `None` is the
    /// SQLite file at `state_path`, owned by this process alone.
    pub fleet: Option<FleetConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub drain_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_timeouts: BodyTimeouts,
    /// The proxy listener's connections: clocks and budget.
    pub proxy_connections: ConnectionLimits,
    /// The admin listener's, with a budget of its own so that a saturated proxy port
    /// leaves `/healthz`, `/metrics` and the admin API reachable.
    pub admin_connections: ConnectionLimits,
    /// How many proxied requests may be in flight at once.
    pub admission: AdmissionLimits,
}

/// Admission by what requests cost: each proxied request in flight may hold an upstream
/// connection (a descriptor) and its body, whatever number of client connections carry
/// them (one HTTP/2 connection carries up to `http2_max_streams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Gateway-wide; `None`: derived at start from the descriptor limit (see
    /// `net::descriptors::inflight_budget`).
    pub max_inflight: Option<usize>,
    /// On one client connection, so that one client cannot take the whole budget.
    pub per_connection: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits { max_inflight: None, per_connection: 32 }
    }
}

/// The clocks and the budget of one listener's connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// From accept to the first request's headers, whatever the protocol (an HTTP/1
    /// request line or the HTTP/2 preface and a first stream), and on HTTP/1 between two
    /// requests of a kept-alive connection.
    pub header_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// HTTP/2: a ping after this much silence; a peer that does not answer within as
    /// long again is disconnected.
    pub http2_keepalive: Duration,
    /// HTTP/2: concurrent streams per connection.
    pub http2_max_streams: u32,
    /// A connection with no request in flight for this long is closed gracefully (GOAWAY
    /// on HTTP/2, where pings would otherwise keep it open for ever).
    pub idle_timeout: Duration,
    /// How long a draining listener waits for in-flight work.
    pub drain_timeout: Duration,
    /// What a new connection does when `max_connections` are open.
    pub when_full: WhenFull,
}

/// What a listener at its connection budget does with the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// It waits in the listen backlog until a connection closes (the proxy listener: a
    /// client's kept-alive connection is its own to keep).
    Wait,
    /// It is admitted in place of the connection that has had no request in flight for
    /// longest, idle or half-open (the admin listener: a flood of idle connections must not
    /// keep probes and scrapes waiting for their header timeouts).
    CloseLongestIdle,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            http2_keepalive: Duration::from_secs(20),
            http2_max_streams: 128,
            // nginx's keepalive_timeout.
            idle_timeout: Duration::from_secs(75),
            drain_timeout: Duration::from_secs(30),
            when_full: WhenFull::Wait,
        }
    }
}

/// How long a client may take to send a request body: between two chunks, and in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyTimeouts {
    pub idle: Duration,
    pub total: Duration,
}

impl Default for BodyTimeouts {
    fn default() -> Self {
        BodyTimeouts { idle: Duration::from_secs(15), total: Duration::from_secs(120) }
    }
}

/// `upstreams.*.max_connecting` when not set.
pub const MAX_CONNECTING: usize = 32;

/// The admin listener's default connection budget: the few clients it has (Prometheus,
/// an operator, a load balancer's health check) with room to spare.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

#[derive(Debug)]
pub struct GatewayKey {
    pub name: String,
    pub secret: Secret,
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    /// `base_url` as written, for display.
    pub base_url: String,
    pub scheme: Scheme,
    pub authority: Authority,
    /// The base URL's path without a trailing slash, e.g. `/v1`; the client's path after
    /// its `/v1` is appended to it.
    pub base_path: String,
    /// The API it speaks: which paths it serves, and how it is given its credential.
    pub api: Api,
    pub api_key: Option<Secret>,
    pub api_key_env: Option<String>,
    pub timeouts: Timeouts,
    /// New connections to this upstream being opened at once, at most: a burst of
    /// requests queues briefly for connections (and reuses those that free up) rather
    /// than flooding the upstream's accept queue into connect timeouts.
    pub max_connecting: usize,
    /// Connections to this upstream open at once, at most, idle ones included (`None`:
    /// as many as requests need). A request that finds them all busy waits for one to
    /// free up, within its first-byte deadline.
    pub max_connections: Option<usize>,
    /// `ca_file`, resolved against the config file's folder.
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, trusted for this upstream besides the web roots:
    /// read and checked when the file is loaded, so a bad one is a config error.
    pub extra_roots: Arc<[CertificateDer<'static>]>,
    /// The account identity this upstream is sent (`OpenAI-Organization`,
    /// `OpenAI-Project`): its own, never the client's, which is meant for another upstream.
    pub organization: Option<HeaderValue>,
    pub project: Option<HeaderValue>,
    /// Client model name → upstream model name.
    pub model_aliases: HashMap<String, String>,
    pub breaker: BreakerPolicy,
}

/// When an upstream's circuit breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Opens after this many failures in a row.
    pub consecutive_failures: u32,
    /// Or when at least this share (0–1) of the requests in `window` failed…
    pub error_rate: f64,
    /// …and there were at least this many.
    pub min_requests: u32,
    pub window: Duration,
    /// How long it stays open before a single probe request is let through.
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// The whole request, stream included.
    pub total: Duration,
    pub connect: Duration,
    /// Until the response headers.
    pub first_byte: Duration,
    /// Streams: until the first content chunk.
    pub first_token: Duration,
    /// Streams: the longest silence between two chunks.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            total: Duration::from_secs(600),
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(60),
            first_token: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    /// Model patterns (`gpt-4.1`, `gpt-4.1-*`); empty takes every model.
    pub models: Vec<ModelPattern>,
    pub primary: usize,
    pub candidate: Option<usize>,
    pub sticky: StickySource,
    /// Mixed into the bucket hash so that routes split independently.
    pub salt: String,
    pub rehash_interval: Option<Duration>,
    pub fallback: FallbackMode,
    pub fallback_on: FallbackOn,
    /// Retries per upstream, with backoff and jitter, within the retry budget.
    pub retries: u32,
    pub retry_budget: RetryBudgetPolicy,
    /// A `Retry-After` longer than this is not waited for: the request falls over instead.
    pub max_retry_after: Duration,
    /// Streams: how long after the first token the gateway still holds the stream back,
    /// so that an early failure can fall over. Zero commits at the first token.
    pub stream_commit: Duration,
    pub shadow: f64,
    /// How mirrors are capped and judged (`shadow_*` keys).
    pub shadow_settings: ShadowSettings,
    /// Streams: when the client did not ask for usage, ask on its behalf and strip it from
    /// what the client sees (`cost`).
    pub inject_stream_usage: bool,
    pub rollout: Option<RolloutPlan>,
}

impl Route {
    /// The upstream that serves `role`: the candidate's for the candidate and its shadow
    /// copies, the primary's otherwise (and for every role of a route without a candidate).
    pub fn upstream_of(&self, role: Role) -> usize {
        match role {
            Role::Primary => self.primary,
            Role::Candidate | Role::Shadow => self.candidate.unwrap_or(self.primary),
        }
    }
}

/// A route's limits on mirroring and how its pairs are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowSettings {
    /// Mirrors per second at most; `None`: no cap.
    pub max_rps: Option<f64>,
    /// USD per hour spent on mirrors at most (needs `[prices]` for the candidate).
    pub max_usd_per_hour: Option<f64>,
    /// Disagreeing pairs kept in memory for `cutover shadow diff`; 0 keeps none.
    pub keep_diffs: usize,
    /// Token-set Jaccard at or above which two texts agree.
    pub min_similarity: f64,
}

impl Default for ShadowSettings {
    fn default() -> Self {
        ShadowSettings { max_rps: None, max_usd_per_hour: None, keep_diffs: 0, min_similarity: 0.5 }
    }
}

/// Retries may be at most `ratio` of the requests plus `min_per_sec` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetPolicy {
    pub ratio: f64,
    pub min_per_sec: f64,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        RetryBudgetPolicy { ratio: 0.2, min_per_sec: 1.0 }
    }
}

/// A model name, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPattern {
    Exact(String),
    Prefix(String),
}

impl ModelPattern {
    pub fn parse(text: &str) -> ModelPattern {
        match text.strip_suffix('*') {
            Some(prefix) => ModelPattern::Prefix(prefix.to_owned()),
            None => ModelPattern::Exact(text.to_owned()),
        }
    }

    pub fn matches(&self, model: &str) -> bool {
        match self {
            ModelPattern::Exact(name) => name == model,
            ModelPattern::Prefix(prefix) => model.starts_with(prefix.as_str()),
        }
    }
}

impl std::fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelPattern::Exact(name) => f.write_str(name),
            ModelPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Where the sticky key of a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickySource {
    Header(HeaderName),
    BodyUser,
    GatewayKey,
}

impl std::fmt::Display for StickySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StickySource::Header(name) => write!(f, "header:{name}"),
            StickySource::BodyUser => f.write_str("body:user"),
            StickySource::GatewayKey => f.write_str("key"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackMode {
    Off,
    /// Candidate failures go to the primary.
    CandidateToPrimary,
    /// Either arm's failures go to the other.
    Both,
}

/// Which failures may fall over to the other upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackOn {
    pub connect: bool,
    pub timeout: bool,
    pub status_5xx: bool,
    pub status_429: bool,
    pub status_408: bool,
    /// A stream that breaks, stalls or sends malformed data before its first token.
    pub stream: bool,
    /// Other 4xx answers (off by default: they are usually the client's fault).
    pub status_4xx: bool,
    /// An answer no API gives: a redirect, or a body of another type than the endpoint's
    /// (an HTML page with 200). It never reaches the client as an answer either way.
    pub invalid_answer: bool,
}

impl Default for FallbackOn {
    fn default() -> Self {
        FallbackOn {
            connect: true,
            timeout: true,
            status_5xx: true,
            status_429: true,
            status_408: true,
            stream: true,
            status_4xx: false,
            invalid_answer: true,
        }
    }
}

impl FallbackOn {
    pub const NAMES: &[&str] = &["connect", "timeout", "5xx", "429", "408", "stream", "4xx", "invalid_answer"];

    pub fn names(&self) -> Vec<&'static str> {
        let flags = [
            self.connect,
            self.timeout,
            self.status_5xx,
            self.status_429,
            self.status_408,
            self.stream,
            self.status_4xx,
            self.invalid_answer,
        ];
        Self::NAMES.iter().zip(flags).filter(|(_, on)| *on).map(|(name, _)| *name).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// USD per million tokens.
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    /// Tokens written to a prompt cache (Anthropic's cache writes); `None`: priced as input.
    pub cache_write: Option<f64>,
    /// Reasoning tokens; `None`: priced as output.
    pub reasoning: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPlan {
    pub interval: Duration,
    pub failure_limit: u32,
    pub on_failure: OnFailure,
    /// What a step that reaches its `max_duration` undecided does.
    pub on_undecided: OnUndecided,
    pub dry_run: bool,
    /// After a rollback, how long before `retry` may start the rollout again.
    pub cooldown: Duration,
    /// The rollout stays `pending` until the gateway's own validation of the candidate
    /// (the `cutover validate` suite, run at start and on `retry`) passed.
    pub require_validation: bool,
    pub steps: Vec<RolloutStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Weight 0.
    Rollback,
    /// Back to the previous step.
    Previous,
}

impl OnFailure {
    /// The config value, `on_failure = "rollback" | "previous"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Previous => "previous",
        }
    }
}

/// What a step does that its evidence has not decided by its `max_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUndecided {
    /// Paused at its weight until an operator acts; `rollout_undecided` fires meanwhile.
    Pause,
    /// Weight 0, as a failed step.
    Rollback,
    /// On to the next step, as a passed one.
    Advance,
}

impl OnUndecided {
    /// The config value, `on_undecided = "pause" | "rollback" | "advance"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUndecided::Pause => "pause",
            OnUndecided::Rollback => "rollback",
            OnUndecided::Advance => "advance",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RolloutStep {
    /// Candidate share in basis points (1 = 0.01%).
    pub weight_bp: u32,
    /// Share of requests mirrored to the candidate (0.0–1.0).
    pub shadow: f64,
    pub min_duration: Duration,
    /// Step time after which an undecided step ends by the plan's `on_undecided`
    /// (default 4 × `min_duration`; `None`: a step without a `min_duration` and without
    /// its own, which holds until decided).
    pub max_duration: Option<Duration>,
    pub min_requests: u64,
    pub min_users: u64,
    pub criteria: Criteria,
}

/// The derived harm budget as a multiple of the margin's own excess: a candidate at the
/// margin passes the increase criterion, one causing twice its harm does not get to keep
/// its users.
pub const DERIVED_BUDGET_MARGINS: f64 = 2.0;

/// Where a step's harm budget comes from (`rollout::analysis::harm`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HarmBudget {
    /// `max_excess_failures`, in requests.
    Fixed(f64),
    /// Derived: `DERIVED_BUDGET_MARGINS × margin` (a proportion) of the candidate's
    /// requests so far projected to `horizon` (the step's `max_duration`).
    Projected { margin: f64, horizon: Duration },
}

impl RolloutStep {
    /// Its harm budget: `max_excess_failures` when set, else derived from
    /// `max_error_rate_increase` and `max_duration` when it has both, else none.
    pub fn harm_budget(&self) -> Option<HarmBudget> {
        if let Some(fixed) = self.criteria.get(Criterion::MaxExcessFailures) {
            return Some(HarmBudget::Fixed(fixed));
        }
        let margin = self.criteria.get(Criterion::MaxErrorRateIncrease)? / 100.0;
        Some(HarmBudget::Projected { margin, horizon: self.max_duration? })
    }

    /// Its budget of slow requests for a latency criterion, `margin` being the share of
    /// requests a candidate exactly at that criterion's limit has beyond the control's
    /// (known only from the control's latencies): `max_excess_slow_requests` when set,
    /// else derived when the step has a `max_duration`, else none.
    pub fn slow_budget(&self, margin: f64) -> Option<HarmBudget> {
        if let Some(fixed) = self.criteria.get(Criterion::MaxExcessSlowRequests) {
            return Some(HarmBudget::Fixed(fixed));
        }
        Some(HarmBudget::Projected { margin, horizon: self.max_duration? })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub metric: AlertMetric,
    pub upstream: Option<String>,
    pub route: Option<String>,
    pub role: Option<Role>,
    pub op: Comparison,
    pub threshold: f64,
    pub for_duration: Duration,
    pub severity: Severity,
    /// The sliding window the metric is computed over.
    pub window: Duration,
    /// A firing alert is announced again after this long.
    pub repeat_interval: Duration,
}

/// `[health]`: each upstream is probed every `interval` with `GET {base_url}{path}` and
/// its key (no tokens spent); `down_after` failures in a row mark it down, `up_after`
/// successes in a row up again.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub enabled: bool,
    pub interval: Duration,
    /// Appended to the upstream's base URL, e.g. `/models`.
    pub path: String,
    /// One probe's deadline.
    pub timeout: Duration,
    pub down_after: u32,
    pub up_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            interval: Duration::from_secs(15),
            path: "/models".to_owned(),
            timeout: Duration::from_secs(5),
            down_after: 2,
            up_after: 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notifier {
    pub name: String,
    pub url: Secret,
    pub format: NotifierFormat,
    pub min_severity: Severity,
}

impl Config {
    pub fn upstream_index(&self, name: &str) -> Option<usize> {
        self.upstreams.iter().position(|upstream| upstream.name == name)
    }

    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.route_id(name).map(|id| &self.routes[id])
    }

    pub fn route_id(&self, name: &str) -> Option<RouteId> {
        self.routes.find(|route| route.name == name)
    }

    /// The name of the upstream behind `route`'s arm `role`: the primary's, or the
    /// candidate's for the candidate and its shadow copies; `None` for a route without
    /// a candidate.
    pub fn arm_upstream(&self, route: &Route, role: Role) -> Option<&str> {
        let upstream = match role {
            Role::Primary => Some(route.primary),
            Role::Candidate | Role::Shadow => route.candidate,
        };
        upstream.map(|index| self.upstreams[index].name.as_str())
    }
}

/// Percent (as written in the config, down to 0.01) to basis points.
pub fn percent_to_basis_points(percent: f64) -> Option<u32> {
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let basis_points = percent * 100.0;
    ((basis_points - basis_points.round()).abs() < 1e-6).then_some(basis_points.round() as u32)
}

#[cfg(test)]
mod tests;
