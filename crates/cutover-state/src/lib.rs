//! Where a gateway keeps its rollouts: each route's state, the audit log of its
//! transitions (`Event`), the evidence its step was judged on, and run-time shadow
//! shares. Two stores: the SQLite file of one gateway (`sqlite::Store`, the default) and
//! the PostgreSQL database a fleet shares (`pg::PgStore`, docs/fleet.md).
//!
//! Two traits, because they are two concerns. `StateStore` is persistence, what every
//! store does; the controller talks to it only. `Coordination` is what sharing a store
//! with other gateways adds, and only a fleet's store has it (`StateStore::fleet`):
//! whether this instance runs the controller (`leads`), what another instance changed
//! (`changed`), the step's evidence summed over the instances (`merged_evidence`).
//! Who may write what is `Authority`: the leader's decisions are fenced by its lease, an
//! operator's command is compared-and-set on the route's row. Every call blocks: callers
//! are on blocking threads.

use cutover_live::stats::{ArmSnapshot, StepSnapshot};
use cutover_model::{EventKind, Phase, RouteState};

mod error;
pub mod evidence;
pub mod pg;
pub mod sqlite;

pub use error::{DatabaseError, FileError, StoreError};
pub use pg::PgStore;
pub use sqlite::{StateMode, Store};

/// On whose authority a transition is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The controller's own decision (a tick, a reconcile): in a fleet, only the leader
    /// holding the current lease epoch may write it.
    Controller,
    /// An operator's command: any instance may write it, if the route's row is still the
    /// one it was decided on (else a conflict, answered 409).
    Operator,
    /// An exposure-reducing transition that took effect while the store refused it,
    /// saved late: written whatever happened since (a rollback is never refused).
    Late,
}

/// One transition and its audit event, as the controller hands it to the store.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub state: &'a RouteState,
    pub from: Phase,
    pub kind: EventKind,
    pub actor: &'a str,
    pub reason: &'a str,
    pub now_ms: i64,
    pub authority: Authority,
}

/// Persistence: what the controller asks of the place its state is kept, whichever it is.
pub trait StateStore: Send + Sync {
    /// The state of each route, creating `pending` rows for routes seen for the first time.
    fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError>;

    /// Writes the state and its event in one transaction; returns the event as stored.
    fn record(&self, write: Write<'_>) -> Result<Event, StoreError>;

    /// Saves the evidence of a route's current step as the controller judged it (and the
    /// primary baseline kept for a 100% step) and the step's running time.
    fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError>;

    /// The evidence this process had of `state`'s step (restored into its counters at
    /// start-up) and the saved baseline.
    fn load_stats(&self, state: &RouteState) -> Result<(Option<StepSnapshot>, Option<ArmSnapshot>), StoreError>;

    /// The latest `limit` events, newest first, optionally of one route.
    fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// The shadow share an operator set for `route` at run time (`None`: the
    /// configuration's).
    fn shadow_share(&self, route: &str) -> Result<Option<f64>, StoreError>;

    /// Saves (or, with `None`, clears) the run-time shadow share of `route`; in a fleet
    /// the other instances adopt it as they adopt a weight.
    fn save_shadow_share(&self, route: &str, share: Option<f64>) -> Result<(), StoreError>;

    /// What sharing this store with other gateways adds, if it is shared (a fleet):
    /// `None` for one gateway's own store, which always runs the controller, and in which
    /// nothing changes behind its back.
    fn fleet(&self) -> Option<&dyn Coordination> {
        None
    }
}

/// Coordination: what a store shared by the instances of a fleet answers beyond
/// persistence.
pub trait Coordination: Send + Sync {
    /// Whether this process holds evidence it could not hand over yet (after an outage):
    /// a leader judges nothing until it has, since a new step would start its counters
    /// afresh.
    fn catching_up(&self) -> bool;

    /// Whether this process runs the controller's decisions now.
    fn leads(&self) -> bool;

    /// Whether the store cannot be reached now: then every instance guards its routes
    /// on its own evidence (a rollback only) until it can.
    fn cut_off(&self) -> bool;

    /// Route states another process wrote since this one last read or wrote them.
    fn changed(&self) -> Result<Vec<RouteState>, StoreError>;

    /// The step's evidence over every process serving the route: `local` (this
    /// process's counters) plus what the others reported.
    fn merged_evidence(&self, state: &RouteState, local: StepSnapshot) -> Result<StepSnapshot, StoreError>;
}

/// One row of the audit log (the model's, shown as it is by the admin API).
pub use cutover_model::event::Event;
