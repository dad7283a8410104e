//! The bounds behind every verdict: valid at any number of looks, conservative about
//! buckets and small counts.

use std::time::Duration;

use super::*;
use crate::rollout::stats::histogram::{BUCKETS, bucket_of};

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
