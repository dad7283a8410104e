//! From raw sections to runtime types: resolves durations, URLs, secrets and the
//! references between sections, recording every problem with its key path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Uri};

use super::load::{ConfigProblem, Sections};
use super::raw::{RawBreaker, RawCriteria, RawFallback, RawRollout, RawRoute, RawUpstream};
use super::{
    AlertRule, BreakerPolicy, Config, Criteria, FallbackMode, FallbackOn, GatewayKey, ModelPattern, Notifier,
    OnFailure, Price, RetryBudgetPolicy, RolloutPlan, RolloutStep, Route, Secret, ServerConfig, StickySource, Timeouts,
    Upstream, parse_duration, percent_to_basis_points,
};

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

    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem { path: path.into(), message: message.into() });
    }

    fn duration(&mut self, value: Option<&str>, path: &str, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        parse_duration(text).unwrap_or_else(|| {
            self.problem(path, format!("{text:?} is not a duration (e.g. \"500ms\", \"30s\", \"5m\", \"4h\")"));
            default
        })
    }

    fn secret(&mut self, variable: &str, path: &str) -> Option<Secret> {
        match (self.env)(variable) {
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
        let notifiers = self.notifiers(&sections);
        let state_path = match sections.state.path.as_deref() {
            Some(path) => self.base_dir.join(path),
            None => self.base_dir.join("cutover.db"),
        };
        Some(Config { server, gateway_keys, admin_token, upstreams, routes, prices, alerts, notifiers, state_path })
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
        ServerConfig { listen, admin_listen, max_body_bytes: (max_body_mb * 1024.0 * 1024.0) as usize, drain_timeout }
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
        Upstream {
            name: name.to_owned(),
            base_url: raw.base_url.clone(),
            scheme,
            authority,
            base_path,
            api_key,
            api_key_env: raw.api_key_env.clone(),
            timeouts,
            model_aliases,
            breaker,
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

    fn upstream_ref(&mut self, name: &str, names: &[&str], path: &str) -> Option<usize> {
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
            rollout,
        })
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
                _ => {
                    self.problem(path, format!("{name:?} is not one of {}", FallbackOn::NAMES.join(", ")));
                    continue;
                }
            };
            *flag = true;
        }
        on
    }

    fn rollout(&mut self, raw: &RawRollout, path: &str) -> Option<RolloutPlan> {
        let interval = self.duration(raw.interval.as_deref(), &format!("{path}.interval"), Duration::from_secs(60));
        let on_failure = match raw.on_failure.as_deref() {
            None | Some("rollback") => OnFailure::Rollback,
            Some("previous") => OnFailure::Previous,
            Some(other) => {
                self.problem(format!("{path}.on_failure"), format!("{other:?} is not \"rollback\" or \"previous\""));
                OnFailure::Rollback
            }
        };
        let dry_run = match raw.mode.as_deref() {
            None | Some("active") => false,
            Some("dry-run") => true,
            Some(other) => {
                self.problem(format!("{path}.mode"), format!("{other:?} is not \"active\" or \"dry-run\""));
                false
            }
        };
        if raw.steps.is_empty() {
            self.problem(format!("{path}.steps"), "a rollout needs at least one step");
        }
        let mut steps = Vec::new();
        let mut previous_weight = None;
        for (index, step) in raw.steps.iter().enumerate() {
            let step_path = format!("{path}.steps[{index}]");
            let weight_bp = percent_to_basis_points(step.weight).unwrap_or_else(|| {
                self.problem(
                    format!("{step_path}.weight"),
                    format!("{} is not a percentage between 0 and 100 in steps of 0.01", step.weight),
                );
                0
            });
            if previous_weight.is_some_and(|previous| weight_bp < previous) {
                self.problem(format!("{step_path}.weight"), "weights must not decrease from one step to the next");
            }
            previous_weight = Some(weight_bp);
            let shadow = step.shadow.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&shadow) {
                self.problem(format!("{step_path}.shadow"), format!("{shadow} is not a share between 0.0 and 1.0"));
            }
            let criteria = self.criteria(&step.criteria, &raw.criteria, &step_path);
            steps.push(RolloutStep {
                weight_bp,
                shadow,
                min_duration: self.duration(
                    step.min_duration.as_deref(),
                    &format!("{step_path}.min_duration"),
                    Duration::ZERO,
                ),
                min_requests: step.min_requests.unwrap_or(0),
                min_users: step.min_users.or(raw.min_users).unwrap_or(0),
                criteria,
            });
        }
        Some(RolloutPlan {
            interval,
            failure_limit: raw.failure_limit.unwrap_or(3).max(1),
            on_failure,
            dry_run,
            cooldown: self.duration(raw.cooldown.as_deref(), &format!("{path}.cooldown"), Duration::from_secs(600)),
            steps,
        })
    }

    /// A step's criteria: its own values, else the rollout's defaults.
    fn criteria(&mut self, step: &RawCriteria, defaults: &RawCriteria, path: &str) -> Criteria {
        // Refused rather than ignored: a criterion the operator believes is guarding the
        // rollout must be checked, or the plan must not run.
        for (key, value) in [
            ("max_cost_ratio", step.max_cost_ratio.or(defaults.max_cost_ratio)),
            ("min_shadow_agreement", step.min_shadow_agreement.or(defaults.min_shadow_agreement)),
        ] {
            if value.is_some() {
                self.problem(
                    format!("{path}.{key}"),
                    "not evaluated by this version yet (cost and shadow agreement are not measured): remove it",
                );
            }
        }
        let mut pick = |key: &str, own: Option<f64>, default: Option<f64>, max: f64| {
            let value = own.or(default)?;
            if !(0.0..=max).contains(&value) {
                self.problem(format!("{path}.{key}"), format!("{value} is not between 0 and {max}"));
            }
            Some(value)
        };
        Criteria {
            max_error_rate: pick("max_error_rate", step.max_error_rate, defaults.max_error_rate, 100.0),
            max_error_rate_increase: pick(
                "max_error_rate_increase",
                step.max_error_rate_increase,
                defaults.max_error_rate_increase,
                100.0,
            ),
            max_client_error_rate_increase: pick(
                "max_client_error_rate_increase",
                step.max_client_error_rate_increase,
                defaults.max_client_error_rate_increase,
                100.0,
            ),
            max_latency_p50_ratio: pick(
                "max_latency_p50_ratio",
                step.max_latency_p50_ratio,
                defaults.max_latency_p50_ratio,
                1000.0,
            ),
            max_latency_p95_ratio: pick(
                "max_latency_p95_ratio",
                step.max_latency_p95_ratio,
                defaults.max_latency_p95_ratio,
                1000.0,
            ),
            min_latency_improvement: pick(
                "min_latency_improvement",
                step.min_latency_improvement,
                defaults.min_latency_improvement,
                100.0,
            ),
            max_ttft_p95_ratio: pick(
                "max_ttft_p95_ratio",
                step.max_ttft_p95_ratio,
                defaults.max_ttft_p95_ratio,
                1000.0,
            ),
            max_cost_ratio: pick("max_cost_ratio", step.max_cost_ratio, defaults.max_cost_ratio, 1000.0),
            min_shadow_agreement: pick(
                "min_shadow_agreement",
                step.min_shadow_agreement,
                defaults.min_shadow_agreement,
                100.0,
            ),
        }
    }

    fn prices(&mut self, sections: &Sections, names: &[&str]) -> HashMap<(usize, String), Price> {
        let mut prices = HashMap::new();
        for (upstream, models) in &sections.prices {
            let Some(index) = self.upstream_ref(upstream, names, &format!("prices.{upstream}")) else { continue };
            for (model, raw) in models {
                let values = [Some(raw.input), Some(raw.output), raw.cached_input];
                if values.iter().flatten().any(|value| !(value.is_finite() && *value >= 0.0)) {
                    self.problem(
                        format!("prices.{upstream}.{model}"),
                        "prices must be non-negative numbers (USD per million tokens)",
                    );
                }
                prices.insert(
                    (index, model.clone()),
                    Price { input: raw.input, output: raw.output, cached_input: raw.cached_input },
                );
            }
        }
        prices
    }

    fn alerts(&mut self, sections: &Sections, names: &[&str], routes: &[Arc<Route>]) -> Vec<AlertRule> {
        const METRICS: &[&str] = &[
            "error_rate",
            "success_rate",
            "latency_p95_ms",
            "ttft_p95_ms",
            "upstream_up",
            "cost_per_hour",
            "fallback_rate",
            "shadow_agreement",
        ];
        let mut rules = Vec::new();
        for (index, raw) in sections.alerts.iter().enumerate() {
            let path = format!("alerts[{index}]");
            if !METRICS.contains(&raw.metric.as_str()) {
                self.problem(
                    format!("{path}.metric"),
                    format!("{:?} is not one of {}", raw.metric, METRICS.join(", ")),
                );
            }
            if !["<", "<=", ">", ">=", "==", "!="].contains(&raw.op.as_str()) {
                self.problem(format!("{path}.op"), format!("{:?} is not a comparison (<, <=, >, >=, ==, !=)", raw.op));
            }
            if let Some(upstream) = &raw.upstream {
                self.upstream_ref(upstream, names, &format!("{path}.upstream"));
            }
            if let Some(route) = &raw.route
                && !routes.iter().any(|known| &known.name == route)
            {
                self.problem(format!("{path}.route"), format!("unknown route {route:?}"));
            }
            if let Some(role) = &raw.role
                && !["primary", "candidate", "shadow"].contains(&role.as_str())
            {
                self.problem(format!("{path}.role"), format!("{role:?} is not primary, candidate or shadow"));
            }
            let severity = self.severity(raw.severity.as_deref(), &format!("{path}.severity"), "warning");
            rules.push(AlertRule {
                name: raw.name.clone(),
                metric: raw.metric.clone(),
                upstream: raw.upstream.clone(),
                route: raw.route.clone(),
                role: raw.role.clone(),
                op: raw.op.clone(),
                threshold: raw.threshold,
                for_duration: self.duration(raw.for_duration.as_deref(), &format!("{path}.for"), Duration::ZERO),
                severity,
            });
        }
        rules
    }

    fn severity(&mut self, value: Option<&str>, path: &str, default: &str) -> String {
        let severity = value.unwrap_or(default);
        if !["info", "warning", "critical"].contains(&severity) {
            self.problem(path, format!("{severity:?} is not info, warning or critical"));
        }
        severity.to_owned()
    }

    fn notifiers(&mut self, sections: &Sections) -> Vec<Notifier> {
        let mut notifiers = Vec::new();
        for (index, raw) in sections.notify.iter().enumerate() {
            let path = format!("notify[{index}]");
            let url = match (&raw.url, &raw.url_env) {
                (Some(url), None) => Some(Secret::new(url.clone())),
                (None, Some(variable)) => self.secret(variable, &format!("{path}.url_env")),
                _ => {
                    self.problem(&path, "give exactly one of `url` and `url_env`");
                    None
                }
            };
            if let Some(url) = &url
                && url.expose().parse::<Uri>().ok().and_then(|uri| uri.scheme().cloned()).is_none()
            {
                self.problem(format!("{path}.url"), "not an http(s) URL");
            }
            let format = raw.format.clone().unwrap_or_else(|| "json".to_owned());
            if !["json", "slack"].contains(&format.as_str()) {
                self.problem(format!("{path}.format"), format!("{format:?} is not \"json\" or \"slack\""));
            }
            let min_severity = self.severity(raw.min_severity.as_deref(), &format!("{path}.min_severity"), "warning");
            if let Some(url) = url {
                notifiers.push(Notifier { name: raw.name.clone(), url, format, min_severity });
            }
        }
        notifiers
    }
}
