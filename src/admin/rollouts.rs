//! Reading and changing the rollout state of routes. Every change is persisted with its
//! audit event in one transaction before it is published to the request path, so what
//! the gateway does is always what the state file says.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, percent_to_basis_points};
use crate::metrics::{Metrics, Outcome, Role};
use crate::rollout::{Event, LiveState, Phase, RouteState, Store, StoreError, unix_millis};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("route {0:?} has no candidate upstream to send traffic to")]
    NoCandidate(String),
    #[error("weight {0} is not a percentage between 0 and 100 in steps of 0.01")]
    InvalidWeight(f64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rollout state of every route: the persisted copy, the store and the live atomics.
pub struct RolloutControl {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    live: Arc<LiveState>,
    store: Arc<Store>,
    /// The last persisted state of each route, indexed like `Config::routes`. A std mutex:
    /// it is only taken on blocking threads, for the length of one SQLite transaction.
    states: Mutex<Vec<RouteState>>,
}

#[derive(Serialize)]
struct ArmView {
    upstream: String,
    requests: u64,
    ok: u64,
    client_errors: u64,
    upstream_errors: u64,
}

impl RolloutControl {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        live: Arc<LiveState>,
        store: Arc<Store>,
        states: Vec<RouteState>,
    ) -> Self {
        RolloutControl { config, metrics, live, store, states: Mutex::new(states) }
    }

    fn states(&self) -> MutexGuard<'_, Vec<RouteState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn route_index(&self, name: &str) -> Result<usize, ControlError> {
        self.config
            .routes
            .iter()
            .position(|route| route.name == name)
            .ok_or_else(|| ControlError::UnknownRoute(name.to_owned()))
    }

    /// The JSON view of every route's rollout.
    pub fn list(&self) -> Value {
        let states = self.states();
        Value::Array((0..self.config.routes.len()).map(|index| self.view(index, &states[index])).collect())
    }

    pub fn get(&self, route: &str) -> Result<Value, ControlError> {
        let index = self.route_index(route)?;
        Ok(self.view(index, &self.states()[index]))
    }

    fn view(&self, index: usize, state: &RouteState) -> Value {
        let route = &self.config.routes[index];
        let metrics = self.metrics.route(index);
        let arm = |role: Role| {
            metrics.arm(role).map(|arm| {
                let [ok, client_errors, upstream_errors] = Outcome::ALL.map(|outcome| arm.count(outcome));
                ArmView {
                    upstream: arm.upstream.clone(),
                    requests: ok + client_errors + upstream_errors,
                    ok,
                    client_errors,
                    upstream_errors,
                }
            })
        };
        json!({
            "route": route.name,
            "primary": self.config.upstreams[route.primary].name,
            "candidate": route.candidate.map(|candidate| &self.config.upstreams[candidate].name),
            "phase": state.phase.as_str(),
            "step": state.step,
            "steps": route.rollout.as_ref().map_or(0, |plan| plan.steps.len()),
            "weight": f64::from(state.weight_bp) / 100.0,
            "step_started_at": state.step_started_at,
            "consecutive_failures": state.consecutive_failures,
            "arms": {"primary": arm(Role::Primary), "candidate": arm(Role::Candidate)},
        })
    }

    /// Sets the candidate's share by hand. A manual weight overrides any plan, so the
    /// rollout is paused until someone resumes it. Blocking: call from a blocking thread.
    pub fn set_weight(&self, route: &str, percent: f64, actor: &str) -> Result<Value, ControlError> {
        let index = self.route_index(route)?;
        let weight_bp = percent_to_basis_points(percent).ok_or(ControlError::InvalidWeight(percent))?;
        if self.config.routes[index].candidate.is_none() && weight_bp > 0 {
            return Err(ControlError::NoCandidate(route.to_owned()));
        }
        let mut states = self.states();
        let current = &states[index];
        let mut next = current.clone();
        next.phase = Phase::Paused;
        next.weight_bp = weight_bp;
        next.consecutive_failures = 0;
        let reason = format!("weight set by hand from {}% to {percent}%", f64::from(current.weight_bp) / 100.0);
        self.store.transition(&next, current.phase, "set_weight", actor, &reason, unix_millis())?;
        self.live.route(index).publish(&next);
        tracing::info!(route, weight = percent, actor, "weight set by hand");
        states[index] = next;
        Ok(self.view(index, &states[index]))
    }

    pub fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, ControlError> {
        if let Some(route) = route {
            self.route_index(route)?;
        }
        Ok(self.store.events(route, limit)?)
    }
}
