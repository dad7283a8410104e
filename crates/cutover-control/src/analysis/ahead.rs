//! What a step can resolve, said before it runs: from the plan alone at its request gate
//! (`cutover check`: `min_requests` per arm, independent requests, an assumed 1% control),
//! and for the steps ahead, projected from the traffic of the step running now: the
//! route's requests per second (every request the primary served plus the candidate's)
//! times each later step's weight and its `max_duration` (else its `min_duration`) give
//! the requests per arm it will see; the primary's error rate and design effect stand for
//! both arms (a candidate as good as the primary). The smallest increase that step's
//! `max_error_rate_increase` check would then detect with 80% power says, before the step
//! starts, whether its margin can be decided at all, or whether it heads for
//! `on_undecided` (or its harm budget).

use std::time::Duration;

use cutover_config::{Config, RolloutStep};
use cutover_model::Criterion;

use super::alphas;
use crate::inference::rate_increase;
use cutover_live::stats::clusters::{Failure, RateEstimate};
use cutover_live::stats::{Arm, StepSnapshot};

/// A check resolves its margin when a candidate at this multiple of the margin would be
/// failed with 80% power: the detectable increase is always above the margin itself (the
/// fail boundary sits past it), so "resolves" means "not far above it".
pub const RESOLVING_MARGINS: f64 = 2.0;

/// Whether evidence that detects `detectable` resolves `margin` (`RESOLVING_MARGINS`).
pub fn resolves(margin: f64, detectable: f64) -> bool {
    detectable <= RESOLVING_MARGINS * margin
}

/// The control's error rate `cutover check` assumes when it says what a step can resolve
/// before any traffic was seen.
pub const ASSUMED_CONTROL_ERROR_RATE: f64 = 0.01;

/// The smallest increase (percentage points) that `step`'s `max_error_rate_increase`
/// check at `margin` would detect with 80% power with `requests` per arm, both failing at
/// `rate` with `design_effect`.
fn detectable_at(step: &RolloutStep, margin: f64, requests: u64, rate: f64, design_effect: f64) -> Option<f64> {
    let failures = (requests as f64 * rate).round() as u64;
    let arm = RateEstimate { failures, requests, design_effect };
    let excess = rate_increase(&arm, &arm, margin / 100.0, alphas(&step.criteria)).detectable?;
    Some(margin + excess * 100.0)
}

/// What a step's request gate resolves from the plan alone: its margin and what
/// `detectable_at` its `min_requests`, independent, at `ASSUMED_CONTROL_ERROR_RATE`.
/// `None` without `max_error_rate_increase` or without a gate.
pub fn resolution_at_gates(step: &RolloutStep) -> Option<(f64, f64)> {
    let margin = step.criteria.get(Criterion::MaxErrorRateIncrease)?;
    if step.min_requests == 0 {
        return None;
    }
    Some((margin, detectable_at(step, margin, step.min_requests, ASSUMED_CONTROL_ERROR_RATE, 1.0)?))
}

pub use cutover_model::evaluation::Ahead;

/// The steps after `current` that judge an error-rate increase, projected from
/// `snapshot` after `elapsed` of the current step; empty before there is traffic to
/// project from.
pub fn project(steps: &[RolloutStep], current: usize, snapshot: &StepSnapshot, elapsed: Duration) -> Vec<Ahead> {
    let primary = snapshot.arm(Arm::Primary);
    let served = primary.requests() + snapshot.arm(Arm::Candidate).requests();
    let seconds = elapsed.as_secs_f64();
    if served == 0 || seconds <= 0.0 || primary.requests() == 0 {
        return Vec::new();
    }
    let per_second = served as f64 / seconds;
    let rate = primary.rate(Failure::Upstream);
    steps
        .iter()
        .enumerate()
        .skip(current + 1)
        .filter_map(|(index, step)| {
            let margin = step.criteria.get(Criterion::MaxErrorRateIncrease)?;
            let horizon = step.max_duration.unwrap_or(step.min_duration);
            if step.weight_bp == 0 || horizon.is_zero() {
                return None;
            }
            // Both arms at the smaller one's size: the control is an equal slice up to 50% and
            // the rest of the primary above; at 100% it is the step before's primary, taken
            // as large as the candidate.
            let candidate = f64::from(step.weight_bp) / 10_000.0;
            let share = if step.weight_bp == 10_000 { candidate } else { candidate.min(1.0 - candidate) };
            let requests = (per_second * share * horizon.as_secs_f64()).max(1.0) as u64;
            let detectable = detectable_at(step, margin, requests, rate.rate(), rate.design_effect)?;
            Some(Ahead {
                step: index + 1,
                weight: f64::from(step.weight_bp) / 100.0,
                requests_per_arm: requests,
                horizon_seconds: horizon.as_secs(),
                margin,
                detectable,
                resolves: resolves(margin, detectable),
            })
        })
        .collect()
}

/// What each step of the config's plans can resolve at its gates, as `cutover check`
/// prints it: one line per step with `max_error_rate_increase`, marked as a warning when
/// its gates do not resolve its margin (such a step passes only with more traffic than its
/// gates ask for, or ends undecided).
pub fn plan_resolution(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    for route in config.routes.values() {
        let Some(plan) = route.rollout.as_ref() else { continue };
        for (index, step) in plan.steps.iter().enumerate() {
            let Some((margin, detectable)) = resolution_at_gates(step) else { continue };
            let below = !resolves(margin, detectable);
            lines.push(format!(
                "{}route {:?} step {}/{}: at its gates ({} requests per arm, independent, control at {}% errors) \
                 it detects an error-rate increase of {detectable:.2} pp with 80% power{}",
                if below { "warning: " } else { "" },
                route.name,
                index + 1,
                plan.steps.len(),
                step.min_requests,
                ASSUMED_CONTROL_ERROR_RATE * 100.0,
                if below {
                    format!(
                        "; more than {RESOLVING_MARGINS} × its margin {margin} pp: it needs more traffic than its \
                         gates to decide"
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_live::stats::{ArmSnapshot, SNAPSHOT_FORMAT};
    use cutover_model::Criteria;

    fn step(weight_bp: u32, max_duration: Option<Duration>, margin: Option<f64>) -> RolloutStep {
        let mut criteria = Criteria::default();
        criteria.set(Criterion::MaxErrorRateIncrease, margin);
        RolloutStep {
            weight_bp,
            shadow: 0.0,
            min_duration: Duration::from_secs(60),
            max_duration,
            min_requests: 100,
            min_users: 0,
            criteria,
        }
    }

    /// Ten minutes of a 5% step: the primary served 9,500 requests (1% failed), the
    /// candidate 500.
    fn ten_minutes() -> StepSnapshot {
        let mut arms = vec![ArmSnapshot::default(); 5];
        arms[Arm::Primary as usize] = ArmSnapshot { ok: 9405, upstream_errors: 95, ..ArmSnapshot::default() };
        arms[Arm::Candidate as usize] = ArmSnapshot { ok: 500, ..ArmSnapshot::default() };
        StepSnapshot { format: SNAPSHOT_FORMAT, arms, ..StepSnapshot::default() }
    }

    #[test]
    fn later_steps_are_projected_from_the_routes_traffic_at_their_weight_and_horizon() {
        let hour = Some(Duration::from_secs(3600));
        let steps = [
            step(500, hour, Some(0.5)),
            step(100, Some(Duration::from_secs(60)), Some(0.5)),
            step(2500, Some(Duration::from_secs(4 * 3600)), Some(0.5)),
            step(7500, hour, None),
        ];
        let ahead = project(&steps, 0, &ten_minutes(), Duration::from_secs(600));
        assert_eq!(ahead.iter().map(|ahead| ahead.step).collect::<Vec<_>>(), [2, 3], "only later steps with a margin");
        // 10,000 requests in 600 s: at 1% for a minute, 10 per arm cannot resolve 0.5 pp.
        assert_eq!(ahead[0].requests_per_arm, 10);
        assert!(!ahead[0].resolves && ahead[0].detectable > 1.0, "{:?}", ahead[0]);
        // At 25% for four hours, 60,000 per arm can.
        assert_eq!(ahead[1].requests_per_arm, 60_000);
        assert!(ahead[1].resolves && ahead[1].detectable <= 1.0, "{:?}", ahead[1]);
    }

    #[test]
    fn nothing_is_projected_before_there_is_traffic() {
        let steps = [step(500, None, Some(0.5)), step(2500, None, Some(0.5))];
        assert!(project(&steps, 0, &StepSnapshot::default(), Duration::from_secs(600)).is_empty());
        assert!(project(&steps, 0, &ten_minutes(), Duration::ZERO).is_empty());
    }
}
