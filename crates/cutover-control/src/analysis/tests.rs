//! A step's verdict from its evidence: each criterion, the gates, and what too little
//! data means.

use std::time::Duration;

use cutover_model::{Criteria, Criterion};

use super::*;
use cutover_live::stats::histogram::{BUCKETS, Histogram, bucket_of};

/// `requests` independent requests, `errors` of them failed, the answers all taking
/// `latency_ms`.
fn arm(requests: u64, errors: u64, latency_ms: u64) -> ArmSnapshot {
    ArmSnapshot { upstream_errors: errors, ..timed(&[(requests - errors, latency_ms)]) }
}

fn step(criteria: Criteria) -> RolloutStep {
    RolloutStep {
        weight_bp: 100,
        shadow: 0.0,
        min_duration: Duration::from_secs(60),
        max_duration: None,
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
        agreement: None,
    })
}

#[test]
fn too_little_data_is_never_a_pass() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRate, 5.0));
    let evaluation = evaluate_with(&step, &arm(10, 0, 100), &arm(10, 0, 100), Duration::from_secs(3600));
    assert_eq!(evaluation.verdict, Verdict::Inconclusive);
    let requests = evaluation.gates.iter().find(|gate| gate.gate == "candidate_requests").unwrap();
    assert!(!requests.met);
    assert!(requests.eta_seconds.is_some(), "the status says how long the missing requests take");
}

#[test]
fn clock_alone_does_not_pass_a_step() {
    let step = step(Criteria::default());
    let evaluation = evaluate_with(&step, &arm(1000, 0, 100), &arm(1000, 0, 100), Duration::from_secs(10));
    assert_eq!(evaluation.verdict, Verdict::Inconclusive, "requests met but not the duration");
}

#[test]
fn a_healthy_candidate_with_enough_evidence_passes() {
    let criteria = Criteria::default()
        .with(Criterion::MaxErrorRate, 5.0)
        .with(Criterion::MaxErrorRateIncrease, 1.0)
        .with(Criterion::MaxLatencyP95Ratio, 1.2);
    let evaluation = evaluate_with(&step(criteria), &arm(2000, 10, 100), &arm(2000, 12, 100), Duration::from_secs(120));
    assert_eq!(evaluation.verdict, Verdict::Pass, "{evaluation:#?}");
}

#[test]
fn a_credible_error_increase_fails_and_noise_does_not() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 1.0));
    let doubled = evaluate_with(&step, &arm(5000, 250, 100), &arm(5000, 50, 100), Duration::from_secs(120));
    assert_eq!(doubled.verdict, Verdict::Fail, "5% vs 1% over 5000 requests each");
    let noisy = evaluate_with(&step, &arm(100, 3, 100), &arm(100, 1, 100), Duration::from_secs(120));
    assert_ne!(noisy.verdict, Verdict::Fail, "3 vs 1 failures in 100 is not credible");
}

#[test]
fn a_latency_regression_fails_with_enough_samples() {
    let step = step(Criteria::default().with(Criterion::MaxLatencyP95Ratio, 1.2));
    let slower = evaluate_with(&step, &arm(1000, 0, 260), &arm(1000, 0, 100), Duration::from_secs(120));
    assert_eq!(slower.verdict, Verdict::Fail, "1.1^10 ≈ 2.6× slower");
    let few = evaluate_with(&step, &arm(5, 0, 260), &arm(5, 0, 100), Duration::from_secs(120));
    assert_eq!(few.verdict, Verdict::Inconclusive);
}

#[test]
fn a_required_improvement_must_be_shown() {
    let step = step(Criteria::default().with(Criterion::MinLatencyImprovement, 10.0));
    let same = evaluate_with(&step, &arm(2000, 0, 100), &arm(2000, 0, 100), Duration::from_secs(120));
    assert_ne!(same.verdict, Verdict::Pass);
    let faster = evaluate_with(&step, &arm(2000, 0, 85), &arm(2000, 0, 100), Duration::from_secs(120));
    assert_eq!(faster.verdict, Verdict::Pass, "{faster:#?}");
}

#[test]
fn checks_say_what_their_traffic_can_detect() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 0.5));
    let few = evaluate_with(&step, &arm(1000, 10, 100), &arm(1000, 10, 100), Duration::from_secs(120));
    let many = evaluate_with(&step, &arm(20_000, 200, 100), &arm(20_000, 200, 100), Duration::from_secs(120));
    let detectable = |evaluation: &Evaluation| evaluation.checks[0].detectable.unwrap();
    // The figures the simulation confirms (`simulation.rs`, the power test): a candidate
    // that much worse fails this check at this look about 80% of the time (more at 1,000).
    assert!(detectable(&few) > 5.0, "1,000 requests per arm at 1% only see large increases: {}", detectable(&few));
    assert!((0.9..1.2).contains(&detectable(&many)), "20,000 per arm see about 1pp: {}", detectable(&many));
}

#[test]
fn the_hard_ceiling_needs_twenty_requests() {
    assert!(hard_breach(&arm(19, 19, 100)).is_none());
    assert!(hard_breach(&arm(20, 10, 100)).is_some());
    assert!(hard_breach(&arm(1000, 100, 100)).is_none());
}

#[test]
fn every_evaluated_criterion_has_a_check_named_by_its_key() {
    let (candidate, control) = (arm(1000, 10, 100), arm(1000, 10, 100));
    for &criterion in Criterion::ALL {
        // A slow-request budget guards a latency criterion, which has its own check.
        let guarded = Criterion::MaxLatencyP95Ratio;
        let mut criteria = Criteria::default().with(criterion, 1.0);
        if criterion == Criterion::MaxExcessSlowRequests {
            criteria.set(guarded, Some(1.5));
        }
        let evaluation = evaluate_with(&step(criteria), &candidate, &control, Duration::from_secs(120));
        let json = serde_json::to_value(&evaluation).unwrap();
        let named: Vec<&str> = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|check| check["criterion"].as_str())
            .filter(|&key| criterion == guarded || key != guarded.key())
            .collect();
        let expected = if criterion.is_evaluated() { vec![criterion.key()] } else { Vec::new() };
        assert_eq!(named, expected, "{criterion:?}");
    }
}

#[test]
fn the_fail_side_error_is_split_between_the_criteria_and_the_pass_side_is_not() {
    let criteria = Criteria::default()
        .with(Criterion::MaxErrorRate, 5.0)
        .with(Criterion::MaxErrorRateIncrease, 1.0)
        .with(Criterion::MaxLatencyP95Ratio, 1.2)
        .with(Criterion::MaxLatencyP50Ratio, 1.2);
    let evaluation = evaluate_with(&step(criteria), &arm(2000, 10, 100), &arm(2000, 12, 100), Duration::from_secs(120));
    for check in &evaluation.checks {
        assert_eq!((check.alpha_pass, check.alpha_fail), (ALPHA_PASS, ALPHA_FAIL / 4.0), "{check:?}");
    }
}

#[test]
fn errors_concentrated_in_few_users_are_not_mistaken_for_a_regression() {
    let step = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 0.5));
    // 3% vs 1% over 6,000 requests each: a credible increase if requests were independent…
    let independent = arm(6000, 180, 100);
    let control = arm(6000, 60, 100);
    assert_eq!(evaluate_with(&step, &independent, &control, Duration::from_secs(120)).verdict, Verdict::Fail);
    // …but not when 60 users sent 100 requests each and 3 of them had all the failures.
    let mut clustered = independent.clone();
    clustered.cells.requests = vec![0; cutover_live::stats::clusters::CELLS];
    clustered.cells.upstream_errors = vec![0; cutover_live::stats::clusters::CELLS];
    for user in 0..60 {
        clustered.cells.requests[user] = 100;
    }
    for user in 0..3 {
        clustered.cells.upstream_errors[user] = 60;
    }
    let evaluation = evaluate_with(&step, &clustered, &control, Duration::from_secs(120));
    assert_eq!(evaluation.verdict, Verdict::Inconclusive, "{evaluation:#?}");
}

#[test]
fn latency_bounds_are_read_at_the_outer_edges_of_one_percent_buckets() {
    // 4% slower against a 1.05 limit: a 10% bucket could not tell; 1% buckets can.
    let step = step(Criteria::default().with(Criterion::MaxLatencyP50Ratio, 1.05));
    let evaluation = evaluate_with(&step, &arm(50_000, 0, 1040), &arm(50_000, 0, 1000), Duration::from_secs(120));
    assert_eq!(evaluation.verdict, Verdict::Pass, "{evaluation:#?}");
    let check = &evaluation.checks[0];
    let (lower, upper) = (check.lower.unwrap(), check.upper.unwrap());
    assert!(lower < 1.04 && upper > 1.04 && upper <= 1.05, "{lower}–{upper}");
    let slower = evaluate_with(&step, &arm(50_000, 0, 1070), &arm(50_000, 0, 1000), Duration::from_secs(120));
    assert_eq!(slower.verdict, Verdict::Fail, "{slower:#?}");
}

/// `arm` whose answers were all streamed, with a first token after `ttft_ms`.
fn streamed(requests: u64, ttft_ms: u64) -> ArmSnapshot {
    let mut ttft = vec![0; BUCKETS];
    ttft[bucket_of(Duration::from_millis(ttft_ms))] = requests;
    ArmSnapshot { ttft: Histogram(ttft), ..arm(requests, 0, 1000) }
}

#[test]
fn a_slower_first_token_fails_max_ttft_p95_ratio_and_a_route_without_streams_is_not_held_by_it() {
    let step = step(Criteria::default().with(Criterion::MaxTtftP95Ratio, 1.2));
    let minutes = Duration::from_secs(120);
    let slower = evaluate_with(&step, &streamed(3000, 300), &streamed(3000, 100), minutes);
    assert_eq!(slower.verdict, Verdict::Fail, "3× the control's TTFT: {:#?}", slower.checks);
    assert_eq!(slower.checks[0].criterion, Criterion::MaxTtftP95Ratio);
    let same = evaluate_with(&step, &streamed(3000, 100), &streamed(3000, 100), minutes);
    assert_eq!(same.verdict, Verdict::Pass, "{:#?}", same.checks);
    let unstreamed = evaluate_with(&step, &arm(3000, 0, 100), &arm(3000, 0, 100), minutes);
    assert_eq!(unstreamed.verdict, Verdict::Pass);
    assert!(unstreamed.checks[0].evidence.contains("not applicable"), "{}", unstreamed.checks[0].evidence);
    // Nor is it held by the slow-request budget that guards the criterion.
    let budgeted = self::step(step.criteria.clone().with(Criterion::MaxExcessSlowRequests, 100.0));
    let unstreamed = evaluate_with(&budgeted, &arm(3000, 0, 100), &arm(3000, 0, 100), minutes);
    assert_eq!(unstreamed.verdict, Verdict::Pass, "{:#?}", unstreamed.checks);
    assert!(unstreamed.checks[1].evidence.contains("nothing slow to bound"), "{}", unstreamed.checks[1].evidence);
}

#[test]
fn max_client_error_rate_increase_judges_client_errors_and_only_them() {
    let step = step(Criteria::default().with(Criterion::MaxClientErrorRateIncrease, 1.0));
    let minutes = Duration::from_secs(120);
    let client_errors = |requests: u64, errors: u64| ArmSnapshot {
        ok: requests - errors,
        client_errors: errors,
        ..arm(requests, 0, 100)
    };
    let more = evaluate_with(&step, &client_errors(5000, 250), &client_errors(5000, 50), minutes);
    assert_eq!(more.verdict, Verdict::Fail, "5% vs 1% client errors");
    assert_eq!((more.checks[0].candidate, more.checks[0].control), (Some(5.0), Some(1.0)));
    // Upstream errors are another criterion's business.
    let upstream = evaluate_with(&step, &arm(5000, 250, 100), &arm(5000, 50, 100), minutes);
    assert_eq!(upstream.verdict, Verdict::Pass, "{:#?}", upstream.checks);
}

#[test]
fn the_min_users_gate_holds_a_step_until_enough_distinct_users_were_seen() {
    use cutover_live::stats::{Arm, Sample, StepStats};
    use cutover_model::Outcome;
    let step = RolloutStep { min_users: 100, ..step(Criteria::default()) };
    let from_users = |users: u64| {
        let stats = StepStats::default();
        for request in 0..2000 {
            let sample = Sample {
                outcome: Outcome::Ok,
                duration: Duration::from_millis(100),
                ttft: None,
                user: Some(request % users),
            };
            stats.record(Arm::Candidate, sample);
        }
        stats.arm_snapshot(Arm::Candidate)
    };
    let control = arm(2000, 0, 100);
    let few = evaluate_with(&step, &from_users(20), &control, Duration::from_secs(120));
    assert_eq!(few.verdict, Verdict::Inconclusive, "2,000 requests from 20 users");
    let gate = few.gates.iter().find(|gate| gate.gate == "candidate_users").unwrap();
    assert!(!gate.met && (15.0..=25.0).contains(&gate.have), "{gate:?}");
    let many = evaluate_with(&step, &from_users(400), &control, Duration::from_secs(120));
    assert_eq!(many.verdict, Verdict::Pass, "{:#?}", many.gates);
}

/// An arm whose `priced` successful requests cost `nanos` each, ±50% alternately, one per
/// cell, and `unknown` more whose cost is unknown.
fn priced(priced: u64, nanos: u64, unknown: u64) -> ArmSnapshot {
    let mut snapshot = arm(priced + unknown, 0, 1000);
    let cells = cutover_live::stats::clusters::CELLS;
    snapshot.spend.requests = vec![0; cells];
    snapshot.spend.nanos = vec![0; cells];
    for request in 0..priced as usize {
        snapshot.spend.requests[request % cells] += 1;
        snapshot.spend.nanos[request % cells] += if request % 2 == 0 { nanos / 2 } else { nanos * 3 / 2 };
    }
    snapshot.spend.unknown = unknown;
    snapshot
}

fn cost_check(candidate: &ArmSnapshot, control: &ArmSnapshot) -> Check {
    let step = step(Criteria::default().with(Criterion::MaxCostRatio, 0.9));
    let evaluation = evaluate_with(&step, candidate, control, Duration::from_secs(120));
    evaluation.checks.into_iter().find(|check| check.criterion == Criterion::MaxCostRatio).unwrap()
}

#[test]
fn the_cost_ratio_passes_a_cheaper_candidate_and_fails_a_dearer_one() {
    let cheaper = cost_check(&priced(2000, 1_000_000, 0), &priced(2000, 2_000_000, 0));
    assert_eq!(cheaper.verdict, Verdict::Pass, "{cheaper:?}");
    assert_eq!((cheaper.candidate, cheaper.control), (Some(1.0), Some(2.0)), "dollars per 1,000 requests");
    assert!(cheaper.upper.unwrap() <= 0.9 && cheaper.lower.unwrap() < 0.5, "{cheaper:?}");
    let dearer = cost_check(&priced(2000, 4_000_000, 0), &priced(2000, 2_000_000, 0));
    assert_eq!(dearer.verdict, Verdict::Fail, "{dearer:?}");
}

#[test]
fn the_cost_ratio_is_not_judged_while_too_much_cost_is_unknown() {
    // 6% of the candidate's successful requests unknown: even a clear saving is held.
    let check = cost_check(&priced(1880, 1_000_000, 120), &priced(2000, 2_000_000, 0));
    assert_eq!(check.verdict, Verdict::Inconclusive, "{check:?}");
    assert!(check.evidence.contains("6.0% of the candidate's") && check.evidence.contains("not judged"), "{check:?}");
    // 4% is within the tolerance.
    let check = cost_check(&priced(1920, 1_000_000, 80), &priced(2000, 2_000_000, 0));
    assert_eq!(check.verdict, Verdict::Pass, "{check:?}");
}

#[test]
fn the_cost_ratio_without_priced_requests_is_inconclusive() {
    let check = cost_check(&arm(2000, 0, 1000), &priced(2000, 2_000_000, 0));
    assert_eq!(check.verdict, Verdict::Inconclusive);
    assert_eq!(check.evidence, "no samples yet");
}

/// The excess-failures check of an evaluation, if the step has a budget.
fn harm(evaluation: &Evaluation) -> Option<&Check> {
    evaluation.checks.iter().find(|check| check.criterion == Criterion::MaxExcessFailures)
}

#[test]
fn a_set_harm_budget_fails_the_step_once_the_upper_bound_of_the_excess_passes_it() {
    let budgeted = |count: f64| step(Criteria::default().with(Criterion::MaxExcessFailures, count));
    let (candidate, control) = (arm(20_000, 400, 100), arm(20_000, 200, 100));
    // 200 excess failures, the upper bound above them: a budget of 150 is spent, whatever
    // the significance; one of 1,000 is not, and it does not hold a step it has not spent.
    let spent = evaluate_with(&budgeted(150.0), &candidate, &control, Duration::from_secs(600));
    let check = harm(&spent).expect("a set budget is checked");
    assert_eq!(check.verdict, Verdict::Fail, "{check:#?}");
    assert_eq!(check.candidate, Some(200.0));
    assert!(check.upper.is_some_and(|upper| upper > 200.0), "{check:#?}");
    assert_eq!(spent.verdict, Verdict::Fail);
    let within = evaluate_with(&budgeted(1000.0), &candidate, &control, Duration::from_secs(600));
    assert_eq!(within.verdict, Verdict::Pass, "{within:#?}");
}

#[test]
fn a_harm_budget_spends_none_of_the_error_probabilities() {
    let criteria = Criteria::default().with(Criterion::MaxErrorRateIncrease, 0.5);
    let alone = evaluate_with(&step(criteria.clone()), &arm(2000, 20, 100), &arm(2000, 20, 100), Duration::ZERO);
    let budgeted = step(criteria.with(Criterion::MaxExcessFailures, 100.0));
    let with = evaluate_with(&budgeted, &arm(2000, 20, 100), &arm(2000, 20, 100), Duration::ZERO);
    let alpha = |evaluation: &Evaluation| evaluation.checks[0].alpha_fail;
    assert_eq!(alpha(&alone), alpha(&with), "the increase test keeps its whole α");
}

#[test]
fn the_derived_budget_is_twice_the_margins_excess_over_the_requests_projected_to_max_duration() {
    let mut derived = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 0.5));
    assert!(
        harm(&evaluate_with(&derived, &arm(1000, 10, 100), &arm(1000, 10, 100), Duration::from_secs(60))).is_none(),
        "no max_duration, no horizon: no derived budget"
    );
    derived.max_duration = Some(Duration::from_secs(3600));
    // 6,000 requests in 10 minutes project to 36,000 by the hour: 2 × 0.5% of them is 360.
    let (candidate, control) = (arm(6000, 60, 100), arm(6000, 60, 100));
    let early = evaluate_with(&derived, &candidate, &control, Duration::from_secs(600));
    let check = harm(&early).expect("derived");
    assert_eq!(check.threshold, 360.0, "{check:#?}");
    assert_eq!(check.verdict, Verdict::Pass, "a healthy candidate's bound is far inside it: {check:#?}");
    assert!(check.evidence.contains("2 × 0.5pp of 36000 requests projected to max_duration 1h"), "{}", check.evidence);
    // The same evidence with the step near its end: the budget is 2 × 0.5% of ~6,000.
    let late = evaluate_with(&derived, &arm(6000, 150, 100), &control, Duration::from_secs(3500));
    assert_eq!(harm(&late).map(|check| check.verdict), Some(Verdict::Fail), "{late:#?}");
}

#[test]
fn a_derived_budget_does_not_fail_a_healthy_candidate_before_the_step_has_its_requests() {
    // The demo's first step at 1% on a busy machine: 57 candidate requests after 14 s of a
    // 3-minute step, no failure on either arm. The always-valid bound of so few requests
    // passes the projected budget, which says how little was seen, not any harm.
    let mut derived = step(Criteria::default().with(Criterion::MaxErrorRateIncrease, 2.0));
    (derived.max_duration, derived.min_requests) = (Some(Duration::from_secs(180)), 200);
    let early = evaluate_with(&derived, &arm(57, 0, 100), &arm(61, 0, 100), Duration::from_secs(14));
    let check = harm(&early).expect("derived");
    assert!(check.upper > Some(check.threshold), "the bound is wider than the budget: {check:#?}");
    assert_eq!(check.verdict, Verdict::Inconclusive, "{check:#?}");
    assert_ne!(early.verdict, Verdict::Fail, "{early:#?}");
    // Once the step has its requests the budget binds: the same healthy candidate passes.
    let judged = evaluate_with(&derived, &arm(400, 0, 100), &arm(400, 0, 100), Duration::from_secs(90));
    assert_eq!(harm(&judged).map(|check| check.verdict), Some(Verdict::Pass), "{judged:#?}");
    // A set budget binds from the first request.
    let set = step(Criteria::default().with(Criterion::MaxExcessFailures, 5.0));
    let spent = evaluate_with(&set, &arm(57, 20, 100), &arm(61, 0, 100), Duration::from_secs(14));
    assert_eq!(harm(&spent).map(|check| check.verdict), Some(Verdict::Fail), "{spent:#?}");
}

#[test]
fn a_shadow_step_exposes_no_user_and_has_no_budget() {
    let mut shadow = step(Criteria::default().with(Criterion::MaxExcessFailures, 1.0));
    shadow.weight_bp = 0;
    let evaluation = evaluate_shadow(&shadow, &arm(1000, 500, 100), &arm(1000, 0, 100), None);
    assert!(harm(&evaluation).is_none(), "{evaluation:#?}");
}

/// A shadow step's look after ten minutes: the mirrored answers against the primary's.
fn evaluate_shadow(
    step: &RolloutStep,
    candidate: &ArmSnapshot,
    control: &ArmSnapshot,
    agreement: Option<&cutover_shadow::AgreementSnapshot>,
) -> Evaluation {
    evaluate(&Inputs {
        step,
        elapsed: Duration::from_secs(600),
        candidate,
        control,
        control_kind: ControlKind::ShadowPair,
        weight_bp: 0,
        agreement,
    })
}

/// Mirrored pairs from `users` sticky users with `pairs` pairs each, the first `disagreeing`
/// users disagreeing on the outcome of every pair and the others on none; `keyed: false`
/// records the same pairs without their users.
fn mirrored(users: u64, pairs: u64, disagreeing: u64, keyed: bool) -> cutover_shadow::AgreementSnapshot {
    let agreement = cutover_shadow::Agreement::default();
    for user in 0..users {
        let mut judged = cutover_shadow::Judged::default();
        judged.verdicts[cutover_model::Dimension::Outcome as usize] = Some(user >= disagreeing);
        for _ in 0..pairs {
            agreement.record(keyed.then_some(user << 32), (true, true), &judged, None);
        }
    }
    agreement.snapshot()
}

#[test]
fn shadow_agreement_counts_a_users_correlated_pairs_as_one_unit_of_evidence() {
    let mut shadow = step(Criteria::default().with(Criterion::MinShadowAgreement, 90.0));
    (shadow.weight_bp, shadow.shadow) = (0, 1.0);
    let judge = |agreement: &cutover_shadow::AgreementSnapshot| {
        let evaluation = evaluate_shadow(&shadow, &arm(2000, 0, 100), &arm(2000, 0, 100), Some(agreement));
        evaluation.checks.into_iter().find(|check| check.criterion == Criterion::MinShadowAgreement).unwrap()
    };
    // 40 users of 50 pairs, 2 of them disagreeing on every pair: 95% agreement. As 2,000
    // independent pairs that passes 90%; as the 40 users they are, it cannot yet.
    let independent = judge(&mirrored(40, 50, 2, false));
    assert_eq!(independent.verdict, Verdict::Pass, "{independent:#?}");
    let clustered = judge(&mirrored(40, 50, 2, true));
    assert_eq!(clustered.verdict, Verdict::Inconclusive, "{clustered:#?}");
    assert!(clustered.evidence.contains("design effect"), "{}", clustered.evidence);
    // One pair per user is the independent case again.
    assert_eq!(judge(&mirrored(2000, 1, 100, true)).verdict, Verdict::Pass);
}

/// An arm of successful requests, `count` of them taking each `ms`.
fn timed(latencies: &[(u64, u64)]) -> ArmSnapshot {
    let mut latency = vec![0; BUCKETS];
    for &(count, ms) in latencies {
        latency[bucket_of(Duration::from_millis(ms))] += count;
    }
    ArmSnapshot {
        ok: latencies.iter().map(|(count, _)| count).sum(),
        latency: Histogram(latency),
        ..ArmSnapshot::default()
    }
}

/// The slow-request checks of an evaluation, one per latency criterion with a budget.
fn slow(evaluation: &Evaluation) -> Vec<&Check> {
    evaluation.checks.iter().filter(|check| check.criterion == Criterion::MaxExcessSlowRequests).collect()
}

#[test]
fn a_set_slow_request_budget_fails_once_the_upper_bound_of_the_excess_slow_requests_passes_it() {
    let budgeted = |count: f64| {
        step(Criteria::default().with(Criterion::MaxLatencyP95Ratio, 1.2).with(Criterion::MaxExcessSlowRequests, count))
    };
    // The control's p95 is 100 ms, so 1.2× tolerates 120 ms: 5% of the control is slower,
    // 20% of the candidate: 10,000 × 15% = 1,500 requests slower than tolerated.
    let control = timed(&[(9_500, 100), (500, 200)]);
    let candidate = timed(&[(8_000, 100), (2_000, 200)]);
    let spent = evaluate_with(&budgeted(500.0), &candidate, &control, Duration::from_secs(600));
    let check = *slow(&spent).first().expect("a set budget is checked");
    assert_eq!(check.verdict, Verdict::Fail, "{check:#?}");
    assert_eq!(check.dimension.as_deref(), Some("p95"));
    assert!((check.candidate.unwrap() - 1_500.0).abs() < 1e-6, "{check:#?}");
    assert!(check.evidence.contains("slower than 1.2 × the control's p95 (120 ms)"), "{}", check.evidence);
    let within = evaluate_with(&budgeted(5_000.0), &candidate, &control, Duration::from_secs(600));
    assert_eq!(slow(&within)[0].verdict, Verdict::Pass, "{within:#?}");
    let same = evaluate_with(&budgeted(500.0), &control, &control, Duration::from_secs(600));
    assert_eq!(slow(&same)[0].verdict, Verdict::Pass, "no excess, nothing spent: {same:#?}");
}

#[test]
fn the_derived_slow_budget_is_twice_what_a_candidate_at_the_limit_would_add_over_the_projected_requests() {
    let mut derived = step(Criteria::default().with(Criterion::MaxLatencyP95Ratio, 1.2));
    let control = timed(&[(5_820, 100), (180, 500)]);
    assert!(
        slow(&evaluate_with(&derived, &control, &control, Duration::from_secs(600))).is_empty(),
        "no max_duration, no horizon: no derived budget"
    );
    derived.max_duration = Some(Duration::from_secs(3600));
    // 3% of the control is slower than 1.2 × its p95, so a candidate exactly at the limit
    // (5% slower) adds 2 pp: the budget is 2 × 2% of the 36,000 requests projected.
    let check = slow(&evaluate_with(&derived, &control, &control, Duration::from_secs(600)))[0].clone();
    assert_eq!(check.threshold, 1_440.0, "{check:#?}");
    assert!(check.evidence.contains("2 × 2pp of 36000 requests projected to max_duration 1h"), "{}", check.evidence);
    assert_eq!(check.verdict, Verdict::Pass);
    assert_eq!(check.alpha_fail, 0.0, "a bound spends none of the step's α");
}

#[test]
fn each_latency_criterion_bounding_slowness_gets_its_own_slow_budget_and_a_shadow_step_none() {
    let criteria = Criteria::default()
        .with(Criterion::MaxLatencyP50Ratio, 1.2)
        .with(Criterion::MaxLatencyP95Ratio, 1.5)
        .with(Criterion::MinLatencyImprovement, 10.0)
        .with(Criterion::MaxExcessSlowRequests, 100.0);
    let (candidate, control) = (timed(&[(1_000, 100)]), timed(&[(1_000, 100)]));
    let evaluation = evaluate_with(&step(criteria.clone()), &candidate, &control, Duration::from_secs(600));
    let guarded: Vec<_> = slow(&evaluation).iter().map(|check| check.dimension.as_deref()).collect();
    assert_eq!(guarded, [Some("p50"), Some("p95")], "a required improvement harms no one when unmet");
    let mut shadow = step(criteria);
    shadow.weight_bp = 0;
    assert!(slow(&evaluate_shadow(&shadow, &candidate, &control, None)).is_empty());
}
