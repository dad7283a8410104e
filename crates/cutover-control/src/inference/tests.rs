//! The bounds behind every verdict: valid at any number of looks, conservative about
//! buckets and small counts.

use std::time::Duration;

use super::*;
use cutover_live::stats::clusters::CELLS;
use cutover_live::stats::histogram::{BUCKETS, bucket_of};
use cutover_live::stats::spend::Spend;

fn independent(failures: u64, requests: u64) -> RateEstimate {
    RateEstimate { failures, requests, design_effect: 1.0 }
}

const ALPHAS: Alphas = Alphas { pass: 0.025, fail: 0.005 };

#[test]
fn zero_failures_bound_the_rate_like_the_rule_of_three_only_wider() {
    let tested = rate_ceiling(&independent(0, 1000), 0.05, ALPHAS);
    assert_eq!(tested.decision, Decision::Pass);
    assert_eq!(tested.lower, 0.0);
    assert!((0.003..0.02).contains(&tested.upper), "{tested:?}");
    let few = rate_ceiling(&independent(0, 20), 0.05, ALPHAS);
    assert_eq!(few.decision, Decision::Continue, "20 clean requests cannot show a rate under 5%");
}

#[test]
fn the_decision_agrees_with_the_bounds() {
    for (failures, requests) in [(0, 500), (30, 1000), (60, 1000), (90, 1000), (500, 5000)] {
        let tested = rate_ceiling(&independent(failures, requests), 0.05, ALPHAS);
        let expected = if tested.lower > 0.05 {
            Decision::Fail
        } else if tested.upper <= 0.05 {
            Decision::Pass
        } else {
            Decision::Continue
        };
        assert_eq!(tested.decision, expected, "{failures}/{requests}: {tested:?}");
    }
}

#[test]
fn a_clustered_rate_needs_more_evidence_than_independent_requests() {
    let independent_test = rate_increase(&independent(100, 10_000), &independent(100, 10_000), 0.005, ALPHAS);
    assert_eq!(independent_test.decision, Decision::Pass, "{independent_test:?}");
    let clustered = RateEstimate { failures: 100, requests: 10_000, design_effect: 4.0 };
    let clustered_test = rate_increase(&clustered, &clustered, 0.005, ALPHAS);
    assert_eq!(clustered_test.decision, Decision::Continue, "{clustered_test:?}");
    assert!(clustered_test.upper - clustered_test.lower > independent_test.upper - independent_test.lower);
}

#[test]
fn an_increase_past_the_margin_fails_and_noise_does_not() {
    let doubled = rate_increase(&independent(1000, 50_000), &independent(500, 50_000), 0.005, ALPHAS);
    assert_eq!(doubled.decision, Decision::Fail, "{doubled:?}");
    assert!(doubled.lower > 0.005 && doubled.lower < 0.01 && doubled.upper > 0.01);
    let noisy = rate_increase(&independent(3, 100), &independent(1, 100), 0.005, ALPHAS);
    assert_eq!(noisy.decision, Decision::Continue);
}

#[test]
fn quantile_bounds_take_the_outer_edges_of_their_buckets() {
    let mut counts = vec![0; BUCKETS];
    let bucket = bucket_of(Duration::from_millis(500));
    counts[bucket] = 100_000;
    let histogram = Histogram(counts);
    let (low, high) = quantile_bounds(&histogram, 0.5, 0.01, 10_000).unwrap();
    assert_eq!((low, high), (lower_edge_ms(bucket), upper_edge_ms(bucket)));
    let estimate = quantile_estimate(&histogram, 0.5).unwrap();
    assert!(low < estimate && estimate < high);
    assert_eq!(quantile_bounds(&Histogram::default(), 0.5, 0.01, 10_000), None);
}

#[test]
fn a_p95_of_few_samples_is_unbounded_above() {
    let mut counts = vec![0; BUCKETS];
    counts[bucket_of(Duration::from_millis(500))] = 30;
    let (low, high) = quantile_bounds(&Histogram(counts), 0.95, 0.01, 10_000).unwrap();
    assert!(low > 0.0 && high == f64::INFINITY, "{low} {high}");
}

/// An arm's cost evidence after `requests` successful requests whose cost is exponential
/// (coefficient of variation 1) around `mean` dollars, spread over cells in turn as the
/// recorder spreads unkeyed requests.
fn costs(rng: &mut fastrand::Rng, spend: &mut Spend, requests: u64, mean: f64) {
    let cells = spend.requests.len();
    for _ in 0..requests {
        let cost = -mean * (1.0 - rng.f64()).ln();
        let cell = rng.usize(..cells);
        spend.requests[cell] += 1;
        spend.nanos[cell] += (cost * 1e9).round() as u64;
    }
}

fn spend() -> Spend {
    Spend { requests: vec![0; CELLS], nanos: vec![0; CELLS], unknown: 0 }
}

fn cost_verdict(candidate_mean: f64, control_mean: f64, limit: f64, requests: u64) -> Tested {
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut candidate, mut control) = (spend(), spend());
    costs(&mut rng, &mut candidate, requests, candidate_mean);
    costs(&mut rng, &mut control, requests, control_mean);
    cost_ratio(&candidate.estimate(), &control.estimate(), limit, ALPHAS, 1000).unwrap()
}

#[test]
fn a_candidate_at_half_the_cost_passes_a_ratio_of_0_9() {
    let tested = cost_verdict(0.0005, 0.001, 0.9, 2000);
    assert_eq!(tested.decision, Decision::Pass, "{tested:?}");
    assert!(tested.lower < 0.5 && 0.5 < tested.upper && tested.upper <= 0.9, "{tested:?}");
}

#[test]
fn a_candidate_at_twice_the_cost_fails_a_ratio_of_0_9() {
    let tested = cost_verdict(0.002, 0.001, 0.9, 2000);
    assert_eq!(tested.decision, Decision::Fail, "{tested:?}");
    assert!(tested.lower > 0.9 && tested.lower < 2.0 && 2.0 < tested.upper, "{tested:?}");
}

#[test]
fn equal_costs_are_held_at_a_ratio_of_1_and_pass_a_looser_one() {
    let at_limit = cost_verdict(0.001, 0.001, 1.0, 5000);
    assert_eq!(at_limit.decision, Decision::Continue, "{at_limit:?}");
    assert!(at_limit.lower < 1.0 && 1.0 < at_limit.upper, "{at_limit:?}");
    assert_eq!(cost_verdict(0.001, 0.001, 1.3, 5000).decision, Decision::Pass);
}

#[test]
fn cost_bounds_need_a_spread_and_a_positive_cost_on_both_arms() {
    let mut one_cell = spend();
    one_cell.requests[0] = 10;
    one_cell.nanos[0] = 10_000;
    let mut rng = fastrand::Rng::with_seed(3);
    let mut healthy = spend();
    costs(&mut rng, &mut healthy, 100, 0.001);
    assert!(cost_ratio(&one_cell.estimate(), &healthy.estimate(), 1.0, ALPHAS, 1000).is_none());
    assert!(cost_ratio(&healthy.estimate(), &spend().estimate(), 1.0, ALPHAS, 1000).is_none());
}

/// The guarantee the controller rests on, for cost: with both arms at the same cost and
/// the limit at 1 (the worst case for both sides), looked at every 50 requests up to
/// 3,000 per arm, the bounds exclude the true ratio — a wrong pass or a wrong fail — in
/// at most about `α_pass + α_fail` of the runs.
#[test]
fn the_cost_ratio_bounds_hold_the_truth_over_repeated_looks() {
    let mut rng = fastrand::Rng::with_seed(29);
    let (runs, looks, every) = (200, 60, 50);
    let (mut wrong_pass, mut wrong_fail, mut fixed_wrong) = (0, 0, 0);
    for _ in 0..runs {
        let (mut candidate, mut control) = (spend(), spend());
        let (mut passed, mut failed, mut fixed) = (false, false, false);
        for _ in 0..looks {
            costs(&mut rng, &mut candidate, every, 0.001);
            costs(&mut rng, &mut control, every, 0.001);
            let (cand, ctrl) = (candidate.estimate(), control.estimate());
            let Some(tested) = cost_ratio(&cand, &ctrl, 1.0, ALPHAS, 1000) else { continue };
            passed |= tested.decision == Decision::Pass;
            failed |= tested.decision == Decision::Fail;
            // The same look at a fixed one-sided z of the pass level, for contrast.
            let log_ratio = (cand.mean / ctrl.mean).ln();
            let spread = (cand.variance / cand.mean.powi(2) + ctrl.variance / ctrl.mean.powi(2)).sqrt();
            fixed |= log_ratio + 1.96 * spread < 0.0;
        }
        wrong_pass += usize::from(passed);
        wrong_fail += usize::from(failed);
        fixed_wrong += usize::from(fixed);
    }
    // α_pass = 2.5% and α_fail = 0.5% of 200 runs: at most 5 and 1 expected.
    assert!(wrong_pass <= 8, "wrong passes in {wrong_pass} of {runs} runs");
    assert!(wrong_fail <= 3, "wrong fails in {wrong_fail} of {runs} runs");
    assert!(fixed_wrong > wrong_pass * 2 && fixed_wrong >= 10, "a fixed bound errs more: {fixed_wrong}");
}
