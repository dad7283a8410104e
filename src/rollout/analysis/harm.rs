//! The step's harm budget: how many of the candidate's requests may fail beyond what the
//! control's rate would have failed of them before the step fails, whatever the
//! significance. A test of the error-rate increase only asks whether the candidate is
//! worse; where the traffic cannot resolve that (few, uneven users), the candidate's users
//! stay exposed while the evidence accumulates. The budget bounds that exposure instead:
//! the excess failures so far, `n · (p_candidate − p_control)`, are bounded from above by
//! the increase's always-valid upper bound at the pass level, so with 95% probability the
//! true excess never exceeded the budget before the check failed, however often it looked.
//!
//! The budget is `max_excess_failures` when set. Otherwise a step with
//! `max_error_rate_increase = m` and a `max_duration` gets a derived one: twice the excess a
//! candidate exactly at the margin would cause over the step's expected requests, those
//! being the candidate's requests so far projected to `max_duration` at their rate so far.
//! Early in a step the projection is large, so the wide bounds of a few hundred requests do
//! not fail a healthy candidate; the budget binds only as the step's traffic accumulates.
//! A shadow step (weight 0) exposes no user and has no budget.

use std::time::Duration;

use super::{Check, ControlKind, Inputs, Verdict};
use crate::config::{Criterion, DERIVED_BUDGET_MARGINS, HarmBudget, format_duration};
use crate::rollout::inference::{Alphas, rate_increase};
use crate::rollout::stats::clusters::Failure;

/// The mixture scale of the upper bound when no increase criterion sets one: the bound is
/// tightest for differences of about half a percentage point.
const DEFAULT_SCALE: f64 = 0.005;

/// The step's budget, if its candidate serves users (not a shadow step).
pub fn budget(inputs: &Inputs<'_>) -> Option<HarmBudget> {
    if inputs.weight_bp == 0 || inputs.control_kind == ControlKind::ShadowPair {
        return None;
    }
    inputs.step.harm_budget()
}

/// The budget in requests after `requests` of the candidate's in `elapsed`, and how it
/// was reached, in words.
fn resolve(budget: HarmBudget, requests: u64, elapsed: Duration) -> (f64, String) {
    match budget {
        HarmBudget::Fixed(count) => (count, "max_excess_failures".to_owned()),
        HarmBudget::Projected { margin, horizon } => {
            let elapsed = elapsed.as_secs_f64();
            let projected =
                if elapsed > 0.0 { requests as f64 * horizon.as_secs_f64() / elapsed } else { f64::INFINITY };
            let budget = DERIVED_BUDGET_MARGINS * margin * projected;
            let words = format!(
                "{DERIVED_BUDGET_MARGINS} × {}pp of {projected:.0} requests projected to max_duration {}",
                margin * 100.0,
                format_duration(horizon)
            );
            (budget, words)
        }
    }
}

/// The budget check: fails once the upper bound of the excess failures passes the budget,
/// passes (without deciding the step: it only never holds it) while it has not.
pub(super) fn excess_failures(inputs: &Inputs<'_>, budget: HarmBudget, alphas: Alphas) -> Check {
    let (candidate, control) = (inputs.candidate.rate(Failure::Upstream), inputs.control.rate(Failure::Upstream));
    let scale =
        inputs.step.criteria.get(Criterion::MaxErrorRateIncrease).map_or(DEFAULT_SCALE, |points| points / 100.0);
    let tested = rate_increase(&candidate, &control, scale, alphas);
    let requests = candidate.requests as f64;
    let (limit, source) = resolve(budget, candidate.requests, inputs.elapsed);
    let (estimate, upper) = (requests * (candidate.rate() - control.rate()), requests * tested.upper.max(0.0));
    let mut check = Check {
        criterion: Criterion::MaxExcessFailures,
        // Whole requests, as the status prints it.
        threshold: limit.floor(),
        candidate: Some(estimate),
        control: None,
        verdict: if upper > limit { Verdict::Fail } else { Verdict::Pass },
        candidate_samples: candidate.requests,
        control_samples: control.requests,
        evidence: format!(
            "excess failures {estimate:.0}, always-valid upper bound {upper:.0}, budget {limit:.0} ({source})"
        ),
        dimension: None,
        detectable: None,
        lower: Some(requests * tested.lower),
        upper: Some(upper),
        // The bound's level; a bound spends none of the step's fail-side α.
        alpha_pass: alphas.pass,
        alpha_fail: 0.0,
    };
    if candidate.requests == 0 || control.requests == 0 {
        check.verdict = Verdict::Inconclusive;
        check.evidence = "no samples yet".to_owned();
        (check.candidate, check.lower, check.upper) = (None, None, None);
    }
    check
}
