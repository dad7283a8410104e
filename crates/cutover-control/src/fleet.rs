//! A fleet of gateways on one PostgreSQL database (`[state] backend = "postgres"`): the
//! rollout's state shared by every instance, one controller, and evidence that adds up.
//!
//! The store is `cutover_state::PgStore` (compare-and-set route rows, fenced controller
//! writes, summed evidence, the leader's lease, the schema's versions, retention). Here:
//! `run`, the background work of every instance (taking
//! or renewing the lease, taking over what others changed, flushing this instance's
//! evidence, and on the leader the retention); `status` what `/admin/fleet` and
//! `/metrics` show. The request path never waits for any of it: it reads the
//! published atomics, which keep the last weights while the database is away.
//! docs/fleet.md explains the design and its failure cases.

mod run;
mod status;

pub use run::{FLUSH_PERIOD, Fleet};
pub use status::single as single_status;
