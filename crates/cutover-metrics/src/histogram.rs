//! A lock-free histogram with fixed buckets, chosen per quantity on purpose, in the
//! Prometheus sense (cumulative on render, `+Inf` implied).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Whole-request durations in seconds: from a cached 5 ms answer to a 5-minute
/// reasoning stream.
pub const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// Time to first token in seconds: interactive thresholds sit between 100 ms and 2 s.
pub const TTFT_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0];

#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; one extra slot for observations above the last bound.
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let slot = self.bounds.partition_point(|bound| *bound < seconds);
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(duration.as_micros() as u64, Relaxed);
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Cumulative counts per bound, then the total count.
    pub fn cumulative(&self) -> (Vec<u64>, u64) {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for count in &self.counts[..self.bounds.len()] {
            running += count.load(Relaxed);
            cumulative.push(running);
        }
        (cumulative, running + self.counts[self.bounds.len()].load(Relaxed))
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros.load(Relaxed) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = Histogram::new(&[0.1, 1.0]);
        histogram.observe(Duration::from_millis(100));
        histogram.observe(Duration::from_millis(500));
        histogram.observe(Duration::from_secs(3));
        let (cumulative, total) = histogram.cumulative();
        assert_eq!(cumulative, vec![1, 2]);
        assert_eq!(total, 3);
        assert!((histogram.sum_seconds() - 3.6).abs() < 1e-9);
    }
}
