//! A route's rollout as it is persisted and published: its phase (`Phase`, named as the
//! admin API, the CLI and the events show it) and its state (`RouteState`).

use std::fmt;
use std::str::FromStr;

/// The phase of a route's rollout, named as the admin API, the CLI and the events show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending = 0,
    Shadowing = 1,
    Progressing = 2,
    Paused = 3,
    Promoted = 4,
    RolledBack = 5,
}

impl Phase {
    const ALL: [Phase; 6] =
        [Phase::Pending, Phase::Shadowing, Phase::Progressing, Phase::Paused, Phase::Promoted, Phase::RolledBack];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Shadowing => "shadowing",
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Promoted => "promoted",
            Phase::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(text: &str) -> Result<Phase, String> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == text).ok_or_else(|| format!("unknown phase {text:?}"))
    }
}

/// As its name (`progressing`), which is how the admin API shows it.
impl serde::Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Phase, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One route's persisted rollout state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteState {
    pub route: String,
    pub phase: Phase,
    pub step: u32,
    /// Candidate share in basis points (10_000 = 100%).
    pub weight_bp: u32,
    /// Unix milliseconds: when the step began, for people and the event log. How long
    /// the step has run is `active_ms`, never the wall clock's difference.
    pub step_started_at: i64,
    pub consecutive_failures: u32,
    /// The step's running time (shadowing or progressing) in milliseconds: paused time is
    /// not in it, and a wall-clock jump neither advances nor stalls it. The controller
    /// measures it with a monotonic clock (`cutover_control`'s `StepClock`); the decisions receive the
    /// state brought up to the moment they are made.
    pub active_ms: u64,
    /// How often `on_failure = "previous"` stepped back in this rollout (reset by a start
    /// or a retry): past the controller's `MAX_STEP_BACKS` a step back becomes a rollback.
    pub step_backs: u32,
}

impl RouteState {
    pub fn initial(route: &str, now_ms: i64) -> RouteState {
        RouteState {
            route: route.to_owned(),
            phase: Phase::Pending,
            step: 0,
            weight_bp: 0,
            step_started_at: now_ms,
            consecutive_failures: 0,
            active_ms: 0,
            step_backs: 0,
        }
    }
}
