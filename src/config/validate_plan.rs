//! Validating `[routes.rollout]`: the interval and failure policy, and each step's weight,
//! shadow share, gates and criteria (a step's own values over the rollout's defaults).

use std::time::Duration;

use super::raw::{RawCriteria, RawRollout};
use super::validate::Validator;
use super::{Criteria, Criterion, OnFailure, RolloutPlan, RolloutStep, percent_to_basis_points};

impl Validator<'_> {
    pub(super) fn rollout(&mut self, raw: &RawRollout, path: &str) -> Option<RolloutPlan> {
        let interval = self.duration(raw.interval.as_deref(), &format!("{path}.interval"), Duration::from_secs(60));
        let on_failure = match raw.on_failure.as_deref() {
            None | Some("rollback") => OnFailure::Rollback,
            Some("previous") => OnFailure::Previous,
            Some(other) => {
                self.problem(format!("{path}.on_failure"), format!("{other:?} is not \"rollback\" or \"previous\""));
                OnFailure::Rollback
            }
        };
        let dry_run = match raw.mode.as_deref() {
            None | Some("active") => false,
            Some("dry-run") => true,
            Some(other) => {
                self.problem(format!("{path}.mode"), format!("{other:?} is not \"active\" or \"dry-run\""));
                false
            }
        };
        if raw.steps.is_empty() {
            self.problem(format!("{path}.steps"), "a rollout needs at least one step");
        }
        let mut steps = Vec::new();
        let mut previous_weight = None;
        for (index, step) in raw.steps.iter().enumerate() {
            let step_path = format!("{path}.steps[{index}]");
            let weight_bp = percent_to_basis_points(step.weight).unwrap_or_else(|| {
                self.problem(
                    format!("{step_path}.weight"),
                    format!("{} is not a percentage between 0 and 100 in steps of 0.01", step.weight),
                );
                0
            });
            if previous_weight.is_some_and(|previous| weight_bp < previous) {
                self.problem(format!("{step_path}.weight"), "weights must not decrease from one step to the next");
            }
            previous_weight = Some(weight_bp);
            let shadow = step.shadow.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&shadow) {
                self.problem(format!("{step_path}.shadow"), format!("{shadow} is not a share between 0.0 and 1.0"));
            }
            let criteria = self.criteria(&step.criteria, &raw.criteria, &step_path);
            let step = RolloutStep {
                weight_bp,
                shadow,
                min_duration: self.duration(
                    step.min_duration.as_deref(),
                    &format!("{step_path}.min_duration"),
                    Duration::ZERO,
                ),
                min_requests: step.min_requests.unwrap_or(0),
                min_users: step.min_users.or(raw.min_users).unwrap_or(0),
                criteria,
            };
            // Such a step would pass at its first look, on no evidence at all.
            let gated = !step.min_duration.is_zero() || step.min_requests > 0 || step.min_users > 0;
            if !gated && step.criteria.iter().next().is_none() {
                self.problem(
                    step_path,
                    "neither criteria nor gates (min_duration, min_requests, min_users): it would pass at its \
                     first look on no evidence; give it at least one",
                );
            }
            steps.push(step);
        }
        Some(RolloutPlan {
            interval,
            failure_limit: raw.failure_limit.unwrap_or(3).max(1),
            on_failure,
            dry_run,
            cooldown: self.duration(raw.cooldown.as_deref(), &format!("{path}.cooldown"), Duration::from_secs(600)),
            steps,
        })
    }

    /// A step's criteria: its own values, else the rollout's, else the criterion's default.
    pub(super) fn criteria(&mut self, step: &RawCriteria, rollout: &RawCriteria, path: &str) -> Criteria {
        let resolved = |criterion: Criterion| {
            step.written.get(criterion).or(rollout.written.get(criterion)).or(criterion.default_threshold())
        };
        // Refused rather than ignored: a criterion the operator believes is guarding the
        // rollout must be checked, or the plan must not run.
        let unevaluated: Vec<Criterion> =
            Criterion::ALL.iter().copied().filter(|criterion| !criterion.is_evaluated()).collect();
        for &criterion in &unevaluated {
            if resolved(criterion).is_some() {
                self.problem(format!("{path}.{criterion}"), not_evaluated_message(&unevaluated));
            }
        }
        let mut criteria = Criteria::default();
        for &criterion in Criterion::ALL {
            let Some(threshold) = resolved(criterion) else { continue };
            let limit = criterion.unit().limit();
            if !(0.0..=limit).contains(&threshold) {
                self.problem(format!("{path}.{criterion}"), format!("{threshold} is not between 0 and {limit}"));
            }
            criteria.set(criterion, Some(threshold));
        }
        criteria
    }
}

/// Names every criterion this version cannot measure, so that the message stays true as
/// they become evaluated one by one.
fn not_evaluated_message(unevaluated: &[Criterion]) -> String {
    let subjects: Vec<&str> = unevaluated.iter().map(|criterion| criterion.subject()).collect();
    let verb = if subjects.len() == 1 { "is" } else { "are" };
    format!("not evaluated by this version yet ({} {verb} not measured): remove it", subjects.join(" and "))
}
