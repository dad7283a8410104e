//! The evidence of one rollout step: per arm, request outcomes, latency and TTFT
//! histograms with fine log buckets, and distinct users (HyperLogLog). Recorded lock-free
//! from the request path; snapshotted by the controller, persisted every interval, and
//! restored after a restart so that a step loses at most one interval of evidence.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::metrics::Outcome;

/// Histogram buckets grow by 10%: bucket `i` holds values up to `1.1^i` ms, from 1 ms to
/// about 20 minutes, so a quantile read from it is within 10% of the true value.
const GROWTH: f64 = 1.1;
pub const LATENCY_BUCKETS: usize = 150;
/// HyperLogLog with 256 registers: about 6.5% standard error on distinct users.
const HLL_REGISTERS: usize = 256;

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
}

fn bucket_of(duration: Duration) -> usize {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis <= 1.0 {
        return 0;
    }
    ((millis.ln() / GROWTH.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
}

/// The upper bound of bucket `index`, in milliseconds.
pub fn bucket_upper_ms(index: usize) -> f64 {
    GROWTH.powi(index as i32)
}

#[derive(Debug)]
struct ArmStats {
    outcomes: [AtomicU64; 3],
    latency: Box<[AtomicU64]>,
    ttft: Box<[AtomicU64]>,
    users: Box<[AtomicU8]>,
}

impl ArmStats {
    fn new() -> ArmStats {
        let counters = || (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect();
        ArmStats {
            outcomes: Default::default(),
            latency: counters(),
            ttft: counters(),
            users: (0..HLL_REGISTERS).map(|_| AtomicU8::new(0)).collect(),
        }
    }
}

/// What one finished attempt contributes.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub outcome: Outcome,
    pub duration: Duration,
    pub ttft: Option<Duration>,
    /// The sticky key's hash; `None` when the request had no key.
    pub user: Option<u64>,
}

#[derive(Debug)]
pub struct StepStats {
    arms: [ArmStats; 4],
}

impl Default for StepStats {
    fn default() -> Self {
        StepStats { arms: [ArmStats::new(), ArmStats::new(), ArmStats::new(), ArmStats::new()] }
    }
}

impl StepStats {
    pub fn record(&self, arm: Arm, sample: Sample) {
        let stats = &self.arms[arm as usize];
        stats.outcomes[sample.outcome as usize].fetch_add(1, Relaxed);
        stats.latency[bucket_of(sample.duration)].fetch_add(1, Relaxed);
        if let Some(ttft) = sample.ttft {
            stats.ttft[bucket_of(ttft)].fetch_add(1, Relaxed);
        }
        if let Some(user) = sample.user {
            let hash = xxh3_64(&user.to_le_bytes());
            let register = (hash as usize) % HLL_REGISTERS;
            let rank = ((hash >> 8) | (1 << 55)).trailing_zeros() as u8 + 1;
            stats.users[register].fetch_max(rank, Relaxed);
        }
    }

    pub fn snapshot(&self) -> StepSnapshot {
        let arm = |stats: &ArmStats| ArmSnapshot {
            ok: stats.outcomes[Outcome::Ok as usize].load(Relaxed),
            client_errors: stats.outcomes[Outcome::ClientError as usize].load(Relaxed),
            upstream_errors: stats.outcomes[Outcome::UpstreamError as usize].load(Relaxed),
            latency: stats.latency.iter().map(|count| count.load(Relaxed)).collect(),
            ttft: stats.ttft.iter().map(|count| count.load(Relaxed)).collect(),
            users: stats.users.iter().map(|register| register.load(Relaxed)).collect(),
        };
        StepSnapshot { arms: self.arms.iter().map(arm).collect() }
    }

    /// Adds persisted evidence back after a restart.
    pub fn restore(&self, snapshot: &StepSnapshot) {
        for (stats, saved) in self.arms.iter().zip(&snapshot.arms) {
            for (counter, value) in stats.outcomes.iter().zip([saved.ok, saved.client_errors, saved.upstream_errors]) {
                counter.fetch_add(value, Relaxed);
            }
            for (counter, value) in stats.latency.iter().zip(&saved.latency) {
                counter.fetch_add(*value, Relaxed);
            }
            for (counter, value) in stats.ttft.iter().zip(&saved.ttft) {
                counter.fetch_add(*value, Relaxed);
            }
            for (register, value) in stats.users.iter().zip(&saved.users) {
                register.fetch_max(*value, Relaxed);
            }
        }
    }
}

/// A frozen copy of one arm's evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSnapshot {
    pub ok: u64,
    pub client_errors: u64,
    pub upstream_errors: u64,
    pub latency: Vec<u64>,
    pub ttft: Vec<u64>,
    pub users: Vec<u8>,
}

impl ArmSnapshot {
    pub fn requests(&self) -> u64 {
        self.ok + self.client_errors + self.upstream_errors
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepSnapshot {
    pub arms: Vec<ArmSnapshot>,
}

impl StepSnapshot {
    pub fn arm(&self, arm: Arm) -> ArmSnapshot {
        self.arms.get(arm as usize).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(outcome: Outcome, millis: u64, user: u64) -> Sample {
        Sample { outcome, duration: Duration::from_millis(millis), ttft: None, user: Some(user) }
    }

    #[test]
    fn outcomes_latency_and_users_are_counted_per_arm() {
        let stats = StepStats::default();
        for user in 0..1000 {
            stats.record(Arm::Candidate, sample(Outcome::Ok, 100, user));
        }
        stats.record(Arm::Candidate, sample(Outcome::UpstreamError, 100, 1));
        stats.record(Arm::Control, sample(Outcome::Ok, 5, 2));
        let snapshot = stats.snapshot();
        let candidate = snapshot.arm(Arm::Candidate);
        assert_eq!((candidate.requests(), candidate.upstream_errors), (1001, 1));
        let users = candidate.users() as f64;
        assert!((800.0..1200.0).contains(&users), "{users} estimated for 1000 users");
        assert_eq!(snapshot.arm(Arm::Control).requests(), 1);
        let bucket = candidate.latency.iter().position(|count| *count > 0).unwrap();
        assert!(bucket_upper_ms(bucket) >= 100.0 && bucket_upper_ms(bucket) < 111.0);
    }

    #[test]
    fn a_restored_snapshot_adds_to_fresh_stats() {
        let stats = StepStats::default();
        stats.record(Arm::Candidate, sample(Outcome::ClientError, 10, 7));
        let restored = StepStats::default();
        restored.restore(&stats.snapshot());
        restored.record(Arm::Candidate, sample(Outcome::Ok, 10, 8));
        let candidate = restored.snapshot().arm(Arm::Candidate);
        assert_eq!((candidate.requests(), candidate.client_errors), (2, 1));
        let json = serde_json::to_string(&restored.snapshot()).unwrap();
        assert_eq!(serde_json::from_str::<StepSnapshot>(&json).unwrap(), restored.snapshot());
    }
}
