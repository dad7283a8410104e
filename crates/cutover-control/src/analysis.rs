//! A step's verdict from its evidence: each criterion compares the candidate with the
//! control over the same window and yields pass, fail or inconclusive with its numbers;
//! the step passes only when every criterion passes and its duration, requests and users
//! are met. Too little data is never a pass. Every criterion is judged by bounds valid at
//! every look (`sequential`), with the step's error probabilities split between its
//! criteria, so that the controller may look every interval for as long as it likes;
//! only the hard ceiling needs no statistics.

use std::time::Duration;

use cutover_config::RolloutStep;
use cutover_model::{Criteria, Criterion, Latency};
use cutover_shadow::AgreementSnapshot;

use super::inference::Alphas;
use cutover_live::stats::ArmSnapshot;
use cutover_live::stats::clusters::Failure;

pub use ahead::{RESOLVING_MARGINS, plan_resolution, resolves};
use checks::{agreement_check, cost_ratio_check, error_ceiling, error_increase, quantile_ratio};

pub use cutover_model::evaluation::{Check, ControlKind, Evaluation, Gate, Verdict};

pub struct Inputs<'a> {
    pub step: &'a RolloutStep,
    pub elapsed: Duration,
    pub candidate: &'a ArmSnapshot,
    pub control: &'a ArmSnapshot,
    pub control_kind: ControlKind,
    /// Candidate share in basis points, to scale the control's request gate above 50%.
    pub weight_bp: u32,
    /// The mirrored pairs' agreement in this step (`min_shadow_agreement`).
    pub agreement: Option<&'a AgreementSnapshot>,
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

/// The chance of wrongly passing a candidate that breaks a criterion, over the whole step
/// however often it is looked at. A step passes only if *every* criterion passes, so the
/// chance of passing one that breaks criterion `j` is at most `j`'s own: the pass side
/// needs no split between criteria. 5% is the target the controller publishes for a
/// candidate exactly at the margin.
pub const ALPHA_PASS: f64 = 0.05;
/// The chance of wrongly failing a step whose candidate meets every criterion, over the
/// whole step. Any failing criterion fails the step, so this is split evenly between the
/// criteria (Bonferroni). 1%: a false rollback costs a cool-down and a retry, and healthy
/// candidates are the common case, so it is held tighter than the pass side.
pub const ALPHA_FAIL: f64 = 0.01;

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
    Evaluation { verdict, control: inputs.control_kind, checks, gates, held: None, ahead: Vec::new() }
}

fn gates(inputs: &Inputs<'_>) -> Vec<Gate> {
    let step = inputs.step;
    let elapsed = inputs.elapsed.as_secs_f64();
    let rate = |have: f64| (elapsed > 0.0 && have > 0.0).then(|| have / elapsed);
    let gate = |gate: &'static str, have: f64, need: f64| Gate {
        gate: gate.into(),
        have,
        need,
        met: have >= need,
        eta_seconds: if have >= need { Some(0.0) } else { rate(have).map(|rate| (need - have) / rate) },
    };
    let mut gates = vec![
        Gate {
            gate: "duration_seconds".into(),
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

/// The error probabilities each of a step's tests spends: the pass side whole, the fail
/// side split between its tests. The harm budget is a bound, not a test: it spends none.
fn alphas(criteria: &Criteria) -> Alphas {
    let tests = criteria.iter().filter(|(criterion, _)| criterion.is_evaluated() && !criterion.is_budget()).count();
    let tests = tests + criteria.shadow_dimensions().count();
    Alphas { pass: ALPHA_PASS, fail: ALPHA_FAIL / tests.max(1) as f64 }
}

fn checks(inputs: &Inputs<'_>) -> Vec<Check> {
    let step = &inputs.step.criteria;
    let alphas = alphas(step);
    let mut checks: Vec<Check> =
        step.iter().filter_map(|(criterion, threshold)| check(criterion, threshold, inputs, alphas)).collect();
    let empty = AgreementSnapshot::default();
    let agreement = inputs.agreement.unwrap_or(&empty);
    checks.extend(
        step.shadow_dimensions()
            .map(|(dimension, threshold)| agreement_check(Some(dimension), agreement, threshold, alphas)),
    );
    checks.extend(harm::budget(inputs).map(|budget| harm::excess_failures(inputs, budget, alphas)));
    checks.extend(harm::slow_checks(inputs, alphas));
    checks
}

/// The evaluation of one criterion: the arm that a new `Criterion` adds. `None` for the
/// criteria this version does not measure, which the validator refuses before they get here.
fn check(criterion: Criterion, threshold: f64, inputs: &Inputs<'_>, alphas: Alphas) -> Option<Check> {
    let (candidate, control) = (inputs.candidate, inputs.control);
    let judged = (alphas, inputs.step.min_requests);
    let check = match criterion {
        Criterion::MaxErrorRate => error_ceiling(candidate, threshold, alphas),
        Criterion::MaxErrorRateIncrease => {
            error_increase(criterion, candidate, control, threshold, Failure::Upstream, alphas)
        }
        Criterion::MaxClientErrorRateIncrease => {
            error_increase(criterion, candidate, control, threshold, Failure::Client, alphas)
        }
        Criterion::MaxLatencyP50Ratio | Criterion::MaxLatencyP95Ratio | Criterion::MaxTtftP95Ratio => {
            let (q, latency) = criterion.latency_limit()?;
            let mut check = quantile_ratio(criterion, (candidate, control), q, threshold, judged, latency);
            // A route that serves no streams has no TTFT to compare: the criterion does not
            // apply, and must not hold the step forever. The request gates still apply.
            let unstreamed = check.candidate_samples == 0 && check.control_samples == 0 && candidate.requests() > 0;
            if latency == Latency::FirstToken && unstreamed {
                check.verdict = Verdict::Pass;
                check.evidence = "no streamed requests on either arm: not applicable".to_owned();
            }
            check
        }
        Criterion::MinLatencyImprovement => {
            let ratio = 1.0 - threshold / 100.0;
            let mut check = quantile_ratio(criterion, (candidate, control), 0.5, ratio, judged, Latency::Total);
            check.threshold = threshold;
            check
        }
        Criterion::MaxCostRatio => cost_ratio_check((candidate, control), threshold, judged),
        Criterion::MinShadowAgreement => {
            agreement_check(None, inputs.agreement.unwrap_or(&AgreementSnapshot::default()), threshold, alphas)
        }
        // Judged after the others, derived budget or not (`harm`).
        Criterion::MaxExcessFailures | Criterion::MaxExcessSlowRequests => return None,
    };
    Some(check)
}

pub mod ahead;
mod checks;
pub mod harm;
#[cfg(test)]
mod tests;
