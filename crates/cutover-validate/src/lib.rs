//! `cutover validate`: what an upstream can and cannot do, and whether it is honest,
//! checked against the live upstream with its configured base URL, key and alias map,
//! before any user touches it; with `--compare`, side by side with another upstream.
//!
//! `checks` holds the checks (catalogue in `check`), `exchange` talks to the upstream
//! through the gateway's own client (and to a Messages upstream through the gateway's own
//! translation: the checks are chat completions), `assemble` rebuilds streams the way the SDKs do,
//! `tokens` counts prompt tokens locally, `sample` measures latency, `report` / `parity`
//! hold the results, `render` and `json` show them. The rollout gate
//! (`require_validation`) runs the same suite from the gateway (`rollout::gate` in the gateway).

mod assemble;
mod check;
mod checks;
mod exchange;
mod json;
mod parity;
mod png;
pub mod render;
mod report;
mod sample;
mod sse;
mod tokens;

pub use check::{CATALOGUE, Check, CheckResult, Finding, Latency, Status};
pub use checks::Findings;
pub use parity::Parity;
pub use report::{Report, Requirement, Spent, UnknownCheck};
pub use sample::Sample;

use cutover_config::{Config, ModelPattern};
use cutover_cost::cost;
use cutover_wire::usage::Usage;

use exchange::Target;

/// Why a validation could not run at all (as opposed to checks that failed).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("no upstream named {0:?} in the configuration")]
    UnknownUpstream(String),
    #[error("no model to validate {0:?} with: no route names an exact model for it; pass --model")]
    NoModel(String),
    #[error(transparent)]
    Require(#[from] UnknownCheck),
}

/// What to validate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub upstream: String,
    pub compare: Option<String>,
    /// The model as clients name it (the alias map applies); default: the first exact
    /// model of the first route that uses the upstream.
    pub model: Option<String>,
    pub require: Requirement,
}

/// The outcome: the upstream's report and, with `--compare`, the reference's and the parity.
#[derive(Debug, Clone)]
pub struct Validation {
    pub report: Report,
    pub compare: Option<Report>,
    pub parity: Option<Parity>,
}

impl Validation {
    /// Whether every required check of the upstream under test passed (the exit status).
    pub fn passed(&self) -> bool {
        self.report.passed()
    }

    /// The table a person reads (and the parity table with `--compare`).
    pub fn render(&self) -> String {
        let mut text = render::report(&self.report);
        if let (Some(reference), Some(parity)) = (&self.compare, &self.parity) {
            text.push('\n');
            text.push_str(&render::report(reference));
            text.push('\n');
            text.push_str(&render::parity(&self.report, reference, parity));
        }
        text
    }

    pub fn to_json(&self) -> serde_json::Value {
        json::render(self)
    }
}

/// Runs the suite against `options.upstream` (then `options.compare`, one after the
/// other so that neither's latency is disturbed).
pub async fn validate(config: &Config, options: &Options) -> Result<Validation, ValidateError> {
    let model = match &options.model {
        Some(model) => model.clone(),
        None => default_model(config, &options.upstream)?,
    };
    let report = run_one(config, &options.upstream, &model, &options.require).await?;
    let compare = match &options.compare {
        Some(reference) => Some(run_one(config, reference, &model, &options.require).await?),
        None => None,
    };
    let parity = compare.as_ref().map(|reference| parity::compare(&report, reference));
    Ok(Validation { report, compare, parity })
}

/// The first exact model of the first route whose primary or candidate is `upstream`.
pub fn default_model(config: &Config, upstream: &str) -> Result<String, ValidateError> {
    let index = config.upstream_index(upstream).ok_or_else(|| ValidateError::UnknownUpstream(upstream.to_owned()))?;
    config
        .routes
        .values()
        .filter(|route| route.primary == index || route.candidate == Some(index))
        .flat_map(|route| route.models.iter())
        .find_map(|pattern| match pattern {
            ModelPattern::Exact(model) => Some(model.clone()),
            ModelPattern::Prefix(_) => None,
        })
        .ok_or_else(|| ValidateError::NoModel(upstream.to_owned()))
}

/// The whole suite against one upstream.
pub async fn run_one(
    config: &Config,
    upstream: &str,
    model: &str,
    require: &Requirement,
) -> Result<Report, ValidateError> {
    let index = config.upstream_index(upstream).ok_or_else(|| ValidateError::UnknownUpstream(upstream.to_owned()))?;
    let target = Target::new(config.upstreams[index].clone(), model);
    let findings = checks::run(&target).await;
    let sample = sample::run(&target).await;
    let results = CATALOGUE
        .iter()
        .filter_map(|check| {
            let finding = findings.by_id.iter().find(|(id, _)| *id == check.id)?.1.clone();
            Some(CheckResult { check, required: require.requires(check.id), finding })
        })
        .collect();
    let (prompt, completion) = target.tokens();
    let price = config.pricing.lookup(index, &target.upstream, Some(model)).price;
    let usage = Usage { input: prompt, cached_input: 0, cache_write: 0, output: completion, reasoning: 0 };
    Ok(Report {
        upstream: upstream.to_owned(),
        model: model.to_owned(),
        sent_model: target.sent_model.clone(),
        results,
        sample,
        spent: Spent { prompt, completion, cost: price.map(|price| cost(&usage, &price)) },
        usage_probe_prompt_tokens: findings.usage_probe_prompt_tokens,
    })
}
