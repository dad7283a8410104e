//! The configuration file as written: serde structs that mirror `cutover.toml` key for
//! key, reject unknown keys, and hold values (durations, URLs, references) unchecked.
//! `validate` turns them into runtime types.

use std::collections::BTreeMap;
use std::fmt;

use cutover_model::{Criteria, Criterion, Dimension};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// The raw sections of a configuration file, each deserialized on its own by `load`.
#[derive(Default)]
pub struct Sections {
    pub server: RawServer,
    pub auth: RawAuth,
    pub admin: RawAdmin,
    pub state: RawState,
    pub upstreams: Vec<(String, RawUpstream)>,
    pub prices: Vec<(String, BTreeMap<String, RawPrice>)>,
    pub routes: Vec<RawRoute>,
    pub alerts: Vec<RawAlert>,
    pub notify: Vec<RawNotify>,
    pub health: RawHealth,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub max_body_mb: Option<f64>,
    /// Longest time a draining gateway waits for in-flight streams on SIGTERM.
    pub drain_timeout: Option<String>,
    /// From accept to a request's headers (HTTP/1 and HTTP/2 alike).
    pub header_timeout: Option<String>,
    /// A request body in all…
    pub body_timeout: Option<String>,
    /// …and between two of its chunks.
    pub body_idle_timeout: Option<String>,
    /// Open proxy connections at most.
    pub max_connections: Option<i64>,
    /// Open admin connections at most, a budget apart from the proxy's.
    pub admin_max_connections: Option<i64>,
    /// HTTP/2 keep-alive ping interval (and the time allowed for its answer).
    pub http2_keepalive: Option<String>,
    /// HTTP/2 concurrent streams per connection.
    pub http2_max_streams: Option<i64>,
    /// A connection with no request in flight this long is closed (GOAWAY on HTTP/2).
    pub idle_timeout: Option<String>,
    /// Proxied requests in flight at once, gateway-wide (default: from the descriptor limit).
    pub max_inflight: Option<i64>,
    /// Proxied requests in flight at once on one client connection (HTTP/2 multiplexes).
    pub max_inflight_per_connection: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    pub keys: Vec<RawGatewayKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayKey {
    pub name: String,
    pub key_env: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub path: Option<String>,
    /// `"sqlite"` (the default) or `"postgres"` (a fleet of gateways on one database).
    pub backend: Option<String>,
    /// postgres: the environment variable holding the connection string (a secret).
    pub url_env: Option<String>,
    /// postgres: this gateway's name in the fleet.
    pub instance: Option<String>,
    /// postgres: how long a dead leader goes unreplaced at most.
    pub lease: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub base_url: String,
    /// The API the upstream speaks: `openai` (the default) or `anthropic`.
    pub api: Option<String>,
    pub api_key_env: Option<String>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub first_byte_timeout: Option<String>,
    pub first_token_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    /// New connections being opened at once, at most; further ones queue.
    pub max_connecting: Option<i64>,
    /// Connections open at once, at most (idle ones included); requests queue for one.
    pub max_connections: Option<i64>,
    /// A PEM file of CA certificates trusted for this upstream, besides the web roots.
    pub ca_file: Option<String>,
    /// `OpenAI-Organization` sent to this upstream (the client's never is).
    pub organization: Option<String>,
    /// `OpenAI-Project` sent to this upstream (the client's never is).
    pub project: Option<String>,
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    pub breaker: Option<RawBreaker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub consecutive_failures: Option<u32>,
    pub error_rate: Option<f64>,
    pub min_requests: Option<u32>,
    pub window: Option<String>,
    pub cooldown: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    /// Tokens written to a prompt cache, when priced apart from the other input tokens.
    pub cache_write: Option<f64>,
    /// Reasoning tokens, when priced apart from the other output tokens.
    pub reasoning: Option<f64>,
}

/// `fallback = true | false | "both"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawFallback {
    Enabled(bool),
    Mode(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub models: Option<Vec<String>>,
    pub primary: String,
    pub candidate: Option<String>,
    pub sticky: Option<String>,
    pub salt: Option<String>,
    pub rehash_interval: Option<String>,
    pub fallback: Option<RawFallback>,
    pub fallback_on: Option<Vec<String>>,
    pub retries: Option<u32>,
    pub retry_budget: Option<f64>,
    pub retry_budget_min_per_sec: Option<f64>,
    pub max_retry_after: Option<String>,
    pub stream_commit: Option<String>,
    pub shadow: Option<f64>,
    /// Mirrors per second at most (token bucket), and USD per hour of mirrors at most.
    pub shadow_max_rps: Option<f64>,
    pub shadow_max_usd_per_hour: Option<f64>,
    /// Disagreeing pairs kept for `cutover shadow diff` (0, the default: none).
    pub shadow_keep_diffs: Option<u32>,
    /// Token-set Jaccard at or above which two texts agree (default 0.5).
    pub shadow_min_similarity: Option<f64>,
    /// Streams: ask for usage on the client's behalf and strip it again (default true).
    pub inject_stream_usage: Option<bool>,
    pub rollout: Option<RawRollout>,
}

/// Keys of `[routes.rollout]` besides the criteria (`Criterion::KEYS`).
pub const ROLLOUT_KEYS: &[&str] = &[
    "interval",
    "failure_limit",
    "on_failure",
    "on_undecided",
    "mode",
    "min_users",
    "cooldown",
    "require_validation",
    "steps",
];
/// Keys of one rollout step besides the criteria.
pub const STEP_KEYS: &[&str] = &["weight", "shadow", "min_duration", "max_duration", "min_requests", "min_users"];

/// Success criteria as written; a step's own values override the route-level defaults.
/// Read key by key against `Criterion::KEYS`, so that a new criterion needs no field here.
#[derive(Debug, Default, Clone)]
pub struct RawCriteria {
    /// Unchecked: `validate_plan` checks the ranges and refuses what is not evaluated.
    pub written: Criteria,
}

impl<'de> Deserialize<'de> for RawCriteria {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A struct, not a map: flattened, serde then hands over only the criteria keys and
        // leaves the others to the enclosing rollout or step.
        deserializer.deserialize_struct("RawCriteria", Criterion::KEYS, RawCriteriaVisitor)
    }
}

struct RawCriteriaVisitor;

impl<'de> Visitor<'de> for RawCriteriaVisitor {
    type Value = RawCriteria;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("struct RawCriteria")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCriteria, A::Error> {
        let mut written = Criteria::default();
        while let Some(key) = map.next_key::<String>()? {
            match Criterion::from_key(&key) {
                Some(Criterion::MinShadowAgreement) => match map.next_value::<ShadowAgreement>()? {
                    ShadowAgreement::Overall(threshold) => written.set(Criterion::MinShadowAgreement, Some(threshold)),
                    ShadowAgreement::PerDimension(table) => {
                        for (name, threshold) in table {
                            match Dimension::from_name(&name) {
                                Some(dimension) => written.set_shadow_dimension(dimension, Some(threshold)),
                                None if name == "overall" => {
                                    written.set(Criterion::MinShadowAgreement, Some(threshold))
                                }
                                None => {
                                    return Err(serde::de::Error::custom(format!(
                                        "{name:?} is not a shadow dimension (overall, {})",
                                        Dimension::names()
                                    )));
                                }
                            }
                        }
                    }
                },
                Some(criterion) => written.set(criterion, map.next_value::<Option<f64>>()?),
                // Unknown keys are reported with their path by `load::check_rollout_keys`.
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawCriteria { written })
    }
}

/// `min_shadow_agreement = 95` (overall) or `{ overall = 95, tool_calls = 98, … }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ShadowAgreement {
    Overall(f64),
    PerDimension(BTreeMap<String, f64>),
}

/// No `deny_unknown_fields` here or on `RawStep`: serde ignores it next to a flattened
/// field, so `load::check_rollout_keys` checks their keys by hand.
#[derive(Debug, Deserialize)]
pub struct RawRollout {
    pub interval: Option<String>,
    pub failure_limit: Option<u32>,
    pub on_failure: Option<String>,
    pub on_undecided: Option<String>,
    pub mode: Option<String>,
    pub min_users: Option<u64>,
    pub cooldown: Option<String>,
    /// Stay pending until a validation of the candidate (`cutover validate`) passed.
    pub require_validation: Option<bool>,
    #[serde(flatten)]
    pub criteria: RawCriteria,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
pub struct RawStep {
    pub weight: f64,
    pub shadow: Option<f64>,
    pub min_duration: Option<String>,
    pub max_duration: Option<String>,
    pub min_requests: Option<u64>,
    pub min_users: Option<u64>,
    #[serde(flatten)]
    pub criteria: RawCriteria,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub name: String,
    pub metric: String,
    pub upstream: Option<String>,
    pub route: Option<String>,
    pub role: Option<String>,
    pub op: String,
    pub threshold: f64,
    #[serde(rename = "for")]
    pub for_duration: Option<String>,
    pub severity: Option<String>,
    pub window: Option<String>,
    pub repeat_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub name: String,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub format: Option<String>,
    pub min_severity: Option<String>,
}

/// `[health]`: the active probes of every upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub enabled: Option<bool>,
    pub interval: Option<String>,
    pub path: Option<String>,
    pub timeout: Option<String>,
    pub down_after: Option<u32>,
    pub up_after: Option<u32>,
}
