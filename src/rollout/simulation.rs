//! The controller's own error rates, measured by simulation of the analysis alone (no
//! network): how often a healthy candidate is rolled back, and how many requests it takes
//! to catch one whose error rate is double the primary's. `cargo test simulation --
//! --nocapture` prints the figures published in the README.

use std::time::Duration;

use fastrand::Rng;

use super::analysis::{ControlKind, Inputs, Verdict, evaluate};
use super::stats::ArmSnapshot;
use crate::config::{Criteria, Criterion, RolloutStep};

/// Requests per arm in one analysis interval (e.g. a 5% step of 4,000 requests a minute).
const PER_INTERVAL: u64 = 200;
const FAILURE_LIMIT: u32 = 3;
/// A stage that has neither passed nor failed after this many intervals is held.
const MAX_INTERVALS: u32 = 300;

#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Advanced { candidate_requests: u64 },
    RolledBack { candidate_requests: u64 },
    Held,
}

fn step() -> RolloutStep {
    RolloutStep {
        weight_bp: 500,
        shadow: 0.0,
        min_duration: Duration::ZERO,
        min_requests: 1000,
        min_users: 0,
        criteria: Criteria::default().with(Criterion::MaxErrorRate, 5.0).with(Criterion::MaxErrorRateIncrease, 0.5),
    }
}

/// One stage: both arms accumulate Bernoulli outcomes interval by interval, the analysis
/// looks after each, and the controller's rule (advance on pass, roll back after
/// `FAILURE_LIMIT` consecutive fails) decides.
fn run_stage(rng: &mut Rng, candidate_rate: f64, control_rate: f64) -> Ending {
    let step = step();
    let (mut candidate, mut control) = (ArmSnapshot::default(), ArmSnapshot::default());
    let mut failures_in_a_row = 0;
    for interval in 1..=MAX_INTERVALS {
        for (arm, rate) in [(&mut candidate, candidate_rate), (&mut control, control_rate)] {
            let errors = (0..PER_INTERVAL).filter(|_| rng.f64() < rate).count() as u64;
            arm.upstream_errors += errors;
            arm.ok += PER_INTERVAL - errors;
        }
        let inputs = Inputs {
            step: &step,
            elapsed: Duration::from_secs(60 * u64::from(interval)),
            candidate: &candidate,
            control: &control,
            control_kind: ControlKind::EqualSlice,
            weight_bp: step.weight_bp,
        };
        match evaluate(&inputs).verdict {
            Verdict::Pass => return Ending::Advanced { candidate_requests: candidate.requests() },
            Verdict::Fail => {
                failures_in_a_row += 1;
                if failures_in_a_row >= FAILURE_LIMIT {
                    return Ending::RolledBack { candidate_requests: candidate.requests() };
                }
            }
            Verdict::Inconclusive => failures_in_a_row = 0,
        }
    }
    Ending::Held
}

fn percentile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0)
}

#[test]
fn healthy_candidates_are_rarely_rolled_back_and_doubled_error_rates_are_caught() {
    let mut rng = Rng::with_seed(20261126);
    let stages = 1000;
    let healthy: Vec<Ending> = (0..stages).map(|_| run_stage(&mut rng, 0.01, 0.01)).collect();
    let false_rollbacks = healthy.iter().filter(|ending| matches!(ending, Ending::RolledBack { .. })).count();
    let mut to_pass: Vec<u64> = healthy
        .iter()
        .filter_map(|ending| match ending {
            Ending::Advanced { candidate_requests } => Some(*candidate_requests),
            _ => None,
        })
        .collect();
    let doubled: Vec<Ending> = (0..stages).map(|_| run_stage(&mut rng, 0.02, 0.01)).collect();
    let false_passes = doubled.iter().filter(|ending| matches!(ending, Ending::Advanced { .. })).count();
    let mut to_catch: Vec<u64> = doubled
        .iter()
        .filter_map(|ending| match ending {
            Ending::RolledBack { candidate_requests } => Some(*candidate_requests),
            _ => None,
        })
        .collect();
    let caught = to_catch.len();
    println!(
        "simulation: {stages} stages per case, {PER_INTERVAL} requests per arm per interval, errors ≤ primary + 0.5pp"
    );
    println!(
        "healthy (1% vs 1%): rolled back {false_rollbacks}/{stages} ({:.1}%); advanced {}/{stages}, median {} candidate requests (p90 {})",
        false_rollbacks as f64 / stages as f64 * 100.0,
        to_pass.len(),
        percentile(&mut to_pass, 0.5),
        percentile(&mut to_pass, 0.9)
    );
    println!(
        "doubled (2% vs 1%): caught {caught}/{stages}, wrongly advanced {false_passes}/{stages}; requests to catch: median {}, p90 {}",
        percentile(&mut to_catch, 0.5),
        percentile(&mut to_catch, 0.9)
    );
    assert!(false_rollbacks * 100 <= stages, "healthy candidates rolled back in {false_rollbacks} of {stages} stages");
    assert!(false_passes * 100 <= stages * 5, "a doubled error rate advanced in {false_passes} of {stages} stages");
    assert!(caught * 10 >= stages * 9, "a doubled error rate was caught in only {caught} of {stages} stages");
}
