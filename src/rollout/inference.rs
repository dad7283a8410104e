//! The statistics behind a verdict, each chosen for what it measures: Wilson intervals for
//! error proportions (well-behaved at zero failures and small n, unlike the normal
//! interval), Newcombe's hybrid score interval for the difference of two proportions
//! (built from the two Wilson intervals, so it inherits their small-sample behaviour),
//! and distribution-free order-statistic intervals for quantiles read from histograms
//! (no assumption about the shape of latency distributions, which are skewed).

use super::stats::bucket_upper_ms;

/// One-sided 95%: the confidence needed to call a criterion met.
pub const Z_PASS: f64 = 1.645;
/// One-sided 99.5%: the confidence needed to call a single check a breach. Stricter than
/// `Z_PASS` because the controller looks every interval (peeking) and checks several
/// criteria; a rollback further needs `failure_limit` such breaches in a row.
pub const Z_FAIL: f64 = 2.576;

/// Wilson score interval for `failures` out of `n` at `z`: (low, high), as proportions.
pub fn wilson(failures: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = failures as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's interval for `p1 − p2` at `z`: (low, high).
pub fn difference(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> (f64, f64) {
    let p1 = if n1 == 0 { 0.0 } else { x1 as f64 / n1 as f64 };
    let p2 = if n2 == 0 { 0.0 } else { x2 as f64 / n2 as f64 };
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let d = p1 - p2;
    (d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(), d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt())
}

/// A quantile of a log-bucket histogram with its order-statistic interval at `z`:
/// (estimate, low, high) in milliseconds, or `None` without data. The ranks bounding the
/// quantile are `nq ± z·√(nq(1−q))` (the binomial count of values below it); a rank
/// beyond the sample means the data cannot bound the quantile on that side (0 or ∞),
/// which is why a p95 needs over a hundred samples before it can decide anything.
pub fn quantile(histogram: &[u64], q: f64, z: f64) -> Option<(f64, f64, f64)> {
    let n: u64 = histogram.iter().sum();
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let spread = z * (n * q * (1.0 - q)).sqrt();
    let (low_rank, high_rank) = ((n * q - spread).floor(), (n * q + spread).ceil());
    let low = if low_rank < 1.0 { 0.0 } else { value_at_rank(histogram, low_rank) };
    let high = if high_rank > n { f64::INFINITY } else { value_at_rank(histogram, high_rank) };
    Some((value_at_rank(histogram, (n * q).ceil().clamp(1.0, n)), low, high))
}

fn value_at_rank(histogram: &[u64], rank: f64) -> f64 {
    let mut seen = 0.0;
    for (index, count) in histogram.iter().enumerate() {
        seen += *count as f64;
        if seen >= rank {
            return bucket_upper_ms(index);
        }
    }
    bucket_upper_ms(histogram.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_bounds_zero_failures_like_the_rule_of_three() {
        let (low, high) = wilson(0, 1000, 1.96);
        assert_eq!(low, 0.0);
        assert!((0.003..0.0045).contains(&high), "{high}");
        let (low, high) = wilson(50, 100, 1.96);
        assert!((low - 0.404).abs() < 0.002 && (high - 0.596).abs() < 0.002, "{low} {high}");
    }

    #[test]
    fn newcombe_difference_matches_the_published_example() {
        // Newcombe (1998), example (a): 56/70 vs 48/80 → 95% CI 0.0524 to 0.3339.
        let (low, high) = difference(56, 70, 48, 80, 1.96);
        assert!((low - 0.0524).abs() < 0.001 && (high - 0.3339).abs() < 0.001, "{low} {high}");
    }

    #[test]
    fn quantile_intervals_narrow_as_samples_grow() {
        let mut small = vec![0u64; 150];
        let mut large = vec![0u64; 150];
        for (index, weight) in [(40usize, 1u64), (45, 2), (50, 4), (55, 2), (60, 1)] {
            small[index] = weight;
            large[index] = weight * 1000;
        }
        let (estimate, low, high) = quantile(&large, 0.5, 1.96).unwrap();
        assert_eq!(estimate, bucket_upper_ms(50));
        assert!(low <= estimate && estimate <= high);
        let (_, small_low, small_high) = quantile(&small, 0.5, 1.96).unwrap();
        assert!(small_high / small_low > high / low);
        assert_eq!(quantile(&[0; 10], 0.5, 1.96), None);
    }
}
