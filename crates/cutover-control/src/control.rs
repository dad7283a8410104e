//! The rollout controller: holds each route's rollout behind a lock of its own (the route's
//! turn: one decision of that route at a time, never a lock shared with another route),
//! asks `decide` what a tick of the driver or an operator's command calls for, and carries
//! the answer out in one place (`apply`): persisted with its audit event in one
//! transaction first, then published to the request path (weight, shadow share, fresh
//! evidence for a new step) and to the admin view, then counted, logged and posted to the
//! notifiers. So what the
//! gateway does is what the state file says, with one exception: a transition that
//! reduces the candidate's exposure (a rollback, an abort, a step back, a lower manual
//! weight) takes effect even when the state file refuses it, and is saved on a later tick
//! (see `apply` and docs/architecture.md, Invariants). A failed write is logged with its
//! route and counted in `cutover_state_write_failures_total`.
//!
//! What the store is asked for a decision (the fleet's evidence, another instance's
//! changes) is read before the route's turn is taken; only the route's own writes happen
//! in its turn. So a slow database delays that route's decision alone: the admin view,
//! the request path and `acts` take no lock, and other routes' commands wait for no other
//! route's store call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cutover_config::{Config, PerRoute, Route, RouteId};
use cutover_metrics::Metrics;
use cutover_model::view::{FleetArms, RolloutView};
use cutover_model::{EventKind, unix_millis};
use tokio::sync::mpsc;

use super::analysis::Evaluation;
use super::clock::StepClock;
use super::decide::{self, BaselineChange, Evidence, Transition, percent_of};
use super::view::{self, Published, RECENT_EVENTS};
use super::{Command, ControlError, Validation};
use cutover_live::LiveState;
use cutover_live::stats::{ArmSnapshot, StepSnapshot, StepStats};
use cutover_model::{Phase, RouteState};
use cutover_state::{Authority, Event, StateStore, StoreError, Write};

/// One route's rollout as the controller holds it.
struct RouteRollout {
    /// As last published: a running step's `active_ms` is as of its segment's start, and
    /// `clock` adds the time since (`current`).
    state: RouteState,
    clock: StepClock,
    evaluation: Option<Evaluation>,
    /// The primary's evidence from the last step in which both arms were measured, for
    /// the comparisons of a 100% step.
    baseline: Option<ArmSnapshot>,
    /// The latest events, newest first, for the view (the state file has them all).
    recent: VecDeque<Event>,
    /// Transitions in effect that the state file has not taken yet, oldest first. Only
    /// exposure-reducing ones are published unsaved; saving them is retried every tick,
    /// and nothing else is written before they are.
    unsaved: VecDeque<Unsaved>,
    /// The validation of the candidate, for the `require_validation` gate (memory only).
    validation: Validation,
    /// In a fleet, on the leader: the counts of the evidence summed over the instances,
    /// as last judged (`view::arm_counts`).
    fleet_arms: Option<FleetArms>,
    /// The shadow share an operator set at run time, over the route's and the steps' own
    /// (persisted; `None`: the configuration's).
    shadow_override: Option<f64>,
}

/// A transition published before the state file took it, with what its event row needs.
struct Unsaved {
    from: Phase,
    next: RouteState,
    kind: EventKind,
    actor: String,
    reason: String,
    at_ms: i64,
}

impl RouteRollout {
    /// The state as of now, with the step's running time up to this instant: what every
    /// decision and every save of the evidence is given.
    fn current(&self) -> RouteState {
        self.clock.current(&self.state, Instant::now())
    }

    fn published(&self) -> Published {
        Published {
            clock: self.clock,
            state: self.state.clone(),
            evaluation: self.evaluation.clone(),
            events: self.recent.iter().cloned().collect(),
            unsaved: self.unsaved.len(),
            validation: self.validation.clone(),
            fleet_arms: self.fleet_arms,
        }
    }
}

pub struct RolloutControl {
    /// Swapped by a reload (`reload`), which then reconciles each route in its turn; a
    /// decision loads it after taking its route's turn, so a route is always decided with
    /// the plan it was (or is about to be) reconciled with.
    config: ArcSwap<Config>,
    metrics: Arc<Metrics>,
    live: Arc<LiveState>,
    store: Arc<dyn StateStore>,
    /// Each route's turn: a std mutex per route, taken only on blocking threads for the
    /// length of one decision of that route and its own writes, never across an await,
    /// never two at once.
    routes: PerRoute<Mutex<RouteRollout>>,
    /// What the admin view shows of each route, republished by every change in the
    /// route's turn, so that reading it takes neither a turn nor the state file.
    views: PerRoute<ArcSwap<Published>>,
    /// Events for the webhook notifiers; full means dropped (and logged), never waited on.
    events: Option<mpsc::Sender<Event>>,
    /// Where validations of a route's candidate are asked for (`attach_validator`).
    validator: OnceLock<mpsc::Sender<RouteId>>,
}

impl RolloutControl {
    /// Takes over the persisted states: restores each step's saved evidence and latest
    /// events, and pauses a running rollout whose plan no longer matches its step (a plan
    /// edited while running). Blocking: call from a blocking thread.
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        live: Arc<LiveState>,
        store: Arc<dyn StateStore>,
        states: &PerRoute<RouteState>,
        events: Option<mpsc::Sender<Event>>,
    ) -> Result<RolloutControl, ControlError> {
        let routes = states.try_map(|id, state| {
            let (snapshot, baseline) = store.load_stats(state)?;
            if let Some(snapshot) = &snapshot {
                let stats = StepStats::default();
                stats.restore(snapshot);
                live.route(id).reset_stats(stats);
            }
            let recent = store.events(Some(&state.route), RECENT_EVENTS as u32).unwrap_or_else(|error| {
                // The view shows no events until the next one; `/admin/events` names the row.
                tracing::warn!(route = %state.route, %error, "recent rollout events not readable");
                Vec::new()
            });
            live.route(id).set_undecided(undecided_since(state, &recent));
            Ok::<_, StoreError>(Mutex::new(RouteRollout {
                state: state.clone(),
                clock: StepClock::starting(state, Instant::now()),
                evaluation: None,
                baseline,
                recent: recent.into(),
                unsaved: VecDeque::new(),
                validation: Validation::NotRun,
                fleet_arms: None,
                shadow_override: store.shadow_share(&state.route)?,
            }))
        })?;
        let views = routes.map(|_, rollout| ArcSwap::from_pointee(hold(rollout).published()));
        let config = ArcSwap::new(config);
        let validator = OnceLock::new();
        let control = RolloutControl { config, metrics, live, store, routes, views, events, validator };
        control.reconcile_plans()?;
        Ok(control)
    }

    /// Route `id`'s turn: its rollout, for one decision and its writes.
    fn turn(&self, id: RouteId) -> MutexGuard<'_, RouteRollout> {
        hold(&self.routes[id])
    }

    /// Each route, in its turn, gets its shadow share from the configuration in force,
    /// and a running step whose plan changed is paused (`decide::reconcile`). Every route
    /// gets its look; the first failure is returned after (a pause the state file refused
    /// is tried again by the next tick).
    fn reconcile_plans(&self) -> Result<(), ControlError> {
        let mut first_failure = None;
        // In a fleet only the leader pauses an edited plan (its next tick does).
        let decides = self.leads();
        for (id, _) in self.routes.iter() {
            let mut rollout = self.turn(id);
            let rollout = &mut *rollout;
            let config = self.config.load_full();
            let route = &config.routes[id];
            self.live.route(id).set_shadow(rollout.shadow_override.unwrap_or(shadow_share(route, &rollout.state)));
            if decides
                && let Some(transition) = decide::reconcile(route, &rollout.current())
                && let Err(failure) = self.apply(id, rollout, transition, Authority::Controller, unix_millis())
            {
                first_failure.get_or_insert(failure);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Switches to a reloaded configuration with the same routes in the same order (the
    /// caller checks; route ids index every per-route table here), then reconciles each
    /// route in its turn with the same rule as a plan edit at start-up: a decision of a
    /// route already under way finishes with the plan it began with, and the route is
    /// reconciled right after it. Blocking: call from a blocking thread.
    pub fn reload(&self, config: Arc<Config>) -> Result<(), ControlError> {
        self.config.store(config);
        self.reconcile_plans()
    }

    /// Saves each planned route's evidence as it stands, so that a restart resumes every
    /// step from it instead of from the last interval's save. For the end of serving,
    /// once the listeners have drained. Blocking: call from a blocking thread.
    pub fn save_evidence(&self) -> Result<(), ControlError> {
        // In a fleet only the leader saves the step's evidence (each instance's own is
        // flushed by `fleet::Fleet`).
        if !self.leads() {
            return Ok(());
        }
        let config = self.config.load_full();
        for (id, route) in config.routes.iter() {
            if route.rollout.is_none() {
                continue;
            }
            let mut rollout = self.turn(id);
            let rollout = &mut *rollout;
            // Nothing is written before the transitions the state file still owes.
            self.flush(id, rollout)?;
            let snapshot = self.live.route(id).stats().snapshot();
            let written = self.store.save_stats(&rollout.current(), &snapshot, rollout.baseline.as_ref());
            self.written(id, "evidence", written)?;
        }
        Ok(())
    }

    /// The configuration the controller decides with.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    fn route_id(&self, name: &str) -> Result<RouteId, ControlError> {
        self.config.load().route_id(name).ok_or_else(|| ControlError::UnknownRoute(name.to_owned()))
    }

    /// The routes the driver looks at, with the analysis interval of those with a plan:
    /// every route with a plan, and every route with a candidate (a manual weight whose
    /// saving failed is retried on its ticks).
    pub fn watched(&self) -> Vec<(RouteId, Option<Duration>)> {
        let config = self.config.load();
        let routes = config.routes.iter();
        let watched = routes.filter(|(_, route)| route.rollout.is_some() || route.candidate.is_some());
        watched.map(|(id, route)| (id, route.rollout.as_ref().map(|plan| plan.interval))).collect()
    }

    /// The one place a transition takes effect: persisted with its event, then published
    /// (a new step starts new evidence), counted, logged and notified.
    ///
    /// The exception to "persisted first": when the state file refuses a transition that
    /// reduces the candidate's exposure, it is published anyway, kept in `unsaved` and
    /// saved by a later tick, and the caller still gets the error (an admin command answers
    /// 500 saying the change is in effect). A bad candidate must not keep its users
    /// because the disk is full; if the gateway dies before the write succeeds, it restarts
    /// from the file's older state, where the hard ceiling and the analysis apply again.
    fn apply(
        &self,
        id: RouteId,
        rollout: &mut RouteRollout,
        transition: Transition,
        authority: Authority,
        now_ms: i64,
    ) -> Result<(), ControlError> {
        let Transition { next, kind, actor, reason, baseline } = transition;
        let from = rollout.state.phase;
        let saved = self.flush(id, rollout).and_then(|()| {
            let write = Write { state: &next, from, kind, actor: &actor, reason: &reason, now_ms, authority };
            let written = self.store.record(write);
            self.written(id, kind.as_str(), written)
        });
        let event = match saved {
            Ok(event) => event,
            // In a fleet: the row changed since it was read (another gateway's command,
            // or the leader's decision). Nothing took effect; the caller may look again.
            Err(StoreError::Stale { route }) => {
                return Err(ControlError::Conflict(format!(
                    "route {route:?} was changed by another gateway of the fleet while this command was decided; \
                     look at its state again and retry"
                )));
            }
            Err(source) if reduces_exposure(&rollout.state, &next) => {
                let weight_percent = percent_of(next.weight_bp);
                let route = &next.route;
                tracing::error!(%route, %kind, weight = weight_percent, "in effect, not saved yet: retried every tick");
                rollout.unsaved.push_back(Unsaved {
                    from,
                    next: next.clone(),
                    kind,
                    actor: actor.clone(),
                    reason: reason.clone(),
                    at_ms: now_ms,
                });
                self.publish(id, rollout, next, kind, &actor, &reason);
                return Err(ControlError::Unsaved { kind, weight_percent, source });
            }
            Err(source) => return Err(source.into()),
        };
        self.publish(id, rollout, next, kind, &actor, &reason);
        self.recorded(id, rollout, event);
        if let BaselineChange::Advanced(primary) = baseline {
            if let Some(primary) = primary {
                rollout.baseline = Some(*primary);
            }
            // The new step's evidence starts empty; the baseline must survive a restart.
            let written = self.store.save_stats(&rollout.state, &StepSnapshot::default(), rollout.baseline.as_ref());
            self.written(id, "evidence", written)?;
        }
        Ok(())
    }

    /// Makes `next` the state the request path and the view see.
    fn publish(
        &self,
        id: RouteId,
        rollout: &mut RouteRollout,
        next: RouteState,
        kind: EventKind,
        actor: &str,
        reason: &str,
    ) {
        let live = self.live.route(id);
        if next.step != rollout.state.step || next.step_started_at != rollout.state.step_started_at {
            live.reset_stats(StepStats::default());
            rollout.evaluation = None;
        }
        live.publish(&next);
        live.set_undecided(kind.undecided_mark(next.phase == Phase::Paused, unix_millis(), live.undecided_since()));
        // `next` carries the step's running time up to the decision (or 0 for a new step):
        // a running step's next segment starts from it now.
        rollout.clock = StepClock::starting(&next, Instant::now());
        live.set_shadow(rollout.shadow_override.unwrap_or(shadow_share(&self.config.load().routes[id], &next)));
        let (route, phase, weight) = (&next.route, next.phase, percent_of(next.weight_bp));
        tracing::info!(%route, %kind, actor, %phase, weight, reason, "rollout event");
        rollout.state = next;
        self.views[id].store(Arc::new(rollout.published()));
        self.metrics.route(id).record_transition(kind);
    }

    /// An event the state file took: shown in the view and posted to the notifiers.
    fn recorded(&self, id: RouteId, rollout: &mut RouteRollout, event: Event) {
        let kind = event.kind;
        rollout.recent.push_front(event.clone());
        rollout.recent.truncate(RECENT_EVENTS);
        self.views[id].store(Arc::new(rollout.published()));
        if let Some(events) = &self.events
            && events.try_send(event).is_err()
        {
            tracing::warn!(%kind, "notifier queue full: event not posted to webhooks");
        }
    }

    /// Saves the transitions published unsaved, oldest first; stops at the first failure.
    fn flush(&self, id: RouteId, rollout: &mut RouteRollout) -> Result<(), StoreError> {
        while let Some(unsaved) = rollout.unsaved.front() {
            let Unsaved { from, next, kind, actor, reason, at_ms } = unsaved;
            let write = Write {
                state: next,
                from: *from,
                kind: *kind,
                actor,
                reason,
                now_ms: *at_ms,
                authority: Authority::Late,
            };
            let written = self.store.record(write);
            let event = self.written(id, kind.as_str(), written)?;
            tracing::info!(route = %next.route, %kind, "saved to the state file after all");
            rollout.unsaved.pop_front();
            self.recorded(id, rollout, event);
        }
        Ok(())
    }

    /// Passes a write's result on; a failure is logged with its route and counted.
    fn written<T>(&self, id: RouteId, what: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result {
            let config = self.config.load();
            let route = &config.routes[id].name;
            tracing::error!(%route, write = what, %error, "state file write failed");
            self.metrics.route(id).record_state_write_failure();
        }
        result
    }

    /// One look at a route with a plan: the hard ceiling in every phase in which the
    /// candidate has traffic; with `analyse`, the full analysis and the transition it calls for;
    /// and another try at saving what the state file refused before. Blocking: call from
    /// a blocking thread.
    pub fn tick(&self, id: RouteId, analyse: bool) -> Result<(), ControlError> {
        // In a fleet, the leader judges the evidence of every instance, read before the
        // route's turn is taken. Without the database (or without the lead), this instance
        // only guards: its own evidence, and no transition but one that takes exposure away
        // (a rollback).
        let seen = self.views[id].load().state.clone();
        let local = self.live.route(id).stats().snapshot();
        let merged = match self.store.fleet() {
            None => Some(Ok(local.clone())),
            Some(fleet) if fleet.leads() && !fleet.catching_up() => Some(fleet.merged_evidence(&seen, local.clone())),
            Some(_) => None,
        };
        let mut rollout = self.turn(id);
        let rollout = &mut *rollout;
        // A step that changed while its evidence was read gets its look on the next tick.
        if (rollout.state.step, rollout.state.step_started_at) != (seen.step, seen.step_started_at) {
            return Ok(());
        }
        let config = self.config.load_full();
        let route = &config.routes[id];
        let now_ms = unix_millis();
        let current = rollout.current();
        // A plan edited by a reload whose pause the state file refused then: paused now.
        if let Some(transition) = decide::reconcile(route, &current) {
            return self.apply(id, rollout, transition, Authority::Controller, now_ms);
        }
        // The validation gate holds a pending rollout: no analysis, so no start.
        let held = route.rollout.as_ref().is_some_and(|plan| rollout.validation.hold(plan, &current).is_some());
        let (snapshot, analyse, guard_only) = match merged {
            Some(Ok(merged)) => {
                if self.store.fleet().is_some() {
                    rollout.fleet_arms = Some(view::arm_counts(&merged));
                    self.views[id].store(Arc::new(rollout.published()));
                }
                (merged, analyse, false)
            }
            Some(Err(error)) => {
                tracing::warn!(route = %route.name, %error, "fleet evidence unreadable: no decision but a rollback");
                (local, false, true)
            }
            None => (local, false, true),
        };
        let analyse = analyse && !held;
        let evidence = Evidence { snapshot: &snapshot, baseline: rollout.baseline.as_ref() };
        let decision = match &route.rollout {
            Some(plan) => decide::tick(&current, plan, evidence, analyse, now_ms),
            // Without a plan there is no rollout to guard: the operator owns the weight (the
            // breaker still ejects a failing candidate), and the evidence of a route that
            // never changes step would judge its whole life at once.
            None => decide::TickDecision::default(),
        };
        let mut saved_evidence = Ok(());
        if let Some(evaluation) = decision.evaluation {
            // What the analysis judged is saved first: a restart resumes the step from it.
            let written = self.store.save_stats(&current, &snapshot, rollout.baseline.as_ref());
            saved_evidence = self.written(id, "evidence", written);
            rollout.evaluation = Some(evaluation);
            self.views[id].store(Arc::new(rollout.published()));
        }
        // The transition goes ahead even if the evidence was not saved: a rollback must
        // not wait for the disk.
        match decision.transition {
            Some(transition) if guard_only && !reduces_exposure(&rollout.state, &transition.next) => {}
            Some(transition) => self.apply(id, rollout, transition, Authority::Controller, now_ms)?,
            None if !rollout.unsaved.is_empty() => {
                self.flush(id, rollout)?;
                self.views[id].store(Arc::new(rollout.published()));
            }
            None => {}
        }
        Ok(saved_evidence?)
    }

    /// Carries out an operator's command, or refuses it with the reason; answers the
    /// route's view after it. Blocking: call from a blocking thread.
    pub fn command(&self, route_name: &str, command: Command, actor: &str) -> Result<RolloutView, ControlError> {
        let id = self.route_id(route_name)?;
        // Decided on the latest state of the route, wherever it was changed; in a fleet,
        // a row changed between that read and the write is read again once, then 409.
        let mut attempts = 2;
        loop {
            attempts -= 1;
            self.sync()?;
            let mut rollout = self.turn(id);
            let rollout = &mut *rollout;
            let config = self.config.load_full();
            let route = &config.routes[id];
            let snapshot = self.live.route(id).stats().snapshot();
            let now_ms = unix_millis();
            let evidence = Evidence { snapshot: &snapshot, baseline: rollout.baseline.as_ref() };
            let transition = decide::command(route, &rollout.current(), evidence, command, actor, now_ms)?;
            match self.apply(id, rollout, transition, Authority::Operator, now_ms) {
                Err(ControlError::Conflict(_)) if attempts > 0 && self.store.fleet().is_some() => continue,
                result => result?,
            }
            if command == Command::Retry && route.rollout.as_ref().is_some_and(|plan| plan.require_validation) {
                self.ask_validation(id, rollout, now_ms);
            }
            break;
        }
        Ok(self.view(id))
    }

    /// Sets the share of the route's primary requests mirrored to the candidate, over the
    /// configuration's (route and steps alike) until set again; `None` goes back to the
    /// configuration's. Saved first, then in effect, like the weight. Blocking: call from
    /// a blocking thread.
    pub fn set_shadow(&self, route_name: &str, share: Option<f64>, actor: &str) -> Result<RolloutView, ControlError> {
        let id = self.route_id(route_name)?;
        if let Some(bad) = share.filter(|share| !(0.0..=1.0).contains(share)) {
            return Err(ControlError::InvalidShare(bad));
        }
        let config = self.config.load_full();
        let route = &config.routes[id];
        if route.candidate.is_none() {
            return Err(ControlError::NoCandidate(route_name.to_owned()));
        }
        {
            let mut rollout = self.turn(id);
            let saved = self.store.save_shadow_share(route_name, share);
            self.written(id, "shadow share", saved)?;
            rollout.shadow_override = share;
            let effective = share.unwrap_or(shadow_share(route, &rollout.state));
            self.live.route(id).set_shadow(effective);
            tracing::info!(route = %route_name, actor, share = effective, set = share.is_some(), "shadow share set");
        }
        Ok(self.view(id))
    }

    /// The view of every route's rollout. Takes no lock and reads no file.
    pub fn list(&self) -> Vec<RolloutView> {
        self.views.iter().map(|(id, _)| self.view(id)).collect()
    }

    /// The view of one route's rollout. Takes no lock and reads no file.
    pub fn get(&self, route: &str) -> Result<RolloutView, ControlError> {
        Ok(self.view(self.route_id(route)?))
    }

    /// The latest `limit` events from the state file. Blocking: call from a blocking thread.
    pub fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, ControlError> {
        if let Some(route) = route {
            self.route_id(route)?;
        }
        Ok(self.store.events(route, limit)?)
    }

    /// Records a change of `upstream`'s probed health as a `candidate_down` /
    /// `candidate_up` event on every route whose candidate it is: the route's state is
    /// unchanged (the request path already reads the verdict), the event is saved with
    /// it, shown in the route's view and events, counted and posted to the notifiers. A
    /// write the state file refuses is logged and counted, and the event is not kept.
    /// Blocking: call from a blocking thread.
    pub fn record_candidate_health(&self, upstream: &str, up: bool, reason: &str) {
        // In a fleet every instance probes; the leader alone records what it saw.
        if !self.leads() {
            return;
        }
        let kind = if up { EventKind::CandidateUp } else { EventKind::CandidateDown };
        let config = self.config.load_full();
        for (id, route) in config.routes.iter() {
            if route.candidate.is_none_or(|index| config.upstreams[index].name != upstream) {
                continue;
            }
            if self.record_unchanged(id, &mut self.turn(id), kind, "prober", reason, unix_millis()).is_ok() {
                tracing::info!(route = %route.name, %kind, upstream, reason, "rollout event");
            }
        }
    }

    /// Saves an event that leaves route `id`'s state as it is (a probe's verdict, a
    /// validation's result), after what is in effect and not saved yet so the rows stay
    /// in order; then counts it, shows it in the view and notifies it. A refused write is
    /// logged and counted (`written`), and the event is not kept.
    fn record_unchanged(
        &self,
        id: RouteId,
        rollout: &mut RouteRollout,
        kind: EventKind,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.flush(id, rollout)?;
        let current = rollout.current();
        let write = Write {
            state: &current,
            from: current.phase,
            kind,
            actor,
            reason,
            now_ms,
            authority: Authority::Controller,
        };
        let event = self.written(id, kind.as_str(), self.store.record(write))?;
        self.metrics.route(id).record_transition(kind);
        self.recorded(id, rollout, event);
        Ok(())
    }

    /// Takes the channel on which validations of a route's candidate are asked for (the
    /// gateway's validator, `rollout::gate`), and asks at once for every pending
    /// route whose plan requires one. Blocking: call from a blocking thread.
    pub fn attach_validator(&self, validator: mpsc::Sender<RouteId>) {
        if self.validator.set(validator).is_err() {
            return;
        }
        let config = self.config.load_full();
        for (id, route) in config.routes.iter() {
            let mut rollout = self.turn(id);
            let gated = route.candidate.is_some() && route.rollout.as_ref().is_some_and(|plan| plan.require_validation);
            if gated && rollout.state.phase == Phase::Pending {
                self.ask_validation(id, &mut rollout, unix_millis());
            }
        }
    }

    /// Marks the route's validation running and asks the validator for it; a full queue
    /// means one is already waiting, which will do.
    fn ask_validation(&self, id: RouteId, rollout: &mut RouteRollout, now_ms: i64) {
        let Some(validator) = self.validator.get() else { return };
        if validator.try_send(id).is_ok() {
            rollout.validation = Validation::Running { since_ms: now_ms };
            self.views[id].store(Arc::new(rollout.published()));
        }
    }

    /// Records a finished validation of route `id`'s candidate: a `validation_passed` or
    /// `validation_failed` event whose reason is `table` (the state is unchanged; a pass
    /// lets the next tick start a pending rollout), shown in the view, counted and
    /// notified. Blocking: call from a blocking thread.
    pub fn record_validation(&self, id: RouteId, passed: bool, summary: &str, table: &str) -> Result<(), ControlError> {
        let kind = if passed { EventKind::ValidationPassed } else { EventKind::ValidationFailed };
        let mut rollout = self.turn(id);
        let rollout = &mut *rollout;
        let now_ms = unix_millis();
        rollout.validation = Validation::Done { passed, at_ms: now_ms, summary: summary.to_owned() };
        self.views[id].store(Arc::new(rollout.published()));
        // In a fleet every instance validates its candidate for its own gate (the standing
        // is in memory); the leader alone writes the event, as with the probes' events.
        if !self.leads() {
            return Ok(());
        }
        self.record_unchanged(id, rollout, kind, "validator", table, now_ms)?;
        tracing::info!(route = %rollout.state.route, %kind, summary, "rollout event");
        Ok(())
    }

    /// Whether this process runs the controller's decisions (always, on SQLite; the
    /// leader of a fleet).
    pub fn leads(&self) -> bool {
        self.store.fleet().is_none_or(|fleet| fleet.leads())
    }

    /// Whether the driver should tick: the leader decides, and an instance cut off from
    /// the fleet's database guards its routes on its own evidence (a rollback only).
    /// Takes no turn: read from the views.
    pub fn acts(&self) -> bool {
        // …and one holding a rollback not saved yet ticks until it is.
        self.leads()
            || self.store.fleet().is_some_and(|fleet| fleet.cut_off())
            || self.views.values().any(|view| view.load().unsaved > 0)
    }

    /// Takes over what another gateway of the fleet changed: each such route's state is
    /// published to the request path (a new step starts new local evidence) and to the
    /// view. A route with transitions in effect but not saved yet keeps them: they are
    /// saved over the database's row when it takes writes again. Blocking: call from a
    /// blocking thread. Answers how many routes changed.
    pub fn sync(&self) -> Result<usize, ControlError> {
        let changed = match self.store.fleet() {
            Some(fleet) => fleet.changed()?,
            None => return Ok(0),
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let config = self.config.load_full();
        let mut adopted = 0;
        for next in changed {
            let Some(id) = config.route_id(&next.route) else { continue };
            // What the route's view needs from the database, read before its turn.
            let share = self.store.shadow_share(&next.route);
            let recent = self.store.events(Some(&next.route), RECENT_EVENTS as u32);
            let mut rollout = self.turn(id);
            let rollout = &mut *rollout;
            if !rollout.unsaved.is_empty() {
                continue;
            }
            // An operator's shadow share, set on any instance, changes no route state.
            if let Ok(share) = share
                && share != rollout.shadow_override
            {
                rollout.shadow_override = share;
                let effective = share.unwrap_or(shadow_share(&config.routes[id], &next));
                self.live.route(id).set_shadow(effective);
                tracing::info!(route = %next.route, share = effective, "shadow share changed by the fleet");
            }
            if rollout.state == next {
                continue;
            }
            let live = self.live.route(id);
            if next.step != rollout.state.step || next.step_started_at != rollout.state.step_started_at {
                live.reset_stats(StepStats::default());
                rollout.evaluation = None;
            }
            live.publish(&next);
            live.set_shadow(rollout.shadow_override.unwrap_or(shadow_share(&config.routes[id], &next)));
            rollout.clock = StepClock::starting(&next, Instant::now());
            if (next.phase, next.step, next.weight_bp)
                != (rollout.state.phase, rollout.state.step, rollout.state.weight_bp)
            {
                let (route, phase, weight) = (&next.route, next.phase, percent_of(next.weight_bp));
                tracing::info!(%route, %phase, step = next.step, weight, "rollout state changed by the fleet");
            }
            rollout.state = next;
            if let Ok(recent) = recent {
                live.set_undecided(undecided_since(&rollout.state, &recent));
                rollout.recent = recent.into();
            }
            self.views[id].store(Arc::new(rollout.published()));
            adopted += 1;
        }
        Ok(adopted)
    }

    /// Each planned route's current step and this process's evidence of it, for a
    /// fleet's flush. A route whose step changed while it was read is left for the next
    /// flush, so that no evidence is filed under the wrong step. Takes no lock.
    pub fn local_evidence(&self) -> Vec<LocalEvidence> {
        let config = self.config.load();
        let mut evidence = Vec::new();
        for (id, view) in self.views.iter() {
            if config.routes[id].rollout.is_none() {
                continue;
            }
            let before = view.load();
            let snapshot = self.live.route(id).stats().snapshot();
            let after = view.load();
            let (state, again) = (&before.state, &after.state);
            if state.step != again.step || state.step_started_at != again.step_started_at {
                continue;
            }
            evidence.push(LocalEvidence {
                route: state.route.clone(),
                step: state.step,
                step_started_at: state.step_started_at,
                weight_percent: percent_of(self.live.route(id).weight_bp()),
                snapshot,
            });
        }
        evidence
    }

    fn view(&self, id: RouteId) -> RolloutView {
        view::render(&self.config.load(), id, self.live.route(id), &self.views[id].load(), unix_millis())
    }
}

/// One route's current step and this process's evidence of it (`local_evidence`).
#[derive(Debug, Clone)]
pub struct LocalEvidence {
    pub route: String,
    pub step: u32,
    pub step_started_at: i64,
    /// The candidate weight this process applies.
    pub weight_percent: f64,
    pub snapshot: StepSnapshot,
}

/// Whether going from `current` to `next` takes users (or mirrored requests) away from
/// the candidate: the transitions that may take effect before the state file has them.
fn reduces_exposure(current: &RouteState, next: &RouteState) -> bool {
    next.weight_bp < current.weight_bp || (next.phase == Phase::RolledBack && current.phase != Phase::RolledBack)
}

/// The share of primary requests mirrored to the candidate: the step's while a plan runs
/// or is paused, else the route's own.
fn shadow_share(route: &Route, state: &RouteState) -> f64 {
    let in_step = matches!(state.phase, Phase::Shadowing | Phase::Progressing | Phase::Paused);
    let step = route.rollout.as_ref().and_then(|plan| plan.steps.get(state.step as usize));
    match step {
        Some(step) if in_step => step.shadow,
        _ => route.shadow,
    }
}

/// Since when a route in `state` is paused undecided, from its latest events (newest
/// first), by the rule its transitions follow (`EventKind::undecided_mark`). Only the
/// latest `RECENT_EVENTS` are read: an undecided pause followed by more events that do
/// not set the course (failed checks, probes) is no longer seen after a restart.
fn undecided_since(state: &RouteState, recent: &[Event]) -> Option<i64> {
    let paused = |event: &Event| event.to_phase == Phase::Paused.as_str();
    let since =
        recent.iter().rev().fold(None, |since, event| event.kind.undecided_mark(paused(event), event.at, since));
    since.filter(|_| state.phase == Phase::Paused)
}

/// A route's turn, taken even when a decision panicked in it (the rollout it guards is
/// updated step by step, each step whole; a panic leaves the last whole one).
fn hold(turn: &Mutex<RouteRollout>) -> MutexGuard<'_, RouteRollout> {
    turn.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
