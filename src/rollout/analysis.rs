//! A step's verdict from its evidence: each criterion compares the candidate with the
//! control over the same window and yields pass, fail or inconclusive with its numbers;
//! the step passes only when every criterion passes and its duration, requests and users
//! are met. Too little data is never a pass, and a breach must be credible (`Z_FAIL`)
//! before it counts, except the hard ceiling, which needs no statistics.

use std::time::Duration;

use serde::Serialize;

use super::inference::{Z_FAIL, Z_PASS, difference, quantile, wilson};
use super::stats::ArmSnapshot;
use crate::config::{Criterion, RolloutStep};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// Which traffic the candidate is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// Primary users hashed just above the candidate's range: same size, same time.
    EqualSlice,
    /// Above 50% there is no equal slice left: all primary traffic.
    AllPrimary,
    /// At 100% the primary serves no one: its figures from the previous step.
    PreviousStep,
    /// A shadow step: the primary's answers against the candidate's mirrored ones.
    ShadowPair,
}

/// One criterion's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Serialized as its config key.
    pub criterion: Criterion,
    pub threshold: f64,
    pub candidate: Option<f64>,
    pub control: Option<f64>,
    pub verdict: Verdict,
    pub candidate_samples: u64,
    pub control_samples: u64,
    /// The interval or test behind the verdict, in words.
    pub evidence: String,
    /// Error criteria: the smallest breach (in the criterion's unit) that the samples so far
    /// would reveal with 80% power — what this step can and cannot see with its traffic.
    pub detectable: Option<f64>,
}

/// A requirement of the step other than the criteria.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub gate: &'static str,
    pub have: f64,
    pub need: f64,
    pub met: bool,
    /// At the current rate, how long until it is met.
    pub eta_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub control: ControlKind,
    pub checks: Vec<Check>,
    pub gates: Vec<Gate>,
}

pub struct Inputs<'a> {
    pub step: &'a RolloutStep,
    pub elapsed: Duration,
    pub candidate: &'a ArmSnapshot,
    pub control: &'a ArmSnapshot,
    pub control_kind: ControlKind,
    /// Candidate share in basis points, to scale the control's request gate above 50%.
    pub weight_bp: u32,
}

/// Candidate error rates at or above this, over at least `HARD_CEILING_MIN_REQUESTS`,
/// roll back at once: no statistics needed to see a catastrophe.
pub const HARD_CEILING_ERROR_RATE: f64 = 0.5;
pub const HARD_CEILING_MIN_REQUESTS: u64 = 20;

/// The hard-ceiling breach of a candidate, if any.
pub fn hard_breach(candidate: &ArmSnapshot) -> Option<String> {
    let n = candidate.requests();
    let rate = candidate.upstream_errors as f64 / n.max(1) as f64;
    (n >= HARD_CEILING_MIN_REQUESTS && rate >= HARD_CEILING_ERROR_RATE)
        .then(|| format!("candidate error rate {:.1}% over {n} requests is past the hard ceiling", rate * 100.0))
}

pub fn evaluate(inputs: &Inputs<'_>) -> Evaluation {
    let checks = checks(inputs);
    let gates = gates(inputs);
    let verdict = if checks.iter().any(|check| check.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if gates.iter().all(|gate| gate.met) && checks.iter().all(|check| check.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    Evaluation { verdict, control: inputs.control_kind, checks, gates }
}

fn gates(inputs: &Inputs<'_>) -> Vec<Gate> {
    let step = inputs.step;
    let elapsed = inputs.elapsed.as_secs_f64();
    let rate = |have: f64| (elapsed > 0.0 && have > 0.0).then(|| have / elapsed);
    let gate = |gate: &'static str, have: f64, need: f64| Gate {
        gate,
        have,
        need,
        met: have >= need,
        eta_seconds: if have >= need { Some(0.0) } else { rate(have).map(|rate| (need - have) / rate) },
    };
    let mut gates = vec![
        Gate {
            gate: "duration_seconds",
            have: elapsed,
            need: step.min_duration.as_secs_f64(),
            met: inputs.elapsed >= step.min_duration,
            eta_seconds: Some((step.min_duration.as_secs_f64() - elapsed).max(0.0)),
        },
        gate("candidate_requests", inputs.candidate.requests() as f64, step.min_requests as f64),
    ];
    let control_need = match inputs.control_kind {
        ControlKind::EqualSlice | ControlKind::ShadowPair => Some(step.min_requests as f64),
        ControlKind::AllPrimary => {
            let weight = f64::from(inputs.weight_bp) / 10_000.0;
            Some((step.min_requests as f64 * (1.0 - weight) / weight.max(1e-9)).floor())
        }
        ControlKind::PreviousStep => None,
    };
    if let Some(need) = control_need {
        gates.push(gate("control_requests", inputs.control.requests() as f64, need));
    }
    if step.min_users > 0 {
        gates.push(gate("candidate_users", inputs.candidate.users() as f64, step.min_users as f64));
    }
    gates
}

fn checks(inputs: &Inputs<'_>) -> Vec<Check> {
    inputs.step.criteria.iter().filter_map(|(criterion, threshold)| check(criterion, threshold, inputs)).collect()
}

/// The evaluation of one criterion: the arm that a new `Criterion` adds. `None` for the
/// criteria this version does not measure, which the validator refuses before they get here.
fn check(criterion: Criterion, threshold: f64, inputs: &Inputs<'_>) -> Option<Check> {
    let (candidate, control) = (inputs.candidate, inputs.control);
    let latency = |arm: &ArmSnapshot| arm.latency.clone();
    let check = match criterion {
        Criterion::MaxErrorRate => error_ceiling(candidate, threshold),
        Criterion::MaxErrorRateIncrease => {
            rate_increase(criterion, candidate, control, threshold, |arm| arm.upstream_errors)
        }
        Criterion::MaxClientErrorRateIncrease => {
            rate_increase(criterion, candidate, control, threshold, |arm| arm.client_errors)
        }
        Criterion::MaxLatencyP50Ratio => quantile_ratio(criterion, candidate, control, 0.5, threshold, latency),
        Criterion::MaxLatencyP95Ratio => quantile_ratio(criterion, candidate, control, 0.95, threshold, latency),
        Criterion::MinLatencyImprovement => {
            let mut check = quantile_ratio(criterion, candidate, control, 0.5, 1.0 - threshold / 100.0, latency);
            check.threshold = threshold;
            check
        }
        Criterion::MaxTtftP95Ratio => {
            let mut check = quantile_ratio(criterion, candidate, control, 0.95, threshold, |arm| arm.ttft.clone());
            // A route that serves no streams has no TTFT to compare: the criterion does not
            // apply, and must not hold the step forever. The request gates still apply.
            if check.candidate_samples == 0 && check.control_samples == 0 && candidate.requests() > 0 {
                check.verdict = Verdict::Pass;
                check.evidence = "no streamed requests on either arm: not applicable".to_owned();
            }
            check
        }
        Criterion::MaxCostRatio | Criterion::MinShadowAgreement => return None,
    };
    Some(check)
}

/// Candidate error rate (percent) at most `percent`: pass when the Wilson upper bound is
/// within it, fail when even the lower bound is above it.
fn error_ceiling(candidate: &ArmSnapshot, percent: f64) -> Check {
    let n = candidate.requests();
    let limit = percent / 100.0;
    let (_, upper) = wilson(candidate.upstream_errors, n, Z_PASS);
    let (lower, _) = wilson(candidate.upstream_errors, n, Z_FAIL);
    let verdict = if n > 0 && lower > limit {
        Verdict::Fail
    } else if n > 0 && upper <= limit {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    Check {
        criterion: Criterion::MaxErrorRate,
        threshold: percent,
        candidate: (n > 0).then(|| candidate.upstream_errors as f64 / n as f64 * 100.0),
        control: None,
        verdict,
        candidate_samples: n,
        control_samples: 0,
        evidence: format!("Wilson bounds {:.2}% (99.5% lower) to {:.2}% (95% upper)", lower * 100.0, upper * 100.0),
        detectable: detectable_excess(limit, n, None).map(|excess| (limit + excess) * 100.0),
    }
}

/// Candidate rate minus control rate at most `points` percentage points (non-inferiority):
/// pass when Newcombe's upper bound is within the margin, fail when its lower bound is past it.
fn rate_increase(
    criterion: Criterion,
    candidate: &ArmSnapshot,
    control: &ArmSnapshot,
    points: f64,
    count: fn(&ArmSnapshot) -> u64,
) -> Check {
    let (n1, n2) = (candidate.requests(), control.requests());
    let margin = points / 100.0;
    let (_, upper) = difference(count(candidate), n1, count(control), n2, Z_PASS);
    let (lower, _) = difference(count(candidate), n1, count(control), n2, Z_FAIL);
    let verdict = if n1 == 0 || n2 == 0 {
        Verdict::Inconclusive
    } else if lower > margin {
        Verdict::Fail
    } else if upper <= margin {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    let rate = |x: u64, n: u64| (n > 0).then(|| x as f64 / n as f64 * 100.0);
    Check {
        criterion,
        threshold: points,
        candidate: rate(count(candidate), n1),
        control: rate(count(control), n2),
        verdict,
        candidate_samples: n1,
        control_samples: n2,
        evidence: format!("difference {:+.2}pp (99.5% lower) to {:+.2}pp (95% upper)", lower * 100.0, upper * 100.0),
        detectable: detectable_excess(count(control) as f64 / n2.max(1) as f64, n1, Some(n2))
            .map(|excess| (margin + excess) * 100.0),
    }
}

/// Candidate quantile at most `ratio` × the control's: pass when the candidate's upper
/// bound is within `ratio` × the control's lower bound, fail when its lower bound is past
/// `ratio` × the control's upper bound — significance and effect size together.
fn quantile_ratio(
    criterion: Criterion,
    candidate: &ArmSnapshot,
    control: &ArmSnapshot,
    q: f64,
    ratio: f64,
    histogram: impl Fn(&ArmSnapshot) -> Vec<u64>,
) -> Check {
    let (candidate_histogram, control_histogram) = (histogram(candidate), histogram(control));
    let samples = |values: &[u64]| values.iter().sum::<u64>();
    let pass_bounds = (quantile(&candidate_histogram, q, Z_PASS), quantile(&control_histogram, q, Z_PASS));
    let fail_bounds = (quantile(&candidate_histogram, q, Z_FAIL), quantile(&control_histogram, q, Z_FAIL));
    let (verdict, estimates, evidence) = match (pass_bounds, fail_bounds) {
        ((Some(cand), Some(ctrl)), (Some(cand_fail), Some(ctrl_fail))) => {
            let verdict = if cand_fail.1 > ratio * ctrl_fail.2 {
                Verdict::Fail
            } else if cand.2 <= ratio * ctrl.1 {
                Verdict::Pass
            } else {
                Verdict::Inconclusive
            };
            let evidence = format!(
                "candidate p{:.0} {:.0}–{:.0} ms vs control {:.0}–{:.0} ms (95%)",
                q * 100.0,
                cand.1,
                cand.2,
                ctrl.1,
                ctrl.2
            );
            (verdict, (Some(cand.0), Some(ctrl.0)), evidence)
        }
        _ => (Verdict::Inconclusive, (None, None), "no samples yet".to_owned()),
    };
    Check {
        criterion,
        threshold: ratio,
        candidate: estimates.0,
        control: estimates.1,
        verdict,
        candidate_samples: samples(&candidate_histogram),
        control_samples: samples(&control_histogram),
        evidence,
        detectable: None,
    }
}

/// One-sided power of 80%.
const Z_POWER: f64 = 0.842;

/// How far above `rate` a candidate's error rate must be for `n` candidate samples (and
/// `control` samples, when the control's rate is itself estimated) to reveal it at
/// `Z_FAIL` with 80% power; `None` without samples. The normal approximation, with the
/// rate floored at 0.1% so that a clean control does not promise the impossible.
fn detectable_excess(rate: f64, n: u64, control: Option<u64>) -> Option<f64> {
    if n == 0 || control == Some(0) {
        return None;
    }
    let rate = rate.max(0.001);
    let variance = rate * (1.0 - rate) * (1.0 / n as f64 + control.map_or(0.0, |m| 1.0 / m as f64));
    Some((Z_FAIL + Z_POWER) * variance.sqrt())
}

#[cfg(test)]
mod tests;
