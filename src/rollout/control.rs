//! The rollout controller: each route's phase, step and weight, moved by the analysis
//! every interval (advance on a pass, roll back after `failure_limit` consecutive fails,
//! hold when inconclusive) and by operator commands, each a compare-and-set on the phase.
//! Every change is persisted with its audit event in one transaction before it is
//! published to the request path, so what the gateway does is what the state file says.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::analysis::{ControlKind, Evaluation, Inputs, Verdict, evaluate, hard_breach};
use super::stats::{Arm, ArmSnapshot, StepSnapshot, StepStats};
use super::{Event, LiveState, Phase, RouteState, Store, StoreError, unix_millis};
use crate::config::{Config, OnFailure, PerRoute, RolloutPlan, Route, RouteId, percent_to_basis_points};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("route {0:?} has no candidate upstream to send traffic to")]
    NoCandidate(String),
    #[error("weight {0} is not a percentage between 0 and 100 in steps of 0.01")]
    InvalidWeight(f64),
    #[error("route {0:?} has no [routes.rollout] plan")]
    NoPlan(String),
    /// The command is not allowed in the current phase; answered with 409.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an operator can ask of a rollout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// One step forward, skipping the analysis.
    Promote,
    /// Straight to the last step, promoted.
    PromoteFull,
    /// Weight 0, rolled back.
    Abort,
    /// From `rolled_back`, after the cool-down: start again from the first step.
    Retry,
    /// A manual weight in percent; pauses the plan.
    SetWeight(f64),
}

impl Command {
    fn kind(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::PromoteFull => "promote_full",
            Command::Abort => "abort",
            Command::Retry => "retry",
            Command::SetWeight(_) => "set_weight",
        }
    }
}

/// One route's rollout as the controller holds it.
struct RouteRollout {
    state: RouteState,
    evaluation: Option<Evaluation>,
    /// The primary's evidence from the last step in which both arms were measured, for
    /// the comparisons of a 100% step.
    baseline: Option<ArmSnapshot>,
}

pub struct RolloutControl {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    live: Arc<LiveState>,
    store: Arc<Store>,
    /// A std mutex: taken only on blocking threads, for the length of one decision and
    /// its SQLite transaction, never across an await.
    routes: Mutex<PerRoute<RouteRollout>>,
    /// Events for the webhook notifiers; full means dropped (and logged), never waited on.
    events: Option<mpsc::Sender<Event>>,
}

const CONTROLLER: &str = "controller";

impl RolloutControl {
    /// Takes over the persisted states: restores each step's saved evidence, and pauses a
    /// running rollout whose plan no longer matches its step (a plan edited while running).
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        live: Arc<LiveState>,
        store: Arc<Store>,
        states: &PerRoute<RouteState>,
        events: Option<mpsc::Sender<Event>>,
    ) -> Result<RolloutControl, StoreError> {
        let routes = states.try_map(|id, state| {
            let (snapshot, baseline) = store.load_stats(state)?;
            if let Some(snapshot) = &snapshot {
                let stats = StepStats::default();
                stats.restore(snapshot);
                live.route(id).reset_stats(stats);
            }
            Ok::<_, StoreError>(RouteRollout { state: state.clone(), evaluation: None, baseline })
        })?;
        let control = RolloutControl { config, metrics, live, store, routes: Mutex::new(routes), events };
        control.reconcile_plans()?;
        Ok(control)
    }

    fn lock(&self) -> MutexGuard<'_, PerRoute<RouteRollout>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reconcile_plans(&self) -> Result<(), StoreError> {
        let mut routes = self.lock();
        for (index, rollout) in routes.iter_mut() {
            let route = &self.config.routes[index];
            self.live.route(index).set_shadow(self.shadow_share(route, &rollout.state));
            let running = matches!(rollout.state.phase, Phase::Shadowing | Phase::Progressing);
            let step = route.rollout.as_ref().and_then(|plan| plan.steps.get(rollout.state.step as usize));
            if running && step.is_none_or(|step| step.weight_bp != rollout.state.weight_bp) {
                let mut next = rollout.state.clone();
                next.phase = Phase::Paused;
                let reason = "the plan changed under a running step: paused until an operator resumes or promotes";
                self.apply(index, rollout, next, "plan_changed", CONTROLLER, reason)?;
            }
        }
        Ok(())
    }

    fn route_index(&self, name: &str) -> Result<RouteId, ControlError> {
        self.config.route_id(name).ok_or_else(|| ControlError::UnknownRoute(name.to_owned()))
    }

    /// The rollout interval of each route that has a plan.
    pub fn intervals(&self) -> Vec<(RouteId, Duration)> {
        let plans = self.config.routes.iter();
        plans.filter_map(|(id, route)| Some((id, route.rollout.as_ref()?.interval))).collect()
    }

    fn shadow_share(&self, route: &Route, state: &RouteState) -> f64 {
        let in_step = matches!(state.phase, Phase::Shadowing | Phase::Progressing | Phase::Paused);
        let step = route.rollout.as_ref().and_then(|plan| plan.steps.get(state.step as usize));
        match step {
            Some(step) if in_step => step.shadow,
            _ => route.shadow,
        }
    }

    /// Persists `next` with its event, then publishes it; a new step starts new evidence.
    fn apply(
        &self,
        index: RouteId,
        rollout: &mut RouteRollout,
        next: RouteState,
        kind: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Event, StoreError> {
        let event = self.store.transition(&next, rollout.state.phase, kind, actor, reason, unix_millis())?;
        let live = self.live.route(index);
        if next.step != rollout.state.step || next.step_started_at != rollout.state.step_started_at {
            live.reset_stats(StepStats::default());
            rollout.evaluation = None;
        }
        live.publish(&next);
        live.set_shadow(self.shadow_share(&self.config.routes[index], &next));
        tracing::info!(route = %next.route, kind, actor, phase = %next.phase, weight = f64::from(next.weight_bp) / 100.0, reason, "rollout event");
        rollout.state = next;
        self.metrics.route(index).record_transition(kind);
        if let Some(events) = &self.events
            && events.try_send(event.clone()).is_err()
        {
            tracing::warn!(kind, "notifier queue full: event not posted to webhooks");
        }
        Ok(event)
    }

    /// The state of starting step `step` of `plan` now.
    fn step_state(state: &RouteState, plan: &RolloutPlan, step: usize) -> RouteState {
        let planned = &plan.steps[step];
        let phase = if planned.weight_bp == 0 && planned.shadow > 0.0 { Phase::Shadowing } else { Phase::Progressing };
        RouteState {
            route: state.route.clone(),
            phase,
            step: step as u32,
            weight_bp: planned.weight_bp,
            step_started_at: unix_millis(),
            consecutive_failures: 0,
        }
    }

    fn promoted(state: &RouteState, plan: &RolloutPlan) -> RouteState {
        let last = plan.steps.len().saturating_sub(1);
        let mut next = Self::step_state(state, plan, last);
        next.phase = Phase::Promoted;
        next
    }

    fn rolled_back(state: &RouteState) -> RouteState {
        RouteState {
            phase: Phase::RolledBack,
            weight_bp: 0,
            consecutive_failures: 0,
            step_started_at: unix_millis(),
            ..state.clone()
        }
    }

    /// Moves to `next_step` (or promotes past the last), keeping the primary's evidence as
    /// the baseline when the next step leaves the primary no traffic.
    fn advance(
        &self,
        index: RouteId,
        rollout: &mut RouteRollout,
        plan: &RolloutPlan,
        snapshot: Option<&StepSnapshot>,
        (kind, actor): (&str, &str),
        reason: &str,
    ) -> Result<(), StoreError> {
        let next_step = rollout.state.step as usize + 1;
        if next_step >= plan.steps.len() {
            let next = Self::promoted(&rollout.state, plan);
            self.apply(index, rollout, next, "promoted", actor, reason)?;
            return Ok(());
        }
        if plan.steps[next_step].weight_bp == 10_000 && rollout.state.weight_bp < 10_000 {
            let primary =
                snapshot.cloned().unwrap_or_else(|| self.live.route(index).stats().snapshot()).arm(Arm::Primary);
            rollout.baseline = Some(primary);
        }
        let next = Self::step_state(&rollout.state, plan, next_step);
        self.apply(index, rollout, next, kind, actor, reason)?;
        self.store.save_stats(&rollout.state, &StepSnapshot::default(), rollout.baseline.as_ref())?;
        Ok(())
    }

    /// One look at a route: the hard ceiling always; with `analyse`, the full analysis
    /// and the transition it calls for. Blocking: call from a blocking thread.
    pub fn tick(&self, index: RouteId, analyse: bool) -> Result<(), ControlError> {
        let route = &self.config.routes[index];
        let Some(plan) = &route.rollout else { return Ok(()) };
        let mut routes = self.lock();
        let rollout = &mut routes[index];
        match rollout.state.phase {
            Phase::Pending if analyse => {
                let next = Self::step_state(&rollout.state, plan, 0);
                self.apply(index, rollout, next, "start", CONTROLLER, "rollout started")?;
                return Ok(());
            }
            Phase::Shadowing | Phase::Progressing => {}
            _ => return Ok(()),
        }
        let Some(step) = plan.steps.get(rollout.state.step as usize) else { return Ok(()) };
        let snapshot = self.live.route(index).stats().snapshot();
        let (candidate, control, control_kind) =
            compared_arms(rollout.state.weight_bp, &snapshot, rollout.baseline.as_ref());
        if let Some(breach) = hard_breach(&candidate).filter(|_| !plan.dry_run) {
            let next = Self::rolled_back(&rollout.state);
            self.apply(index, rollout, next, "rollback", CONTROLLER, &breach)?;
            return Ok(());
        }
        if !analyse {
            return Ok(());
        }
        self.store.save_stats(&rollout.state, &snapshot, rollout.baseline.as_ref())?;
        let elapsed_ms = (unix_millis() - rollout.state.step_started_at).max(0) as u64;
        let inputs = Inputs {
            step,
            elapsed: Duration::from_millis(elapsed_ms),
            candidate: &candidate,
            control: &control,
            control_kind,
            weight_bp: rollout.state.weight_bp,
        };
        let evaluation = evaluate(&inputs);
        let verdict = evaluation.verdict;
        let summary = summarize(&evaluation);
        rollout.evaluation = Some(evaluation);
        if plan.dry_run {
            if verdict != Verdict::Inconclusive {
                let same = rollout.state.clone();
                self.apply(index, rollout, same, "dry_run_verdict", CONTROLLER, &summary)?;
            }
            return Ok(());
        }
        match verdict {
            Verdict::Pass => self.advance(index, rollout, plan, Some(&snapshot), ("advance", CONTROLLER), &summary)?,
            Verdict::Fail => {
                let mut next = rollout.state.clone();
                next.consecutive_failures += 1;
                if next.consecutive_failures < plan.failure_limit {
                    self.apply(index, rollout, next, "check_failed", CONTROLLER, &summary)?;
                } else {
                    let reason = format!("{} consecutive failed checks; last: {summary}", next.consecutive_failures);
                    match plan.on_failure {
                        OnFailure::Previous if rollout.state.step > 0 => {
                            let next = Self::step_state(&rollout.state, plan, rollout.state.step as usize - 1);
                            self.apply(index, rollout, next, "step_back", CONTROLLER, &reason)?;
                        }
                        _ => {
                            let next = Self::rolled_back(&rollout.state);
                            self.apply(index, rollout, next, "rollback", CONTROLLER, &reason)?;
                        }
                    }
                }
            }
            Verdict::Inconclusive if rollout.state.consecutive_failures > 0 => {
                // "Consecutive" means in a row: an interval without a credible breach ends the run.
                let mut next = rollout.state.clone();
                next.consecutive_failures = 0;
                self.apply(index, rollout, next, "check_inconclusive", CONTROLLER, &summary)?;
            }
            Verdict::Inconclusive => {}
        }
        Ok(())
    }

    /// Carries out an operator's command, or refuses it with the reason.
    /// Blocking: call from a blocking thread.
    pub fn command(&self, route_name: &str, command: Command, actor: &str) -> Result<Value, ControlError> {
        let index = self.route_index(route_name)?;
        let route = &self.config.routes[index];
        let mut routes = self.lock();
        let rollout = &mut routes[index];
        let phase = rollout.state.phase;
        let conflict =
            |what: &str| ControlError::Conflict(format!("cannot {what} route {route_name:?}: its rollout is {phase}"));
        if let Command::SetWeight(percent) = command {
            let weight_bp = percent_to_basis_points(percent).ok_or(ControlError::InvalidWeight(percent))?;
            if route.candidate.is_none() && weight_bp > 0 {
                return Err(ControlError::NoCandidate(route_name.to_owned()));
            }
            let mut next = rollout.state.clone();
            next.phase = Phase::Paused;
            next.weight_bp = weight_bp;
            next.consecutive_failures = 0;
            let reason =
                format!("weight set by hand from {}% to {percent}%", f64::from(rollout.state.weight_bp) / 100.0);
            self.apply(index, rollout, next, "set_weight", actor, &reason)?;
            return Ok(self.view(index, rollout));
        }
        let plan = route.rollout.as_ref().ok_or_else(|| ControlError::NoPlan(route_name.to_owned()))?;
        let by = format!("{} by {actor}", command.kind());
        match command {
            Command::Pause if matches!(phase, Phase::Shadowing | Phase::Progressing) => {
                let next = RouteState { phase: Phase::Paused, ..rollout.state.clone() };
                self.apply(index, rollout, next, "pause", actor, &by)?;
            }
            Command::Pause => return Err(conflict("pause")),
            Command::Resume if matches!(phase, Phase::Paused | Phase::Pending) => {
                let step = (rollout.state.step as usize).min(plan.steps.len() - 1);
                let restart = Self::step_state(&rollout.state, plan, step);
                // The step goes on with its evidence and clock; a manual weight is undone.
                let next = if phase == Phase::Paused {
                    RouteState { step_started_at: rollout.state.step_started_at, ..restart }
                } else {
                    restart
                };
                self.apply(index, rollout, next, "resume", actor, &by)?;
            }
            Command::Resume => return Err(conflict("resume")),
            Command::Promote if phase == Phase::Pending => {
                let next = Self::step_state(&rollout.state, plan, 0);
                self.apply(index, rollout, next, "promote", actor, &by)?;
            }
            Command::Promote if matches!(phase, Phase::Shadowing | Phase::Progressing | Phase::Paused) => {
                self.advance(index, rollout, plan, None, ("promote", actor), &by)?;
            }
            Command::Promote => return Err(conflict("promote")),
            Command::PromoteFull if phase != Phase::Promoted => {
                let next = Self::promoted(&rollout.state, plan);
                self.apply(index, rollout, next, "promote_full", actor, &by)?;
            }
            Command::PromoteFull => return Err(conflict("promote")),
            Command::Abort if phase != Phase::RolledBack => {
                let next = Self::rolled_back(&rollout.state);
                self.apply(index, rollout, next, "abort", actor, &by)?;
            }
            Command::Abort => return Err(conflict("abort")),
            Command::Retry if phase == Phase::RolledBack => {
                let since = Duration::from_millis((unix_millis() - rollout.state.step_started_at).max(0) as u64);
                if since < plan.cooldown {
                    let wait = (plan.cooldown - since).as_secs();
                    return Err(ControlError::Conflict(format!(
                        "route {route_name:?} rolled back {}s ago; retry is possible in {wait}s",
                        since.as_secs()
                    )));
                }
                let next = Self::step_state(&rollout.state, plan, 0);
                self.apply(index, rollout, next, "retry", actor, &by)?;
            }
            Command::Retry => return Err(conflict("retry")),
            Command::SetWeight(_) => {}
        }
        Ok(self.view(index, rollout))
    }

    /// The JSON view of every route's rollout.
    pub fn list(&self) -> Value {
        let routes = self.lock();
        Value::Array(routes.iter().map(|(index, rollout)| self.view(index, rollout)).collect())
    }

    pub fn get(&self, route: &str) -> Result<Value, ControlError> {
        let index = self.route_index(route)?;
        Ok(self.view(index, &self.lock()[index]))
    }

    pub fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, ControlError> {
        if let Some(route) = route {
            self.route_index(route)?;
        }
        Ok(self.store.events(route, limit)?)
    }

    fn view(&self, index: RouteId, rollout: &RouteRollout) -> Value {
        let route = &self.config.routes[index];
        let state = &rollout.state;
        let snapshot = self.live.route(index).stats().snapshot();
        let arm = |arm: Arm| {
            let arm = snapshot.arm(arm);
            json!({"requests": arm.requests(), "ok": arm.ok, "client_errors": arm.client_errors,
                   "upstream_errors": arm.upstream_errors, "users": arm.users()})
        };
        let plan = route.rollout.as_ref();
        let events = self.store.events(Some(&route.name), 5).unwrap_or_default();
        json!({
            "route": route.name,
            "primary": self.config.upstreams[route.primary].name,
            "candidate": route.candidate.map(|candidate| &self.config.upstreams[candidate].name),
            "phase": state.phase.as_str(),
            "step": state.step,
            "steps": plan.map_or(0, |plan| plan.steps.len()),
            "weight": f64::from(state.weight_bp) / 100.0,
            "shadow": self.live.route(index).shadow(),
            "step_started_at": state.step_started_at,
            "seconds_in_step": (unix_millis() - state.step_started_at).max(0) / 1000,
            "consecutive_failures": state.consecutive_failures,
            "failure_limit": plan.map(|plan| plan.failure_limit),
            "dry_run": plan.is_some_and(|plan| plan.dry_run),
            "arms": {"candidate": arm(Arm::Candidate), "control": arm(Arm::Control), "primary": arm(Arm::Primary), "shadow": arm(Arm::Shadow)},
            "evaluation": rollout.evaluation,
            "events": events,
        })
    }
}

/// The candidate and the control to compare at `weight_bp`, and what the control is.
fn compared_arms(
    weight_bp: u32,
    snapshot: &StepSnapshot,
    baseline: Option<&ArmSnapshot>,
) -> (ArmSnapshot, ArmSnapshot, ControlKind) {
    match weight_bp {
        0 => (snapshot.arm(Arm::Shadow), snapshot.arm(Arm::Primary), ControlKind::ShadowPair),
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
            format!(
                "{} = {value}{control}, limit {} (n = {}/{}; {})",
                check.criterion, check.threshold, samples.0, samples.1, check.evidence
            )
        })
        .collect();
    if checks.is_empty() { verdict.to_owned() } else { format!("{verdict}: {}", checks.join("; ")) }
}
