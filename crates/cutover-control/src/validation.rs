//! The validation gate (`require_validation = true` in `[routes.rollout]`): where a
//! route's validation of its candidate stands, and whether it holds a pending rollout.
//!
//! The gateway runs the `cutover validate` suite itself (`rollout/gate.rs`) when it
//! starts with the route pending, and on `cutover rollout retry`; the result is recorded
//! as a `validation_passed` / `validation_failed` event whose reason carries the table.
//! The standing is kept in memory only: a restart validates again before starting.

use cutover_config::RolloutPlan;
use cutover_model::view::{ValidationState, ValidationView};

use cutover_model::{Phase, RouteState};

/// A route's validation of its candidate.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Validation {
    /// None asked for yet.
    #[default]
    NotRun,
    /// Asked for at `since_ms`, not finished.
    Running { since_ms: i64 },
    /// Finished at `at_ms`; `summary` is the table's verdict line.
    Done { passed: bool, at_ms: i64, summary: String },
}

impl Validation {
    pub fn passed(&self) -> bool {
        matches!(self, Validation::Done { passed: true, .. })
    }

    /// Why a pending rollout may not start yet, if the plan requires a validation that
    /// has not passed. Only `pending` is held: a rollout already under way was started
    /// by a passing validation, or by an operator's promote.
    pub fn hold(&self, plan: &RolloutPlan, state: &RouteState) -> Option<String> {
        if !plan.require_validation || state.phase != Phase::Pending || self.passed() {
            return None;
        }
        Some(match self {
            Validation::NotRun => {
                "held: waiting for a validation of the candidate; `cutover rollout retry` starts one".to_owned()
            }
            Validation::Running { .. } => "held: the candidate's validation is running".to_owned(),
            Validation::Done { summary, .. } => {
                format!(
                    "held: the candidate's validation did not pass ({summary}); `cutover rollout retry` runs it again"
                )
            }
        })
    }

    /// The view's `validation` object.
    pub fn to_view(&self, plan: Option<&RolloutPlan>, state: &RouteState) -> ValidationView {
        let held = plan.and_then(|plan| self.hold(plan, state));
        let required = plan.is_some_and(|plan| plan.require_validation);
        let view = |state| ValidationView { required, state, since: None, at: None, summary: None, held };
        match self {
            Validation::NotRun => view(ValidationState::NotRun),
            Validation::Running { since_ms } => {
                ValidationView { since: Some(*since_ms), ..view(ValidationState::Running) }
            }
            Validation::Done { passed, at_ms, summary } => ValidationView {
                at: Some(*at_ms),
                summary: Some(summary.clone()),
                ..view(if *passed { ValidationState::Passed } else { ValidationState::Failed })
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_config::{OnFailure, OnUndecided};

    fn plan(require_validation: bool) -> RolloutPlan {
        RolloutPlan {
            interval: std::time::Duration::from_secs(1),
            failure_limit: 3,
            on_failure: OnFailure::Rollback,
            on_undecided: OnUndecided::Pause,
            dry_run: false,
            cooldown: std::time::Duration::ZERO,
            require_validation,
            steps: Vec::new(),
        }
    }

    #[test]
    fn only_a_pending_rollout_that_requires_validation_is_held_until_a_pass() {
        let pending = RouteState::initial("default", 0);
        let failed = Validation::Done { passed: false, at_ms: 1, summary: "2 checks failed".to_owned() };
        let passed = Validation::Done { passed: true, at_ms: 2, summary: "all passed".to_owned() };
        assert!(Validation::NotRun.hold(&plan(true), &pending).is_some());
        assert!(Validation::Running { since_ms: 0 }.hold(&plan(true), &pending).is_some());
        assert!(failed.hold(&plan(true), &pending).is_some_and(|held| held.contains("2 checks failed")));
        assert_eq!(passed.hold(&plan(true), &pending), None);
        assert_eq!(failed.hold(&plan(false), &pending), None);
        let running = RouteState { phase: Phase::Progressing, ..pending };
        assert_eq!(failed.hold(&plan(true), &running), None);
    }
}
