//! The shadow comparison on the admin port: the agreement gauges on `/metrics`
//! (`cutover_shadow_agreement_ratio{route,dimension}`, `dimension="overall"` for pairs that
//! agreed on everything; a route or dimension without judged pairs has no sample) and the
//! kept disagreements of `GET /admin/shadow/{route}/diffs[?dimension=D]`.

use std::fmt::Write;

use cutover_config::Config;
use cutover_model::Dimension;
use cutover_model::view::ShadowDiffs;
use cutover_wire::{prometheus::LabelValue, prometheus::header};

use cutover_live::LiveState;

/// Appends the agreement of each route's current step.
pub fn render_agreement(out: &mut String, config: &Config, live: &LiveState) {
    header(
        out,
        "cutover_shadow_agreement_ratio",
        "gauge",
        "Share of the current step's mirrored pairs whose answers agreed, per dimension and overall.",
    );
    for (id, route) in config.routes.iter() {
        let agreement = live.route(id).stats().snapshot_agreement();
        let overall = agreement.overall().map(|ratio| ("overall", ratio));
        let dimensions = Dimension::ALL
            .into_iter()
            .filter_map(|dimension| agreement.ratio(dimension).map(|r| (dimension.as_str(), r)));
        for (dimension, ratio) in overall.into_iter().chain(dimensions) {
            let _ = writeln!(
                out,
                "cutover_shadow_agreement_ratio{{route=\"{}\",dimension=\"{dimension}\"}} {ratio}",
                LabelValue(&route.name)
            );
        }
    }
}

/// Why the diffs cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiffsError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("{0:?} is not a shadow dimension ({names})", names = Dimension::names())]
    UnknownDimension(String),
}

/// The kept diffs of `route`, newest first, those disagreeing on `dimension` only if given.
pub fn diffs(
    config: &Config,
    live: &LiveState,
    route: &str,
    dimension: Option<&str>,
) -> Result<ShadowDiffs, DiffsError> {
    let id = config.route_id(route).ok_or_else(|| DiffsError::UnknownRoute(route.to_owned()))?;
    let dimension = dimension
        .map(|name| Dimension::from_name(name).ok_or_else(|| DiffsError::UnknownDimension(name.to_owned())))
        .transpose()?;
    let keep = config.routes[id].shadow_settings.keep_diffs;
    let diffs = live.route(id).mirroring.diffs.list(dimension);
    Ok(ShadowDiffs { route: route.to_owned(), keep_diffs: keep, diffs })
}
