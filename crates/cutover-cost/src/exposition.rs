//! The usage and cost series in the Prometheus text format: tokens by route, upstream,
//! model and kind; cost by route, upstream, model and role, rendered as exact dollars
//! from integer nano-dollars; answers without usage by route and upstream.

use std::collections::BTreeMap;
use std::fmt::Write;

use cutover_model::Role;
use cutover_wire::prometheus::{LabelValue, header};
use cutover_wire::usage::Usage;

use super::Ledger;

/// Appends the series to `out`. Writing into a `String` cannot fail.
pub fn write_metrics(out: &mut String, ledger: &Ledger) {
    let series = ledger.series();
    let mut tokens: BTreeMap<(&str, &str, &str), Usage> = BTreeMap::new();
    let mut costs = Vec::with_capacity(series.len());
    for (key, totals) in &series {
        let Some(upstream) = ledger.upstream(key.route, key.role) else { continue };
        let labels = (ledger.route_name(key.route), upstream, &*key.model);
        tokens.entry(labels).or_default().add(&totals.tokens);
        if totals.priced > 0 {
            costs.push((labels, key.role, totals.cost));
        }
    }
    header(
        out,
        "cutover_tokens_total",
        "counter",
        "Tokens the upstreams reported, by kind (cached_input and cache_write are part of input, reasoning part of output).",
    );
    for (&(route, upstream, model), usage) in &tokens {
        let (route, upstream, model) = (LabelValue(route), LabelValue(upstream), LabelValue(model));
        let kinds = [
            ("input", usage.input),
            ("cached_input", usage.cached_input),
            ("cache_write", usage.cache_write),
            ("output", usage.output),
            ("reasoning", usage.reasoning),
        ];
        for (kind, count) in kinds {
            let _ = writeln!(
                out,
                "cutover_tokens_total{{route=\"{route}\",upstream=\"{upstream}\",model=\"{model}\",kind=\"{kind}\"}} {count}"
            );
        }
    }
    header(
        out,
        "cutover_cost_usd_total",
        "counter",
        "What the answers cost at the configured prices, in USD (a model without a price has no series: its cost is unknown).",
    );
    for &((route, upstream, model), role, cost) in &costs {
        let (route, upstream, model) = (LabelValue(route), LabelValue(upstream), LabelValue(model));
        let _ = writeln!(
            out,
            "cutover_cost_usd_total{{route=\"{route}\",upstream=\"{upstream}\",model=\"{model}\",role=\"{}\"}} {}",
            role.as_str(),
            cost
        );
    }
    header(
        out,
        "cutover_usage_missing_total",
        "counter",
        "2xx answers that ended, or were left by their client, without usage: their cost is unknown.",
    );
    for (id, route) in ledger.routes() {
        let mut by_upstream: BTreeMap<&str, u64> = BTreeMap::new();
        for role in Role::ALL {
            if let Some(upstream) = ledger.upstream(id, role) {
                *by_upstream.entry(upstream).or_default() += ledger.missing(id, role);
            }
        }
        for (upstream, count) in by_upstream {
            let _ = writeln!(
                out,
                "cutover_usage_missing_total{{route=\"{}\",upstream=\"{}\"}} {count}",
                LabelValue(route),
                LabelValue(upstream)
            );
        }
    }
}
