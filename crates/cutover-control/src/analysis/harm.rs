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
//! not fail a healthy candidate; the budget binds only as the step's traffic accumulates,
//! and not at all before the step has its `min_requests` (the bound of a few dozen requests
//! is wider than any projection).
//!
//! Latency gets the same treatment for each of the step's latency criteria (a quantile
//! ratio `r` at quantile `q`): a request is slow when it is slower than the latency the
//! criterion tolerates, `r` × the control's `q`-quantile (read from the control's
//! histogram; "slower" meaning in a bucket above the one that latency falls in, on both
//! arms), and the excess slow requests are `n · (s_candidate − s_control)` over the
//! successful requests, bounded as the failures are (`max_excess_slow_requests`). The
//! derived budget's margin is what a candidate exactly at the limit would have beyond the
//! control: `(1 − q) − s_control`, at least `MIN_SLOW_MARGIN`. Latencies are counted as
//! independent requests here, as the quantile criteria count them; the threshold is the
//! control's estimate, not a bound, so the excess is judged against the latency the
//! criterion tolerates as the control's evidence stands.
//!
//! A shadow step (weight 0) exposes no user and has no budget.

use std::time::Duration;

use cutover_config::{DERIVED_BUDGET_MARGINS, HarmBudget};
use cutover_model::{Criterion, Latency, duration::format_duration};

use super::{Check, ControlKind, Inputs, Verdict};
use crate::inference::{Alphas, quantile_estimate, rate_increase};
use cutover_live::stats::clusters::{Failure, RateEstimate};
use cutover_live::stats::histogram::{Histogram, bucket_of};

/// The mixture scale of the upper bound when no increase criterion sets one: the bound is
/// tightest for differences of about half a percentage point.
const DEFAULT_SCALE: f64 = 0.005;

/// The smallest margin a derived slow-request budget is built on: where the control is
/// already as slow as the limit (a ratio near or below 1), a candidate at the limit would
/// cause no excess, and a budget of nothing would fail every candidate.
pub const MIN_SLOW_MARGIN: f64 = 0.005;

/// Whether the step's candidate serves users (not a shadow step): only those have budgets.
fn exposes_users(inputs: &Inputs<'_>) -> bool {
    inputs.weight_bp > 0 && inputs.control_kind != ControlKind::ShadowPair
}

/// The step's failure budget, if its candidate serves users.
pub fn budget(inputs: &Inputs<'_>) -> Option<HarmBudget> {
    exposes_users(inputs).then(|| inputs.step.harm_budget()).flatten()
}

/// The budget in requests after `requests` of the candidate's in `elapsed`, and how it
/// was reached, in words.
fn resolve(criterion: Criterion, budget: HarmBudget, requests: u64, elapsed: Duration) -> (f64, String) {
    match budget {
        HarmBudget::Fixed(count) => (count, criterion.key().to_owned()),
        HarmBudget::Projected { margin, horizon } => {
            let elapsed = elapsed.as_secs_f64();
            let projected =
                if elapsed > 0.0 { requests as f64 * horizon.as_secs_f64() / elapsed } else { f64::INFINITY };
            let budget = DERIVED_BUDGET_MARGINS * margin * projected;
            let words = format!(
                "{DERIVED_BUDGET_MARGINS} × {}pp of {projected:.0} requests projected to max_duration {}",
                // The slow margin comes from data: a few digits are enough.
                (margin * 1e4).round() / 100.0,
                format_duration(horizon)
            );
            (budget, words)
        }
    }
}

/// What one budget check compares: the candidate's and the control's rates of the harmful
/// outcome, the scale its upper bound is tightest at, and the budget.
struct Exposure<'a> {
    criterion: Criterion,
    /// The latency criterion a slow-request budget guards (as its subject: `p95`).
    dimension: Option<&'static str>,
    candidate: RateEstimate,
    control: RateEstimate,
    scale: f64,
    budget: HarmBudget,
    /// What is counted, for the evidence: `excess failures`.
    counted: &'a str,
}

/// A budget's check: fails once the upper bound of the excess passes the budget, passes
/// (without deciding the step: it only never holds it) while it has not.
fn bounded(exposure: Exposure<'_>, inputs: &Inputs<'_>, alphas: Alphas) -> Check {
    let Exposure { criterion, dimension, candidate, control, scale, budget, counted } = exposure;
    let tested = rate_increase(&candidate, &control, scale, alphas);
    let requests = candidate.requests as f64;
    let (limit, source) = resolve(criterion, budget, candidate.requests, inputs.elapsed);
    let (estimate, upper) = (requests * (candidate.rate() - control.rate()), requests * tested.upper.max(0.0));
    let mut check = Check {
        criterion,
        // Whole requests, as the status prints it.
        threshold: limit.floor(),
        candidate: Some(estimate),
        control: None,
        verdict: if upper > limit { Verdict::Fail } else { Verdict::Pass },
        candidate_samples: candidate.requests,
        control_samples: control.requests,
        evidence: format!("{counted} {estimate:.0}, always-valid upper bound {upper:.0}, budget {limit:.0} ({source})"),
        dimension: dimension.map(Into::into),
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
    // A derived budget is projected from the requests so far: before the step has the
    // requests it needs to be judged at all, an upper bound past it says how little has
    // been seen (an always-valid bound of a few dozen requests spans tens of points), not
    // that the candidate harmed anyone. A set budget is a count the operator chose, and
    // binds from the first request.
    let min_requests = inputs.step.min_requests;
    if check.verdict == Verdict::Fail
        && matches!(budget, HarmBudget::Projected { .. })
        && candidate.requests < min_requests
    {
        check.verdict = Verdict::Inconclusive;
        check.evidence.push_str(&format!("; a derived budget is not judged before min_requests ({min_requests})"));
    }
    check
}

/// The failure budget's check: the candidate's upstream failures beyond the control's rate.
pub(super) fn excess_failures(inputs: &Inputs<'_>, budget: HarmBudget, alphas: Alphas) -> Check {
    let scale =
        inputs.step.criteria.get(Criterion::MaxErrorRateIncrease).map_or(DEFAULT_SCALE, |points| points / 100.0);
    let exposure = Exposure {
        criterion: Criterion::MaxExcessFailures,
        dimension: None,
        candidate: inputs.candidate.rate(Failure::Upstream),
        control: inputs.control.rate(Failure::Upstream),
        scale,
        budget,
        counted: "excess failures",
    };
    bounded(exposure, inputs, alphas)
}

/// The slow-request budgets' checks, one per latency criterion of a step that serves users.
pub(super) fn slow_checks<'a>(inputs: &'a Inputs<'a>, alphas: Alphas) -> impl Iterator<Item = Check> + 'a {
    let exposed = exposes_users(inputs);
    inputs.step.criteria.latency_limits().filter(move |_| exposed).filter_map(move |(criterion, ratio)| {
        let (q, latency) = criterion.latency_limit()?;
        excess_slow(inputs, (criterion, q, ratio), latency, alphas)
    })
}

/// One latency criterion's slow-request check: `None` when the step has no budget for it
/// (no `max_excess_slow_requests` and no `max_duration`).
fn excess_slow(
    inputs: &Inputs<'_>,
    (criterion, q, ratio): (Criterion, f64, f64),
    latency: Latency,
    alphas: Alphas,
) -> Option<Check> {
    let (candidate, control) = (inputs.candidate.histogram(latency), inputs.control.histogram(latency));
    // Until the control has a quantile nothing is slow, and `bounded` finds no samples.
    let tolerated = quantile_estimate(control, q).map(|quantile| quantile * ratio);
    let slower = tolerated.map(|ms| bucket_of(Duration::from_secs_f64(ms / 1000.0)));
    let slow = |histogram: &Histogram| RateEstimate {
        failures: slower.map_or(0, |bucket| histogram.above(bucket)),
        requests: histogram.samples(),
        design_effect: 1.0,
    };
    let (candidate, control) = (slow(candidate), slow(control));
    let margin = ((1.0 - q) - control.rate()).max(MIN_SLOW_MARGIN);
    let counted = format!(
        "excess requests slower than {ratio} × the control's {} ({:.0} ms)",
        criterion.subject(),
        tolerated.unwrap_or(f64::NAN)
    );
    let exposure = Exposure {
        criterion: Criterion::MaxExcessSlowRequests,
        dimension: Some(criterion.subject()),
        candidate,
        control,
        scale: margin,
        budget: inputs.step.slow_budget(margin)?,
        counted: &counted,
    };
    let mut check = bounded(exposure, inputs, alphas);
    // A route that serves no streams has no first token to be slow about: the budget must
    // not hold the step, as the TTFT criterion does not.
    if candidate.requests == 0 && control.requests == 0 && inputs.candidate.requests() > 0 {
        check.verdict = Verdict::Pass;
        check.evidence = format!("no {} samples on either arm: nothing slow to bound", criterion.subject());
    }
    Some(check)
}
