//! The statistics behind a verdict, each valid at every look: for error rates, a test at
//! the criterion's own limit with the variance of the hypothesis (a score test, so that
//! zero failures and small counts behave, as Wilson's interval does) inflated by the
//! clustering of users; for quantiles, order-statistic bounds whose ranks come from a
//! confidence sequence on the binomial count below the quantile (no assumption about the
//! shape of latency, which is skewed); for the cost ratio, the log of the ratio of mean
//! costs with its delta-method variance over users. All boundaries are the normal mixture of
//! [`sequential`], so that looking every interval does not inflate the error rates.

pub mod sequential;

use cutover_live::stats::clusters::RateEstimate;
use cutover_live::stats::histogram::{Histogram, lower_edge_ms, upper_edge_ms};
use cutover_live::stats::spend::MeanCost;
use sequential::{quantile_ranks, radius, tightest_ratio};

/// The error probabilities one criterion may spend: `pass` on wrongly passing a candidate
/// that breaks it, `fail` on wrongly failing one that meets it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alphas {
    pub pass: f64,
    pub fail: f64,
}

/// What a sequential test concluded at this look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    Fail,
    Continue,
}

/// A comparison with a limit: the decision, the always-valid bounds of the tested
/// quantity (lower at the fail level, upper at the pass level), and the smallest excess
/// over the limit the current evidence would reveal with 80% power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tested {
    pub decision: Decision,
    pub lower: f64,
    pub upper: f64,
    pub detectable: Option<f64>,
}

/// One-sided 80% power: `Φ⁻¹(0.8)`.
const Z_POWER: f64 = 0.842;

/// A three-way test of `estimate ≤ limit` given the estimate's variance under each
/// hypothesised value `h` (`variance(h)`) and the mixture scale `tau`: fail when the limit
/// is below the fail-level sequence, pass when it is above the pass-level one. The bounds
/// are the same sequences inverted by bisection over `range`, for the status.
/// `alternative(excess)` says what the evidence would look like if the truth were
/// `limit + excess`: (the variance the test would then use at the limit, the estimate's
/// own variance), for the power figure (`detectable_excess`).
fn sequential_test(
    estimate: f64,
    limit: f64,
    range: (f64, f64),
    variance: impl Fn(f64) -> f64,
    alternative: impl Fn(f64) -> (f64, f64),
    tau: f64,
    alphas: Alphas,
) -> Tested {
    let at_limit = variance(limit);
    let decision = if at_limit <= 0.0 {
        // A limit of 0 (or 100%) has no variance to test against: only a breach decides.
        if estimate > limit { Decision::Fail } else { Decision::Continue }
    } else if estimate - limit > radius(at_limit, tau, alphas.fail) {
        Decision::Fail
    } else if limit - estimate >= radius(at_limit, tau, alphas.pass) {
        Decision::Pass
    } else {
        Decision::Continue
    };
    // The lower bound: the smallest h with estimate − h ≤ radius(h); the upper: the
    // largest h with h − estimate ≤ radius(h).
    let outside_below = |h: f64| estimate - h > radius(variance(h), tau, alphas.fail);
    let outside_above = |h: f64| h - estimate > radius(variance(h), tau, alphas.pass);
    let lower = if outside_below(range.0) { bisect(range.0, estimate, outside_below) } else { range.0 };
    let upper = if outside_above(range.1) { bisect(estimate, range.1, |h| !outside_above(h)) } else { range.1 };
    let detectable = (at_limit > 0.0).then(|| detectable_excess(alternative, tau, alphas.fail));
    Tested { decision, lower, upper, detectable }
}

/// The smallest excess over the limit that the current sample sizes would fail with 80%
/// power at this look: the excess `e` at which the estimate, centred on `limit + e` with
/// its own variance there, crosses the fail boundary that the same evidence would draw
/// (`e = radius(V_limit(e)) + z₀.₈ · √V(e)`, solved by iteration). A worse candidate has
/// noisier evidence and a wider boundary, so reading both at the alternative (not at the
/// observed, healthy, figures) is what keeps the claim honest; the simulation checks it.
fn detectable_excess(alternative: impl Fn(f64) -> (f64, f64), tau: f64, alpha: f64) -> f64 {
    (0..50).fold(0.0, |excess, _| {
        let (at_limit, own) = alternative(excess);
        radius(at_limit, tau, alpha) + Z_POWER * own.max(0.0).sqrt()
    })
}

/// The boundary between `low` (where `before` holds) and `high` (where it does not).
fn bisect(mut low: f64, mut high: f64, before: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..60 {
        let middle = (low + high) / 2.0;
        if before(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }
    (low + high) / 2.0
}

/// The candidate's error rate at most `limit` (a proportion). The mixture scale is the
/// limit itself: what matters is a rate of the order of the ceiling, and a healthy
/// candidate sits well below it, so the boundary is tightest where such gaps are decided.
pub fn rate_ceiling(candidate: &RateEstimate, limit: f64, alphas: Alphas) -> Tested {
    let n = candidate.requests.max(1) as f64;
    let variance = |h: f64| candidate.design_effect * h * (1.0 - h) / n;
    let alternative = |excess: f64| (variance(limit), variance((limit + excess).min(1.0)));
    sequential_test(candidate.rate(), limit, (0.0, 1.0), variance, alternative, limit, alphas)
}

/// The candidate's rate minus the control's at most `margin` (non-inferiority). The
/// variance under a hypothesised difference `h` uses the pooled rates constrained to differ
/// by `h` (as Farrington and Manning's score test does, in closed form), each arm's term
/// inflated by its design effect. The mixture scale is the margin: with τ = δ the boundary
/// is tightest when its radius is about δ, i.e. just where a candidate at zero difference
/// can first pass and one at twice the margin can first fail.
pub fn rate_increase(candidate: &RateEstimate, control: &RateEstimate, margin: f64, alphas: Alphas) -> Tested {
    let (n1, n2) = (candidate.requests.max(1) as f64, control.requests.max(1) as f64);
    let (d1, d2) = (candidate.design_effect, control.design_effect);
    // The variance the test uses at `h`, when the two arms together failed `failures` times.
    let constrained = |failures: f64, h: f64| {
        let control_rate = ((failures - n1 * h) / (n1 + n2)).clamp((-h).max(0.0), (1.0 - h).min(1.0));
        let candidate_rate = control_rate + h;
        d1 * candidate_rate * (1.0 - candidate_rate) / n1 + d2 * control_rate * (1.0 - control_rate) / n2
    };
    let failures = (candidate.failures + control.failures) as f64;
    let variance = |h: f64| constrained(failures, h);
    // The power figure keeps the control at its observed rate and puts the candidate at
    // the alternative above it.
    let control_rate = control.rate();
    let alternative = |excess: f64| {
        let candidate_rate = (control_rate + margin + excess).clamp(0.0, 1.0);
        let expected_failures = n1 * candidate_rate + n2 * control_rate;
        let own = d1 * candidate_rate * (1.0 - candidate_rate) / n1 + d2 * control_rate * (1.0 - control_rate) / n2;
        (constrained(expected_failures, margin), own)
    };
    let estimate = candidate.rate() - control.rate();
    sequential_test(estimate, margin, (-1.0, 1.0), variance, alternative, margin.max(1e-4), alphas)
}

/// The coefficient of variation of one request's cost assumed when choosing the mixture
/// scale of the cost ratio: prompt and answer lengths vary about as much as their mean.
/// Only where the boundary is tightest depends on it, not its validity.
const COST_DESIGN_CV: f64 = 1.0;

/// Bounds on the ratio of two arms' mean cost per request, valid at every look, and the
/// three-way test of `ratio ≤ limit`. On the log scale the estimate is a difference,
/// `ln μ̂c − ln μ̂k`, with the delta-method variance `Var(μ̂c)/μ̂c² + Var(μ̂k)/μ̂k²`; the
/// normal-mixture radius at each side's α gives the bounds, exponentiated back: the lower
/// at the fail level, the upper at the pass level. The mixture scale makes the boundary
/// tightest at `design` requests per arm with `COST_DESIGN_CV` (fixed in advance, never
/// from the data, which would void the guarantee). `None` when either mean is not
/// positive or has no variance to speak of.
pub fn cost_ratio(candidate: &MeanCost, control: &MeanCost, limit: f64, alphas: Alphas, design: u64) -> Option<Tested> {
    if !(candidate.mean > 0.0 && control.mean > 0.0 && candidate.variance.is_finite() && control.variance.is_finite()) {
        return None;
    }
    let estimate = (candidate.mean / control.mean).ln();
    let variance = candidate.variance / candidate.mean.powi(2) + control.variance / control.mean.powi(2);
    let design_variance = 2.0 * COST_DESIGN_CV.powi(2) / design.max(1) as f64;
    let tau = |alpha: f64| (tightest_ratio(alpha) * design_variance).sqrt();
    let lower = (estimate - radius(variance, tau(alphas.fail), alphas.fail)).exp();
    let upper = (estimate + radius(variance, tau(alphas.pass), alphas.pass)).exp();
    let decision = if lower > limit {
        Decision::Fail
    } else if upper <= limit {
        Decision::Pass
    } else {
        Decision::Continue
    };
    Some(Tested { decision, lower, upper, detectable: None })
}

/// Bounds on a quantile of a histogram, valid at every look: (low, high) in ms, from the
/// lower edge of the bucket at the low rank and the upper edge of the bucket at the high
/// rank; 0 or ∞ where the samples cannot bound that side yet. `design` is the sample
/// count at which the rank boundary is tightest.
pub fn quantile_bounds(histogram: &Histogram, q: f64, alpha: f64, design: u64) -> Option<(f64, f64)> {
    let n = histogram.samples();
    if n == 0 {
        return None;
    }
    let (low_rank, high_rank) = quantile_ranks(n, q, alpha, design);
    let low = if low_rank < 1.0 { None } else { histogram.bucket_at_rank(low_rank as u64) };
    let high = if high_rank > n as f64 { None } else { histogram.bucket_at_rank(high_rank as u64) };
    Some((low.map_or(0.0, lower_edge_ms), high.map_or(f64::INFINITY, upper_edge_ms)))
}

/// The quantile's point estimate: the middle of the bucket holding its rank.
pub fn quantile_estimate(histogram: &Histogram, q: f64) -> Option<f64> {
    let n = histogram.samples();
    let bucket = histogram.bucket_at_rank((n as f64 * q).ceil().max(1.0) as u64).filter(|_| n > 0)?;
    let (low, high) = (lower_edge_ms(bucket), upper_edge_ms(bucket));
    Some(if high.is_finite() { (low + high) / 2.0 } else { low })
}

#[cfg(test)]
mod tests;
