//! Drives the controller: every second each watched route gets a look at its hard
//! ceiling (and another try at saving what the state file refused), and every `interval`
//! a route with a plan gets a full analysis. The work runs on blocking threads (it writes
//! SQLite); a slow look delays the next, it never piles up. `supervise` restarts this
//! loop if it ever dies. What to watch follows the configuration in force (a reload).
//! In a fleet only the leader ticks (and an instance cut off from the database, which
//! only guards).

use std::sync::Arc;
use std::time::Duration;

use cutover_config::RouteId;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::RolloutControl;

/// How often the hard ceiling is checked, whatever the analysis interval.
const GUARD_PERIOD: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true. The routes to watch and their intervals are read again
/// on every tick, so that a reloaded configuration (a plan added or edited, a candidate
/// added) is followed without a restart; a route whose interval did not change keeps its
/// schedule.
pub async fn run(control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
    let mut schedule = Schedule::default();
    let mut ticker =
        schedule.follow(control.watched(), Instant::now()).unwrap_or_else(|| tokio::time::interval(GUARD_PERIOD));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Some(faster) = schedule.follow(control.watched(), Instant::now()) {
            ticker = faster;
        }
        // A gateway of a fleet that does not lead leaves the decisions to the leader.
        if !control.acts() {
            continue;
        }
        for slot in 0..schedule.routes.len() {
            let (id, interval, next) = &mut schedule.routes[slot];
            let now = Instant::now();
            let analyse = next.is_some_and(|at| now >= at);
            if analyse {
                *next = interval.and_then(|interval| now.checked_add(interval));
            }
            let control = control.clone();
            let id = *id;
            match tokio::task::spawn_blocking(move || control.tick(id, analyse)).await {
                Ok(Ok(())) => {}
                // Already logged where it failed; the weight is held (or, for a rollback the
                // file refused, in effect and retried).
                Ok(Err(error)) => tracing::warn!(%error, "rollout check did not complete"),
                Err(error) => tracing::error!(%error, "rollout check panicked; the weight is held"),
            }
        }
    }
}

/// The watched routes, each with its analysis interval and the time of its next analysis.
#[derive(Default)]
struct Schedule {
    routes: Vec<(RouteId, Option<Duration>, Option<Instant>)>,
    period: Option<Duration>,
}

impl Schedule {
    /// Takes `watched` as the routes to look at; answers a new ticker when the period
    /// (the guard's, or a shorter analysis interval) changed.
    fn follow(&mut self, watched: Vec<(RouteId, Option<Duration>)>, now: Instant) -> Option<Interval> {
        let unchanged = watched.len() == self.routes.len()
            && watched.iter().zip(&self.routes).all(|(new, old)| new.0 == old.0 && new.1 == old.1);
        if !unchanged {
            let previous = std::mem::take(&mut self.routes);
            self.routes = watched
                .into_iter()
                .map(|(id, interval)| {
                    let kept = previous.iter().find(|(was, every, _)| *was == id && *every == interval);
                    // Config bounds intervals (a year at most); `checked_add` keeps a bad one
                    // from panicking.
                    let next =
                        kept.map_or_else(|| interval.and_then(|interval| now.checked_add(interval)), |kept| kept.2);
                    (id, interval, next)
                })
                .collect();
        }
        let shortest = self.routes.iter().filter_map(|(_, interval, _)| *interval).min().unwrap_or(GUARD_PERIOD);
        let period = shortest.min(GUARD_PERIOD);
        if self.period == Some(period) {
            return None;
        }
        self.period = Some(period);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(ticker)
    }
}
