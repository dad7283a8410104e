//! Agreement per user cell, for the variance of what is randomised: pairs from one sticky
//! conversation share a prompt style and a task, so they agree or disagree together, and
//! counting them as independent draws makes the agreement's bounds optimistic. As the error
//! criteria do (`rollout::stats::clusters`), pairs are summed per cell of the sticky key's
//! hash (every cell a union of whole users), and the cluster-robust design effect of those
//! sums inflates the agreement test's variance. Fewer cells than the error rates' (64, not
//! 512): each holds a count per dimension, and mirrored users are a share of the step's.
//! Pairs without a sticky key stay units of one.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use cutover_model::Dimension;
use serde::{Deserialize, Serialize};

use super::aggregate::{add, counters, load};

/// Cells of mirrored users.
pub const AGREEMENT_CELLS: usize = 64;

/// The cell of a sticky key's hash, from its high bits as the error cells take theirs
/// (`rollout::stats::clusters::cell_of`: the user count's HyperLogLog uses the low ones).
fn cell(user: u64) -> usize {
    (user >> 32) as usize % AGREEMENT_CELLS
}

/// Per cell: the pairs, those that agreed on everything, and per dimension the pairs judged
/// and agreed; relaxed atomic adds from the mirrors' tasks.
#[derive(Debug)]
pub struct UserCells {
    pairs: [AtomicU64; AGREEMENT_CELLS],
    agreeing: [AtomicU64; AGREEMENT_CELLS],
    judged: [[AtomicU64; AGREEMENT_CELLS]; Dimension::COUNT],
    agreed: [[AtomicU64; AGREEMENT_CELLS]; Dimension::COUNT],
}

impl Default for UserCells {
    fn default() -> Self {
        UserCells {
            pairs: counters(),
            agreeing: counters(),
            judged: std::array::from_fn(|_| counters()),
            agreed: std::array::from_fn(|_| counters()),
        }
    }
}

impl UserCells {
    /// One keyed pair: whether it agreed on everything, and each dimension's verdict.
    pub fn record(&self, user: u64, agrees: bool, verdicts: &[Option<bool>]) {
        let cell = cell(user);
        self.pairs[cell].fetch_add(1, Relaxed);
        if agrees {
            self.agreeing[cell].fetch_add(1, Relaxed);
        }
        for (dimension, verdict) in verdicts.iter().enumerate() {
            let Some(agreed) = verdict else { continue };
            self.judged[dimension][cell].fetch_add(1, Relaxed);
            if *agreed {
                self.agreed[dimension][cell].fetch_add(1, Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> CellsSnapshot {
        CellsSnapshot {
            pairs: load(&self.pairs),
            agreeing: load(&self.agreeing),
            judged: self.judged.iter().map(|cells| load(cells)).collect(),
            agreed: self.agreed.iter().map(|cells| load(cells)).collect(),
        }
    }

    /// Adds persisted (or another instance's) cells.
    pub fn restore(&self, saved: &CellsSnapshot) {
        add(&self.pairs, &saved.pairs);
        add(&self.agreeing, &saved.agreeing);
        self.judged.iter().zip(&saved.judged).for_each(|(cells, saved)| add(cells, saved));
        self.agreed.iter().zip(&saved.agreed).for_each(|(cells, saved)| add(cells, saved));
    }
}

/// A frozen copy, persisted with the agreement (absent from snapshots saved before it
/// existed: their pairs count as independent, as they did).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CellsSnapshot {
    pub pairs: Vec<u64>,
    pub agreeing: Vec<u64>,
    /// Indexed by `Dimension`, then by cell.
    pub judged: Vec<Vec<u64>>,
    pub agreed: Vec<Vec<u64>>,
}

impl CellsSnapshot {
    /// Per cell (pairs, disagreeing pairs) of the pairs judged overall (`None`) or on one
    /// dimension; empty for a snapshot without cells.
    pub fn disagreement(&self, dimension: Option<Dimension>) -> (Vec<u64>, Vec<u64>) {
        let (pairs, agreeing) = match dimension {
            None => (&self.pairs, &self.agreeing),
            Some(dimension) => match (self.judged.get(dimension as usize), self.agreed.get(dimension as usize)) {
                (Some(judged), Some(agreed)) => (judged, agreed),
                _ => return (Vec::new(), Vec::new()),
            },
        };
        let disagreeing = pairs.iter().zip(agreeing).map(|(pairs, agreeing)| pairs.saturating_sub(*agreeing)).collect();
        (pairs.clone(), disagreeing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_pairs_land_in_one_cell_per_dimension_judged() {
        let cells = UserCells::default();
        let user = 7u64 << 32;
        let mut verdicts = [None; Dimension::COUNT];
        verdicts[Dimension::Outcome as usize] = Some(true);
        verdicts[Dimension::ToolCalls as usize] = Some(false);
        cells.record(user, false, &verdicts);
        cells.record(user, true, &[None; Dimension::COUNT]);
        let snapshot = cells.snapshot();
        let (pairs, disagreeing) = snapshot.disagreement(None);
        assert_eq!((pairs[7], disagreeing[7], pairs.iter().sum::<u64>()), (2, 1, 2));
        let (judged, disagreeing) = snapshot.disagreement(Some(Dimension::ToolCalls));
        assert_eq!((judged[7], disagreeing[7]), (1, 1));
        let (judged, disagreeing) = snapshot.disagreement(Some(Dimension::Outcome));
        assert_eq!((judged[7], disagreeing[7]), (1, 0));
    }

    #[test]
    fn restored_cells_add_up_and_old_snapshots_have_none() {
        let cells = UserCells::default();
        cells.record(3 << 32, true, &[Some(true); Dimension::COUNT]);
        let saved = cells.snapshot();
        cells.restore(&saved);
        assert_eq!(cells.snapshot().pairs[3], 2);
        assert_eq!(cells.snapshot().agreed[0][3], 2);
        assert_eq!(CellsSnapshot::default().disagreement(Some(Dimension::Outcome)), (Vec::new(), Vec::new()));
    }
}
