//! The evidence of one rollout step: per arm, request outcomes, per-cell sums of sticky
//! users' requests (for the variance over users), latency and TTFT histograms of
//! successful requests with 1% buckets, and distinct users (HyperLogLog). Recorded
//! lock-free from the request path, with no allocation; snapshotted by the controller,
//! persisted every interval and at shutdown, and restored after a restart so that a step
//! loses at most one interval of evidence (none after a SIGTERM).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

pub mod clusters;
pub mod histogram;
pub mod spend;

use clusters::{CELLS, Cells, Failure, RateEstimate, cell_of};
use histogram::{BUCKETS, Histogram, bucket_of};
use spend::Spend;

use cutover_model::{Latency, Outcome};
use cutover_shadow::{Agreement, AgreementSnapshot};
pub use histogram::{lower_edge_ms, upper_edge_ms};

/// HyperLogLog with 256 registers: about 6.5% standard error on distinct users.
const HLL_REGISTERS: usize = 256;
/// The version of the persisted snapshot. Version 1 (10% buckets, no cells, no field)
/// fails to deserialize and is discarded by the store: its latency cannot be re-bucketed
/// without inventing precision, and its requests carry no users for the variance.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// The arms a step compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// Every request the primary served.
    Primary = 0,
    /// The primary users hashed just above the candidate's range: same size, same time.
    Control = 1,
    Candidate = 2,
    /// Mirrored copies of primary requests, answered by the candidate.
    Shadow = 3,
    /// The primary's own answers to the mirrored requests: the shadow arm's pairs.
    ShadowPrimary = 4,
}

fn counters(len: usize) -> Box<[AtomicU64]> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

fn load(counters: &[AtomicU64]) -> Vec<u64> {
    counters.iter().map(|count| count.load(Relaxed)).collect()
}

fn add(counters: &[AtomicU64], values: &[u64]) {
    for (counter, value) in counters.iter().zip(values) {
        counter.fetch_add(*value, Relaxed);
    }
}

/// About 54 KiB per arm: two 2,102-bucket histograms (33 KiB), 512 cells of five
/// counters (20 KiB), the user registers and the outcome counters.
#[derive(Debug)]
struct ArmStats {
    outcomes: [AtomicU64; 3],
    latency: Box<[AtomicU64]>,
    ttft: Box<[AtomicU64]>,
    users: Box<[AtomicU8]>,
    cell_requests: Box<[AtomicU64]>,
    cell_upstream_errors: Box<[AtomicU64]>,
    cell_client_errors: Box<[AtomicU64]>,
    cell_cost_requests: Box<[AtomicU64]>,
    cell_cost_nanos: Box<[AtomicU64]>,
    cost_unknown: AtomicU64,
    /// The cell of the next unkeyed request of known cost (round robin).
    cost_cursor: AtomicU64,
}

impl ArmStats {
    fn new() -> ArmStats {
        ArmStats {
            outcomes: Default::default(),
            latency: counters(BUCKETS),
            ttft: counters(BUCKETS),
            users: (0..HLL_REGISTERS).map(|_| AtomicU8::new(0)).collect(),
            cell_requests: counters(CELLS),
            cell_upstream_errors: counters(CELLS),
            cell_client_errors: counters(CELLS),
            cell_cost_requests: counters(CELLS),
            cell_cost_nanos: counters(CELLS),
            cost_unknown: AtomicU64::new(0),
            cost_cursor: AtomicU64::new(0),
        }
    }

    /// Three relaxed adds (one more for an unkeyed request), no lock.
    fn record_cost(&self, cost: Option<u64>, user: Option<u64>) {
        let Some(nanos) = cost else {
            self.cost_unknown.fetch_add(1, Relaxed);
            return;
        };
        let cell = match user {
            Some(user) => cell_of(xxh3_64(&user.to_le_bytes())),
            None => (self.cost_cursor.fetch_add(1, Relaxed) % CELLS as u64) as usize,
        };
        self.cell_cost_requests[cell].fetch_add(1, Relaxed);
        self.cell_cost_nanos[cell].fetch_add(nanos, Relaxed);
    }

    fn record(&self, sample: Sample) {
        // An answer the client abandoned says nothing of the upstream: no request, no error,
        // no latency in the step's evidence.
        if sample.outcome == Outcome::Cancelled {
            return;
        }
        self.outcomes[sample.outcome as usize].fetch_add(1, Relaxed);
        // Only answers are latency: an error (or a request the breaker never sent, recorded
        // at 0 ms) is error evidence, and timing it would make a failing candidate look fast.
        if sample.outcome == Outcome::Ok {
            self.latency[bucket_of(sample.duration)].fetch_add(1, Relaxed);
            if let Some(ttft) = sample.ttft {
                self.ttft[bucket_of(ttft)].fetch_add(1, Relaxed);
            }
        }
        if let Some(user) = sample.user {
            let hash = xxh3_64(&user.to_le_bytes());
            let register = (hash as usize) % HLL_REGISTERS;
            let rank = ((hash >> 8) | (1 << 55)).trailing_zeros() as u8 + 1;
            self.users[register].fetch_max(rank, Relaxed);
            let cell = cell_of(hash);
            self.cell_requests[cell].fetch_add(1, Relaxed);
            match sample.outcome {
                Outcome::UpstreamError => self.cell_upstream_errors[cell].fetch_add(1, Relaxed),
                Outcome::ClientError => self.cell_client_errors[cell].fetch_add(1, Relaxed),
                Outcome::Ok | Outcome::Cancelled => 0,
            };
        }
    }

    fn snapshot(&self) -> ArmSnapshot {
        ArmSnapshot {
            ok: self.outcomes[Outcome::Ok as usize].load(Relaxed),
            client_errors: self.outcomes[Outcome::ClientError as usize].load(Relaxed),
            upstream_errors: self.outcomes[Outcome::UpstreamError as usize].load(Relaxed),
            latency: Histogram(load(&self.latency)),
            ttft: Histogram(load(&self.ttft)),
            users: self.users.iter().map(|register| register.load(Relaxed)).collect(),
            cells: Cells {
                requests: load(&self.cell_requests),
                upstream_errors: load(&self.cell_upstream_errors),
                client_errors: load(&self.cell_client_errors),
            },
            spend: self.spend(),
        }
    }

    fn spend(&self) -> Spend {
        Spend {
            requests: load(&self.cell_cost_requests),
            nanos: load(&self.cell_cost_nanos),
            unknown: self.cost_unknown.load(Relaxed),
        }
    }

    /// The counts alone (outcomes, users and the cost cells), without the histograms and
    /// the error cells: what the admin view shows, at a fraction of a snapshot's cost.
    fn counts(&self) -> ArmSnapshot {
        ArmSnapshot {
            ok: self.outcomes[Outcome::Ok as usize].load(Relaxed),
            client_errors: self.outcomes[Outcome::ClientError as usize].load(Relaxed),
            upstream_errors: self.outcomes[Outcome::UpstreamError as usize].load(Relaxed),
            users: self.users.iter().map(|register| register.load(Relaxed)).collect(),
            spend: self.spend(),
            ..ArmSnapshot::default()
        }
    }

    fn restore(&self, saved: &ArmSnapshot) {
        add(&self.outcomes, &[saved.ok, saved.client_errors, saved.upstream_errors]);
        add(&self.latency, &saved.latency.0);
        add(&self.ttft, &saved.ttft.0);
        for (register, value) in self.users.iter().zip(&saved.users) {
            register.fetch_max(*value, Relaxed);
        }
        add(&self.cell_requests, &saved.cells.requests);
        add(&self.cell_upstream_errors, &saved.cells.upstream_errors);
        add(&self.cell_client_errors, &saved.cells.client_errors);
        add(&self.cell_cost_requests, &saved.spend.requests);
        add(&self.cell_cost_nanos, &saved.spend.nanos);
        self.cost_unknown.fetch_add(saved.spend.unknown, Relaxed);
    }
}

/// What one finished attempt contributes.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub outcome: Outcome,
    pub duration: std::time::Duration,
    pub ttft: Option<std::time::Duration>,
    /// The sticky key's hash; `None` when the request had no key.
    pub user: Option<u64>,
}

#[derive(Debug)]
pub struct StepStats {
    arms: [ArmStats; 5],
    /// How the mirrored pairs agree (`shadow`).
    agreement: Agreement,
}

impl Default for StepStats {
    fn default() -> Self {
        StepStats { arms: std::array::from_fn(|_| ArmStats::new()), agreement: Agreement::default() }
    }
}

impl StepStats {
    /// Called per attempt on the request path: relaxed atomic adds, one hash, no lock.
    pub fn record(&self, arm: Arm, sample: Sample) {
        self.arms[arm as usize].record(sample);
    }

    /// Called once per successfully served client request of an endpoint with usage, on
    /// the arm the split chose: its cost in nano-dollars, `None` when unknown.
    pub fn record_cost(&self, arm: Arm, cost: Option<u64>, user: Option<u64>) {
        self.arms[arm as usize].record_cost(cost, user);
    }

    pub fn snapshot(&self) -> StepSnapshot {
        StepSnapshot {
            format: SNAPSHOT_FORMAT,
            arms: self.arms.iter().map(ArmStats::snapshot).collect(),
            agreement: self.agreement.snapshot(),
        }
    }

    /// The agreement alone, without copying the arms (for the view and `/metrics`).
    pub fn snapshot_agreement(&self) -> AgreementSnapshot {
        self.agreement.snapshot()
    }

    /// The mirrored pairs' agreement, recorded by the mirrors' tasks.
    pub fn agreement(&self) -> &Agreement {
        &self.agreement
    }

    /// One arm's evidence, without copying the others.
    pub fn arm_snapshot(&self, arm: Arm) -> ArmSnapshot {
        self.arms[arm as usize].snapshot()
    }

    /// One arm's outcome and user counts only (no latency, no cells).
    pub fn arm_counts(&self, arm: Arm) -> ArmSnapshot {
        self.arms[arm as usize].counts()
    }

    /// Adds persisted evidence back after a restart. A snapshot of another format is
    /// ignored (the step starts its evidence afresh) rather than misread.
    pub fn restore(&self, snapshot: &StepSnapshot) {
        if snapshot.format != SNAPSHOT_FORMAT {
            return;
        }
        for (stats, saved) in self.arms.iter().zip(&snapshot.arms) {
            stats.restore(saved);
        }
        self.agreement.restore(&snapshot.agreement);
    }
}

/// A frozen copy of one arm's evidence. Every field is required when deserializing, so
/// that a snapshot saved by an older version fails to load (and is discarded) instead of
/// being read as a step without users or latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSnapshot {
    pub ok: u64,
    pub client_errors: u64,
    pub upstream_errors: u64,
    /// Successful requests only.
    pub latency: Histogram,
    pub ttft: Histogram,
    pub users: Vec<u8>,
    pub cells: Cells,
    /// What its successful requests cost. The one field an older snapshot may lack (cost
    /// became evidence after format 2): it then loads empty, and the cost criterion
    /// counts from the restart, while the rest of the step's evidence is kept.
    #[serde(default)]
    pub spend: Spend,
}

impl ArmSnapshot {
    pub fn requests(&self) -> u64 {
        self.ok + self.client_errors + self.upstream_errors
    }

    /// The histogram of one latency of its successful requests.
    pub fn histogram(&self, latency: Latency) -> &Histogram {
        match latency {
            Latency::Total => &self.latency,
            Latency::FirstToken => &self.ttft,
        }
    }

    /// The upstream or client error rate with its variance over users.
    pub fn rate(&self, failure: Failure) -> RateEstimate {
        let failures = match failure {
            Failure::Upstream => self.upstream_errors,
            Failure::Client => self.client_errors,
        };
        self.cells.estimate(failures, self.requests(), failure)
    }

    /// Estimated distinct users (HyperLogLog with the small-range correction).
    pub fn users(&self) -> u64 {
        let registers = self.users.len();
        if registers == 0 {
            return 0;
        }
        let m = registers as f64;
        let zeros = self.users.iter().filter(|rank| **rank == 0).count();
        let sum: f64 = self.users.iter().map(|rank| 2f64.powi(-i32::from(*rank))).sum();
        let estimate = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let corrected = if estimate <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { estimate };
        corrected.round() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSnapshot {
    pub format: u32,
    pub arms: Vec<ArmSnapshot>,
    /// Absent from snapshots saved before the shadow comparison: no pairs yet.
    #[serde(default)]
    pub agreement: AgreementSnapshot,
}

/// No evidence yet, in the current format (saved when a step begins).
impl Default for StepSnapshot {
    fn default() -> StepSnapshot {
        StepSnapshot { format: SNAPSHOT_FORMAT, arms: Vec::new(), agreement: AgreementSnapshot::default() }
    }
}

impl StepSnapshot {
    pub fn arm(&self, arm: Arm) -> ArmSnapshot {
        self.arms.get(arm as usize).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
