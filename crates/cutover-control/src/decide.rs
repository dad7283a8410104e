//! The rollout's decisions, as pure functions: from a route's state, its plan, the step's
//! evidence and what happened (a tick of the driver, with or without an analysis, or an
//! operator's command) to the transition it calls for, if any, or the refusal of a
//! command. No I/O, no clock, no lock: the caller passes `now_ms` and applies the result
//! (`control.rs`), so every rule here is tested as a plain specification (`decide/tests.rs`).

use std::time::Duration;

use cutover_config::{OnFailure, OnUndecided, RolloutPlan, Route, percent_to_basis_points};
use cutover_model::{EventKind, Unit, duration::format_duration};

use super::analysis::{ControlKind, Evaluation, Inputs, Verdict, ahead, evaluate, hard_breach};
use super::{Command, ControlError};
use cutover_live::stats::{Arm, ArmSnapshot, StepSnapshot};
use cutover_model::{Phase, RouteState};

/// Who the controller's own events name as their actor.
pub const CONTROLLER: &str = "controller";

/// A change of a route's rollout, to be persisted with its event and then published.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub next: RouteState,
    pub kind: EventKind,
    pub actor: String,
    pub reason: String,
    pub baseline: BaselineChange,
}

/// What a transition does to the primary's baseline kept for a 100% step.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineChange {
    Keep,
    /// One step forward: the new step's (empty) evidence is saved with the baseline,
    /// replaced first by the given primary figures when the new step leaves the primary
    /// no traffic.
    /// (Boxed: an arm's evidence is large next to the other variant.)
    Advanced(Option<Box<ArmSnapshot>>),
}

/// The step's evidence at the moment of the decision.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub snapshot: &'a StepSnapshot,
    /// The primary's figures from the last step in which both arms were measured.
    pub baseline: Option<&'a ArmSnapshot>,
}

/// The outcome of one tick: the evaluation made (shown by the admin API) and the
/// transition it calls for.
#[derive(Debug, Default)]
pub struct TickDecision {
    pub evaluation: Option<Evaluation>,
    pub transition: Option<Transition>,
}

impl Transition {
    fn new(next: RouteState, kind: EventKind, actor: &str, reason: impl Into<String>) -> Transition {
        Transition { next, kind, actor: actor.to_owned(), reason: reason.into(), baseline: BaselineChange::Keep }
    }
}

/// How many times `on_failure = "previous"` may step back in one rollout: the next time
/// its failure limit is reached, it rolls back. A candidate that fails its step, passes the
/// one below and fails again would otherwise bounce between the two forever.
pub const MAX_STEP_BACKS: u32 = 3;

/// Whether the controller (not only an operator) moves this phase.
pub fn is_running(phase: Phase) -> bool {
    matches!(phase, Phase::Shadowing | Phase::Progressing)
}

/// At start-up: a running rollout whose plan no longer has its step at its weight (a plan
/// edited while running) is paused until an operator resumes or promotes.
pub fn reconcile(route: &Route, state: &RouteState) -> Option<Transition> {
    let step = route.rollout.as_ref().and_then(|plan| plan.steps.get(state.step as usize));
    if !is_running(state.phase) || step.is_some_and(|step| step.weight_bp == state.weight_bp) {
        return None;
    }
    let next = RouteState { phase: Phase::Paused, ..state.clone() };
    let reason = "the plan changed under a running step: paused until an operator resumes or promotes";
    Some(Transition::new(next, EventKind::PlanChanged, CONTROLLER, reason))
}

/// Whether the hard ceiling watches this state: whenever the candidate carries users'
/// traffic, whatever the phase (running, paused by hand or by a plan edit, a manual
/// weight, even promoted at 100%), and in a running shadow step, where it watches the
/// mirrored answers.
pub fn is_guarded(state: &RouteState) -> bool {
    state.weight_bp > 0 || is_running(state.phase)
}

/// The hard ceiling: a guarded rollout whose candidate is failing past it (≥ 50% errors
/// over ≥ 20 requests) is rolled back at once, with no analysis and no credibility test.
/// A dry run only records verdicts, so it never rolls back.
pub fn guard(state: &RouteState, dry_run: bool, evidence: Evidence<'_>, now_ms: i64) -> Option<Transition> {
    if dry_run || !is_guarded(state) {
        return None;
    }
    let (candidate, _, _) = compared_arms(state.weight_bp, evidence.snapshot, evidence.baseline);
    let breach = hard_breach(&candidate)?;
    Some(Transition::new(rolled_back(state, now_ms), EventKind::Rollback, CONTROLLER, breach))
}

/// One look at a route: the hard ceiling in every phase (`guard`); then a pending
/// rollout starts at the first analysis; a running one, with `analyse`, is evaluated and
/// moved by the verdict; and one that is not running but whose candidate still carries
/// users (paused, paused by a plan edit, a manual weight, promoted) keeps the fail side of
/// the analysis (`watch`). `state` is as of now: its `active_ms` is the step's running
/// time up to this look (`clock.rs`), which is what `min_duration` is judged by.
pub fn tick(
    state: &RouteState,
    plan: &RolloutPlan,
    evidence: Evidence<'_>,
    analyse: bool,
    now_ms: i64,
) -> TickDecision {
    let transition = |transition| TickDecision { evaluation: None, transition: Some(transition) };
    if let Some(rollback) = guard(state, plan.dry_run, evidence, now_ms) {
        return transition(rollback);
    }
    let running = match state.phase {
        Phase::Pending if analyse => {
            let first = RouteState { step_backs: 0, ..step_state(state, plan, 0, now_ms) };
            return transition(Transition::new(first, EventKind::Start, CONTROLLER, "rollout started"));
        }
        Phase::Shadowing | Phase::Progressing => true,
        _ if is_guarded(state) => false,
        _ => return TickDecision::default(),
    };
    // Beyond the plan (a plan edited under a paused rollout), its last step's criteria
    // still guard the candidate.
    let step = plan.steps.get(state.step as usize).or(if running { None } else { plan.steps.last() });
    let Some(step) = step else { return TickDecision::default() };
    if !analyse {
        return TickDecision::default();
    }
    let (candidate, control, control_kind) = compared_arms(state.weight_bp, evidence.snapshot, evidence.baseline);
    let inputs = Inputs {
        step,
        elapsed: Duration::from_millis(state.active_ms),
        candidate: &candidate,
        control: &control,
        control_kind,
        weight_bp: state.weight_bp,
        agreement: Some(&evidence.snapshot.agreement),
    };
    let mut evaluation = evaluate(&inputs);
    evaluation.held = if running { held(&evaluation, &inputs, state) } else { None };
    if running {
        evaluation.ahead = ahead::project(&plan.steps, state.step as usize, evidence.snapshot, inputs.elapsed);
    }
    let transition = if running {
        undecided(state, plan, evidence, &evaluation, &inputs, now_ms)
            .or_else(|| on_verdict(state, plan, evidence, &evaluation, now_ms))
    } else {
        watch(state, plan, &evaluation, now_ms)
    };
    TickDecision { evaluation: Some(evaluation), transition }
}

/// The fail side alone, for a candidate that carries users while no plan step is running:
/// failed checks are counted as in a running step and `failure_limit` of them in a row
/// roll back (never a step back: nothing runs to step back to); a pass moves nothing, it
/// only ends a run of failures. A dry run records the failures it would have acted on.
fn watch(state: &RouteState, plan: &RolloutPlan, evaluation: &Evaluation, now_ms: i64) -> Option<Transition> {
    let summary = summarize(evaluation);
    let failed = evaluation.verdict == Verdict::Fail;
    if plan.dry_run {
        return failed.then(|| Transition::new(state.clone(), EventKind::DryRunVerdict, CONTROLLER, summary));
    }
    if !failed {
        let next = RouteState { consecutive_failures: 0, ..state.clone() };
        return (state.consecutive_failures > 0)
            .then(|| Transition::new(next, EventKind::CheckInconclusive, CONTROLLER, summary));
    }
    let failures = state.consecutive_failures + 1;
    if failures < plan.failure_limit {
        let next = RouteState { consecutive_failures: failures, ..state.clone() };
        return Some(Transition::new(next, EventKind::CheckFailed, CONTROLLER, summary));
    }
    let reason = format!("{failures} consecutive failed checks while {}; last: {summary}", state.phase);
    Some(Transition::new(rolled_back(state, now_ms), EventKind::Rollback, CONTROLLER, reason))
}

/// The end of a running step that reached its `max_duration` with its evidence undecided
/// (an inconclusive verdict): what the plan's `on_undecided` says, as an `undecided`
/// event whose reason names what the evidence could not resolve. A dry run records
/// verdicts only and never ends a step.
fn undecided(
    state: &RouteState,
    plan: &RolloutPlan,
    evidence: Evidence<'_>,
    evaluation: &Evaluation,
    inputs: &Inputs<'_>,
    now_ms: i64,
) -> Option<Transition> {
    let max_duration = inputs.step.max_duration?;
    if plan.dry_run || evaluation.verdict != Verdict::Inconclusive || inputs.elapsed < max_duration {
        return None;
    }
    let reason = format!(
        "undecided after {} of step time (max_duration {}): {}; on_undecided = {:?}",
        format_duration(Duration::from_secs(inputs.elapsed.as_secs())),
        format_duration(max_duration),
        unresolved(evaluation, inputs),
        plan.on_undecided.as_str()
    );
    let kind = EventKind::Undecided;
    Some(match plan.on_undecided {
        OnUndecided::Pause => {
            let next = RouteState { phase: Phase::Paused, consecutive_failures: 0, ..state.clone() };
            Transition::new(next, kind, CONTROLLER, format!("{reason}: paused until an operator acts"))
        }
        OnUndecided::Rollback => Transition::new(rolled_back(state, now_ms), kind, CONTROLLER, reason),
        OnUndecided::Advance => advance(state, plan, evidence, kind, CONTROLLER, reason, now_ms),
    })
}

/// What kept an evaluation from deciding, for the `undecided` event: each gate not met,
/// and each inconclusive criterion with the smallest difference the evidence so far would
/// resolve (`"300 users and 48,000 requests cannot resolve 0.5 pp: detectable increase
/// 3.1 pp"`) or, where no such figure exists, its bounds against its threshold.
fn unresolved(evaluation: &Evaluation, inputs: &Inputs<'_>) -> String {
    let users = inputs.candidate.users();
    let traffic = match users {
        0 => format!("{} requests", inputs.candidate.requests()),
        users => format!("{users} users and {} requests", inputs.candidate.requests()),
    };
    let gates = evaluation
        .gates
        .iter()
        .filter(|gate| !gate.met)
        .map(|gate| format!("{} {:.0} of {:.0}", gate.gate, gate.have, gate.need));
    let checks = evaluation.checks.iter().filter(|check| check.verdict == Verdict::Inconclusive).map(|check| {
        let name = match &check.dimension {
            Some(dimension) => format!("{}.{dimension}", check.criterion),
            None => check.criterion.to_string(),
        };
        let threshold = check.threshold;
        match (check.criterion.unit(), check.detectable) {
            (Unit::PointsOverPrimary, Some(detectable)) => {
                format!("{name}: {traffic} cannot resolve {threshold} pp: detectable increase {detectable:.2} pp")
            }
            (Unit::Percent, Some(detectable)) => {
                format!("{name}: {traffic} cannot resolve {threshold}%: detectable {detectable:.2}%")
            }
            _ => match (check.lower, check.upper) {
                (Some(lower), Some(upper)) => {
                    format!("{name}: bounds {lower:.3} to {upper:.3} still straddle {threshold}")
                }
                _ => format!("{name}: {}", check.evidence),
            },
        }
    });
    let missing: Vec<String> = gates.chain(checks).collect();
    if missing.is_empty() { "no criterion decided".to_owned() } else { missing.join("; ") }
}

/// Why an inconclusive look holds the step, and for how long it has: said outright when
/// a side of the comparison has no traffic at all, which no amount of waiting fixes.
fn held(evaluation: &Evaluation, inputs: &Inputs<'_>, state: &RouteState) -> Option<String> {
    if evaluation.verdict != Verdict::Inconclusive {
        return None;
    }
    let [year, month, day, hour, minute, second] = cutover_model::utc_fields(state.step_started_at);
    let since = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC");
    let running = format_minutes(state.active_ms);
    let compares = inputs.step.criteria.iter().any(|(criterion, _)| criterion.compares());
    let reason = if compares && inputs.control.requests() == 0 {
        match inputs.control_kind {
            ControlKind::PreviousStep => {
                "no baseline: no earlier step measured the primary before the candidate took all traffic".to_owned()
            }
            ControlKind::ShadowPair => "no primary traffic to compare the mirrored answers with".to_owned(),
            ControlKind::EqualSlice | ControlKind::AllPrimary => "no control traffic".to_owned(),
        }
    } else if inputs.candidate.requests() == 0 {
        "no candidate traffic".to_owned()
    } else if let Some(gate) = evaluation.gates.iter().find(|gate| !gate.met) {
        let eta =
            gate.eta_seconds.map(|eta| format!(", about {} more at this rate", format_minutes((eta * 1000.0) as u64)));
        format!("{} {:.0} of {:.0}{}", gate.gate, gate.have, gate.need, eta.unwrap_or_default())
    } else {
        let open: Vec<String> = evaluation
            .checks
            .iter()
            .filter(|check| check.verdict == Verdict::Inconclusive)
            .map(|check| check.criterion.to_string())
            .collect();
        format!("the evidence does not decide {} yet", open.join(", "))
    };
    Some(format!("held: {reason} since {since} ({running} of step time)"))
}

/// Milliseconds as `"42 min"`, `"3.5 h"` or `"12 s"`, for the status.
fn format_minutes(ms: u64) -> String {
    let seconds = ms as f64 / 1000.0;
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// The transition an analysis' verdict calls for (the part of `tick` after the analysis).
pub(crate) fn on_verdict(
    state: &RouteState,
    plan: &RolloutPlan,
    evidence: Evidence<'_>,
    evaluation: &Evaluation,
    now_ms: i64,
) -> Option<Transition> {
    let summary = summarize(evaluation);
    let verdict = evaluation.verdict;
    if plan.dry_run {
        // A dry run records what it would have done, and never moves.
        let recorded = verdict != Verdict::Inconclusive;
        return recorded.then(|| Transition::new(state.clone(), EventKind::DryRunVerdict, CONTROLLER, summary));
    }
    match verdict {
        Verdict::Pass => Some(advance(state, plan, evidence, EventKind::Advance, CONTROLLER, summary, now_ms)),
        Verdict::Fail => {
            let failures = state.consecutive_failures + 1;
            if failures < plan.failure_limit {
                let next = RouteState { consecutive_failures: failures, ..state.clone() };
                return Some(Transition::new(next, EventKind::CheckFailed, CONTROLLER, summary));
            }
            let reason = format!("{failures} consecutive failed checks; last: {summary}");
            Some(match plan.on_failure {
                OnFailure::Previous if state.step > 0 && state.step_backs < MAX_STEP_BACKS => {
                    let back = step_state(state, plan, state.step as usize - 1, now_ms);
                    let next = RouteState { step_backs: state.step_backs + 1, ..back };
                    Transition::new(next, EventKind::StepBack, CONTROLLER, reason)
                }
                OnFailure::Previous if state.step > 0 => {
                    // Stepping back again would only bounce between two steps forever.
                    let reason = format!(
                        "{reason}; already stepped back {} times in this rollout (the limit): rolled back instead",
                        state.step_backs
                    );
                    Transition::new(rolled_back(state, now_ms), EventKind::Rollback, CONTROLLER, reason)
                }
                _ => Transition::new(rolled_back(state, now_ms), EventKind::Rollback, CONTROLLER, reason),
            })
        }
        // "Consecutive" means in a row: an interval without a credible breach ends the run.
        Verdict::Inconclusive if state.consecutive_failures > 0 => {
            let next = RouteState { consecutive_failures: 0, ..state.clone() };
            Some(Transition::new(next, EventKind::CheckInconclusive, CONTROLLER, summary))
        }
        Verdict::Inconclusive => None,
    }
}

/// An operator's command: the transition it makes, or why the current phase refuses it.
pub fn command(
    route: &Route,
    state: &RouteState,
    evidence: Evidence<'_>,
    command: Command,
    actor: &str,
    now_ms: i64,
) -> Result<Transition, ControlError> {
    let name = &route.name;
    let phase = state.phase;
    let conflict = |what: &str| ControlError::Conflict(format!("cannot {what} route {name:?}: its rollout is {phase}"));
    // A manual weight needs no plan; every other command does.
    let plan = match command {
        Command::SetWeight(percent) => return set_weight(route, state, percent, actor),
        _ => route.rollout.as_ref().ok_or_else(|| ControlError::NoPlan(name.clone()))?,
    };
    let kind = command.kind();
    let by = format!("{kind} by {actor}");
    let to = |next: RouteState| Ok(Transition::new(next, kind, actor, by.clone()));
    match command {
        Command::Pause if is_running(phase) => to(RouteState { phase: Phase::Paused, ..state.clone() }),
        Command::Pause => Err(conflict("pause")),
        Command::Resume if matches!(phase, Phase::Paused | Phase::Pending) => {
            let step = (state.step as usize).min(plan.steps.len() - 1);
            let restart = step_state(state, plan, step, now_ms);
            // The step goes on with its evidence and its running time (the pause not in
            // it); a manual weight is undone.
            if phase == Phase::Paused {
                to(RouteState { step_started_at: state.step_started_at, active_ms: state.active_ms, ..restart })
            } else {
                to(restart)
            }
        }
        Command::Resume => Err(conflict("resume")),
        Command::Promote if phase == Phase::Pending => to(step_state(state, plan, 0, now_ms)),
        Command::Promote if is_running(phase) || phase == Phase::Paused => {
            Ok(advance(state, plan, evidence, kind, actor, by.clone(), now_ms))
        }
        Command::Promote => Err(conflict("promote")),
        Command::PromoteFull if phase != Phase::Promoted => to(promoted(state, plan, now_ms)),
        Command::PromoteFull => Err(conflict("promote")),
        Command::Abort if phase != Phase::RolledBack => to(rolled_back(state, now_ms)),
        Command::Abort => Err(conflict("abort")),
        Command::Retry if phase == Phase::RolledBack => {
            let since = Duration::from_millis((now_ms - state.step_started_at).max(0) as u64);
            if since < plan.cooldown {
                let wait = (plan.cooldown - since).as_secs();
                return Err(ControlError::Conflict(format!(
                    "route {name:?} rolled back {}s ago; retry is possible in {wait}s",
                    since.as_secs()
                )));
            }
            if plan.require_validation {
                // Back to pending: the gate starts the first step once a new validation passes.
                return to(RouteState { phase: Phase::Pending, step_backs: 0, ..rolled_back(state, now_ms) });
            }
            to(RouteState { step_backs: 0, ..step_state(state, plan, 0, now_ms) })
        }
        // A pending rollout held by its validation gate: the validation runs again.
        Command::Retry if phase == Phase::Pending && plan.require_validation => to(state.clone()),
        Command::Retry => Err(conflict("retry")),
        Command::SetWeight(percent) => set_weight(route, state, percent, actor),
    }
}

/// A manual weight: the plan pauses at it until an operator resumes.
fn set_weight(route: &Route, state: &RouteState, percent: f64, actor: &str) -> Result<Transition, ControlError> {
    let weight_bp = percent_to_basis_points(percent).ok_or(ControlError::InvalidWeight(percent))?;
    if route.candidate.is_none() && weight_bp > 0 {
        return Err(ControlError::NoCandidate(route.name.clone()));
    }
    let next = RouteState { phase: Phase::Paused, weight_bp, consecutive_failures: 0, ..state.clone() };
    // Shown from basis points, not as typed: `-0` and `12.500000001` read `0%` and `12.5%`.
    let reason = format!("weight set by hand from {}% to {}%", percent_of(state.weight_bp), percent_of(weight_bp));
    Ok(Transition::new(next, EventKind::SetWeight, actor, reason))
}

/// Basis points as a percentage for people (`1250` → `12.5`).
pub fn percent_of(weight_bp: u32) -> f64 {
    f64::from(weight_bp) / 100.0
}

/// One step forward, or promoted past the last step. Entering a 100% step from a lower
/// weight keeps the primary's figures of this step as the baseline.
fn advance(
    state: &RouteState,
    plan: &RolloutPlan,
    evidence: Evidence<'_>,
    kind: EventKind,
    actor: &str,
    reason: String,
    now_ms: i64,
) -> Transition {
    let next_step = state.step as usize + 1;
    if next_step >= plan.steps.len() {
        return Transition::new(promoted(state, plan, now_ms), EventKind::Promoted, actor, reason);
    }
    let leaves_primary_nothing = plan.steps[next_step].weight_bp == 10_000 && state.weight_bp < 10_000;
    let baseline = leaves_primary_nothing.then(|| Box::new(evidence.snapshot.arm(Arm::Primary)));
    let next = step_state(state, plan, next_step, now_ms);
    Transition { baseline: BaselineChange::Advanced(baseline), ..Transition::new(next, kind, actor, reason) }
}

/// The state of starting step `step` of `plan` at `now_ms`.
pub fn step_state(state: &RouteState, plan: &RolloutPlan, step: usize, now_ms: i64) -> RouteState {
    let planned = &plan.steps[step];
    let phase = if planned.weight_bp == 0 && planned.shadow > 0.0 { Phase::Shadowing } else { Phase::Progressing };
    RouteState {
        route: state.route.clone(),
        phase,
        step: step as u32,
        weight_bp: planned.weight_bp,
        step_started_at: now_ms,
        consecutive_failures: 0,
        active_ms: 0,
        step_backs: state.step_backs,
    }
}

fn promoted(state: &RouteState, plan: &RolloutPlan, now_ms: i64) -> RouteState {
    let last = plan.steps.len().saturating_sub(1);
    RouteState { phase: Phase::Promoted, ..step_state(state, plan, last, now_ms) }
}

fn rolled_back(state: &RouteState, now_ms: i64) -> RouteState {
    RouteState {
        phase: Phase::RolledBack,
        weight_bp: 0,
        consecutive_failures: 0,
        step_started_at: now_ms,
        active_ms: 0,
        ..state.clone()
    }
}

/// The candidate and the control to compare at `weight_bp`, and what the control is.
fn compared_arms(
    weight_bp: u32,
    snapshot: &StepSnapshot,
    baseline: Option<&ArmSnapshot>,
) -> (ArmSnapshot, ArmSnapshot, ControlKind) {
    match weight_bp {
        // Pairs: each mirrored request against the primary's answer to that same request.
        0 => (snapshot.arm(Arm::Shadow), snapshot.arm(Arm::ShadowPrimary), ControlKind::ShadowPair),
        10_000 => (snapshot.arm(Arm::Candidate), baseline.cloned().unwrap_or_default(), ControlKind::PreviousStep),
        w if w > 5_000 => (snapshot.arm(Arm::Candidate), snapshot.arm(Arm::Primary), ControlKind::AllPrimary),
        _ => (snapshot.arm(Arm::Candidate), snapshot.arm(Arm::Control), ControlKind::EqualSlice),
    }
}

/// One line for the event log: the verdict and each criterion that decided it.
fn summarize(evaluation: &Evaluation) -> String {
    let verdict = match evaluation.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    };
    let checks: Vec<String> = evaluation
        .checks
        .iter()
        .filter(|check| evaluation.verdict != Verdict::Fail || check.verdict == Verdict::Fail)
        .map(|check| {
            let value = check.candidate.map_or("-".to_owned(), |value| format!("{value:.2}"));
            let control = check.control.map(|control| format!(" vs control {control:.2}")).unwrap_or_default();
            let samples = (check.candidate_samples, check.control_samples);
            let name = match &check.dimension {
                Some(dimension) => format!("{}.{dimension}", check.criterion),
                None => check.criterion.to_string(),
            };
            format!(
                "{name} = {value}{control}, limit {} (n = {}/{}; {})",
                check.threshold, samples.0, samples.1, check.evidence
            )
        })
        .collect();
    if checks.is_empty() { verdict.to_owned() } else { format!("{verdict}: {}", checks.join("; ")) }
}

#[cfg(test)]
mod tests;
