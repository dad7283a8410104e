//! Cost: the tokens every answer used, as its upstream reported them (read by
//! `cutover_wire::usage`), priced exactly (`price`), attributed to the upstream and role
//! that answered and to the arm the split chose (`ledger`, windowed in `window`), and
//! reported with a monthly projection (`report`). The request path reads usage off the
//! body stack's framer (streams) or a bounded copy of a whole answer
//! (`proxy::body::Meter`) and settles each answer into the ledger (`Charge`).

mod exposition;
mod ledger;
mod price;
mod report;
mod window;

use std::sync::Arc;

pub use exposition::write_metrics;
pub use ledger::{Entry, Ledger, SeriesKey, SeriesTotals, now_seconds};
pub use price::{Nanos, cost};
pub use report::{
    ArmCost, CostReport, Projection, ReportError, RouteCost, TokensPerRequest, checked_report, parse_since, render,
    report,
};
pub use window::{SLOT_SECONDS, Totals, WINDOW_SECONDS};

use cutover_config::{ModelPrice, RouteId};
use cutover_model::Role;
use cutover_wire::usage::{Endpoint, Usage};

/// Who pays for one answer: fixed when the gateway commits to it.
#[derive(Debug, Clone)]
pub struct Charge {
    pub route: RouteId,
    /// The role of the upstream that answered.
    pub answered_by: Role,
    /// The arm the split chose (a fallback's answer belongs to the candidate arm).
    pub arm: Role,
    pub endpoint: Endpoint,
    pub model: ModelPrice,
}

/// How an answer ended, as far as its cost is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// A 2xx answer: one without usage is counted as missing.
    pub success_status: bool,
    /// Read to its end in good order.
    pub complete: bool,
}

impl Charge {
    /// What the answer cost, if known: its usage priced, nothing for an error answer
    /// without usage, unknown for a model without a price or a success without usage.
    pub fn cost(&self, usage: Option<&Usage>, success_status: bool) -> Option<Nanos> {
        match usage {
            Some(usage) => self.model.price.as_ref().map(|price| cost(usage, price)),
            None if success_status => None,
            None => Some(Nanos(0)),
        }
    }

    /// Records the answer in the ledger, once.
    pub fn settle(&self, ledger: &Ledger, usage: Option<Usage>, ending: Ending) -> Option<Nanos> {
        let cost = self.cost(usage.as_ref(), ending.success_status);
        let entry = Entry {
            route: self.route,
            answered_by: self.answered_by,
            arm: self.arm,
            model: Arc::clone(&self.model.label),
            usage,
            cost,
            successful: ending.success_status && ending.complete,
            missing_usage: ending.success_status && usage.is_none(),
        };
        ledger.record(entry, now_seconds());
        cost
    }
}

#[cfg(test)]
mod tests;
