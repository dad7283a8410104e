//! Windowed totals in bounded memory: per arm, a ring of five-minute slots over the last
//! 24 hours (288 slots), so `--since` can be answered for any span up to a day at the
//! granularity of one slot. A slot is reused when its time comes round again.

use cutover_wire::usage::Usage;
use serde::{Deserialize, Serialize};

use super::price::Nanos;

/// Seconds per slot.
pub const SLOT_SECONDS: u64 = 300;
/// The span the ring covers.
pub const WINDOW_SECONDS: u64 = 24 * 3600;
const SLOTS: usize = (WINDOW_SECONDS / SLOT_SECONDS) as usize;
/// Primary, candidate, shadow (indexed by `Role`).
const ARMS: usize = 3;

/// The requests of one arm over some span, and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    /// Answered in good order (a 2xx answer read to its end).
    pub successful: u64,
    /// Requests whose cost is known (priced usage, or an answer that costs nothing)…
    pub known: u64,
    /// …and those whose cost is not (no usage reported, or a model without a price).
    pub unknown: u64,
    /// The cost of the `known` requests.
    pub cost: Nanos,
    /// Tokens of every request that reported usage.
    pub tokens: Usage,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.successful += other.successful;
        self.known += other.known;
        self.unknown += other.unknown;
        self.cost = Nanos(self.cost.0.saturating_add(other.cost.0));
        self.tokens.add(&other.tokens);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Which five minutes since the epoch this slot holds; 0 = never used.
    epoch: u64,
    arms: [Totals; ARMS],
}

/// The ring of one route.
#[derive(Debug)]
pub struct Window {
    slots: Box<[Slot]>,
}

impl Default for Window {
    fn default() -> Self {
        Window { slots: vec![Slot::default(); SLOTS].into_boxed_slice() }
    }
}

impl Window {
    /// Adds `totals` to `arm` at `now` (seconds since the epoch).
    pub fn add(&mut self, now: u64, arm: usize, totals: &Totals) {
        let epoch = now / SLOT_SECONDS;
        let slot = &mut self.slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot { epoch, arms: Default::default() };
        }
        if let Some(into) = slot.arms.get_mut(arm) {
            into.add(totals);
        }
    }

    /// Each arm's totals over the `span` seconds before `now` (whole slots, the current
    /// one included; at most the ring's 24 hours).
    pub fn sum(&self, now: u64, span: u64) -> [Totals; ARMS] {
        let current = now / SLOT_SECONDS;
        let slots = span.min(WINDOW_SECONDS).div_ceil(SLOT_SECONDS).max(1);
        let oldest = (current + 1).saturating_sub(slots);
        let mut sums = [Totals::default(); ARMS];
        for slot in self.slots.iter().filter(|slot| slot.epoch >= oldest && slot.epoch <= current) {
            for (sum, arm) in sums.iter_mut().zip(&slot.arms) {
                sum.add(arm);
            }
        }
        sums
    }
}
