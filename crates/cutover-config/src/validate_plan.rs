//! Validating `[routes.rollout]`: the interval and failure policy, and each step's weight,
//! shadow share, gates and criteria (a step's own values over the rollout's defaults).

use std::time::Duration;

use cutover_model::{Criteria, Criterion, duration::format_duration};

use super::raw::{RawCriteria, RawRollout};
use super::validate::Validator;
use super::{OnFailure, OnUndecided, RolloutPlan, RolloutStep, percent_to_basis_points};

/// An undecided step ends at this many times its `min_duration`, unless it says otherwise.
pub const MAX_DURATION_FACTOR: u32 = 4;

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
        let on_undecided = match raw.on_undecided.as_deref() {
            None | Some("pause") => OnUndecided::Pause,
            Some("rollback") => OnUndecided::Rollback,
            Some("advance") => OnUndecided::Advance,
            Some(other) => {
                self.problem(
                    format!("{path}.on_undecided"),
                    format!("{other:?} is not \"pause\", \"rollback\" or \"advance\""),
                );
                OnUndecided::Pause
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
            let min_duration =
                self.duration(step.min_duration.as_deref(), &format!("{step_path}.min_duration"), Duration::ZERO);
            let max_duration = self.max_duration(step.max_duration.as_deref(), min_duration, &step_path);
            let step = RolloutStep {
                weight_bp,
                shadow,
                min_duration,
                max_duration,
                min_requests: step.min_requests.unwrap_or(0),
                min_users: step.min_users.or(raw.min_users).unwrap_or(0),
                criteria,
            };
            // Such a step would pass at its first look, on no evidence at all.
            let gated = !step.min_duration.is_zero() || step.min_requests > 0 || step.min_users > 0;
            if !gated && step.criteria.iter().next().is_none() {
                self.problem(
                    step_path.clone(),
                    "neither criteria nor gates (min_duration, min_requests, min_users): it would pass at its \
                     first look on no evidence; give it at least one",
                );
            }
            self.comparable(&step, index, &step_path);
            steps.push(step);
        }
        Some(RolloutPlan {
            interval,
            failure_limit: raw.failure_limit.unwrap_or(3).max(1),
            on_failure,
            on_undecided,
            dry_run,
            cooldown: self.duration(raw.cooldown.as_deref(), &format!("{path}.cooldown"), Duration::from_secs(600)),
            require_validation: raw.require_validation.unwrap_or(false),
            steps,
        })
    }

    /// A step's `max_duration`: its own (no shorter than its `min_duration`, which it
    /// could never reach decided), else `MAX_DURATION_FACTOR` × its `min_duration`, else none.
    fn max_duration(&mut self, written: Option<&str>, min_duration: Duration, step_path: &str) -> Option<Duration> {
        let path = format!("{step_path}.max_duration");
        let Some(text) = written else {
            return (!min_duration.is_zero()).then(|| min_duration.saturating_mul(MAX_DURATION_FACTOR));
        };
        let max_duration = self.duration(Some(text), &path, Duration::ZERO);
        if max_duration.is_zero() {
            self.problem(path, "0 would end the step at its first look, undecided; leave it out for the default");
        } else if max_duration < min_duration {
            self.problem(
                path,
                format!(
                    "{text:?} is shorter than the step's min_duration ({}): the step could never end decided",
                    format_duration(min_duration)
                ),
            );
        }
        Some(max_duration)
    }

    /// Refuses a step that could never be judged, whatever traffic comes: one whose
    /// comparison has no control at all (a first step at 100%: no earlier step measured the
    /// primary), or one whose candidate gets no traffic (weight 0 and no shadow share) yet
    /// must meet criteria or request gates. Such a step would not fail: it would hold
    /// forever, "inconclusive", which is worse.
    fn comparable(&mut self, step: &RolloutStep, index: usize, step_path: &str) {
        let comparisons: Vec<String> = step
            .criteria
            .iter()
            .filter(|(criterion, _)| criterion.compares())
            .map(|(criterion, _)| criterion.to_string())
            .collect();
        if index == 0 && step.weight_bp == 10_000 && !comparisons.is_empty() {
            self.problem(
                format!("{step_path}.weight"),
                format!(
                    "100% at the first step leaves no primary traffic to compare the candidate with, and no \
                     earlier step measured one, so {} could never decide; start with a lower weight (or a \
                     shadow step), or judge this step by max_error_rate alone",
                    comparisons.join(", ")
                ),
            );
        }
        if step.criteria.judges_shadow() && step.shadow == 0.0 {
            self.problem(
                format!("{step_path}.min_shadow_agreement"),
                "this step mirrors nothing (no shadow share), so its shadow agreement could never be measured; \
                 give the step a shadow share or drop the criterion",
            );
        }
        let judged = step.criteria.iter().next().is_some() || step.min_requests > 0 || step.min_users > 0;
        if step.weight_bp == 0 && step.shadow == 0.0 && judged {
            self.problem(
                step_path.to_owned(),
                "weight 0 and no shadow share: the candidate gets no traffic in this step, so its criteria \
                 and request gates could never be met; give it a weight or a shadow share",
            );
        }
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
            } else if criterion.is_budget() && threshold < 1.0 {
                self.problem(
                    format!("{path}.{criterion}"),
                    format!("{threshold} would fail every step at its first look: a budget is at least 1 request"),
                );
            }
            criteria.set(criterion, Some(threshold));
        }
        // A step's own table replaces the rollout's, as a step's own value does.
        let table = if step.written.shadow_dimensions().next().is_some() { &step.written } else { &rollout.written };
        for (dimension, threshold) in table.shadow_dimensions() {
            if !(0.0..=100.0).contains(&threshold) {
                self.problem(
                    format!("{path}.min_shadow_agreement.{dimension}"),
                    format!("{threshold} is not between 0 and 100"),
                );
            }
            criteria.set_shadow_dimension(dimension, Some(threshold));
        }
        self.agreement_in_percent(&criteria, path);
        self.slow_budget_guards(&criteria, path);
        criteria
    }

    /// A slow-request budget bounds the slowness a latency criterion tolerates: without
    /// one it would guard nothing while the operator believes it does.
    fn slow_budget_guards(&mut self, criteria: &Criteria, path: &str) {
        if criteria.get(Criterion::MaxExcessSlowRequests).is_some() && criteria.latency_limits().next().is_none() {
            let limits: Vec<&str> = Criterion::ALL
                .iter()
                .filter(|criterion| criterion.latency_limit().is_some())
                .map(|c| c.key())
                .collect();
            self.problem(
                format!("{path}.{}", Criterion::MaxExcessSlowRequests),
                format!(
                    "bounds the slowness a latency criterion tolerates, and the step has none ({})",
                    limits.join(", ")
                ),
            );
        }
    }

    /// Agreement thresholds are percentages like every rate in the plan; a value below 1
    /// is almost surely a ratio (0.98 meant as 98%), which would pass nearly anything.
    fn agreement_in_percent(&mut self, criteria: &Criteria, path: &str) {
        let overall =
            criteria.get(Criterion::MinShadowAgreement).map(|at| (format!("{path}.min_shadow_agreement"), at));
        let dimensions = criteria
            .shadow_dimensions()
            .map(|(dimension, at)| (format!("{path}.min_shadow_agreement.{dimension}"), at));
        for (key, threshold) in overall.into_iter().chain(dimensions) {
            if threshold > 0.0 && threshold < 1.0 {
                self.problem(
                    key,
                    format!(
                        "{threshold} reads as {threshold}%: agreement is in percent, like every rate in the plan \
                         (write {} for {}%)",
                        threshold * 100.0,
                        threshold * 100.0
                    ),
                );
            }
        }
    }
}

/// Names every criterion this version cannot measure, so that the message stays true as
/// they become evaluated one by one.
fn not_evaluated_message(unevaluated: &[Criterion]) -> String {
    let subjects: Vec<&str> = unevaluated.iter().map(|criterion| criterion.subject()).collect();
    let verb = if subjects.len() == 1 { "is" } else { "are" };
    format!("not evaluated by this version yet ({} {verb} not measured): remove it", subjects.join(" and "))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{load_str, testing};

    /// What `cutover check` says of a plan with these steps (and these rollout keys).
    fn problems(keys: &str, steps: &str) -> Vec<String> {
        let plan = format!("[routes.rollout]\n{keys}\nsteps = [\n{steps}\n]");
        match load_str(&testing::two_upstreams_toml("", &plan), Path::new("."), |_| None) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_plan_starting_at_full_weight_with_comparisons_is_refused_naming_the_step() {
        let found = problems("max_error_rate_increase = 0.5", "{ weight = 100, min_requests = 100 },");
        assert!(
            found
                .iter()
                .any(|problem| problem.starts_with("routes[0].rollout.steps[0].weight: 100% at the first step")
                    && problem.contains("max_error_rate_increase could never decide")),
            "{found:#?}"
        );
        // Judged on its own error rate, or reached from a lower step, it can be compared.
        assert!(problems("", "{ weight = 100, min_requests = 100, max_error_rate = 1 },").is_empty());
        let stepped = "{ weight = 50, min_requests = 100 },\n{ weight = 100, min_requests = 100 },";
        assert!(problems("max_error_rate_increase = 0.5", stepped).is_empty());
    }

    #[test]
    fn a_step_that_gives_the_candidate_no_traffic_yet_must_be_judged_is_refused() {
        let found = problems("", "{ weight = 0, min_requests = 100 },\n{ weight = 10, min_requests = 100 },");
        assert!(
            found.iter().any(|problem| problem.starts_with("routes[0].rollout.steps[0]: weight 0 and no shadow share")),
            "{found:#?}"
        );
        let shadow = "{ weight = 0, shadow = 0.5, min_requests = 100 },\n{ weight = 10, min_requests = 100 },";
        assert!(problems("", shadow).is_empty());
    }
}
