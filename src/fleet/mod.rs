//! A fleet of gateways on one PostgreSQL database (`[state] backend = "postgres"`): the
//! rollout's state shared by every instance, one controller, and evidence that adds up.
//!
//! `store` is the controller's `StateStore` on PostgreSQL (compare-and-set route rows,
//! fenced controller writes, summed evidence); `lease` is the leader's lease; `pool` the
//! connections; `migrate` the schema's versions (`migrations/postgres/`); `retention`
//! what keeps the tables bounded (silent instances expired, their evidence folded, old
//! rows of finished steps deleted); `run` the background work of every instance (taking
//! or renewing the lease, taking over what others changed, flushing this instance's
//! evidence, and on the leader the retention); `status` what `/admin/fleet` and
//! `/metrics` show. The request path never waits for any of it: it reads the
//! published atomics, which keep the last weights while the database is away.
//! docs/fleet.md explains the design and its failure cases.

mod lease;
mod migrate;
mod pool;
mod retention;
mod run;
mod status;
mod store;

pub use lease::{CAMPAIGN_PERIOD, Lease};
pub use migrate::CURRENT as SCHEMA_VERSION;
pub use retention::{DEPARTED, EXPIRY_LEASES, Pruned};
pub use run::{FLUSH_PERIOD, Fleet};
pub use status::single as single_status;
pub use store::{CHANNEL, EvidenceRow, Flushed, PgStore};
