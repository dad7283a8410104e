//! Validating what watches the traffic: the price table, alert rules, notifiers and the
//! health probes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cutover_model::{AlertMetric, Comparison, NotifierFormat, Role, Severity};
use http::Uri;

use super::raw::{RawHealth, Sections};
use super::validate::Validator;
use super::{AlertRule, HealthConfig, Notifier, Price, Route, Secret};

/// The sliding window of an alert rule that names none.
pub const DEFAULT_ALERT_WINDOW: Duration = Duration::from_secs(300);
/// How often a firing alert is announced again, unless its rule says otherwise.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(3600);

/// The rules in force when the file has no `[[alerts]]`: the five of the well-known
/// migration guide, each evaluated per upstream over 5 minutes. The cost rule only when
/// prices are configured: without them there is no cost to watch.
pub fn default_alert_rules(with_prices: bool) -> Vec<AlertRule> {
    let rule = |name: &str, metric, op, threshold: f64, for_secs: u64, severity| AlertRule {
        name: name.to_owned(),
        metric,
        upstream: None,
        route: None,
        role: None,
        op,
        threshold,
        for_duration: Duration::from_secs(for_secs),
        severity,
        window: DEFAULT_ALERT_WINDOW,
        repeat_interval: DEFAULT_REPEAT_INTERVAL,
    };
    let mut rules = vec![
        rule("error_rate_high", AlertMetric::ErrorRate, Comparison::Gt, 5.0, 300, Severity::Critical),
        rule("latency_p95_high", AlertMetric::LatencyP95Ms, Comparison::Gt, 500.0, 180, Severity::Warning),
        rule("success_rate_low", AlertMetric::SuccessRate, Comparison::Lt, 95.0, 300, Severity::Critical),
        rule("upstream_down", AlertMetric::UpstreamUp, Comparison::Lt, 1.0, 60, Severity::Critical),
        rule("rollout_undecided", AlertMetric::RolloutUndecided, Comparison::Ge, 1.0, 0, Severity::Warning),
    ];
    if with_prices {
        rules.push(rule(
            "cost_per_hour_high",
            AlertMetric::CostPerHour,
            Comparison::Gt,
            1000.0,
            900,
            Severity::Warning,
        ));
    }
    rules
}

impl Validator<'_> {
    pub(super) fn prices(&mut self, sections: &Sections, names: &[&str]) -> HashMap<(usize, String), Price> {
        let mut prices = HashMap::new();
        for (upstream, models) in &sections.prices {
            let Some(index) = self.upstream_ref(upstream, names, &format!("prices.{upstream}")) else { continue };
            for (model, raw) in models {
                let values = [Some(raw.input), Some(raw.output), raw.cached_input, raw.cache_write, raw.reasoning];
                if values.iter().flatten().any(|value| !(value.is_finite() && *value >= 0.0)) {
                    self.problem(
                        format!("prices.{upstream}.{model}"),
                        "prices must be non-negative numbers (USD per million tokens)",
                    );
                } else if values.iter().flatten().any(|value| !is_exact_price(*value)) {
                    // Costs are integers of nano-dollars: a price in USD per million tokens
                    // is nano-dollars per token once multiplied by 1,000.
                    self.problem(
                        format!("prices.{upstream}.{model}"),
                        "prices are kept exact to $0.001 per million tokens: use at most 3 decimals",
                    );
                }
                let price = Price {
                    input: raw.input,
                    output: raw.output,
                    cached_input: raw.cached_input,
                    cache_write: raw.cache_write,
                    reasoning: raw.reasoning,
                };
                prices.insert((index, model.clone()), price);
            }
        }
        prices
    }

    pub(super) fn alerts(&mut self, sections: &Sections, names: &[&str], routes: &[Arc<Route>]) -> Vec<AlertRule> {
        if sections.alerts.is_empty() {
            return default_alert_rules(!sections.prices.is_empty());
        }
        let mut rules = Vec::new();
        for (index, raw) in sections.alerts.iter().enumerate() {
            let path = format!("alerts[{index}]");
            self.name(&raw.name, format!("{path}.name"));
            let metric = AlertMetric::from_name(&raw.metric).unwrap_or_else(|| {
                let names: Vec<&str> = AlertMetric::ALL.iter().map(|metric| metric.as_str()).collect();
                self.problem(format!("{path}.metric"), format!("{:?} is not one of {}", raw.metric, names.join(", ")));
                AlertMetric::ErrorRate
            });
            let op = Comparison::from_name(&raw.op).unwrap_or_else(|| {
                self.problem(format!("{path}.op"), format!("{:?} is not a comparison (<, <=, >, >=, ==, !=)", raw.op));
                Comparison::Gt
            });
            if let Some(upstream) = &raw.upstream {
                self.upstream_ref(upstream, names, &format!("{path}.upstream"));
            }
            if let Some(route) = &raw.route
                && !routes.iter().any(|known| &known.name == route)
            {
                self.problem(format!("{path}.route"), format!("unknown route {route:?}"));
            }
            let role = raw.role.as_deref().and_then(|role| {
                let known = Role::from_name(role);
                if known.is_none() {
                    self.problem(format!("{path}.role"), format!("{role:?} is not primary, candidate or shadow"));
                }
                known
            });
            let severity = self.severity(raw.severity.as_deref(), &format!("{path}.severity"), Severity::Warning);
            rules.push(AlertRule {
                name: raw.name.clone(),
                metric,
                upstream: raw.upstream.clone(),
                route: raw.route.clone(),
                role,
                op,
                threshold: raw.threshold,
                for_duration: self.duration(raw.for_duration.as_deref(), &format!("{path}.for"), Duration::ZERO),
                severity,
                window: self.positive_duration(raw.window.as_deref(), &format!("{path}.window"), DEFAULT_ALERT_WINDOW),
                repeat_interval: self.positive_duration(
                    raw.repeat_interval.as_deref(),
                    &format!("{path}.repeat_interval"),
                    DEFAULT_REPEAT_INTERVAL,
                ),
            });
        }
        rules
    }

    /// `[health]`, with its defaults for what is not written.
    pub(super) fn health(&mut self, raw: &RawHealth) -> HealthConfig {
        let defaults = HealthConfig::default();
        let path = raw.path.clone().unwrap_or(defaults.path);
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            self.problem("health.path", format!("{path:?} is not a path starting with \"/\" (e.g. \"/models\")"));
        }
        let mut count = |value: Option<u32>, key: &str, default: u32| match value {
            Some(0) => {
                self.problem(format!("health.{key}"), "must be at least 1");
                default
            }
            Some(count) => count,
            None => default,
        };
        let down_after = count(raw.down_after, "down_after", defaults.down_after);
        let up_after = count(raw.up_after, "up_after", defaults.up_after);
        HealthConfig {
            enabled: raw.enabled.unwrap_or(defaults.enabled),
            interval: self.positive_duration(raw.interval.as_deref(), "health.interval", defaults.interval),
            path,
            timeout: self.positive_duration(raw.timeout.as_deref(), "health.timeout", defaults.timeout),
            down_after,
            up_after,
        }
    }

    /// A duration that must not be zero (a period or a window).
    fn positive_duration(&mut self, value: Option<&str>, path: &str, default: Duration) -> Duration {
        let duration = self.duration(value, path, default);
        if duration.is_zero() {
            self.problem(path, "must be longer than zero");
            return default;
        }
        duration
    }

    pub(super) fn severity(&mut self, value: Option<&str>, path: &str, default: Severity) -> Severity {
        let Some(value) = value else { return default };
        Severity::from_name(value).unwrap_or_else(|| {
            self.problem(path, format!("{value:?} is not info, warning or critical"));
            default
        })
    }

    pub(super) fn notifiers(&mut self, sections: &Sections) -> Vec<Notifier> {
        let mut notifiers = Vec::new();
        for (index, raw) in sections.notify.iter().enumerate() {
            let path = format!("notify[{index}]");
            self.name(&raw.name, format!("{path}.name"));
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
            let format = match raw.format.as_deref() {
                None => NotifierFormat::Json,
                Some(name) => NotifierFormat::from_name(name).unwrap_or_else(|| {
                    self.problem(format!("{path}.format"), format!("{name:?} is not \"json\" or \"slack\""));
                    NotifierFormat::Json
                }),
            };
            let min_severity =
                self.severity(raw.min_severity.as_deref(), &format!("{path}.min_severity"), Severity::Warning);
            if let Some(url) = url {
                notifiers.push(Notifier { name: raw.name.clone(), url, format, min_severity });
            }
        }
        notifiers
    }
}

/// Whether a price (USD per million tokens) is a whole number of nano-dollars per token,
/// and small enough for the cost arithmetic: at most $1,000,000 per million tokens.
fn is_exact_price(value: f64) -> bool {
    let nanos = value * 1000.0;
    value <= 1_000_000.0 && (nanos - nanos.round()).abs() < 1e-6
}
