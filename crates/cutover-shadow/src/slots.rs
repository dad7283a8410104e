//! The mirror's two bounds, taken without waiting when a request is mirrored: the copies in
//! flight to the candidate (`COPY_SLOTS`), and the pairs open at all (`PAIR_SLOTS`), a pair
//! being open from its copy's start until it is judged, so including the pairs whose copy
//! was answered and that wait for the primary's answer (which comes when the client's
//! answer ends). Without the second bound a slow primary — or a client reading slowly —
//! would let waiting pairs, each holding the candidate's captured answer, pile up.
//!
//! Memory: an open pair holds at most two captures of 272 KiB (`capture`) and shares the
//! request body with the primary's exchange, so `PAIR_SLOTS` × 544 KiB ≈ 68 MiB of
//! captures at worst, plus the request bodies (each at most `max_body_mb`).

use std::sync::Arc;

use cutover_model::ShadowDrop;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Copies in flight to the candidate at most; beyond, mirrors are dropped `full`.
pub const COPY_SLOTS: usize = 64;
/// Pairs open at most (copies in flight and answered pairs waiting for the primary);
/// beyond, mirrors are dropped `waiting`. Twice the copies: with fewer than `COPY_SLOTS`
/// pairs waiting this bound never binds before `COPY_SLOTS` does, so `full` stays the
/// candidate's slowness and `waiting` the primary's.
pub const PAIR_SLOTS: usize = 2 * COPY_SLOTS;

/// Shared by every gateway a reload builds, so that pairs in flight keep their slots.
#[derive(Debug, Clone)]
pub struct MirrorSlots {
    copies: Arc<Semaphore>,
    pairs: Arc<Semaphore>,
}

/// What an admitted pair holds: its pair slot until dropped (judged, or given up), and
/// its copy slot until `copy_done`.
#[derive(Debug)]
pub struct PairSlot {
    copy: Option<OwnedSemaphorePermit>,
    _pair: OwnedSemaphorePermit,
}

impl PairSlot {
    /// The candidate's answer is read: the copy's slot is free for another.
    pub fn copy_done(&mut self) {
        self.copy = None;
    }
}

impl Default for MirrorSlots {
    fn default() -> Self {
        MirrorSlots { copies: Arc::new(Semaphore::new(COPY_SLOTS)), pairs: Arc::new(Semaphore::new(PAIR_SLOTS)) }
    }
}

impl MirrorSlots {
    /// A slot for one more pair, or why there is none. Never waits.
    pub fn admit(&self) -> Result<PairSlot, ShadowDrop> {
        let copy = self.copies.clone().try_acquire_owned().map_err(|_| ShadowDrop::Full)?;
        let pair = self.pairs.clone().try_acquire_owned().map_err(|_| ShadowDrop::Waiting)?;
        Ok(PairSlot { copy: Some(copy), _pair: pair })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_in_flight_beyond_their_slots_are_dropped_full() {
        let slots = MirrorSlots::default();
        let in_flight: Vec<_> = (0..COPY_SLOTS).map(|_| slots.admit().unwrap()).collect();
        assert_eq!(slots.admit().unwrap_err(), ShadowDrop::Full);
        drop(in_flight);
        assert!(slots.admit().is_ok());
    }

    #[test]
    fn pairs_waiting_for_the_primary_beyond_their_slots_are_dropped_waiting() {
        let slots = MirrorSlots::default();
        let waiting: Vec<_> = (0..PAIR_SLOTS)
            .map(|_| {
                let mut slot = slots.admit().unwrap();
                slot.copy_done();
                slot
            })
            .collect();
        assert_eq!(slots.admit().unwrap_err(), ShadowDrop::Waiting);
        // A refused pair takes no copy slot with it.
        assert_eq!(slots.copies.available_permits(), COPY_SLOTS);
        drop(waiting);
        assert!(slots.admit().is_ok());
    }
}
