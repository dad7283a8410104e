//! What an operator can ask of a rollout, and why the controller may refuse it.

use cutover_model::EventKind;

use cutover_state::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("route {0:?} has no candidate upstream to send traffic to")]
    NoCandidate(String),
    #[error("weight {0} is not a percentage between 0 and 100 in steps of 0.01")]
    InvalidWeight(f64),
    #[error("shadow share {0} is not between 0 and 1")]
    InvalidShare(f64),
    #[error("route {0:?} has no [routes.rollout] plan")]
    NoPlan(String),
    /// The command is not allowed in the current phase; answered with 409.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An exposure-reducing change the state file refused: in effect all the same, and
    /// saved by a later tick (answered 500, since the file does not say so yet).
    #[error(
        "{kind} is in effect (candidate weight {weight_percent}%) but not saved: {source}; \
         the gateway retries saving it every second"
    )]
    Unsaved { kind: EventKind, weight_percent: f64, source: StoreError },
}

/// An operator's command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// One step forward, skipping the analysis.
    Promote,
    /// Straight to the last step, promoted.
    PromoteFull,
    /// Weight 0, rolled back.
    Abort,
    /// From `rolled_back`, after the cool-down: start again from the first step.
    Retry,
    /// A manual weight in percent; pauses the plan.
    SetWeight(f64),
}

impl Command {
    /// The kind of event the command records when it is carried out (promoting past the
    /// last step records `promoted` instead).
    pub fn kind(self) -> EventKind {
        match self {
            Command::Pause => EventKind::Pause,
            Command::Resume => EventKind::Resume,
            Command::Promote => EventKind::Promote,
            Command::PromoteFull => EventKind::PromoteFull,
            Command::Abort => EventKind::Abort,
            Command::Retry => EventKind::Retry,
            Command::SetWeight(_) => EventKind::SetWeight,
        }
    }
}
