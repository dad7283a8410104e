//! The agreement of a route's current step, in bounded memory: per dimension how many
//! pairs it judged and how many agreed, the pairs that agreed on everything, the four
//! outcomes, mirrors dropped because the candidate's slots were all busy (evidence against
//! it: a slow candidate does not get to skip its hardest requests), and fixed-bucket
//! distributions of text similarity, length ratio, and the latency and TTFT differences.
//! Recorded with relaxed atomic adds from the mirrors' tasks; about 1 KiB per step; lives
//! in the step's evidence (`rollout::stats`), so it is reset with the step and persisted
//! with it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cutover_model::Dimension;
use cutover_model::view;
use serde::{Deserialize, Serialize};

use super::cells::{CellsSnapshot, UserCells};
use super::compare::Judged;

/// Upper edges of the similarity buckets: tenths.
const SIMILARITY_BUCKETS: usize = 10;
/// Upper edges of the length-ratio buckets (candidate ÷ primary); the last is open.
const LENGTH_EDGES: [f64; 6] = [0.5, 0.8, 0.95, 1.05, 1.25, 2.0];
/// Upper edges of the difference buckets, candidate minus primary, in milliseconds.
const DIFF_EDGES_MS: [i64; 10] = [-5000, -1000, -250, -50, -10, 10, 50, 250, 1000, 5000];

/// The pair's outcomes, in the order of `Agreement::outcomes`.
const OUTCOMES: [&str; 4] = ["both_succeeded", "only_primary", "only_candidate", "both_failed"];

pub(super) fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

pub(super) fn load(counters: &[AtomicU64]) -> Vec<u64> {
    counters.iter().map(|counter| counter.load(Relaxed)).collect()
}

pub(super) fn add(counters: &[AtomicU64], values: &[u64]) {
    counters.iter().zip(values).for_each(|(counter, value)| {
        counter.fetch_add(*value, Relaxed);
    });
}

#[derive(Debug)]
pub struct Agreement {
    judged: [AtomicU64; Dimension::COUNT],
    agreed: [AtomicU64; Dimension::COUNT],
    pairs: AtomicU64,
    agreeing: AtomicU64,
    outcomes: [AtomicU64; 4],
    dropped_full: AtomicU64,
    similarity: [AtomicU64; SIMILARITY_BUCKETS],
    length_ratio: [AtomicU64; LENGTH_EDGES.len() + 1],
    latency_diff: [AtomicU64; DIFF_EDGES_MS.len() + 1],
    ttft_diff: [AtomicU64; DIFF_EDGES_MS.len() + 1],
    tool_f1_milli: AtomicU64,
    tool_f1_pairs: AtomicU64,
    /// The keyed pairs per user cell, for the agreement's cluster-robust variance.
    cells: UserCells,
}

impl Default for Agreement {
    fn default() -> Self {
        Agreement {
            judged: counters(),
            agreed: counters(),
            pairs: AtomicU64::new(0),
            agreeing: AtomicU64::new(0),
            outcomes: counters(),
            dropped_full: AtomicU64::new(0),
            similarity: counters(),
            length_ratio: counters(),
            latency_diff: counters(),
            ttft_diff: counters(),
            tool_f1_milli: AtomicU64::new(0),
            tool_f1_pairs: AtomicU64::new(0),
            cells: UserCells::default(),
        }
    }
}

/// The timings of a pair whose two sides both succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub primary: Duration,
    pub candidate: Duration,
    pub primary_ttft: Option<Duration>,
    pub candidate_ttft: Option<Duration>,
}

impl Agreement {
    /// One compared pair of the sticky `user` (its key's hash, if any): which side
    /// succeeded, its verdicts and figures.
    pub fn record(
        &self,
        user: Option<u64>,
        (primary_ok, candidate_ok): (bool, bool),
        judged: &Judged,
        timings: Option<Timings>,
    ) {
        if let Some(user) = user {
            self.cells.record(user, judged.agrees(), &judged.verdicts);
        }
        self.pairs.fetch_add(1, Relaxed);
        if judged.agrees() {
            self.agreeing.fetch_add(1, Relaxed);
        }
        let outcome = match (primary_ok, candidate_ok) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        self.outcomes[outcome].fetch_add(1, Relaxed);
        for (index, verdict) in judged.verdicts.iter().enumerate() {
            if let Some(agreed) = verdict {
                self.judged[index].fetch_add(1, Relaxed);
                if *agreed {
                    self.agreed[index].fetch_add(1, Relaxed);
                }
            }
        }
        if let Some(similarity) = judged.similarity {
            let bucket = ((similarity * SIMILARITY_BUCKETS as f64) as usize).min(SIMILARITY_BUCKETS - 1);
            self.similarity[bucket].fetch_add(1, Relaxed);
        }
        if let Some(ratio) = judged.length_ratio {
            self.length_ratio[LENGTH_EDGES.iter().take_while(|edge| ratio > **edge).count()].fetch_add(1, Relaxed);
        }
        if let Some(f1) = judged.tool_f1 {
            self.tool_f1_milli.fetch_add((f1 * 1000.0).round() as u64, Relaxed);
            self.tool_f1_pairs.fetch_add(1, Relaxed);
        }
        if let Some(timings) = timings {
            record_diff(&self.latency_diff, timings.candidate, timings.primary);
            if let (Some(candidate), Some(primary)) = (timings.candidate_ttft, timings.primary_ttft) {
                record_diff(&self.ttft_diff, candidate, primary);
            }
        }
    }

    /// A mirror dropped because every slot was busy with the candidate's earlier answers:
    /// a pair the candidate did not answer, a disagreement on the outcome.
    pub fn record_dropped_full(&self, user: Option<u64>) {
        if let Some(user) = user {
            let mut verdicts = [None; Dimension::COUNT];
            verdicts[Dimension::Outcome as usize] = Some(false);
            self.cells.record(user, false, &verdicts);
        }
        self.dropped_full.fetch_add(1, Relaxed);
        self.pairs.fetch_add(1, Relaxed);
        self.judged[Dimension::Outcome as usize].fetch_add(1, Relaxed);
    }

    /// The share of pairs that agreed on every dimension judged, read without a snapshot
    /// (the alert evaluator asks every few seconds).
    pub fn overall(&self) -> Option<f64> {
        let (pairs, agreeing) = (self.pairs.load(Relaxed), self.agreeing.load(Relaxed));
        (pairs > 0).then(|| agreeing as f64 / pairs as f64)
    }

    pub fn snapshot(&self) -> AgreementSnapshot {
        AgreementSnapshot {
            pairs: self.pairs.load(Relaxed),
            agreeing: self.agreeing.load(Relaxed),
            judged: load(&self.judged),
            agreed: load(&self.agreed),
            outcomes: load(&self.outcomes),
            dropped_full: self.dropped_full.load(Relaxed),
            similarity: load(&self.similarity),
            length_ratio: load(&self.length_ratio),
            latency_diff: load(&self.latency_diff),
            ttft_diff: load(&self.ttft_diff),
            tool_f1_milli: self.tool_f1_milli.load(Relaxed),
            tool_f1_pairs: self.tool_f1_pairs.load(Relaxed),
            cells: self.cells.snapshot(),
        }
    }

    /// Adds persisted agreement back after a restart.
    pub fn restore(&self, saved: &AgreementSnapshot) {
        self.pairs.fetch_add(saved.pairs, Relaxed);
        self.agreeing.fetch_add(saved.agreeing, Relaxed);
        add(&self.judged, &saved.judged);
        add(&self.agreed, &saved.agreed);
        add(&self.outcomes, &saved.outcomes);
        self.dropped_full.fetch_add(saved.dropped_full, Relaxed);
        add(&self.similarity, &saved.similarity);
        add(&self.length_ratio, &saved.length_ratio);
        add(&self.latency_diff, &saved.latency_diff);
        add(&self.ttft_diff, &saved.ttft_diff);
        self.tool_f1_milli.fetch_add(saved.tool_f1_milli, Relaxed);
        self.tool_f1_pairs.fetch_add(saved.tool_f1_pairs, Relaxed);
        self.cells.restore(&saved.cells);
    }
}

fn record_diff(buckets: &[AtomicU64], candidate: Duration, primary: Duration) {
    let diff = candidate.as_millis() as i64 - primary.as_millis() as i64;
    buckets[DIFF_EDGES_MS.iter().take_while(|edge| diff > **edge).count()].fetch_add(1, Relaxed);
}

/// A frozen copy, persisted with the step's evidence (every field defaults, so that a
/// snapshot saved before agreement existed loads as "no pairs yet").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgreementSnapshot {
    pub pairs: u64,
    pub agreeing: u64,
    /// Indexed by `Dimension`.
    pub judged: Vec<u64>,
    pub agreed: Vec<u64>,
    pub outcomes: Vec<u64>,
    pub dropped_full: u64,
    pub similarity: Vec<u64>,
    pub length_ratio: Vec<u64>,
    pub latency_diff: Vec<u64>,
    pub ttft_diff: Vec<u64>,
    pub tool_f1_milli: u64,
    pub tool_f1_pairs: u64,
    /// The keyed pairs per user cell (empty in snapshots saved before they existed).
    pub cells: CellsSnapshot,
}

impl AgreementSnapshot {
    /// (agreed, judged) of one dimension.
    pub fn counts(&self, dimension: Dimension) -> (u64, u64) {
        let at = |counts: &Vec<u64>| counts.get(dimension as usize).copied().unwrap_or(0);
        (at(&self.agreed), at(&self.judged))
    }

    /// The share of judged pairs that agreed on `dimension`, `None` before any.
    pub fn ratio(&self, dimension: Dimension) -> Option<f64> {
        let (agreed, judged) = self.counts(dimension);
        (judged > 0).then(|| agreed as f64 / judged as f64)
    }

    /// The share of pairs that agreed on every dimension judged.
    pub fn overall(&self) -> Option<f64> {
        (self.pairs > 0).then(|| self.agreeing as f64 / self.pairs as f64)
    }

    /// The view's `shadow_agreement` object.
    pub fn to_view(&self) -> view::Agreement {
        let dimensions = Dimension::ALL
            .into_iter()
            .map(|dimension| {
                let (agreed, judged) = self.counts(dimension);
                (
                    dimension.as_str().to_owned(),
                    view::DimensionAgreement { agreed, judged, ratio: self.ratio(dimension) },
                )
            })
            .collect();
        let outcomes = OUTCOMES
            .iter()
            .enumerate()
            .map(|(index, name)| ((*name).to_owned(), self.outcomes.get(index).copied().unwrap_or(0)))
            .collect();
        let diff_labels = || {
            let mut labels: Vec<String> = DIFF_EDGES_MS.iter().map(|edge| format!("<={edge}")).collect();
            labels.push(format!(">{}", DIFF_EDGES_MS[DIFF_EDGES_MS.len() - 1]));
            labels
        };
        let mut length_labels: Vec<String> = LENGTH_EDGES.iter().map(|edge| format!("<={edge}")).collect();
        length_labels.push(format!(">{}", LENGTH_EDGES[LENGTH_EDGES.len() - 1]));
        let similarity_labels: Vec<String> =
            (1..=SIMILARITY_BUCKETS).map(|tenth| format!("<={:.1}", tenth as f64 / 10.0)).collect();
        view::Agreement {
            pairs: self.pairs,
            agreeing: self.agreeing,
            overall: self.overall(),
            dimensions,
            outcomes,
            dropped_slow_candidate: self.dropped_full,
            tool_f1: (self.tool_f1_pairs > 0).then(|| self.tool_f1_milli as f64 / 1000.0 / self.tool_f1_pairs as f64),
            similarity: labelled(similarity_labels, &self.similarity),
            length_ratio: labelled(length_labels, &self.length_ratio),
            latency_diff_ms: labelled(diff_labels(), &self.latency_diff),
            ttft_diff_ms: labelled(diff_labels(), &self.ttft_diff),
        }
    }
}

/// Bucket counts by label (a bucket never counted reads 0).
fn labelled(labels: Vec<String>, counts: &[u64]) -> BTreeMap<String, u64> {
    labels.into_iter().zip(counts.iter().copied().chain(std::iter::repeat(0))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(verdicts: &[(Dimension, bool)]) -> Judged {
        let mut judged = Judged::default();
        for (dimension, verdict) in verdicts {
            judged.verdicts[*dimension as usize] = Some(*verdict);
        }
        judged
    }

    #[test]
    fn each_dimension_counts_only_the_pairs_it_judged() {
        let agreement = Agreement::default();
        agreement.record(
            None,
            (true, true),
            &judged(&[(Dimension::Outcome, true), (Dimension::ToolCalls, false)]),
            None,
        );
        agreement.record(
            None,
            (true, true),
            &judged(&[(Dimension::Outcome, true), (Dimension::ToolCalls, true)]),
            None,
        );
        agreement.record(None, (true, true), &judged(&[(Dimension::Outcome, true)]), None);
        let snapshot = agreement.snapshot();
        assert_eq!(snapshot.ratio(Dimension::ToolCalls), Some(0.5));
        assert_eq!(snapshot.ratio(Dimension::Outcome), Some(1.0));
        assert_eq!(snapshot.ratio(Dimension::Model), None);
        assert_eq!(snapshot.overall(), Some(2.0 / 3.0));
    }

    #[test]
    fn a_mirror_dropped_for_a_slow_candidate_counts_against_it() {
        let agreement = Agreement::default();
        agreement.record(None, (true, true), &judged(&[(Dimension::Outcome, true)]), None);
        agreement.record_dropped_full(None);
        let snapshot = agreement.snapshot();
        assert_eq!((snapshot.ratio(Dimension::Outcome), snapshot.overall()), (Some(0.5), Some(0.5)));
        assert_eq!(snapshot.to_view().dropped_slow_candidate, 1);
    }

    #[test]
    fn distributions_land_in_their_buckets_and_survive_a_restore() {
        let agreement = Agreement::default();
        let mut pair = judged(&[(Dimension::Content, true)]);
        (pair.similarity, pair.length_ratio) = (Some(1.0), Some(1.0));
        let timings = Timings {
            primary: Duration::from_millis(100),
            candidate: Duration::from_millis(5200),
            primary_ttft: Some(Duration::from_millis(10)),
            candidate_ttft: Some(Duration::from_millis(15)),
        };
        agreement.record(None, (true, true), &pair, Some(timings));
        let view = agreement.snapshot().to_view();
        assert_eq!(view.similarity["<=1.0"], 1);
        assert_eq!(view.length_ratio["<=1.05"], 1);
        assert_eq!(view.latency_diff_ms[">5000"], 1);
        assert_eq!(view.ttft_diff_ms["<=10"], 1);
        let restored = Agreement::default();
        restored.restore(&agreement.snapshot());
        assert_eq!(restored.snapshot(), agreement.snapshot());
    }
}
