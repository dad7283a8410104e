//! The alert evaluator: the `[[alerts]]` rules (or the five defaults) evaluated every
//! slot over sliding windows of what the request path already counts (`metrics`: no
//! hot-path work of its own), kept as a bounded ring of snapshots; each rule instance
//! goes pending → firing → resolved as Prometheus alerting does, says "no data" when it
//! has none, and announces firing and resolved through the notifiers.

mod board;
mod evaluate;
mod export;
mod rule;
mod state;
mod window;

pub use board::{AlertBoard, AlertStatus};
pub use evaluate::{Observed, run};
pub use export::prometheus_rules;
pub use rule::Scope;
pub use state::{AlertState, Tracker, Transition};
pub use window::{ArmSample, Ring, quantile};
