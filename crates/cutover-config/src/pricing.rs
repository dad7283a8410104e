//! The price table as the request path reads it: the price of a model on an upstream,
//! looked up by borrowed names (no allocation per answer), and the model label its usage
//! is counted under, bounded by the configuration whatever models clients name.

use std::collections::HashMap;
use std::sync::Arc;

use super::PerRoute;
use super::{ModelPattern, Price, Route, Upstream};

/// The label of usage whose model the configuration does not name.
pub const OTHER_MODEL: &str = "other";

/// One upstream's prices: model name → (label, price).
type UpstreamPrices = HashMap<Box<str>, (Arc<str>, Price)>;

#[derive(Debug, Default)]
pub struct PriceTable {
    /// Indexed by upstream.
    upstreams: Vec<UpstreamPrices>,
    /// Every model name the configuration mentions (a route's exact models, an alias on
    /// either side, a priced model): the only model labels besides `other`.
    labels: HashMap<Box<str>, Arc<str>>,
    other: Arc<str>,
}

/// A model on one upstream: its label in the metrics and its price, if it has one.
#[derive(Debug, Clone)]
pub struct ModelPrice {
    pub label: Arc<str>,
    pub price: Option<Price>,
}

impl PriceTable {
    pub fn new(
        upstreams: &[Arc<Upstream>],
        routes: &PerRoute<Arc<Route>>,
        prices: &HashMap<(usize, String), Price>,
    ) -> Self {
        let mut labels: HashMap<Box<str>, Arc<str>> = HashMap::new();
        let mut label = |name: &str| labels.entry(name.into()).or_insert_with(|| Arc::from(name)).clone();
        let mut by_upstream = vec![HashMap::new(); upstreams.len()];
        for ((upstream, model), price) in prices {
            if let Some(table) = by_upstream.get_mut(*upstream) {
                table.insert(model.as_str().into(), (label(model), *price));
            }
        }
        for upstream in upstreams {
            for (from, to) in &upstream.model_aliases {
                label(from);
                label(to);
            }
        }
        for route in routes.values() {
            for pattern in &route.models {
                if let ModelPattern::Exact(model) = pattern {
                    label(model);
                }
            }
        }
        PriceTable { upstreams: by_upstream, labels, other: Arc::from(OTHER_MODEL) }
    }

    /// The price of `model` (as the client named it) on upstream `index`: under the name
    /// the upstream is sent (its alias), else under the client's name.
    pub fn lookup(&self, index: usize, upstream: &Upstream, model: Option<&str>) -> ModelPrice {
        let Some(model) = model else { return ModelPrice { label: self.other.clone(), price: None } };
        let aliased = upstream.model_aliases.get(model).map(String::as_str);
        let table = self.upstreams.get(index);
        let priced = [aliased, Some(model)].into_iter().flatten().find_map(|name| table?.get(name));
        match priced {
            Some((label, price)) => ModelPrice { label: label.clone(), price: Some(*price) },
            None => {
                let label = aliased.and_then(|name| self.labels.get(name)).or_else(|| self.labels.get(model));
                ModelPrice { label: label.unwrap_or(&self.other).clone(), price: None }
            }
        }
    }

    /// Whether upstream `index` has any price at all.
    pub fn has_prices(&self, index: usize) -> bool {
        self.upstreams.get(index).is_some_and(|table| !table.is_empty())
    }
}

/// The models a route may send to an upstream without a price, one line each, for
/// `cutover check` and the start-up log: their cost will be shown as unknown, never $0.
/// Models matched by a prefix are named only when their upstream has no price at all.
pub fn unpriced_models(config: &super::Config) -> Vec<String> {
    let mut lines = Vec::new();
    for route in config.routes.values() {
        for index in std::iter::once(route.primary).chain(route.candidate) {
            let upstream = &config.upstreams[index];
            let mut exact = 0;
            for pattern in &route.models {
                let ModelPattern::Exact(model) = pattern else { continue };
                exact += 1;
                if config.pricing.lookup(index, upstream, Some(model)).price.is_none() {
                    lines.push(format!(
                        "route {:?}: model {model:?} has no price on upstream {:?} ([prices.{}]): its cost will be \
                         shown as unknown",
                        route.name, upstream.name, upstream.name
                    ));
                }
            }
            if exact < route.models.len().max(1) && !config.pricing.has_prices(index) {
                lines.push(format!(
                    "route {:?}: upstream {:?} has no [prices.{}]: the cost of its answers will be shown as unknown",
                    route.name, upstream.name, upstream.name
                ));
            }
        }
    }
    lines.dedup();
    lines
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load_str;
    use crate::testing::{load, two_upstreams_toml};

    const PRICES: &str = r#"
[prices.candidate]
"relay-gpt-4.1" = { input = 1.5, output = 6.0 }
"#;

    #[test]
    fn a_price_is_found_under_the_aliased_name_and_labels_stay_bounded() {
        let toml = two_upstreams_toml("", &format!("models = [\"gpt-4.1\", \"gpt-4o-*\"]\n{PRICES}"))
            .replace("[upstreams.candidate]", "[upstreams.candidate]\nmodels = { \"gpt-4.1\" = \"relay-gpt-4.1\" }");
        let config = load(&toml, Path::new("."), |_| None);
        let index = |name: &str| config.upstreams.iter().position(|upstream| upstream.name == name).unwrap();
        let (primary, candidate) = (index("primary"), index("candidate"));
        let priced = config.pricing.lookup(candidate, &config.upstreams[candidate], Some("gpt-4.1"));
        assert_eq!((&*priced.label, priced.price.map(|price| price.output)), ("relay-gpt-4.1", Some(6.0)));
        let unpriced = config.pricing.lookup(primary, &config.upstreams[primary], Some("gpt-4.1"));
        assert_eq!((&*unpriced.label, unpriced.price), ("gpt-4.1", None));
        // Whatever a client names, an unconfigured model is `other`.
        let named_by_client = config.pricing.lookup(primary, &config.upstreams[primary], Some("gpt-4o-2099-01-01"));
        assert_eq!(&*named_by_client.label, OTHER_MODEL);
        let warnings = unpriced_models(&config);
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(warnings[0].contains("\"gpt-4.1\" has no price on upstream \"primary\""), "{warnings:#?}");
        assert!(warnings[1].contains("upstream \"primary\" has no [prices.primary]"), "{warnings:#?}");
    }

    #[test]
    fn prices_finer_than_a_thousandth_of_a_dollar_per_million_are_refused() {
        let toml = two_upstreams_toml("", "[prices.primary]\n\"m\" = { input = 0.0375, output = 1.0 }");
        let problems = load_str(&toml, Path::new("."), |_| None).unwrap_err();
        assert!(problems.iter().any(|problem| problem.path == "prices.primary.m"), "{problems:#?}");
        let toml = two_upstreams_toml("", "[prices.primary]\n\"m\" = { input = 0.075, output = 1.0, reasoning = 2.5 }");
        assert!(load_str(&toml, Path::new("."), |_| None).is_ok());
    }

    #[test]
    fn streamed_usage_is_asked_for_unless_the_route_says_not_to() {
        let on = load(&two_upstreams_toml("", ""), Path::new("."), |_| None);
        assert!(on.routes.values().all(|route| route.inject_stream_usage));
        let off = load(&two_upstreams_toml("", "inject_stream_usage = false"), Path::new("."), |_| None);
        assert!(off.routes.values().all(|route| !route.inject_stream_usage));
    }
}
