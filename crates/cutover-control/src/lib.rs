//! The control path of a rollout: the statistics that judge a step's evidence and the
//! controller that moves each route's weight. The state it moves is kept by a
//! `cutover_state::StateStore` and published to the request path through
//! `cutover_live`'s atomics; the evidence is `cutover_live::stats`.
//!
//! The controller is split by concern: `decide` says what a tick or a command calls for
//! (pure), `control` carries it out (state store, publication, notification), `view`
//! shows it, `gate` runs `cutover validate` before a rollout that requires it, and
//! `fleet` is what every instance of a fleet runs beside it (lease, take-over, flush).

// Evidence and its judgement (pure).
pub mod analysis;
pub mod inference;

// The controller: decisions, their application, the operator's commands, the view.
mod clock;
mod command;
mod control;
mod decide;
mod validation;
mod view;

// Around it: the clock that drives it, a fleet's background work, the gate, the webhooks.
pub mod driver;
pub mod fleet;
pub mod gate;
pub mod notify;
pub mod supervise;

#[cfg(test)]
mod simulation;

pub use command::{Command, ControlError};
pub use control::{LocalEvidence, RolloutControl};
pub use validation::Validation;
