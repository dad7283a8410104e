//! When to try the same upstream again: backoff with full jitter, `Retry-After` honoured
//! up to a cap (beyond it the request falls over instead of waiting), never more than two
//! attempts on one upstream within 1.5 s, and a per-route budget that keeps retries to a
//! share of the traffic, so an outage does not multiply the load on a sick upstream.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cutover_config::RetryBudgetPolicy;
use tokio::time::Instant;

/// The first retry waits up to this long; each later one up to twice as long as the last.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(4);
/// Any three consecutive attempts on one upstream span at least this long.
const MIN_SPAN_OF_THREE: Duration = Duration::from_millis(1500);

/// The wait before retry number `retry` (0 for the first), given when the attempt before
/// the last one on this upstream started and the upstream's `Retry-After`. `None`: do not
/// retry here.
pub fn delay(
    retry: u32,
    before_last: Option<Instant>,
    retry_after: Option<Duration>,
    max_retry_after: Duration,
) -> Option<Duration> {
    if retry_after.is_some_and(|wait| wait > max_retry_after) {
        return None;
    }
    let ceiling = BACKOFF_BASE.saturating_mul(1 << retry.min(8)).min(BACKOFF_CAP);
    let jittered = ceiling.mul_f64(fastrand::f64());
    let mut wait = jittered.max(retry_after.unwrap_or_default());
    if let Some(before_last) = before_last {
        let earliest = before_last + MIN_SPAN_OF_THREE;
        wait = wait.max(earliest.saturating_duration_since(Instant::now()));
    }
    Some(wait)
}

/// Parses `retry-after-ms` or `retry-after` (seconds; HTTP dates are not worth waiting for).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let number =
        |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|value| *value >= 0.0);
    number("retry-after-ms")
        .map(|millis| Duration::from_secs_f64(millis / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// Counts requests and retries over a sliding pair of windows; a retry is allowed while
/// retries stay under `ratio × requests + min_per_sec × window`.
#[derive(Debug)]
pub struct RetryBudget {
    policy: RetryBudgetPolicy,
    epoch: Instant,
    window: Duration,
    window_index: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    previous_requests: AtomicU64,
    previous_retries: AtomicU64,
}

impl RetryBudget {
    pub fn new(policy: RetryBudgetPolicy) -> RetryBudget {
        RetryBudget {
            policy,
            epoch: Instant::now(),
            window: Duration::from_secs(10),
            window_index: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            previous_requests: AtomicU64::new(0),
            previous_retries: AtomicU64::new(0),
        }
    }

    fn roll(&self) {
        let index = (self.epoch.elapsed().as_millis() / self.window.as_millis()) as u64;
        let current = self.window_index.load(Relaxed);
        if index != current && self.window_index.compare_exchange(current, index, Relaxed, Relaxed).is_ok() {
            let requests = self.requests.swap(0, Relaxed);
            let retries = self.retries.swap(0, Relaxed);
            let adjacent = index == current + 1;
            self.previous_requests.store(if adjacent { requests } else { 0 }, Relaxed);
            self.previous_retries.store(if adjacent { retries } else { 0 }, Relaxed);
        }
    }

    pub fn record_request(&self) {
        self.roll();
        self.requests.fetch_add(1, Relaxed);
    }

    /// Takes one retry from the budget if there is one left.
    pub fn try_acquire(&self) -> bool {
        self.roll();
        let requests = self.requests.load(Relaxed) + self.previous_requests.load(Relaxed);
        let retries = self.retries.load(Relaxed) + self.previous_retries.load(Relaxed);
        let allowance = self.policy.ratio * requests as f64 + self.policy.min_per_sec * self.window.as_secs_f64();
        if (retries as f64) < allowance {
            self.retries.fetch_add(1, Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_beyond_the_cap_means_fall_over_not_wait() {
        assert_eq!(delay(0, None, Some(Duration::from_secs(30)), Duration::from_secs(2)), None);
        let wait = delay(0, None, Some(Duration::from_secs(1)), Duration::from_secs(2)).unwrap();
        assert!(wait >= Duration::from_secs(1));
    }

    #[test]
    fn backoff_grows_and_stays_under_its_ceiling() {
        for retry in 0..6 {
            for _ in 0..100 {
                let wait = delay(retry, None, None, Duration::ZERO).unwrap();
                assert!(wait <= BACKOFF_BASE * (1 << retry).min(16), "{wait:?} for retry {retry}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn three_attempts_on_one_upstream_never_fit_in_one_and_a_half_seconds() {
        let first = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        let second = Instant::now();
        let wait = delay(1, Some(first), None, Duration::ZERO).unwrap();
        assert!(second + wait >= first + MIN_SPAN_OF_THREE);
    }

    #[test]
    fn retry_after_reads_milliseconds_first_then_seconds() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.clear();
        headers.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_keeps_retries_to_its_share_of_requests() {
        let budget = RetryBudget::new(RetryBudgetPolicy { ratio: 0.2, min_per_sec: 0.0 });
        let mut granted = 0;
        for _ in 0..1000 {
            budget.record_request();
            if budget.try_acquire() {
                granted += 1;
            }
        }
        assert!((195..=200).contains(&granted), "{granted} retries for 1000 failing requests");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_a_few_retries_at_low_traffic() {
        let budget = RetryBudget::new(RetryBudgetPolicy { ratio: 0.2, min_per_sec: 1.0 });
        budget.record_request();
        assert!(budget.try_acquire());
    }
}
