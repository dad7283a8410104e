//! Bounds that stay valid however often they are looked at: the normal-mixture confidence
//! sequence (Robbins; Howard et al., "Time-uniform, nonparametric, nonasymptotic
//! confidence sequences", 2021; the mSPRT of Johari et al., KDD 2017). A fixed-sample
//! interval checked every interval is crossed by chance sooner or later (five looks at
//! z = 1.96 give 14% instead of 5%); this boundary widens slowly with the evidence so
//! that the chance of it *ever* being crossed stays below α (Ville's inequality).

/// The radius of the normal-mixture confidence sequence at level `alpha` for an estimate
/// whose variance is now `variance`, mixing over effects of scale `tau`:
/// `√(s²(1 + s²/τ²) · [2 ln(1/α) + ln(1 + τ²/s²)])` with `s² = variance`. This is the
/// formula of `ANALYSIS.md` (`V(V+nτ²)/(n²τ²)…` with `V/n = s²`) written in terms of the
/// estimate's variance, so that unequal arms and clustered variances fit it directly.
/// The crossing of either side is an event of the two-sided mixture, so each side on its
/// own errs with probability at most `alpha` (about `alpha / 2` in practice).
pub fn radius(variance: f64, tau: f64, alpha: f64) -> f64 {
    if variance <= 0.0 {
        return 0.0;
    }
    if tau <= 0.0 {
        return f64::INFINITY;
    }
    let ratio = tau * tau / variance;
    (variance * (1.0 + 1.0 / ratio) * (2.0 * (1.0 / alpha).ln() + (1.0 + ratio).ln())).sqrt()
}

/// The ratio `τ²/s²` at which the radius, relative to `s`, is smallest for `alpha`: the
/// fixed point of `r = 2 ln(1/α) + ln(1 + r)` (about 13 at α = 0.005). Choosing
/// `τ² = r · s₀²` makes the boundary tightest when the estimate's variance is `s₀²`.
pub fn tightest_ratio(alpha: f64) -> f64 {
    let base = 2.0 * (1.0 / alpha).ln();
    (0..20).fold(base, |ratio, _| base + (1.0 + ratio).ln())
}

/// Ranks bounding the `q` quantile of `n` samples, valid at every look: the count of
/// samples at or below the true quantile is a sum of `n` Bernoulli(q) draws, so the
/// mixture radius on that count (variance `n q (1−q)`) bounds it. `design` is the sample
/// count at which the boundary is tightest. Returns (low, high) ranks, 1-based; a low
/// rank under 1 or a high rank past `n` means the data cannot bound that side yet.
pub fn quantile_ranks(n: u64, q: f64, alpha: f64, design: u64) -> (f64, f64) {
    let per_sample = q * (1.0 - q);
    let tau = (tightest_ratio(alpha) * per_sample / design.max(1) as f64).sqrt();
    let n = n as f64;
    let spread = n * radius(per_sample / n.max(1.0), tau, alpha);
    ((n * q - spread).floor(), (n * q + spread).ceil())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastrand::Rng;

    #[test]
    fn the_radius_is_wider_than_a_single_look_and_shrinks_with_the_evidence() {
        let (alpha, s) = (0.05, 0.01);
        let once = 1.645 * s;
        assert!(radius(s * s, s * 3.0, alpha) > once, "valid at every look costs width");
        assert!(radius((s / 10.0).powi(2), s * 3.0, alpha) < radius(s * s, s * 3.0, alpha));
        assert_eq!(radius(0.0, 1.0, alpha), 0.0);
    }

    #[test]
    fn the_tightest_ratio_solves_its_equation() {
        let ratio = tightest_ratio(0.005);
        assert!((ratio - (2.0 * 200f64.ln() + (1.0 + ratio).ln())).abs() < 1e-9);
        assert!((12.0..14.5).contains(&ratio), "{ratio}");
    }

    /// The property that the whole controller rests on: a mean of zero, looked at after
    /// every one of 2,000 samples, crosses the boundary at most about `alpha` of the time
    /// (a fixed z = 1.645 would be crossed by most of these walks).
    #[test]
    fn a_walk_with_no_drift_rarely_ever_crosses_the_boundary_however_often_it_is_looked_at() {
        let mut rng = Rng::with_seed(7);
        let (alpha, walks, steps) = (0.05, 400, 2000);
        let tau = (tightest_ratio(alpha) / 200.0).sqrt();
        let (mut crossed, mut crossed_fixed) = (0, 0);
        for _ in 0..walks {
            let mut sum = 0.0;
            let (mut ever, mut ever_fixed) = (false, false);
            for n in 1..=steps {
                sum += if rng.bool() { 1.0 } else { -1.0 };
                let (mean, variance) = (sum / f64::from(n), 1.0 / f64::from(n));
                ever |= mean > radius(variance, tau, alpha);
                ever_fixed |= mean > 1.645 * variance.sqrt();
            }
            crossed += usize::from(ever);
            crossed_fixed += usize::from(ever_fixed);
        }
        assert!(crossed * 100 <= walks * 5, "crossed in {crossed} of {walks} walks");
        assert!(crossed_fixed * 100 >= walks * 30, "the fixed bound is crossed often: {crossed_fixed}");
    }

    #[test]
    fn quantile_ranks_surround_the_quantile_and_narrow_relative_to_n() {
        let (low, high) = quantile_ranks(1000, 0.95, 0.01, 10_000);
        assert!(low < 950.0 && high > 950.0 && high <= 1000.0, "{low} {high}");
        let (low_big, high_big) = quantile_ranks(100_000, 0.95, 0.01, 10_000);
        assert!((high_big - low_big) / 100_000.0 < (high - low) / 1000.0);
        let (low_few, high_few) = quantile_ranks(20, 0.95, 0.01, 10_000);
        assert!(high_few > 20.0, "20 samples cannot bound a p95 from above: {low_few}–{high_few}");
    }
}
