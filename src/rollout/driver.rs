//! Drives the controller: every second each route with a plan gets a look at its hard
//! ceiling, and every `interval` a full analysis. The work runs on blocking threads (it
//! writes SQLite); a slow look delays the next, it never piles up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::RolloutControl;

/// How often the hard ceiling is checked, whatever the analysis interval.
const GUARD_PERIOD: Duration = Duration::from_secs(1);

pub async fn run(control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
    let routes = control.intervals();
    if routes.is_empty() {
        return;
    }
    let period = routes.iter().map(|(_, interval)| *interval).min().unwrap_or(GUARD_PERIOD).min(GUARD_PERIOD);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut next_analysis: Vec<Instant> = routes.iter().map(|(_, interval)| start + *interval).collect();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        for (slot, (index, interval)) in routes.iter().enumerate() {
            let now = Instant::now();
            let analyse = now >= next_analysis[slot];
            if analyse {
                next_analysis[slot] = now + *interval;
            }
            let control = control.clone();
            let index = *index;
            match tokio::task::spawn_blocking(move || control.tick(index, analyse)).await {
                Ok(Ok(())) => {}
                // The analysis could not run: hold the weight, never move on missing data.
                Ok(Err(error)) => tracing::error!(%error, "rollout check failed; the weight is held"),
                Err(error) => tracing::error!(%error, "rollout check panicked; the weight is held"),
            }
        }
    }
}
