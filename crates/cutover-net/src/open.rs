//! The connections a listener has open, as its accept loop sees them: each one's idle
//! clock and a way to ask it to close. A listener that admits a new connection in place
//! of an idle one when its budget is full (`WhenFull::CloseLongestIdle`, the admin port)
//! picks that one here: the connection that has had no request in flight for longest,
//! whether it never sent a whole request head (silent, half a request line) or is kept
//! alive between requests. A connection with a request in flight is never picked.
//!
//! The table holds one entry per open connection, so it is bounded by the listener's
//! budget; the lock is held for an insert, a removal or a scan of the entries, never
//! across an await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::idle::Activity;

/// A listener's open connections.
#[derive(Debug, Default)]
pub struct OpenConnections {
    members: Mutex<HashMap<u64, Member>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Member {
    activity: Activity,
    close: Arc<Notify>,
}

impl OpenConnections {
    /// Enters a connection with its idle clock; it stays in the table until the returned
    /// [`Membership`] is dropped, which its task does when the connection ends.
    pub fn enter(self: &Arc<Self>, activity: Activity) -> Membership {
        let id = self.next_id.fetch_add(1, Relaxed);
        let close = Arc::new(Notify::new());
        self.members().insert(id, Member { activity, close: close.clone() });
        Membership { open: self.clone(), id, close }
    }

    /// Asks the connection that has had no request in flight for longest to close;
    /// `false` when every connection has one.
    pub fn close_longest_idle(&self) -> bool {
        let members = self.members();
        let longest_idle = members
            .values()
            .filter_map(|member| member.activity.idle_since().map(|since| (since, member)))
            .min_by_key(|(since, _)| *since);
        match longest_idle {
            // A stored permit: the task sees it even if it is not waiting yet.
            Some((_, member)) => {
                member.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn members(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        // No critical section can leave the table half-updated: a poisoned one is whole.
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's entry in [`OpenConnections`], removed on drop.
#[derive(Debug)]
pub struct Membership {
    open: Arc<OpenConnections>,
    id: u64,
    close: Arc<Notify>,
}

impl Membership {
    /// Resolves once the listener asks this connection to close to admit another.
    pub async fn asked_to_close(&self) {
        self.close.notified().await;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.open.members().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether `membership` has been asked to close, without waiting (a timeout polls its
    /// future once before it looks at the clock).
    async fn asked(membership: &Membership) -> bool {
        tokio::time::timeout(Duration::ZERO, membership.asked_to_close()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_idle_longest_is_asked_to_close_and_one_with_a_request_in_flight_never_is() {
        let open = Arc::new(OpenConnections::default());
        let (oldest, busy) = (Activity::default(), Activity::default());
        let (oldest, busy) = (open.enter(oldest), (open.enter(busy.clone()), busy.begin()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let newer = open.enter(Activity::default());

        assert!(open.close_longest_idle());
        assert!(asked(&oldest).await);
        assert!(!asked(&busy.0).await && !asked(&newer).await, "only the longest idle is asked");
        drop(oldest);
        assert!(open.close_longest_idle());
        assert!(asked(&newer).await, "the busy one is older, but has a request in flight");
        assert!(!asked(&busy.0).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_is_idle_since_its_last_request_ended_not_since_its_accept() {
        let open = Arc::new(OpenConnections::default());
        let kept_alive = Activity::default();
        let kept_alive = (open.enter(kept_alive.clone()), kept_alive.begin());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let silent = open.enter(Activity::default());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (kept_alive, request) = kept_alive;
        drop(request);

        assert!(open.close_longest_idle());
        assert!(asked(&silent).await, "silent for 1 s, against 0 s since the kept-alive one's answer");
        assert!(!asked(&kept_alive).await);
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_connection_busy_none_is_asked_and_a_closed_one_leaves_the_table() {
        let open = Arc::new(OpenConnections::default());
        let busy = Activity::default();
        let (busy, _request) = (open.enter(busy.clone()), busy.begin());
        assert!(!open.close_longest_idle());
        assert!(!asked(&busy).await);
        drop(open.enter(Activity::default()));
        assert!(!open.close_longest_idle(), "a connection that ended is no longer in the table");
        assert_eq!(open.members().len(), 1);
    }
}
