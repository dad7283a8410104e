//! Drives the controller: every second each watched route gets a look at its hard
//! ceiling (and another try at saving what the state file refused), and every `interval`
//! a route with a plan gets a full analysis. The work runs on blocking threads (it writes
//! SQLite); a slow look delays the next, it never piles up. `supervise` restarts this
//! loop if it ever dies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::RolloutControl;

/// How often the hard ceiling is checked, whatever the analysis interval.
const GUARD_PERIOD: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true; with nothing to watch, it just waits for that, so that
/// returning early always means something went wrong.
pub async fn run(control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
    let routes = control.watched();
    if routes.is_empty() {
        let _ = stop.wait_for(|stop| *stop).await;
        return;
    }
    let shortest = routes.iter().filter_map(|(_, interval)| *interval).min().unwrap_or(GUARD_PERIOD);
    let mut ticker = tokio::time::interval(shortest.min(GUARD_PERIOD));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    // Config bounds intervals (a year at most); `checked_add` keeps a bad one from panicking.
    let mut next_analysis: Vec<Option<Instant>> =
        routes.iter().map(|(_, interval)| interval.and_then(|interval| start.checked_add(interval))).collect();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        for (slot, (index, interval)) in routes.iter().enumerate() {
            let now = Instant::now();
            let analyse = next_analysis[slot].is_some_and(|at| now >= at);
            if analyse {
                next_analysis[slot] = interval.and_then(|interval| now.checked_add(interval));
            }
            let control = control.clone();
            let index = *index;
            match tokio::task::spawn_blocking(move || control.tick(index, analyse)).await {
                Ok(Ok(())) => {}
                // Already logged where it failed; the weight is held (or, for a rollback the
                // file refused, in effect and retried).
                Ok(Err(error)) => tracing::warn!(%error, "rollout check did not complete"),
                Err(error) => tracing::error!(%error, "rollout check panicked; the weight is held"),
            }
        }
    }
}
