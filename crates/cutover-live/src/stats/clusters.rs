//! Error rates with the variance of what is randomised: users, not requests. A sticky
//! user's requests share a prompt style, a client and a network, so their outcomes are
//! correlated; treating them as independent understates the variance and rolls healthy
//! candidates back. Requests are summed per cell (`user hash % CELLS`): every cell is a
//! union of whole users, so the cell sums are independent units with bounded memory, and
//! the cluster-robust (delta-method) variance of a ratio of sums applies to them.
//! Requests without a sticky key stay independent draws.

use serde::{Deserialize, Serialize};

/// Cells per arm. 512 units give the variance estimate ~500 degrees of freedom once an
/// arm has thousands of users (fewer users simply leave cells empty), for 12 KiB per arm.
pub const CELLS: usize = 512;

/// The cell of a sticky key's hash. Uses the high bits: the user-count HyperLogLog uses
/// the low ones, and the traffic split hashes the key differently, so the candidate's
/// users (one range of the split) still spread over every cell.
pub fn cell_of(hash: u64) -> usize {
    (hash >> 32) as usize % CELLS
}

/// Which failures a rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Upstream,
    Client,
}

/// Per-cell sums of one arm's keyed requests. Requests without a key are the arm's totals
/// minus these sums, so they need no counters of their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cells {
    pub requests: Vec<u64>,
    pub upstream_errors: Vec<u64>,
    pub client_errors: Vec<u64>,
}

/// An error rate with its cluster-robust variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateEstimate {
    pub failures: u64,
    pub requests: u64,
    /// How much the clustering inflates the variance of the rate over independent
    /// requests; at least 1 (see `estimate`).
    pub design_effect: f64,
}

impl RateEstimate {
    pub fn rate(&self) -> f64 {
        self.failures as f64 / self.requests.max(1) as f64
    }
}

impl Cells {
    fn failures(&self, failure: Failure) -> &[u64] {
        match failure {
            Failure::Upstream => &self.upstream_errors,
            Failure::Client => &self.client_errors,
        }
    }

    /// The rate of `failures` out of `requests` (the arm's totals), with the variance over
    /// units: each non-empty cell, and each unkeyed request.
    pub fn estimate(&self, failures: u64, requests: u64, failure: Failure) -> RateEstimate {
        let counted = self.failures(failure);
        let keyed: u64 = self.requests.iter().sum();
        let keyed_failures: u64 = counted.iter().sum();
        let (unkeyed, unkeyed_failures) = (requests.saturating_sub(keyed), failures.saturating_sub(keyed_failures));
        let total = keyed + unkeyed;
        let rate = (keyed_failures + unkeyed_failures) as f64 / total.max(1) as f64;
        // Σ (eᵢ − p̂ nᵢ)² over the units; an unkeyed request is a unit of one.
        let mut squares =
            unkeyed_failures as f64 * (1.0 - rate).powi(2) + (unkeyed - unkeyed_failures) as f64 * rate.powi(2);
        let mut units = unkeyed;
        for (requests, failures) in self.requests.iter().zip(counted.iter().chain(std::iter::repeat(&0))) {
            if *requests > 0 {
                squares += (*failures as f64 - rate * *requests as f64).powi(2);
                units += 1;
            }
        }
        let binomial = rate * (1.0 - rate) * total as f64;
        // Clamped at 1: sticky users can only add correlation; an estimate below 1 is the
        // noise of a few units, and trusting it would make the bounds anti-conservative.
        let design_effect = if units > 1 && binomial > 0.0 {
            (squares * units as f64 / (units - 1) as f64 / binomial).max(1.0)
        } else {
            1.0
        };
        RateEstimate { failures, requests, design_effect }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(per_cell: &[(u64, u64)]) -> Cells {
        let mut cells =
            Cells { requests: vec![0; CELLS], upstream_errors: vec![0; CELLS], client_errors: vec![0; CELLS] };
        for (index, (requests, errors)) in per_cell.iter().enumerate() {
            cells.requests[index] = *requests;
            cells.upstream_errors[index] = *errors;
        }
        cells
    }

    #[test]
    fn independent_requests_have_no_design_effect() {
        let estimate = Cells::default().estimate(10, 1000, Failure::Upstream);
        assert!((1.0..1.01).contains(&estimate.design_effect), "{estimate:?}");
        assert_eq!(estimate.rate(), 0.01);
    }

    #[test]
    fn errors_concentrated_in_a_few_users_inflate_the_variance() {
        // 20 users of 50 requests; all 10 failures come from one of them.
        let mut per_cell = vec![(50, 0); 20];
        per_cell[3] = (50, 10);
        let concentrated = cells(&per_cell).estimate(10, 1000, Failure::Upstream);
        assert!(concentrated.design_effect > 10.0, "{concentrated:?}");
        // The same failures spread one per user look like independent draws.
        let spread: Vec<(u64, u64)> = (0..20).map(|user| (50, u64::from(user < 10))).collect();
        let spread = cells(&spread).estimate(10, 1000, Failure::Upstream);
        assert!(spread.design_effect < 1.2, "{spread:?}");
    }

    #[test]
    fn unkeyed_requests_count_as_units_of_one() {
        // 100 keyed requests in one cell and 900 unkeyed: the keyed cell alone cannot make a
        // variance, the unkeyed requests can.
        let estimate = cells(&[(100, 1)]).estimate(10, 1000, Failure::Upstream);
        assert!(estimate.design_effect >= 1.0 && estimate.design_effect < 2.0, "{estimate:?}");
        assert_eq!((estimate.failures, estimate.requests), (10, 1000));
    }

    #[test]
    fn the_cell_of_a_user_uses_other_bits_than_the_user_count() {
        let cells: std::collections::HashSet<usize> = (0..10_000u64).map(|user| cell_of(user << 32)).collect();
        assert_eq!(cells.len(), CELLS);
    }
}
