//! A connection's head clock: every request head must arrive within `header_timeout`,
//! the first of its accept and, on HTTP/1, each later one of the end of the request before
//! it. A connection without its first request in time is dropped, whatever it sent
//! (nothing, half an HTTP/2 preface, a slow request line); an HTTP/1 connection late with
//! a later head is asked to close gracefully, which closes it at once unless a response is
//! still being written to a slow reader, which then finishes first.
//!
//! hyper's own HTTP/1 header timer would do the later heads, but it boxes and registers a
//! timer per request, a lock on tokio's timer wheel each way. Here the first clock is one
//! sleep per connection, and the later ones are the connection's idle count
//! ([`Activity`]), which wakes at most once per timeout. HTTP/2 has no head clock after its
//! first request: its silence between requests is the idle clock's (`serve::drive`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use http::{Request, Version};
use hyper::service::Service;

use super::dormant::Dormant;
use super::idle::Activity;

/// Whether a connection has produced a request, and over which protocol; shared by its
/// service and its task.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<AtomicU8>);

const NONE: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

impl Seen {
    fn mark(&self, version: Version) {
        let protocol = if version == Version::HTTP_2 { HTTP2 } else { HTTP1 };
        // A load first: after the first request, the flag's cache line stays shared.
        if self.0.load(Relaxed) != protocol {
            self.0.store(protocol, Relaxed);
        }
    }

    /// Runs `connection`; `None` (the connection dropped, hence closed) when no request
    /// arrived within `timeout` of now.
    pub async fn within<F: Future>(&self, timeout: Duration, connection: F) -> Option<F::Output> {
        tokio::pin!(connection);
        tokio::select! {
            biased;
            output = &mut connection => return Some(output),
            () = Dormant::new(tokio::time::sleep(timeout)) => {}
        }
        if self.0.load(Relaxed) == NONE {
            return None;
        }
        Some(connection.await)
    }

    /// Resolves once an HTTP/1 connection has had no request in flight for `timeout`: its
    /// next head is late. Never on HTTP/2; before the first request, [`Seen::within`]
    /// keeps the clock.
    pub async fn late_head(&self, activity: &Activity, timeout: Duration) {
        loop {
            activity.idle_for(timeout).await;
            match self.0.load(Relaxed) {
                HTTP1 => return,
                HTTP2 => std::future::pending().await,
                _ => tokio::time::sleep(timeout).await,
            }
        }
    }
}

/// A connection's service, marking its [`Seen`] on every call: a relaxed load per request.
#[derive(Debug, Clone)]
pub struct FirstRequest<S> {
    inner: S,
    seen: Seen,
}

impl<S> FirstRequest<S> {
    pub fn new(inner: S, seen: Seen) -> FirstRequest<S> {
        FirstRequest { inner, seen }
    }
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for FirstRequest<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: Request<B>) -> Self::Future {
        self.seen.mark(request.version());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_dropped_at_the_deadline() {
        let (seen, started) = (Seen::default(), Instant::now());
        assert_eq!(seen.within(TIMEOUT, std::future::pending::<()>()).await, None);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_made_a_request_runs_past_the_deadline() {
        let seen = Seen::default();
        seen.mark(Version::HTTP_11);
        let connection = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "done"
        };
        assert_eq!(seen.within(TIMEOUT, connection).await, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ends_early_returns_its_output() {
        let seen = Seen::default();
        assert_eq!(seen.within(TIMEOUT, async { 7 }).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_connections_next_head_is_late_the_timeout_after_its_last_request_ends() {
        let (seen, activity, started) = (Seen::default(), Activity::default(), Instant::now());
        seen.mark(Version::HTTP_11);
        let in_flight = activity.begin();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            drop(in_flight);
        });
        seen.late_head(&activity, TIMEOUT).await;
        assert_eq!(started.elapsed(), Duration::from_millis(1500) + TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_has_no_late_head_however_long_it_is_idle() {
        let (seen, activity) = (Seen::default(), Activity::default());
        seen.mark(Version::HTTP_2);
        let late = tokio::time::timeout(Duration::from_secs(3600), seen.late_head(&activity, TIMEOUT)).await;
        assert!(late.is_err());
    }
}
