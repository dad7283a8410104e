//! Command-line verbs that talk to a running gateway rather than run one.

pub mod admin_call;
pub mod alerts;
pub mod cost;
pub mod fleet;
pub mod rollout;
pub mod shadow;
pub mod validate;
