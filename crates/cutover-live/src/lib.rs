//! What the request path and the rollout's controller share while the gateway runs,
//! and nothing else: each route's published rollout state (`LiveState`: weight, step,
//! shadow share, one set of atomics per route, so the split decision takes no lock) and
//! the evidence its current step collects (`stats`: lock-free counters the proxy records
//! into, snapshots the controller judges and the stores persist). The controller persists
//! first, then publishes here, except for a change that reduces the candidate's exposure,
//! which is published even when persisting fails (`cutover_control`, `apply`).

pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use arc_swap::ArcSwap;
use cutover_config::{PerRoute, RouteId};
use cutover_shadow::RouteShadow;

use cutover_model::RouteState;
use stats::StepStats;

#[derive(Debug)]
pub struct LiveRoute {
    weight_bp: AtomicU32,
    step: AtomicU32,
    /// Share of primary requests mirrored to the candidate, in parts per million.
    shadow_ppm: AtomicU32,
    /// Since when (Unix ms) the rollout is paused undecided, 0 when it is not.
    undecided_since_ms: AtomicI64,
    /// The evidence of the current step; replaced whole when a step begins.
    stats: ArcSwap<StepStats>,
    /// Mirroring's caps and kept diffs (`shadow`), across steps and reloads.
    pub mirroring: RouteShadow,
}

impl LiveRoute {
    pub fn weight_bp(&self) -> u32 {
        self.weight_bp.load(Ordering::Relaxed)
    }

    pub fn step(&self) -> u32 {
        self.step.load(Ordering::Relaxed)
    }

    /// The share (0–1) of primary requests to mirror to the candidate.
    pub fn shadow(&self) -> f64 {
        f64::from(self.shadow_ppm.load(Ordering::Relaxed)) / 1e6
    }

    pub fn set_shadow(&self, share: f64) {
        self.shadow_ppm.store((share.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
    }

    /// Since when (Unix ms) a step that ended undecided keeps the rollout paused, waiting
    /// for an operator (`EventKind::Undecided`); `None` otherwise.
    pub fn undecided_since(&self) -> Option<i64> {
        Some(self.undecided_since_ms.load(Ordering::Relaxed)).filter(|since| *since != 0)
    }

    pub fn set_undecided(&self, since_ms: Option<i64>) {
        self.undecided_since_ms.store(since_ms.map_or(0, |since| since.max(1)), Ordering::Relaxed);
    }

    pub fn stats(&self) -> Arc<StepStats> {
        self.stats.load_full()
    }

    /// Starts collecting a new step's evidence.
    pub fn reset_stats(&self, stats: StepStats) {
        self.stats.store(Arc::new(stats));
    }

    pub fn publish(&self, state: &RouteState) {
        self.step.store(state.step, Ordering::Relaxed);
        self.weight_bp.store(state.weight_bp.min(10_000), Ordering::Release);
    }
}

/// Live state of every route.
#[derive(Debug)]
pub struct LiveState {
    routes: PerRoute<LiveRoute>,
}

impl LiveState {
    pub fn new(states: &PerRoute<RouteState>) -> LiveState {
        let routes = states.map(|_, state| {
            let live = LiveRoute {
                weight_bp: AtomicU32::new(0),
                step: AtomicU32::new(0),
                shadow_ppm: AtomicU32::new(0),
                undecided_since_ms: AtomicI64::new(0),
                stats: ArcSwap::from_pointee(StepStats::default()),
                mirroring: RouteShadow::default(),
            };
            live.publish(state);
            live
        });
        LiveState { routes }
    }

    pub fn route(&self, id: RouteId) -> &LiveRoute {
        &self.routes[id]
    }

    pub fn routes(&self) -> &PerRoute<LiveRoute> {
        &self.routes
    }
}
