//! The price table as the request path reads it: the price of a model on an upstream,
//! looked up by borrowed names (no allocation per answer), and the model label its usage
//! is counted under, bounded by the configuration whatever models clients name.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ModelPattern, PerRoute, Price, Route, Upstream};

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
