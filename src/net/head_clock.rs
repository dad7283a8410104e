//! A connection's first clock: from accept to its first request. HTTP/1's own header
//! timer starts only once hyper knows the protocol, and HTTP/2 has none, so a client that
//! sends nothing, or half a preface, would otherwise hold its connection for ever.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use hyper::service::Service;

use super::dormant::Dormant;

/// Whether a connection has produced a request; shared by its service and its task.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<AtomicBool>);

impl Seen {
    fn mark(&self) {
        // A load first: after the first request, the flag's cache line stays shared.
        if !self.0.load(Relaxed) {
            self.0.store(true, Relaxed);
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
        if !self.0.load(Relaxed) {
            return None;
        }
        Some(connection.await)
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

impl<S: Service<R>, R> Service<R> for FirstRequest<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        self.seen.mark();
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_dropped_at_the_deadline() {
        let seen = Seen::default();
        let outcome = seen.within(Duration::from_secs(1), std::future::pending::<()>()).await;
        assert_eq!(outcome, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_made_a_request_runs_past_the_deadline() {
        let seen = Seen::default();
        seen.mark();
        let connection = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "done"
        };
        assert_eq!(seen.within(Duration::from_secs(1), connection).await, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ends_early_returns_its_output() {
        let seen = Seen::default();
        assert_eq!(seen.within(Duration::from_secs(1), async { 7 }).await, Some(7));
    }
}
