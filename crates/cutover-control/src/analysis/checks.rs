//! One criterion's check from the two arms' evidence: error ceilings, error-rate
//! increases, quantile ratios and the cost ratio, each turned from its sequential test into a `Check`
//! with the bounds, error probabilities and sample counts the status shows.

use cutover_model::{Criterion, Dimension, Latency};
use cutover_shadow::AgreementSnapshot;

use super::{Check, Verdict};
use crate::inference::{
    Alphas, Decision, Tested, cost_ratio, quantile_bounds, quantile_estimate, rate_ceiling, rate_increase,
};
use cutover_live::stats::ArmSnapshot;
use cutover_live::stats::clusters::{Cells, Failure};
use cutover_live::stats::histogram::Histogram;

/// Latency bounds are tightest at the step's `min_requests` (the first look at which it
/// could pass), and at no fewer than this many samples per arm. Past that point the
/// boundary widens only with the logarithm of the samples (about 15% wider at 150 times
/// as many, where a p95 at 1.15× against 1.2× is decided), while a gross regression is
/// still caught within a few hundred samples.
const LATENCY_DESIGN_SAMPLES: u64 = 1_000;

fn verdict(decision: Decision) -> Verdict {
    match decision {
        Decision::Pass => Verdict::Pass,
        Decision::Fail => Verdict::Fail,
        Decision::Continue => Verdict::Inconclusive,
    }
}

/// A check with no evidence on one side: inconclusive, never a pass.
fn without_samples(check: &mut Check) {
    check.verdict = Verdict::Inconclusive;
    check.evidence = "no samples yet".to_owned();
    (check.lower, check.upper, check.detectable) = (None, None, None);
}

/// Agreement of the mirrored pairs (percent) at least `percent`, overall (`None`) or of
/// one dimension: the disagreement rate tested against its ceiling (`100 − percent`) with
/// the same always-valid bounds as the error ceiling, its variance inflated by the
/// clustering of sticky users' pairs (`shadow::cells`) as the error rates' is.
pub(super) fn agreement_check(
    dimension: Option<Dimension>,
    agreement: &AgreementSnapshot,
    percent: f64,
    alphas: Alphas,
) -> Check {
    let (agreed, judged) = match dimension {
        Some(dimension) => agreement.counts(dimension),
        None => (agreement.agreeing, agreement.pairs),
    };
    let disagreements = judged - agreed.min(judged);
    let (pairs, disagreeing) = agreement.cells.disagreement(dimension);
    let cells = Cells { requests: pairs, upstream_errors: disagreeing, client_errors: Vec::new() };
    let estimate = cells.estimate(disagreements, judged, Failure::Upstream);
    let ceiling = 1.0 - percent / 100.0;
    let Tested { decision, lower, upper, detectable } = rate_ceiling(&estimate, ceiling, alphas);
    let agreement = |disagreement: f64| (1.0 - disagreement) * 100.0;
    let mut check = Check {
        criterion: Criterion::MinShadowAgreement,
        threshold: percent,
        candidate: Some(agreement(estimate.rate())),
        control: None,
        verdict: verdict(decision),
        candidate_samples: judged,
        control_samples: 0,
        evidence: format!(
            "{agreed} of {judged} pairs agreed; always-valid bounds {:.2}% to {:.2}% (design effect {:.1})",
            agreement(upper),
            agreement(lower),
            estimate.design_effect
        ),
        dimension: dimension.map(|dimension| dimension.as_str().into()),
        detectable: detectable.map(|excess| percent - excess * 100.0),
        lower: Some(agreement(upper)),
        upper: Some(agreement(lower)),
        alpha_pass: alphas.pass,
        alpha_fail: alphas.fail,
    };
    if judged == 0 {
        without_samples(&mut check);
    }
    check
}

/// Candidate error rate (percent) at most `percent`.
pub(super) fn error_ceiling(candidate: &ArmSnapshot, percent: f64, alphas: Alphas) -> Check {
    let estimate = candidate.rate(Failure::Upstream);
    let Tested { decision, lower, upper, detectable } = rate_ceiling(&estimate, percent / 100.0, alphas);
    let mut check = Check {
        criterion: Criterion::MaxErrorRate,
        threshold: percent,
        candidate: Some(estimate.rate() * 100.0),
        control: None,
        verdict: verdict(decision),
        candidate_samples: estimate.requests,
        control_samples: 0,
        evidence: format!(
            "always-valid bounds {:.2}% to {:.2}% (design effect {:.1})",
            lower * 100.0,
            upper * 100.0,
            estimate.design_effect
        ),
        dimension: None,
        detectable: detectable.map(|excess| percent + excess * 100.0),
        lower: Some(lower * 100.0),
        upper: Some(upper * 100.0),
        alpha_pass: alphas.pass,
        alpha_fail: alphas.fail,
    };
    if estimate.requests == 0 {
        without_samples(&mut check);
    }
    check
}

/// Candidate rate minus control rate at most `points` percentage points (non-inferiority).
pub(super) fn error_increase(
    criterion: Criterion,
    candidate: &ArmSnapshot,
    control: &ArmSnapshot,
    points: f64,
    failure: Failure,
    alphas: Alphas,
) -> Check {
    let (cand, ctrl) = (candidate.rate(failure), control.rate(failure));
    let Tested { decision, lower, upper, detectable } = rate_increase(&cand, &ctrl, points / 100.0, alphas);
    let mut check = Check {
        criterion,
        threshold: points,
        candidate: Some(cand.rate() * 100.0),
        control: Some(ctrl.rate() * 100.0),
        verdict: verdict(decision),
        candidate_samples: cand.requests,
        control_samples: ctrl.requests,
        evidence: format!(
            "always-valid difference {:+.2}pp to {:+.2}pp (design effects {:.1} and {:.1})",
            lower * 100.0,
            upper * 100.0,
            cand.design_effect,
            ctrl.design_effect
        ),
        dimension: None,
        detectable: detectable.map(|excess| points + excess * 100.0),
        lower: Some(lower * 100.0),
        upper: Some(upper * 100.0),
        alpha_pass: alphas.pass,
        alpha_fail: alphas.fail,
    };
    if cand.requests == 0 || ctrl.requests == 0 {
        without_samples(&mut check);
    }
    check
}

/// Candidate quantile at most `ratio` × the control's: pass when the candidate's upper
/// bound is within `ratio` × the control's lower bound, fail when its lower bound is past
/// `ratio` × the control's upper bound — significance and effect size together. Each
/// side's error needs one of the two arms' bounds to be wrong, so each arm gets half of it.
pub(super) fn quantile_ratio(
    criterion: Criterion,
    (candidate, control): (&ArmSnapshot, &ArmSnapshot),
    q: f64,
    ratio: f64,
    (alphas, design): (Alphas, u64),
    latency: Latency,
) -> Check {
    let (cand, ctrl) = (candidate.histogram(latency), control.histogram(latency));
    let design = design.max(LATENCY_DESIGN_SAMPLES);
    let bounds = |histogram: &Histogram, alpha: f64| quantile_bounds(histogram, q, alpha / 2.0, design);
    let mut check = Check {
        criterion,
        threshold: ratio,
        candidate: quantile_estimate(cand, q),
        control: quantile_estimate(ctrl, q),
        verdict: Verdict::Inconclusive,
        candidate_samples: cand.samples(),
        control_samples: ctrl.samples(),
        evidence: String::new(),
        dimension: None,
        detectable: None,
        lower: None,
        upper: None,
        alpha_pass: alphas.pass,
        alpha_fail: alphas.fail,
    };
    let (Some(cand_pass), Some(ctrl_pass), Some(cand_fail), Some(ctrl_fail)) =
        (bounds(cand, alphas.pass), bounds(ctrl, alphas.pass), bounds(cand, alphas.fail), bounds(ctrl, alphas.fail))
    else {
        without_samples(&mut check);
        return check;
    };
    // Worst-case ratios of the bounds: the lowest the ratio can credibly be (fail level)
    // and the highest (pass level).
    let (lower, upper) = (cand_fail.0 / ctrl_fail.1, cand_pass.1 / ctrl_pass.0);
    check.verdict = if lower > ratio {
        Verdict::Fail
    } else if upper <= ratio {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    (check.lower, check.upper) = (lower.is_finite().then_some(lower), upper.is_finite().then_some(upper));
    check.evidence = format!(
        "always-valid p{:.0}: candidate {:.0}–{:.0} ms, control {:.0}–{:.0} ms; ratio {:.3}–{:.3}",
        q * 100.0,
        cand_fail.0,
        cand_pass.1,
        ctrl_pass.0,
        ctrl_fail.1,
        lower,
        upper
    );
    check
}

/// The cost ratio is not judged while more than this share of either arm's successful
/// requests has an unknown cost: the known ones could be any part of the spend.
pub(super) const MAX_UNKNOWN_COST_SHARE: f64 = 0.05;
/// Cost bounds are tightest at the step's `min_requests`, and at no fewer than this.
const COST_DESIGN_SAMPLES: u64 = 1_000;

/// Candidate's cost per successful request at most `ratio` × the control's: pass when the
/// always-valid upper bound of the ratio is within it, fail when the lower bound is past it.
/// The arms' figures are dollars per 1,000 successful requests of known cost.
pub(super) fn cost_ratio_check(
    (candidate, control): (&ArmSnapshot, &ArmSnapshot),
    ratio: f64,
    (alphas, design): (Alphas, u64),
) -> Check {
    let (cand, ctrl) = (candidate.spend.estimate(), control.spend.estimate());
    let mut check = Check {
        criterion: Criterion::MaxCostRatio,
        threshold: ratio,
        candidate: (cand.known > 0).then_some(cand.mean * 1000.0),
        control: (ctrl.known > 0).then_some(ctrl.mean * 1000.0),
        verdict: Verdict::Inconclusive,
        candidate_samples: cand.known,
        control_samples: ctrl.known,
        evidence: String::new(),
        dimension: None,
        detectable: None,
        lower: None,
        upper: None,
        alpha_pass: alphas.pass,
        alpha_fail: alphas.fail,
    };
    let unknown = format!(
        "cost unknown for {:.1}% of the candidate's and {:.1}% of the control's successful requests",
        cand.unknown_share() * 100.0,
        ctrl.unknown_share() * 100.0
    );
    if cand.unknown_share() > MAX_UNKNOWN_COST_SHARE || ctrl.unknown_share() > MAX_UNKNOWN_COST_SHARE {
        check.evidence = format!(
            "{unknown} (more than {:.0}%: unpriced models or answers without usage); not judged",
            MAX_UNKNOWN_COST_SHARE * 100.0
        );
        return check;
    }
    if cand.known == 0 || ctrl.known == 0 {
        without_samples(&mut check);
        return check;
    }
    let Some(Tested { decision, lower, upper, .. }) =
        cost_ratio(&cand, &ctrl, ratio, alphas, design.max(COST_DESIGN_SAMPLES))
    else {
        check.evidence = if cand.mean > 0.0 && ctrl.mean > 0.0 {
            "too few priced requests on an arm to estimate the spread of cost".to_owned()
        } else {
            "an arm's priced requests cost nothing: no ratio to bound".to_owned()
        };
        return check;
    };
    check.verdict = verdict(decision);
    (check.lower, check.upper) = (Some(lower), Some(upper));
    check.evidence = format!(
        "always-valid ratio {lower:.3}–{upper:.3} (${:.4} vs ${:.4} per 1,000 successful requests; {unknown})",
        cand.mean * 1000.0,
        ctrl.mean * 1000.0
    );
    check
}
