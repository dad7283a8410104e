use std::time::Duration;

use super::*;
use crate::config::{Criteria, Criterion};
use crate::rollout::stats::LATENCY_BUCKETS;

fn arm(requests: u64, errors: u64, latency_bucket: usize) -> ArmSnapshot {
    let mut latency = vec![0; LATENCY_BUCKETS];
    latency[latency_bucket] = requests;
    ArmSnapshot { ok: requests - errors, upstream_errors: errors, latency, ..ArmSnapshot::default() }
}

fn step(criteria: Criteria) -> RolloutStep {
    RolloutStep {
        weight_bp: 100,
        shadow: 0.0,
        min_duration: Duration::from_secs(60),
        min_requests: 500,
        min_users: 0,
        criteria,
    }
}

fn evaluate_with(step: &RolloutStep, candidate: &ArmSnapshot, control: &ArmSnapshot, elapsed: Duration) -> Evaluation {
    evaluate(&Inputs {
        step,
        elapsed,
        candidate,
        control,
        control_kind: ControlKind::EqualSlice,
        weight_bp: step.weight_bp,
    })
}

#[test]
fn too_little_data_is_never_a_pass() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRate, 5.0));
    let evaluation = evaluate_with(&step, &arm(10, 0, 50), &arm(10, 0, 50), Duration::from_secs(3600));
    assert_eq!(evaluation.verdict, Verdict::Inconclusive);
    let requests = evaluation.gates.iter().find(|gate| gate.gate == "candidate_requests").unwrap();
    assert!(!requests.met);
    assert!(requests.eta_seconds.is_some(), "the status says how long the missing requests take");
}

#[test]
fn clock_alone_does_not_pass_a_step() {
    let step = step(Criteria::default());
    let evaluation = evaluate_with(&step, &arm(1000, 0, 50), &arm(1000, 0, 50), Duration::from_secs(10));
    assert_eq!(evaluation.verdict, Verdict::Inconclusive, "requests met but not the duration");
}

#[test]
fn a_healthy_candidate_with_enough_evidence_passes() {
    let criteria = Criteria::default()
        .with(Criterion::MaxErrorRate, 5.0)
        .with(Criterion::MaxErrorRateIncrease, 1.0)
        .with(Criterion::MaxLatencyP95Ratio, 1.2);
    let evaluation = evaluate_with(&step(criteria), &arm(2000, 10, 50), &arm(2000, 12, 50), Duration::from_secs(120));
    assert_eq!(evaluation.verdict, Verdict::Pass, "{evaluation:#?}");
}

#[test]
fn a_credible_error_increase_fails_and_noise_does_not() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 1.0));
    let doubled = evaluate_with(&step, &arm(5000, 250, 50), &arm(5000, 50, 50), Duration::from_secs(120));
    assert_eq!(doubled.verdict, Verdict::Fail, "5% vs 1% over 5000 requests each");
    let noisy = evaluate_with(&step, &arm(100, 3, 50), &arm(100, 1, 50), Duration::from_secs(120));
    assert_ne!(noisy.verdict, Verdict::Fail, "3 vs 1 failures in 100 is not credible");
}

#[test]
fn a_latency_regression_fails_with_enough_samples() {
    let step = step(Criteria::default().with(Criterion::MaxLatencyP95Ratio, 1.2));
    let slower = evaluate_with(&step, &arm(1000, 0, 60), &arm(1000, 0, 50), Duration::from_secs(120));
    assert_eq!(slower.verdict, Verdict::Fail, "1.1^10 ≈ 2.6× slower");
    let few = evaluate_with(&step, &arm(5, 0, 60), &arm(5, 0, 50), Duration::from_secs(120));
    assert_eq!(few.verdict, Verdict::Inconclusive);
}

#[test]
fn a_required_improvement_must_be_shown() {
    let step = step(Criteria::default().with(Criterion::MinLatencyImprovement, 10.0));
    let same = evaluate_with(&step, &arm(2000, 0, 50), &arm(2000, 0, 50), Duration::from_secs(120));
    assert_ne!(same.verdict, Verdict::Pass);
    let faster = evaluate_with(&step, &arm(2000, 0, 45), &arm(2000, 0, 50), Duration::from_secs(120));
    assert_eq!(faster.verdict, Verdict::Pass, "{faster:#?}");
}

#[test]
fn checks_say_what_their_traffic_can_detect() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 0.5));
    let few = evaluate_with(&step, &arm(1000, 10, 50), &arm(1000, 10, 50), Duration::from_secs(120));
    let many = evaluate_with(&step, &arm(20_000, 200, 50), &arm(20_000, 200, 50), Duration::from_secs(120));
    let detectable = |evaluation: &Evaluation| evaluation.checks[0].detectable.unwrap();
    assert!(detectable(&few) > 2.0, "1,000 requests per arm at 1% only see increases above ~2pp: {}", detectable(&few));
    assert!(detectable(&many) < 1.0, "20,000 per arm see below 1pp: {}", detectable(&many));
}

#[test]
fn the_hard_ceiling_needs_twenty_requests() {
    assert!(hard_breach(&arm(19, 19, 50)).is_none());
    assert!(hard_breach(&arm(20, 10, 50)).is_some());
    assert!(hard_breach(&arm(1000, 100, 50)).is_none());
}

#[test]
fn every_evaluated_criterion_has_a_check_named_by_its_key() {
    let (candidate, control) = (arm(1000, 10, 50), arm(1000, 10, 50));
    for &criterion in Criterion::ALL {
        let step = step(Criteria::default().with(criterion, 1.0));
        let evaluation = evaluate_with(&step, &candidate, &control, Duration::from_secs(120));
        let json = serde_json::to_value(&evaluation).unwrap();
        let named: Vec<&str> =
            json["checks"].as_array().unwrap().iter().filter_map(|check| check["criterion"].as_str()).collect();
        let expected = if criterion.is_evaluated() { vec![criterion.key()] } else { Vec::new() };
        assert_eq!(named, expected, "{criterion:?}");
    }
}
