//! Latency histograms fine enough to judge a 1.05× criterion: log-linear (HDR-style)
//! buckets, each at most 1% wide relative to its lower edge, from 1 ms to about 36 minutes,
//! found with integer shifts so that recording stays cheap on the request path. Quantile
//! bounds read from them are conservative about the bucket: the lower edge for a lower
//! bound, the upper edge for an upper bound.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Linear sub-buckets per doubling: a bucket is `2^k / 100` µs wide in the doubling that
/// starts at `2^k` µs, so at most 1% of its lower edge (0.5% at the top of the doubling).
const SUB_BUCKETS: u64 = 100;
/// The first doubling starts at 2^10 µs = 1.024 ms: faster answers share bucket 0, as an
/// LLM upstream never answers that fast except from a cache, where ratios do not matter.
const FIRST_DOUBLING: u32 = 10;
/// 21 doublings reach 2^31 µs ≈ 35.8 minutes; anything slower shares the overflow bucket.
const DOUBLINGS: u32 = 21;
/// Bucket 0 (under 1.024 ms), 2,100 log-linear buckets, and the overflow bucket.
pub const BUCKETS: usize = 2 + (DOUBLINGS as usize) * SUB_BUCKETS as usize;

/// The bucket a duration falls in.
pub fn bucket_of(duration: Duration) -> usize {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    if micros < 1 << FIRST_DOUBLING {
        return 0;
    }
    let doubling = 63 - micros.leading_zeros();
    if doubling >= FIRST_DOUBLING + DOUBLINGS {
        return BUCKETS - 1;
    }
    // `micros - base < 2^31`, so the product cannot overflow.
    let base = 1u64 << doubling;
    let sub = ((micros - base) * SUB_BUCKETS) >> doubling;
    1 + (doubling - FIRST_DOUBLING) as usize * SUB_BUCKETS as usize + sub as usize
}

/// The lower edge of bucket `index`, in milliseconds.
pub fn lower_edge_ms(index: usize) -> f64 {
    match index {
        0 => 0.0,
        _ if index >= BUCKETS - 1 => edge_ms(BUCKETS - 2, 1),
        _ => edge_ms(index, 0),
    }
}

/// The upper edge of bucket `index`, in milliseconds (infinite for the overflow bucket).
pub fn upper_edge_ms(index: usize) -> f64 {
    match index {
        0 => edge_ms(1, 0),
        _ if index >= BUCKETS - 1 => f64::INFINITY,
        _ => edge_ms(index, 1),
    }
}

/// `2^k · (1 + (j + step) / 100)` µs in ms, for the log-linear bucket `index` = (k, j).
fn edge_ms(index: usize, step: usize) -> f64 {
    let (doubling, sub) = ((index - 1) / SUB_BUCKETS as usize, (index - 1) % SUB_BUCKETS as usize);
    let base = 2f64.powi((FIRST_DOUBLING as usize + doubling) as i32);
    base * (1.0 + (sub + step) as f64 / SUB_BUCKETS as f64) / 1000.0
}

/// A frozen histogram: dense in memory (so that ranks are a scan), sparse on disk as
/// `[[bucket, count], …]` (a step rarely touches more than a few hundred of its buckets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram(pub Vec<u64>);

impl Histogram {
    pub fn samples(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The bucket holding the value of rank `rank` (1-based) in ascending order, if the
    /// histogram has that many values.
    pub fn bucket_at_rank(&self, rank: u64) -> Option<usize> {
        let mut seen = 0;
        for (index, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank.max(1) {
                return Some(index);
            }
        }
        None
    }

    /// How many values lie in buckets above `bucket`: slower than its upper edge.
    pub fn above(&self, bucket: usize) -> u64 {
        self.0.iter().skip(bucket + 1).sum()
    }
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(usize, u64)> =
            self.0.iter().enumerate().filter(|(_, count)| **count > 0).map(|(index, count)| (index, *count)).collect();
        pairs.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(usize, u64)>::deserialize(deserializer)?;
        let mut counts = vec![0; BUCKETS];
        for (index, count) in pairs {
            *counts.get_mut(index).ok_or_else(|| D::Error::custom(format!("no latency bucket {index}")))? += count;
        }
        Ok(Histogram(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_is_at_most_one_percent_wide_and_holds_what_it_claims() {
        for index in 1..BUCKETS - 1 {
            let (low, high) = (lower_edge_ms(index), upper_edge_ms(index));
            assert!(high > low && (high - low) / low <= 0.01 + 1e-12, "bucket {index}: {low}–{high} ms");
            assert_eq!(upper_edge_ms(index - 1), low, "buckets {index} and its predecessor touch");
            let inside = Duration::from_secs_f64((low + (high - low) / 2.0) / 1000.0);
            assert_eq!(bucket_of(inside), index);
        }
    }

    #[test]
    fn the_range_covers_a_millisecond_to_half_an_hour_with_bounded_memory() {
        assert_eq!(bucket_of(Duration::from_micros(500)), 0);
        assert_eq!(bucket_of(Duration::from_millis(2)), bucket_of(Duration::from_micros(2000)));
        assert!(bucket_of(Duration::from_secs(20 * 60)) < BUCKETS - 1, "20 minutes is still resolved");
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        assert_eq!(upper_edge_ms(BUCKETS - 1), f64::INFINITY);
        const { assert!(BUCKETS <= 2200) };
    }

    #[test]
    fn buckets_grow_with_the_duration() {
        let mut last = 0;
        for micros in (0..3_000_000_000u64).step_by(999_983) {
            let bucket = bucket_of(Duration::from_micros(micros));
            assert!(bucket >= last, "{micros} µs");
            last = bucket;
        }
    }

    #[test]
    fn a_histogram_is_stored_sparse_and_read_back_whole() {
        let mut counts = vec![0; BUCKETS];
        counts[7] = 3;
        counts[1500] = 1;
        let histogram = Histogram(counts);
        let json = serde_json::to_string(&histogram).unwrap();
        assert_eq!(json, "[[7,3],[1500,1]]");
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), histogram);
        assert!(serde_json::from_str::<Histogram>("[[99999,1]]").is_err(), "an unknown bucket is refused");
        assert!(serde_json::from_str::<Histogram>("[0,0,3]").is_err(), "the old dense format is refused");
    }
}
