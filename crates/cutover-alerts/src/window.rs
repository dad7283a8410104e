//! Sliding windows in bounded memory: a ring of snapshots of the request path's own
//! cumulative counters, one per slot; a window's counts are the newest snapshot minus the
//! one a window ago. Memory is `capacity × arms`, whatever the traffic.

use std::collections::VecDeque;

use cutover_cost::SeriesTotals;
use cutover_metrics::ArmMetrics;
use cutover_model::Outcome;

/// One arm's cumulative counters at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmSample {
    /// Indexed by `Outcome`.
    pub outcomes: [u64; 4],
    /// Cumulative counts per duration bound, then the total (`+Inf`).
    pub duration: Vec<u64>,
    /// The same for TTFT.
    pub ttft: Vec<u64>,
    /// Requests that fell over from this arm to the other.
    pub fallbacks: u64,
    /// The cost of this arm's priced answers, in nano-dollars…
    pub cost_nanos: u64,
    /// …and how many answers were priced (none: the cost is unknown, not $0).
    pub priced: u64,
}

impl ArmSample {
    pub fn read(arm: &ArmMetrics, fallbacks: u64, spend: SeriesTotals) -> ArmSample {
        let cumulative = |histogram: &cutover_metrics::Histogram| {
            let (mut counts, total) = histogram.cumulative();
            counts.push(total);
            counts
        };
        ArmSample {
            outcomes: Outcome::ALL.map(|outcome| arm.count(outcome)),
            duration: cumulative(&arm.duration),
            ttft: cumulative(&arm.ttft),
            fallbacks,
            cost_nanos: spend.cost.0,
            priced: spend.priced,
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ArmSample) -> ArmSample {
        let minus = |now: &[u64], before: &[u64]| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(index, count)| count.saturating_sub(before.get(index).copied().unwrap_or(0)))
                .collect()
        };
        ArmSample {
            outcomes: std::array::from_fn(|index| self.outcomes[index].saturating_sub(earlier.outcomes[index])),
            duration: minus(&self.duration, &earlier.duration),
            ttft: minus(&self.ttft, &earlier.ttft),
            fallbacks: self.fallbacks.saturating_sub(earlier.fallbacks),
            cost_nanos: self.cost_nanos.saturating_sub(earlier.cost_nanos),
            priced: self.priced.saturating_sub(earlier.priced),
        }
    }

    /// Adds `other` into `self` (arms of one scope).
    pub fn add(&mut self, other: &ArmSample) {
        for (mine, theirs) in self.outcomes.iter_mut().zip(other.outcomes) {
            *mine += theirs;
        }
        let merge = |mine: &mut Vec<u64>, theirs: &[u64]| {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                *mine += theirs;
            }
        };
        merge(&mut self.duration, &other.duration);
        merge(&mut self.ttft, &other.ttft);
        self.fallbacks += other.fallbacks;
        self.cost_nanos += other.cost_nanos;
        self.priced += other.priced;
    }

    /// Attempts that ended with a verdict (cancelled ones are the client's choice).
    pub fn judged(&self) -> u64 {
        self.outcomes[Outcome::Ok as usize]
            + self.outcomes[Outcome::ClientError as usize]
            + self.outcomes[Outcome::UpstreamError as usize]
    }
}

/// A bounded ring of `(unix ms, snapshot)`, oldest first.
#[derive(Debug)]
pub struct Ring<T> {
    samples: VecDeque<(i64, T)>,
    capacity: usize,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Ring<T> {
        let capacity = capacity.max(2);
        Ring { samples: VecDeque::with_capacity(capacity), capacity }
    }

    pub fn push(&mut self, at_ms: i64, sample: T) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back((at_ms, sample));
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn latest(&self) -> Option<&(i64, T)> {
        self.samples.back()
    }

    /// The sample a window of `window_ms` ago: the newest one at or before that time, or
    /// the oldest one kept while the ring does not reach that far back yet.
    pub fn window_start(&self, window_ms: i64) -> Option<&(i64, T)> {
        let (now, _) = self.samples.back()?;
        let start = now - window_ms;
        self.samples.iter().rev().find(|(at, _)| *at <= start).or_else(|| self.samples.front())
    }
}

/// The `q` quantile of a histogram given as cumulative counts per bound then the total,
/// interpolated inside its bucket as Prometheus' `histogram_quantile` does (so the
/// exported rules agree with this evaluator); `None` without observations.
pub fn quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let index = cumulative.iter().position(|count| *count as f64 >= rank)?;
    if index >= bounds.len() {
        return bounds.last().copied();
    }
    let (lower, before) = if index == 0 { (0.0, 0) } else { (bounds[index - 1], cumulative[index - 1]) };
    let in_bucket = (cumulative[index] - before) as f64;
    if in_bucket == 0.0 {
        return Some(bounds[index]);
    }
    Some(lower + (bounds[index] - lower) * (rank - before as f64) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_never_holds_more_than_its_capacity_whatever_it_is_fed() {
        let mut ring = Ring::new(300);
        for second in 0..100_000 {
            ring.push(second * 1000, ArmSample { outcomes: [second as u64, 0, 0, 0], ..ArmSample::default() });
        }
        assert_eq!(ring.len(), 300);
        assert_eq!(ring.capacity(), 300);
        let (start, sample) = ring.window_start(60_000).unwrap();
        assert_eq!(*start, (100_000 - 1 - 60) * 1000);
        assert_eq!(sample.outcomes[0], 100_000 - 1 - 60);
    }

    #[test]
    fn a_window_longer_than_the_ring_starts_at_its_oldest_sample() {
        let mut ring = Ring::new(10);
        for second in 0..5 {
            ring.push(second * 1000, second);
        }
        assert_eq!(ring.window_start(60_000), Some(&(0, 0)));
        assert_eq!(ring.window_start(2_000), Some(&(2_000, 2)));
    }

    #[test]
    fn deltas_and_sums_of_samples() {
        let before = ArmSample {
            outcomes: [10, 1, 2, 0],
            duration: vec![5, 10, 13],
            ttft: vec![],
            fallbacks: 1,
            cost_nanos: 500,
            priced: 2,
        };
        let after = ArmSample {
            outcomes: [20, 1, 7, 1],
            duration: vec![5, 20, 29],
            ttft: vec![],
            fallbacks: 4,
            cost_nanos: 1_700,
            priced: 5,
        };
        let delta = after.since(&before);
        assert_eq!(delta.outcomes, [10, 0, 5, 1]);
        assert_eq!(delta.duration, vec![0, 10, 16]);
        assert_eq!(delta.judged(), 15);
        let mut sum = delta.clone();
        sum.add(&delta);
        assert_eq!(sum.fallbacks, 6);
        assert_eq!((delta.cost_nanos, delta.priced), (1_200, 3));
        assert_eq!((sum.cost_nanos, sum.priced), (2_400, 6));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_prometheus() {
        let bounds = [0.1, 0.5, 1.0];
        // 10 under 0.1 s, 10 in (0.1, 0.5], none above.
        assert_eq!(quantile(0.5, &bounds, &[10, 20, 20, 20]), Some(0.1));
        let p95 = quantile(0.95, &bounds, &[10, 20, 20, 20]).unwrap();
        assert!((p95 - 0.46).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(0.95, &bounds, &[0, 0, 0, 5]), Some(1.0), "+Inf: the last finite bound");
        assert_eq!(quantile(0.95, &bounds, &[0, 0, 0, 0]), None);
    }
}
