//! The leader's lease: one row (`fleet_lease`) naming its holder, its expiry in the
//! database's clock, and an epoch that rises at every change of holder. An instance
//! leads while it holds the row and its own monotonic clock says the lease it last
//! renewed has not run out; a controller write carries the epoch it was decided under
//! and the database refuses it once another instance took the row (fencing), so a
//! leader that was paused, partitioned or slow can never act after its successor.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often an instance that does not lead looks whether the lease ran out.
pub const CAMPAIGN_PERIOD: Duration = Duration::from_millis(500);

/// Takes the lease for `$1` if it is free (expired) or already `$1`'s; the epoch stays
/// when `$1` renews the epoch it holds (`$2`), and rises otherwise. `$3`: seconds to expiry.
pub const TAKE_OR_RENEW: &str = "
UPDATE fleet_lease SET
    epoch = CASE WHEN holder = $1 AND epoch = $2 THEN epoch ELSE epoch + 1 END,
    holder = $1,
    expires_at = now() + make_interval(secs => $3)
WHERE id = 1 AND (holder = $1 OR expires_at <= now())
RETURNING epoch";

/// Gives the lease up at a clean shutdown: the next instance takes it at its next look.
pub const RELEASE: &str = "UPDATE fleet_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND epoch = $2";

/// This instance's hold on the lease, as far as it knows.
#[derive(Debug)]
pub struct Lease {
    /// How long a taken or renewed lease lasts in the database.
    pub ttl: Duration,
    /// The epoch of the lease this instance holds; 0 when it holds none.
    epoch: AtomicI64,
    /// Until when this instance may act as the leader, by its own clock: the renewal's
    /// *sending* time plus the ttl, so that it stops no later than the database's expiry.
    until: Mutex<Option<Instant>>,
}

impl Lease {
    /// A lease after which a dead leader is replaced within `replaced_within`: the row
    /// expires that long after the last renewal, less one look of the others.
    pub fn new(replaced_within: Duration) -> Lease {
        let ttl = replaced_within.saturating_sub(CAMPAIGN_PERIOD);
        Lease { ttl, epoch: AtomicI64::new(0), until: Mutex::new(None) }
    }

    /// How often the leader renews: a fifth of the lease, so that four renewals in a row
    /// may fail (a slow database) before it steps down.
    pub fn renew_period(&self) -> Duration {
        self.ttl / 5
    }

    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether this instance leads now.
    pub fn leads(&self) -> bool {
        self.epoch() > 0 && self.until().is_some_and(|until| Instant::now() < until)
    }

    fn until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to `TAKE_OR_RENEW` sent at `sent`: `Some(epoch)` held, `None` not.
    /// Answers whether this instance became the leader (a new epoch) by it.
    pub fn answered(&self, sent: Instant, held: Option<i64>) -> bool {
        let mut until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        match held {
            Some(epoch) => {
                let before = self.epoch.swap(epoch, Ordering::AcqRel);
                *until = Some(sent + self.ttl);
                before != epoch
            }
            None => {
                self.epoch.store(0, Ordering::Release);
                *until = None;
                false
            }
        }
    }

    /// Forgets the lease (after `RELEASE`, or when the database says another holds it).
    pub fn drop_lease(&self) {
        self.answered(Instant::now(), None);
    }

    /// How long this instance may still act as leader, if it leads.
    pub fn remaining(&self) -> Option<Duration> {
        self.until().map(|until| until.saturating_duration_since(Instant::now())).filter(|_| self.epoch() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_leader_is_replaced_within_the_configured_time() {
        let lease = Lease::new(Duration::from_secs(10));
        assert_eq!(lease.ttl + CAMPAIGN_PERIOD, Duration::from_secs(10));
        assert!(lease.renew_period() * 4 < lease.ttl);
    }

    #[test]
    fn leading_ends_with_the_lease_by_the_local_clock_or_when_refused() {
        let lease = Lease::new(Duration::from_secs(10));
        assert!(!lease.leads());
        assert!(lease.answered(Instant::now(), Some(3)), "a new epoch is news");
        assert!(lease.leads());
        assert!(!lease.answered(Instant::now(), Some(3)), "a renewal is not");
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        lease.answered(long_ago, Some(3));
        assert!(!lease.leads(), "a renewal sent longer ago than the ttl no longer counts");
        lease.answered(Instant::now(), None);
        assert!(!lease.leads());
        assert_eq!(lease.epoch(), 0);
    }
}
