//! From raw sections to runtime types: resolves durations, URLs, secrets and the
//! references between sections, recording every problem with its key path. The rollout
//! plan (`validate_plan`) and the watch sections (`validate_watch`) have files of their own.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cutover_model::{Api, duration::MAX_DURATION, duration::format_duration, duration::parse_duration};
use http::{HeaderName, HeaderValue, Uri};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::PerRoute;
use super::problem::ConfigProblem;
use super::raw::{RawBreaker, RawFallback, RawRoute, RawServer, RawUpstream, Sections};
use super::{
    ADMIN_MAX_CONNECTIONS, AdmissionLimits, BodyTimeouts, BreakerPolicy, Config, ConnectionLimits, FallbackMode,
    FallbackOn, GatewayKey, MAX_CONNECTING, ModelPattern, PriceTable, RetryBudgetPolicy, Route, Secret, ServerConfig,
    ShadowSettings, StickySource, Timeouts, Upstream, WhenFull,
};

/// Client-side timeouts (`server.header_timeout`, `body_timeout`, …) are at least this…
const MIN_CLIENT_TIMEOUT: Duration = Duration::from_millis(100);
/// …and at most this: a connection that may stay silent longer is one held for ever.
const MAX_CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Connections per listener at most: far above what one process has descriptors for.
const MAX_CONNECTIONS: usize = 1_000_000;
/// Requests in flight at most (`server.max_inflight`, per connection too): as many.
const MAX_INFLIGHT: usize = 1_000_000;
/// `upstreams.*.max_connecting` at most: past this, pacing paces nothing.
const MAX_CONNECTING_BOUND: usize = 10_000;

pub(super) struct Validator<'a> {
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: &'a mut Vec<ConfigProblem>,
}

impl<'a> Validator<'a> {
    pub fn new(
        base_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Option<String>,
        problems: &'a mut Vec<ConfigProblem>,
    ) -> Self {
        Validator { base_dir, env, problems }
    }

    pub(super) fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem { path: path.into(), message: message.into() });
    }

    pub(super) fn duration(&mut self, value: Option<&str>, path: &str, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match parse_duration(text) {
            Some(duration) if duration <= MAX_DURATION => duration,
            Some(_) => {
                let longest = format_duration(MAX_DURATION);
                self.problem(path, format!("{text:?} is longer than the longest duration allowed ({longest})"));
                default
            }
            None => {
                self.problem(path, format!("{text:?} is not a duration (e.g. \"500ms\", \"30s\", \"5m\", \"4h\")"));
                default
            }
        }
    }

    pub(super) fn secret(&mut self, variable: &str, path: &str) -> Option<Secret> {
        match (self.env)(variable) {
            // Refused, not trimmed: a key that is not what the variable holds would fail at
            // the upstream far from its cause, and one that cannot be a header value would
            // be silently dropped from the request.
            Some(value) if value.trim() != value => {
                let problem = format!(
                    "environment variable {variable} has leading or trailing whitespace (a newline?): remove it"
                );
                self.problem(path, problem);
                None
            }
            Some(value) if !value.bytes().all(|byte| byte.is_ascii_graphic() || byte == b' ') => {
                let problem = format!(
                    "environment variable {variable} holds characters that cannot be sent in a header \
                     (control or non-ASCII characters)"
                );
                self.problem(path, problem);
                None
            }
            Some(value) if !value.is_empty() => Some(Secret::new(value)),
            _ => {
                self.problem(path, format!("environment variable {variable} is not set"));
                None
            }
        }
    }

    fn address(&mut self, value: Option<&str>, path: &str, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        text.parse().unwrap_or_else(|_| {
            self.problem(path, format!("{text:?} is not a socket address (e.g. \"127.0.0.1:8080\")"));
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    pub fn build(mut self, sections: Sections) -> Option<Config> {
        let server = self.server(&sections);
        let gateway_keys = self.gateway_keys(&sections);
        let admin_token = sections.admin.token_env.as_deref().and_then(|name| self.secret(name, "admin.token_env"));
        let upstreams: Vec<Arc<Upstream>> =
            sections.upstreams.iter().map(|(name, raw)| Arc::new(self.upstream(name, raw))).collect();
        let names: Vec<&str> = upstreams.iter().map(|upstream| upstream.name.as_str()).collect();
        let routes = self.routes(&sections.routes, &names);
        let prices = self.prices(&sections, &names);
        let alerts = self.alerts(&sections, &names, &routes);
        let alerts_are_defaults = sections.alerts.is_empty();
        let notifiers = self.notifiers(&sections);
        let health = self.health(&sections.health);
        let state_path = match sections.state.path.as_deref() {
            Some(path) => self.base_dir.join(path),
            None => self.base_dir.join("cutover.db"),
        };
        let fleet = self.fleet(&sections.state);
        let routes = PerRoute::from_routes(routes);
        let pricing = PriceTable::new(&upstreams, &routes, &prices);
        Some(Config {
            server,
            gateway_keys,
            admin_token,
            upstreams,
            routes,
            prices,
            pricing,
            alerts,
            alerts_are_defaults,
            notifiers,
            health,
            state_path,
            fleet,
        })
    }

    fn server(&mut self, sections: &Sections) -> ServerConfig {
        let raw = &sections.server;
        let listen = self.address(raw.listen.as_deref(), "server.listen", "127.0.0.1:8080");
        let admin_listen = self.address(raw.admin_listen.as_deref(), "server.admin_listen", "127.0.0.1:9090");
        if listen == admin_listen && listen.port() != 0 {
            self.problem("server.admin_listen", format!("{admin_listen} is also server.listen"));
        }
        let max_body_mb = raw.max_body_mb.unwrap_or(32.0);
        if !(max_body_mb > 0.0 && max_body_mb <= 1024.0) {
            self.problem("server.max_body_mb", format!("{max_body_mb} is not between 0 and 1024"));
        }
        let drain_timeout =
            self.duration(raw.drain_timeout.as_deref(), "server.drain_timeout", Duration::from_secs(30));
        let (body_timeouts, proxy_connections) = self.connection_limits(raw, drain_timeout);
        let admin_connections = ConnectionLimits {
            max_connections: self.count(
                raw.admin_max_connections,
                "server.admin_max_connections",
                ADMIN_MAX_CONNECTIONS,
                MAX_CONNECTIONS,
            ),
            when_full: WhenFull::CloseLongestIdle,
            ..proxy_connections
        };
        let defaults = AdmissionLimits::default();
        let admission = AdmissionLimits {
            max_inflight: raw.max_inflight.map(|_| {
                self.count(raw.max_inflight, "server.max_inflight", proxy_connections.max_connections, MAX_INFLIGHT)
            }),
            per_connection: self.count(
                raw.max_inflight_per_connection,
                "server.max_inflight_per_connection",
                defaults.per_connection,
                MAX_INFLIGHT,
            ),
        };
        ServerConfig {
            listen,
            admin_listen,
            max_body_bytes: (max_body_mb * 1024.0 * 1024.0) as usize,
            drain_timeout,
            body_timeouts,
            proxy_connections,
            admin_connections,
            admission,
        }
    }

    /// The clocks and budgets of client connections, each within bounds: a zero timeout
    /// would refuse every client, an unbounded one would let a silent client hold a
    /// connection for ever.
    fn connection_limits(&mut self, raw: &RawServer, drain_timeout: Duration) -> (BodyTimeouts, ConnectionLimits) {
        let (body, connections) = (BodyTimeouts::default(), ConnectionLimits::default());
        let mut timeout = |value: &Option<String>, key: &str, default| {
            let path = format!("server.{key}");
            let duration = self.duration(value.as_deref(), &path, default);
            if !(MIN_CLIENT_TIMEOUT..=MAX_CLIENT_TIMEOUT).contains(&duration) {
                let (min, max) = (format_duration(MIN_CLIENT_TIMEOUT), format_duration(MAX_CLIENT_TIMEOUT));
                self.problem(path, format!("{} is not between {min} and {max}", format_duration(duration)));
                return default;
            }
            duration
        };
        let header_timeout = timeout(&raw.header_timeout, "header_timeout", connections.header_timeout);
        let body_timeouts = BodyTimeouts {
            idle: timeout(&raw.body_idle_timeout, "body_idle_timeout", body.idle),
            total: timeout(&raw.body_timeout, "body_timeout", body.total),
        };
        let http2_keepalive = timeout(&raw.http2_keepalive, "http2_keepalive", connections.http2_keepalive);
        let idle_timeout = timeout(&raw.idle_timeout, "idle_timeout", connections.idle_timeout);
        let max_connections =
            self.count(raw.max_connections, "server.max_connections", connections.max_connections, MAX_CONNECTIONS);
        let http2_max_streams = self.count(
            raw.http2_max_streams,
            "server.http2_max_streams",
            connections.http2_max_streams as usize,
            10_000,
        ) as u32;
        let limits = ConnectionLimits {
            header_timeout,
            max_connections,
            http2_keepalive,
            http2_max_streams,
            idle_timeout,
            drain_timeout,
            when_full: connections.when_full,
        };
        (body_timeouts, limits)
    }

    /// A count between 1 and `max`, `default` when absent or out of bounds.
    fn count(&mut self, value: Option<i64>, path: &str, default: usize, max: usize) -> usize {
        let Some(value) = value else { return default };
        match usize::try_from(value) {
            Ok(count) if (1..=max).contains(&count) => count,
            _ => {
                self.problem(path, format!("{value} is not between 1 and {max}"));
                default
            }
        }
    }

    fn gateway_keys(&mut self, sections: &Sections) -> Vec<GatewayKey> {
        let mut keys = Vec::new();
        for (index, raw) in sections.auth.keys.iter().enumerate() {
            if let Some(secret) = self.secret(&raw.key_env, &format!("auth.keys[{index}].key_env")) {
                keys.push(GatewayKey { name: raw.name.clone(), secret });
            }
        }
        keys
    }

    fn upstream(&mut self, name: &str, raw: &RawUpstream) -> Upstream {
        // The name is a TOML key: quoted in the path, as the file would write it.
        self.name(name, format!("upstreams.{name:?}"));
        let path = format!("upstreams.{name}");
        let api_key =
            raw.api_key_env.as_deref().and_then(|variable| self.secret(variable, &format!("{path}.api_key_env")));
        let defaults = Timeouts::default();
        let mut duration = |key: &str, value: &Option<String>, default| {
            self.duration(value.as_deref(), &format!("{path}.{key}"), default)
        };
        let timeouts = Timeouts {
            total: duration("timeout", &raw.timeout, defaults.total),
            connect: duration("connect_timeout", &raw.connect_timeout, defaults.connect),
            first_byte: duration("first_byte_timeout", &raw.first_byte_timeout, defaults.first_byte),
            first_token: duration("first_token_timeout", &raw.first_token_timeout, defaults.first_token),
            idle: duration("idle_timeout", &raw.idle_timeout, defaults.idle),
        };
        let uri: Option<Uri> = raw.base_url.parse().ok();
        // Credentials belong in `api_key_env`: in the URL they would be printed by `cutover
        // check` and the admin API. The message names the key, never the URL.
        if let Some(authority) =
            uri.as_ref().and_then(Uri::authority).filter(|authority| authority.as_str().contains('@'))
        {
            let host = authority.as_str().rsplit('@').next().unwrap_or_default().to_owned();
            self.problem(
                format!("{path}.base_url"),
                format!("credentials in the URL (before @{host}) are refused: put the key in api_key_env"),
            );
        }
        let parts = uri.and_then(|uri| {
            let scheme = uri.scheme().filter(|scheme| ["http", "https"].contains(&scheme.as_str()))?.clone();
            let authority = uri.authority()?.clone();
            (uri.query().is_none()).then(|| (scheme, authority, uri.path().trim_end_matches('/').to_owned()))
        });
        let (scheme, authority, base_path) = parts.unwrap_or_else(|| {
            self.problem(
                format!("{path}.base_url"),
                format!("{:?} is not an http(s) URL such as \"https://api.openai.com/v1\"", raw.base_url),
            );
            (http::uri::Scheme::HTTP, http::uri::Authority::from_static("invalid"), String::new())
        });
        let model_aliases = raw.models.iter().map(|(from, to)| (from.clone(), to.clone())).collect();
        let breaker = self.breaker(raw.breaker.as_ref(), &format!("{path}.breaker"));
        let max_connecting =
            self.count(raw.max_connecting, &format!("{path}.max_connecting"), MAX_CONNECTING, MAX_CONNECTING_BOUND);
        let max_connections = raw
            .max_connections
            .map(|value| self.count(Some(value), &format!("{path}.max_connections"), MAX_CONNECTIONS, MAX_CONNECTIONS));
        let ca_file = raw.ca_file.as_deref().map(|file| self.base_dir.join(file));
        let extra_roots = match &ca_file {
            Some(file) => self.trusted_certificates(file, &format!("{path}.ca_file")),
            None => Arc::default(),
        };
        let api = raw.api.as_deref().map_or(Api::OpenAi, |name| {
            Api::from_name(name).unwrap_or_else(|| {
                self.problem(
                    format!("{path}.api"),
                    format!("{name:?} is not an API the gateway speaks (openai, anthropic)"),
                );
                Api::OpenAi
            })
        });
        let organization = self.identity(raw.organization.as_deref(), &format!("{path}.organization"));
        let project = self.identity(raw.project.as_deref(), &format!("{path}.project"));
        Upstream {
            name: name.to_owned(),
            base_url: raw.base_url.clone(),
            scheme,
            authority,
            base_path,
            api,
            api_key,
            api_key_env: raw.api_key_env.clone(),
            timeouts,
            max_connecting,
            max_connections,
            ca_file,
            extra_roots,
            organization,
            project,
            model_aliases,
            breaker,
        }
    }

    /// The CA certificates of a PEM file, at least one; a problem naming the key and the
    /// file otherwise.
    fn trusted_certificates(&mut self, file: &Path, path: &str) -> Arc<[CertificateDer<'static>]> {
        let shown = file.display();
        let certificates = match CertificateDer::pem_file_iter(file) {
            Ok(certificates) => certificates.collect::<Result<Vec<_>, _>>(),
            Err(error) => Err(error),
        };
        match certificates {
            Ok(certificates) if !certificates.is_empty() => certificates.into(),
            Ok(_) => {
                self.problem(path, format!("{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
                Arc::default()
            }
            Err(error) => {
                self.problem(path, format!("cannot read certificates from {shown}: {error}"));
                Arc::default()
            }
        }
    }

    /// An account identity header's value, if it can be one.
    fn identity(&mut self, value: Option<&str>, path: &str) -> Option<HeaderValue> {
        let value = value?;
        match HeaderValue::from_str(value) {
            Ok(header) if !value.is_empty() && value.trim() == value => Some(header),
            _ => {
                self.problem(
                    path,
                    format!("{value:?} cannot be sent as a header: printable ASCII, no surrounding spaces"),
                );
                None
            }
        }
    }

    fn breaker(&mut self, raw: Option<&RawBreaker>, path: &str) -> BreakerPolicy {
        let defaults = BreakerPolicy::default();
        let Some(raw) = raw else { return defaults };
        let error_rate = raw.error_rate.map_or(defaults.error_rate, |percent| percent / 100.0);
        if !(0.0..=1.0).contains(&error_rate) || error_rate == 0.0 {
            self.problem(format!("{path}.error_rate"), "must be a percentage above 0 and at most 100");
        }
        BreakerPolicy {
            consecutive_failures: raw.consecutive_failures.unwrap_or(defaults.consecutive_failures).max(1),
            error_rate,
            min_requests: raw.min_requests.unwrap_or(defaults.min_requests),
            window: self.duration(raw.window.as_deref(), &format!("{path}.window"), defaults.window),
            cooldown: self.duration(raw.cooldown.as_deref(), &format!("{path}.cooldown"), defaults.cooldown),
        }
    }

    pub(super) fn upstream_ref(&mut self, name: &str, names: &[&str], path: &str) -> Option<usize> {
        let index = names.iter().position(|known| *known == name);
        if index.is_none() {
            self.problem(path, format!("unknown upstream {name:?} (known: {})", names.join(", ")));
        }
        index
    }

    fn routes(&mut self, raw_routes: &[RawRoute], names: &[&str]) -> Vec<Arc<Route>> {
        if raw_routes.is_empty() {
            self.problem("routes", "no route: add at least one [[routes]] with a primary upstream");
        }
        let mut seen = HashSet::new();
        let mut catch_all = None;
        let mut routes = Vec::new();
        for (index, raw) in raw_routes.iter().enumerate() {
            let path = format!("routes[{index}]");
            self.name(&raw.name, format!("{path}.name"));
            if !seen.insert(raw.name.clone()) {
                self.problem(format!("{path}.name"), format!("route {:?} is defined twice", raw.name));
            }
            if raw.models.is_none()
                && let Some(previous) = catch_all.replace(index)
            {
                self.problem(
                    format!("{path}.models"),
                    format!("routes[{previous}] already takes every model; give this route `models`"),
                );
            }
            if let Some(route) = self.route(raw, names, &path) {
                routes.push(Arc::new(route));
            }
        }
        routes
    }

    fn route(&mut self, raw: &RawRoute, names: &[&str], path: &str) -> Option<Route> {
        let primary = self.upstream_ref(&raw.primary, names, &format!("{path}.primary"));
        let candidate =
            raw.candidate.as_deref().map(|name| self.upstream_ref(name, names, &format!("{path}.candidate")));
        if primary.is_some() && candidate.flatten() == primary {
            self.problem(format!("{path}.candidate"), "the candidate is the primary");
        }
        let models: Vec<ModelPattern> =
            raw.models.iter().flatten().map(|pattern| ModelPattern::parse(pattern)).collect();
        if raw.models.as_ref().is_some_and(Vec::is_empty) {
            self.problem(format!("{path}.models"), "empty list: omit `models` to take every model");
        }
        let sticky = self.sticky(raw.sticky.as_deref(), &format!("{path}.sticky"));
        let fallback = match &raw.fallback {
            None | Some(RawFallback::Enabled(true)) => FallbackMode::CandidateToPrimary,
            Some(RawFallback::Enabled(false)) => FallbackMode::Off,
            Some(RawFallback::Mode(mode)) if mode == "both" => FallbackMode::Both,
            Some(RawFallback::Mode(mode)) => {
                self.problem(format!("{path}.fallback"), format!("{mode:?} is not one of true, false, \"both\""));
                FallbackMode::Off
            }
        };
        let fallback_on = self.fallback_on(raw.fallback_on.as_deref(), &format!("{path}.fallback_on"));
        let shadow = raw.shadow.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&shadow) {
            self.problem(format!("{path}.shadow"), format!("{shadow} is not a share between 0.0 and 1.0"));
        }
        let rehash_interval = raw
            .rehash_interval
            .as_deref()
            .map(|text| self.duration(Some(text), &format!("{path}.rehash_interval"), Duration::ZERO));
        let rollout = raw.rollout.as_ref().and_then(|rollout| self.rollout(rollout, &format!("{path}.rollout")));
        if shadow > 0.0 && candidate.flatten().is_none() {
            self.problem(format!("{path}.shadow"), "mirroring needs a `candidate` upstream");
        }
        if rollout.is_some() && candidate.flatten().is_none() {
            self.problem(format!("{path}.rollout"), "a rollout needs a `candidate` upstream");
        }
        Some(Route {
            name: raw.name.clone(),
            models,
            primary: primary?,
            candidate: candidate.flatten(),
            sticky,
            salt: raw.salt.clone().unwrap_or_else(|| raw.name.clone()),
            rehash_interval: rehash_interval.filter(|interval| !interval.is_zero()),
            fallback,
            fallback_on,
            retries: raw.retries.unwrap_or(2).min(10),
            retry_budget: self.retry_budget(raw, path),
            max_retry_after: self.duration(
                raw.max_retry_after.as_deref(),
                &format!("{path}.max_retry_after"),
                Duration::from_secs(2),
            ),
            stream_commit: self.duration(
                raw.stream_commit.as_deref(),
                &format!("{path}.stream_commit"),
                Duration::ZERO,
            ),
            shadow,
            shadow_settings: self.shadow_settings(raw, path),
            inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
            rollout,
        })
    }

    /// The `shadow_*` keys of a route.
    fn shadow_settings(&mut self, raw: &RawRoute, path: &str) -> ShadowSettings {
        let defaults = ShadowSettings::default();
        let mut positive = |key: &str, value: Option<f64>| {
            let value = value?;
            if !(value > 0.0 && value.is_finite()) {
                self.problem(format!("{path}.{key}"), format!("{value} is not a positive number (omit it for no cap)"));
            }
            Some(value)
        };
        let max_rps = positive("shadow_max_rps", raw.shadow_max_rps);
        let max_usd_per_hour = positive("shadow_max_usd_per_hour", raw.shadow_max_usd_per_hour);
        let keep_diffs = raw.shadow_keep_diffs.unwrap_or(0) as usize;
        if keep_diffs > cutover_model::dimension::MAX_KEPT_DIFFS {
            self.problem(
                format!("{path}.shadow_keep_diffs"),
                format!(
                    "{keep_diffs} is more than the {} diffs a route may keep",
                    cutover_model::dimension::MAX_KEPT_DIFFS
                ),
            );
        }
        let min_similarity = raw.shadow_min_similarity.unwrap_or(defaults.min_similarity);
        if !(0.0..=1.0).contains(&min_similarity) {
            self.problem(
                format!("{path}.shadow_min_similarity"),
                format!("{min_similarity} is not between 0.0 and 1.0"),
            );
        }
        ShadowSettings { max_rps, max_usd_per_hour, keep_diffs, min_similarity }
    }

    fn retry_budget(&mut self, raw: &RawRoute, path: &str) -> RetryBudgetPolicy {
        let defaults = RetryBudgetPolicy::default();
        let ratio = raw.retry_budget.unwrap_or(defaults.ratio);
        if !(0.0..=1.0).contains(&ratio) {
            self.problem(
                format!("{path}.retry_budget"),
                format!("{ratio} is not a share of requests between 0.0 and 1.0"),
            );
        }
        let min_per_sec = raw.retry_budget_min_per_sec.unwrap_or(defaults.min_per_sec);
        if !(min_per_sec >= 0.0 && min_per_sec.is_finite()) {
            self.problem(
                format!("{path}.retry_budget_min_per_sec"),
                format!("{min_per_sec} is not a rate of at least 0"),
            );
        }
        RetryBudgetPolicy { ratio, min_per_sec }
    }

    fn sticky(&mut self, value: Option<&str>, path: &str) -> StickySource {
        let text = value.unwrap_or("header:x-user-id");
        if let Some(header) = text.strip_prefix("header:")
            && let Ok(name) = HeaderName::from_bytes(header.as_bytes())
        {
            return StickySource::Header(name);
        }
        match text {
            "body:user" => StickySource::BodyUser,
            "key" => StickySource::GatewayKey,
            _ => {
                self.problem(path, format!("{text:?} is not one of \"header:NAME\", \"body:user\", \"key\""));
                StickySource::BodyUser
            }
        }
    }

    fn fallback_on(&mut self, value: Option<&[String]>, path: &str) -> FallbackOn {
        let Some(names) = value else { return FallbackOn::default() };
        let mut on = FallbackOn {
            connect: false,
            timeout: false,
            status_5xx: false,
            status_429: false,
            status_408: false,
            stream: false,
            status_4xx: false,
            invalid_answer: false,
        };
        for name in names {
            let flag = match name.as_str() {
                "connect" => &mut on.connect,
                "timeout" => &mut on.timeout,
                "5xx" => &mut on.status_5xx,
                "429" => &mut on.status_429,
                "408" => &mut on.status_408,
                "stream" => &mut on.stream,
                "4xx" => &mut on.status_4xx,
                "invalid_answer" => &mut on.invalid_answer,
                _ => {
                    self.problem(path, format!("{name:?} is not one of {}", FallbackOn::NAMES.join(", ")));
                    continue;
                }
            };
            *flag = true;
        }
        on
    }
}
