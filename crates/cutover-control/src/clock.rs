//! A step's running time, measured with a monotonic clock: the active milliseconds saved
//! with the state (`RouteState::active_ms`) plus the time since the current running
//! segment began (an `Instant`). Pausing freezes it, resuming starts a new segment, and a
//! wall-clock jump (NTP, a VM resumed, an operator's `date`) changes neither: only the
//! start of a step is a wall-clock time, for people and the event log.

use std::time::Instant;

use super::decide::is_running;
use cutover_model::RouteState;

/// When the current running segment of a step began, if the step is running.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepClock {
    segment: Option<Instant>,
}

impl StepClock {
    /// The clock of `state` taken over at `at` (a start-up, a published transition): a
    /// running step's segment begins now, anything else stands still.
    pub fn starting(state: &RouteState, at: Instant) -> StepClock {
        StepClock { segment: is_running(state.phase).then_some(at) }
    }

    /// The step's active time at `at`, in milliseconds.
    pub fn active_ms(&self, state: &RouteState, at: Instant) -> u64 {
        let running = self.segment.map_or(0, |since| at.saturating_duration_since(since).as_millis() as u64);
        state.active_ms.saturating_add(running)
    }

    /// `state` brought up to `at`: what the decisions are given.
    pub fn current(&self, state: &RouteState, at: Instant) -> RouteState {
        RouteState { active_ms: self.active_ms(state, at), ..state.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_model::Phase;
    use std::time::Duration;

    fn state(phase: Phase, active_ms: u64) -> RouteState {
        RouteState { phase, active_ms, ..RouteState::initial("default", 0) }
    }

    #[test]
    fn a_running_step_counts_monotonic_time_on_top_of_what_was_saved() {
        let start = Instant::now();
        let running = state(Phase::Progressing, 30_000);
        let clock = StepClock::starting(&running, start);
        assert_eq!(clock.active_ms(&running, start), 30_000);
        assert_eq!(clock.active_ms(&running, start + Duration::from_secs(90)), 120_000);
        assert_eq!(clock.current(&running, start + Duration::from_secs(1)).active_ms, 31_000);
    }

    #[test]
    fn a_paused_or_ended_step_stands_still() {
        let start = Instant::now();
        for phase in [Phase::Paused, Phase::Pending, Phase::Promoted, Phase::RolledBack] {
            let stopped = state(phase, 30_000);
            let clock = StepClock::starting(&stopped, start);
            assert_eq!(clock.active_ms(&stopped, start + Duration::from_secs(3600)), 30_000, "{phase}");
        }
    }

    #[test]
    fn an_instant_before_the_segment_counts_nothing_rather_than_going_back() {
        let start = Instant::now() + Duration::from_secs(10);
        let running = state(Phase::Shadowing, 5_000);
        assert_eq!(StepClock::starting(&running, start).active_ms(&running, Instant::now()), 5_000);
    }
}
