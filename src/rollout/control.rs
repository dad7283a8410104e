//! The rollout controller: holds each route's rollout behind one lock, asks `decide` what
//! a tick of the driver or an operator's command calls for, and carries the answer out in
//! one place (`apply`): persisted with its audit event in one transaction first, then
//! published to the request path (weight, shadow share, fresh evidence for a new step) and
//! to the admin view, then counted, logged and posted to the notifiers. So what the
//! gateway does is what the state file says.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::sync::mpsc;

use super::analysis::Evaluation;
use super::decide::{self, BaselineChange, Evidence, Transition};
use super::stats::{ArmSnapshot, StepSnapshot, StepStats};
use super::view::{self, Published, RECENT_EVENTS};
use super::{Command, ControlError, Event, LiveState, Phase, RouteState, Store, StoreError, unix_millis};
use crate::config::{Config, PerRoute, Route, RouteId};
use crate::metrics::Metrics;

/// One route's rollout as the controller holds it.
struct RouteRollout {
    state: RouteState,
    evaluation: Option<Evaluation>,
    /// The primary's evidence from the last step in which both arms were measured, for
    /// the comparisons of a 100% step.
    baseline: Option<ArmSnapshot>,
    /// The latest events, newest first, for the view (the state file has them all).
    recent: VecDeque<Event>,
}

impl RouteRollout {
    fn published(&self) -> Published {
        Published {
            state: self.state.clone(),
            evaluation: self.evaluation.clone(),
            events: self.recent.iter().cloned().collect(),
        }
    }
}

pub struct RolloutControl {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    live: Arc<LiveState>,
    store: Arc<Store>,
    /// A std mutex: taken only on blocking threads, for the length of one decision and
    /// its SQLite transaction, never across an await.
    routes: Mutex<PerRoute<RouteRollout>>,
    /// What the admin view shows of each route, republished by every change under the
    /// lock above, so that reading it takes neither that lock nor the state file.
    views: PerRoute<ArcSwap<Published>>,
    /// Events for the webhook notifiers; full means dropped (and logged), never waited on.
    events: Option<mpsc::Sender<Event>>,
}

impl RolloutControl {
    /// Takes over the persisted states: restores each step's saved evidence and latest
    /// events, and pauses a running rollout whose plan no longer matches its step (a plan
    /// edited while running). Blocking: call from a blocking thread.
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
            let recent = store.events(Some(&state.route), RECENT_EVENTS as u32).unwrap_or_else(|error| {
                // The view shows no events until the next one; `/admin/events` names the row.
                tracing::warn!(route = %state.route, %error, "recent rollout events not readable");
                Vec::new()
            });
            Ok::<_, StoreError>(RouteRollout {
                state: state.clone(),
                evaluation: None,
                baseline,
                recent: recent.into(),
            })
        })?;
        let views = routes.map(|_, rollout| ArcSwap::from_pointee(rollout.published()));
        let control = RolloutControl { config, metrics, live, store, routes: Mutex::new(routes), views, events };
        control.reconcile_plans()?;
        Ok(control)
    }

    fn lock(&self) -> MutexGuard<'_, PerRoute<RouteRollout>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reconcile_plans(&self) -> Result<(), StoreError> {
        let mut routes = self.lock();
        for (id, rollout) in routes.iter_mut() {
            let route = &self.config.routes[id];
            self.live.route(id).set_shadow(shadow_share(route, &rollout.state));
            if let Some(transition) = decide::reconcile(route, &rollout.state) {
                self.apply(id, rollout, transition, unix_millis())?;
            }
        }
        Ok(())
    }

    fn route_id(&self, name: &str) -> Result<RouteId, ControlError> {
        self.config.route_id(name).ok_or_else(|| ControlError::UnknownRoute(name.to_owned()))
    }

    /// The rollout interval of each route that has a plan.
    pub fn intervals(&self) -> Vec<(RouteId, Duration)> {
        let plans = self.config.routes.iter();
        plans.filter_map(|(id, route)| Some((id, route.rollout.as_ref()?.interval))).collect()
    }

    /// The one place a transition takes effect: persisted with its event, then published
    /// (a new step starts new evidence), counted, logged and notified.
    fn apply(
        &self,
        id: RouteId,
        rollout: &mut RouteRollout,
        transition: Transition,
        now_ms: i64,
    ) -> Result<Event, StoreError> {
        let Transition { next, kind, actor, reason, baseline } = transition;
        let event = self.store.transition(&next, rollout.state.phase, kind, &actor, &reason, now_ms)?;
        let live = self.live.route(id);
        if next.step != rollout.state.step || next.step_started_at != rollout.state.step_started_at {
            live.reset_stats(StepStats::default());
            rollout.evaluation = None;
        }
        live.publish(&next);
        live.set_shadow(shadow_share(&self.config.routes[id], &next));
        tracing::info!(route = %next.route, %kind, actor, phase = %next.phase, weight = f64::from(next.weight_bp) / 100.0, reason, "rollout event");
        rollout.state = next;
        rollout.recent.push_front(event.clone());
        rollout.recent.truncate(RECENT_EVENTS);
        self.views[id].store(Arc::new(rollout.published()));
        self.metrics.route(id).record_transition(kind);
        if let Some(events) = &self.events
            && events.try_send(event.clone()).is_err()
        {
            tracing::warn!(%kind, "notifier queue full: event not posted to webhooks");
        }
        if let BaselineChange::Advanced(primary) = baseline {
            if primary.is_some() {
                rollout.baseline = primary;
            }
            // The new step's evidence starts empty; the baseline must survive a restart.
            self.store.save_stats(&rollout.state, &StepSnapshot::default(), rollout.baseline.as_ref())?;
        }
        Ok(event)
    }

    /// One look at a route: the hard ceiling always; with `analyse`, the full analysis
    /// and the transition it calls for. Blocking: call from a blocking thread.
    pub fn tick(&self, id: RouteId, analyse: bool) -> Result<(), ControlError> {
        let Some(plan) = &self.config.routes[id].rollout else { return Ok(()) };
        let mut routes = self.lock();
        let rollout = &mut routes[id];
        let phase = rollout.state.phase;
        // Only a running rollout has evidence to look at, and only an analysis starts one.
        let wants_look = decide::is_running(phase) || (analyse && phase == Phase::Pending);
        if !wants_look {
            return Ok(());
        }
        let snapshot = self.live.route(id).stats().snapshot();
        let now_ms = unix_millis();
        let evidence = Evidence { snapshot: &snapshot, baseline: rollout.baseline.as_ref() };
        let decision = decide::tick(&rollout.state, plan, evidence, analyse, now_ms);
        if let Some(evaluation) = decision.evaluation {
            // What the analysis judged is saved first: a restart resumes the step from it.
            self.store.save_stats(&rollout.state, &snapshot, rollout.baseline.as_ref())?;
            rollout.evaluation = Some(evaluation);
            self.views[id].store(Arc::new(rollout.published()));
        }
        if let Some(transition) = decision.transition {
            self.apply(id, rollout, transition, now_ms)?;
        }
        Ok(())
    }

    /// Carries out an operator's command, or refuses it with the reason; answers the
    /// route's view after it. Blocking: call from a blocking thread.
    pub fn command(&self, route_name: &str, command: Command, actor: &str) -> Result<Value, ControlError> {
        let id = self.route_id(route_name)?;
        let route = &self.config.routes[id];
        {
            let mut routes = self.lock();
            let rollout = &mut routes[id];
            let snapshot = self.live.route(id).stats().snapshot();
            let now_ms = unix_millis();
            let evidence = Evidence { snapshot: &snapshot, baseline: rollout.baseline.as_ref() };
            let transition = decide::command(route, &rollout.state, evidence, command, actor, now_ms)?;
            self.apply(id, rollout, transition, now_ms)?;
        }
        Ok(self.view(id))
    }

    /// The JSON view of every route's rollout. Takes no lock and reads no file.
    pub fn list(&self) -> Value {
        Value::Array(self.views.iter().map(|(id, _)| self.view(id)).collect())
    }

    /// The JSON view of one route's rollout. Takes no lock and reads no file.
    pub fn get(&self, route: &str) -> Result<Value, ControlError> {
        Ok(self.view(self.route_id(route)?))
    }

    /// The latest `limit` events from the state file. Blocking: call from a blocking thread.
    pub fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, ControlError> {
        if let Some(route) = route {
            self.route_id(route)?;
        }
        Ok(self.store.events(route, limit)?)
    }

    fn view(&self, id: RouteId) -> Value {
        view::render(&self.config, id, self.live.route(id), &self.views[id].load(), unix_millis())
    }
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
