//! What serving an arm's requests cost, for the `max_cost_ratio` criterion: per cell, the
//! count of successful client requests of known cost and their summed cost in integer
//! nano-dollars, and per arm the count of successful requests whose cost is unknown (an
//! unpriced model, an answer without usage). A keyed request goes to its user's cell, as
//! the error evidence does (`clusters`); an unkeyed one to the next cell in turn, which is
//! independent of what it cost. Every cell is then a sum of independent units, so the
//! spread of the cell sums gives the cluster-robust variance of the mean cost per request
//! without keeping per-request squares (which would overflow integers and need floats on
//! the request path).

use serde::{Deserialize, Serialize};

/// The persisted cost evidence of one arm. Absent from snapshots written before cost was
/// evidence: those load with no cost evidence (`serde(default)` on the field), and their
/// other evidence is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Successful requests of known cost, per cell.
    pub requests: Vec<u64>,
    /// Their cost in nano-dollars, per cell.
    pub nanos: Vec<u64>,
    /// Successful requests whose cost is unknown.
    pub unknown: u64,
}

/// An arm's mean cost per successful request with its variance over units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCost {
    /// Successful requests of known cost.
    pub known: u64,
    pub unknown: u64,
    /// Dollars per successful request.
    pub mean: f64,
    /// The variance of `mean` over the non-empty cells (cluster-robust, with the k/(k−1)
    /// small-sample factor).
    pub variance: f64,
    /// Non-empty cells: the independent units behind the variance.
    pub units: usize,
}

impl MeanCost {
    /// The share of successful requests whose cost is unknown.
    pub fn unknown_share(&self) -> f64 {
        self.unknown as f64 / (self.known + self.unknown).max(1) as f64
    }
}

impl Spend {
    /// The mean cost per request and its variance: for cell sums `Cᵢ` over `Nᵢ` requests,
    /// `μ̂ = ΣCᵢ/ΣNᵢ` and `Var(μ̂) ≈ k/(k−1) · Σ(Cᵢ − μ̂Nᵢ)² / (ΣNᵢ)²` (the delta method
    /// for a ratio of sums, as `clusters` uses for error rates).
    pub fn estimate(&self) -> MeanCost {
        let known: u64 = self.requests.iter().sum();
        let total: f64 = self.nanos.iter().map(|nanos| *nanos as f64).sum::<f64>() / 1e9;
        let mean = total / known.max(1) as f64;
        let (mut squares, mut units) = (0.0, 0usize);
        for (requests, nanos) in self.requests.iter().zip(&self.nanos) {
            if *requests > 0 {
                squares += (*nanos as f64 / 1e9 - mean * *requests as f64).powi(2);
                units += 1;
            }
        }
        let variance = if units > 1 {
            squares * units as f64 / (units - 1) as f64 / (known as f64).powi(2)
        } else {
            f64::INFINITY
        };
        MeanCost { known, unknown: self.unknown, mean, variance, units }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_is_exact_and_the_variance_that_of_independent_requests() {
        // 1,000 requests alternating $0.001 and $0.003, one per cell: the mean is $0.002 and
        // the variance of the mean is σ²/n = 1e-6 / 1000 (times k/(k−1)).
        let cells = 1000;
        let mut spend = Spend { requests: vec![0; cells], nanos: vec![0; cells], unknown: 0 };
        for request in 0..1000 {
            let cost = if request % 2 == 0 { 1_000_000 } else { 3_000_000 };
            spend.requests[request % cells] += 1;
            spend.nanos[request % cells] += cost;
        }
        let estimate = spend.estimate();
        assert_eq!(estimate.known, 1000);
        assert!((estimate.mean - 0.002).abs() < 1e-15, "{estimate:?}");
        assert!((estimate.variance / 1e-9 - 1000.0 / 999.0).abs() < 1e-6, "{estimate:?}");
        // A user who always sends dear requests is one unit: two such users in two cells
        // give the spread of two units, far more than 20 independent requests would.
        let users = Spend { requests: vec![10, 10], nanos: vec![10_000_000, 30_000_000], unknown: 0 };
        assert!(users.estimate().variance > 4.0 * 1e-6 / 20.0, "{:?}", users.estimate());
    }

    #[test]
    fn one_cell_cannot_make_a_variance() {
        let spend = Spend { requests: vec![10], nanos: vec![10_000], unknown: 2 };
        let estimate = spend.estimate();
        assert!(estimate.variance.is_infinite());
        assert!((estimate.unknown_share() - 2.0 / 12.0).abs() < 1e-12);
    }
}
