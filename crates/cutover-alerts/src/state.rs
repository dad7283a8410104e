//! One alert instance's state machine, pure (no clock, no I/O): `ok` → `pending` while
//! the condition holds for less than `for` → `firing` → `resolved` once it no longer
//! holds, as Prometheus alerting does. Without data an instance is `no_data`, neither
//! firing nor resolved; a firing alert that loses its data stays firing (a candidate that
//! stopped answering is not a resolved problem).

pub use cutover_model::view::AlertState;

/// What must be announced after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Firing: for the first time, or again after `repeat_interval`.
    Firing {
        repeat: bool,
    },
    Resolved,
}

/// An instance's memory between evaluations. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    pub state: AlertState,
    /// Since when the condition has held (pending or firing).
    pub active_since: Option<i64>,
    pub fired_at: Option<i64>,
    pub last_notified: Option<i64>,
    pub resolved_at: Option<i64>,
    pub value: Option<f64>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: AlertState::NoData,
            active_since: None,
            fired_at: None,
            last_notified: None,
            resolved_at: None,
            value: None,
        }
    }
}

impl Tracker {
    /// One evaluation: `value` (`None`: no data), whether it breaches the threshold,
    /// the rule's `for` and `repeat_interval`, at `now`.
    pub fn observe(
        &mut self,
        value: Option<f64>,
        breached: bool,
        for_ms: i64,
        repeat_ms: i64,
        now: i64,
    ) -> Option<Transition> {
        self.value = value;
        let Some(_) = value else {
            if self.state != AlertState::Firing {
                self.state = AlertState::NoData;
                self.active_since = None;
            }
            return None;
        };
        if !breached {
            return match self.state {
                AlertState::Firing => {
                    self.state = AlertState::Resolved;
                    self.active_since = None;
                    self.resolved_at = Some(now);
                    Some(Transition::Resolved)
                }
                AlertState::Resolved => None,
                _ => {
                    self.state = AlertState::Ok;
                    self.active_since = None;
                    None
                }
            };
        }
        match self.state {
            AlertState::Firing => {
                let due = self.last_notified.is_none_or(|last| now - last >= repeat_ms);
                due.then(|| {
                    self.last_notified = Some(now);
                    Transition::Firing { repeat: true }
                })
            }
            AlertState::Pending => self.fire_if_due(for_ms, now),
            _ => {
                self.state = AlertState::Pending;
                self.active_since = Some(now);
                self.resolved_at = None;
                self.fire_if_due(for_ms, now)
            }
        }
    }

    fn fire_if_due(&mut self, for_ms: i64, now: i64) -> Option<Transition> {
        let since = self.active_since.unwrap_or(now);
        (now - since >= for_ms).then(|| {
            self.state = AlertState::Firing;
            self.fired_at = Some(now);
            self.last_notified = Some(now);
            Transition::Firing { repeat: false }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOR: i64 = 3_000;
    const REPEAT: i64 = 10_000;

    #[test]
    fn pending_until_for_has_passed_then_firing_once_then_resolved_once() {
        let mut notice = Tracker::default();
        assert_eq!(notice.observe(Some(1.0), false, FOR, REPEAT, 0), None);
        assert_eq!(notice.state, AlertState::Ok);
        assert_eq!(notice.observe(Some(9.0), true, FOR, REPEAT, 1_000), None);
        assert_eq!(notice.state, AlertState::Pending);
        assert_eq!(notice.observe(Some(9.0), true, FOR, REPEAT, 3_000), None, "2 s of 3: still pending");
        assert_eq!(notice.observe(Some(9.0), true, FOR, REPEAT, 4_000), Some(Transition::Firing { repeat: false }));
        assert_eq!(notice.state, AlertState::Firing);
        assert_eq!(notice.observe(Some(9.0), true, FOR, REPEAT, 5_000), None, "announced once");
        assert_eq!(notice.observe(Some(1.0), false, FOR, REPEAT, 6_000), Some(Transition::Resolved));
        assert_eq!(notice.state, AlertState::Resolved);
        assert_eq!(notice.observe(Some(1.0), false, FOR, REPEAT, 7_000), None, "resolved once");
    }

    #[test]
    fn a_pending_alert_that_recovers_says_nothing() {
        let mut notice = Tracker::default();
        notice.observe(Some(9.0), true, FOR, REPEAT, 0);
        assert_eq!(notice.observe(Some(1.0), false, FOR, REPEAT, 1_000), None);
        assert_eq!(notice.state, AlertState::Ok);
    }

    #[test]
    fn a_firing_alert_is_repeated_only_after_the_repeat_interval() {
        let mut notice = Tracker::default();
        assert_eq!(notice.observe(Some(9.0), true, 0, REPEAT, 0), Some(Transition::Firing { repeat: false }));
        assert_eq!(notice.observe(Some(9.0), true, 0, REPEAT, 9_999), None);
        assert_eq!(notice.observe(Some(9.0), true, 0, REPEAT, 10_000), Some(Transition::Firing { repeat: true }));
        assert_eq!(notice.observe(Some(9.0), true, 0, REPEAT, 15_000), None);
    }

    #[test]
    fn no_data_is_neither_firing_nor_resolved() {
        let mut notice = Tracker::default();
        assert_eq!(notice.observe(None, false, FOR, REPEAT, 0), None);
        assert_eq!(notice.state, AlertState::NoData);
        notice.observe(Some(9.0), true, FOR, REPEAT, 1_000);
        assert_eq!(notice.observe(None, false, FOR, REPEAT, 2_000), None);
        assert_eq!(notice.state, AlertState::NoData, "a pending alert without data starts over");
        notice.observe(Some(9.0), true, 0, REPEAT, 3_000);
        assert_eq!(notice.state, AlertState::Firing);
        assert_eq!(notice.observe(None, false, 0, REPEAT, 4_000), None, "no resolved without data");
        assert_eq!(notice.state, AlertState::Firing);
    }
}
