//! A fleet of gateways on one PostgreSQL database (`[state] backend = "postgres"`): the
//! rollout's state shared by every instance, one controller, and evidence that adds up.
//!
//! `store` is the controller's `StateStore` on PostgreSQL (compare-and-set route rows,
//! fenced controller writes, summed evidence); `lease` is the leader's lease; `pool` the
//! connections; `migrate` the schema's versions (`migrations/postgres/`); `run` the
//! background work of every instance (taking or renewing the lease, taking over what
//! others changed, flushing this instance's evidence); `status` what `/admin/fleet`
//! and `/metrics` show. The request path never waits for any of it: it reads the
//! published atomics, which keep the last weights while the database is away.
//! docs/fleet.md explains the design and its failure cases.

mod lease;
mod migrate;
mod pool;
mod run;
mod status;
mod store;

pub use lease::{CAMPAIGN_PERIOD, Lease};
pub use migrate::CURRENT as SCHEMA_VERSION;
pub use run::{FLUSH_PERIOD, Fleet};
pub use status::single as single_status;
pub use store::{CHANNEL, PgStore};
