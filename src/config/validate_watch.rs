//! Validating what watches the traffic: the price table, alert rules and notifiers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use super::raw::Sections;
use super::validate::Validator;
use super::{AlertRule, Notifier, Price, Route, Secret};

impl Validator<'_> {
    pub(super) fn prices(&mut self, sections: &Sections, names: &[&str]) -> HashMap<(usize, String), Price> {
        let mut prices = HashMap::new();
        for (upstream, models) in &sections.prices {
            let Some(index) = self.upstream_ref(upstream, names, &format!("prices.{upstream}")) else { continue };
            for (model, raw) in models {
                let values = [Some(raw.input), Some(raw.output), raw.cached_input, raw.reasoning];
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
                    reasoning: raw.reasoning,
                };
                prices.insert((index, model.clone()), price);
            }
        }
        prices
    }

    pub(super) fn alerts(&mut self, sections: &Sections, names: &[&str], routes: &[Arc<Route>]) -> Vec<AlertRule> {
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

    pub(super) fn severity(&mut self, value: Option<&str>, path: &str, default: &str) -> String {
        let severity = value.unwrap_or(default);
        if !["info", "warning", "critical"].contains(&severity) {
            self.problem(path, format!("{severity:?} is not info, warning or critical"));
        }
        severity.to_owned()
    }

    pub(super) fn notifiers(&mut self, sections: &Sections) -> Vec<Notifier> {
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

/// Whether a price (USD per million tokens) is a whole number of nano-dollars per token,
/// and small enough for the cost arithmetic: at most $1,000,000 per million tokens.
fn is_exact_price(value: f64) -> bool {
    let nanos = value * 1000.0;
    value <= 1_000_000.0 && (nanos - nanos.round()).abs() < 1e-6
}
