//! A connection's idle clock: how many requests it has in flight, response bodies
//! included, and since when it has had none. hyper never closes an idle HTTP/2
//! connection on its own (its pings keep one alive for ever), so the accept loop closes
//! any connection that has had no request in flight for `server.idle_timeout`.
//!
//! Counting costs two atomic operations and a clock read per request, and no allocation:
//! the service wrapper hands each request a clone of the connection's `Arc`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Response;
use http_body::{Body, Frame, SizeHint};
use hyper::service::Service;
use tokio::time::Instant;

/// One connection's requests in flight and the end of its last one.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Counts>);

#[derive(Debug)]
struct Counts {
    /// The connection's accept; `last_end` counts from here.
    epoch: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds since `epoch` (0: none yet, so the
    /// connection has been idle since its accept).
    last_end: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(Counts {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
        }))
    }
}

impl Activity {
    pub(super) fn begin(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Since when no request has been in flight; `None` while one is.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        // Acquire pairs with the release in `InFlight::drop`: a zero seen here comes with
        // the end time stamped before it.
        if self.0.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.0.epoch + Duration::from_nanos(self.0.last_end.load(Ordering::Relaxed)))
    }

    /// Resolves once the connection has had no request in flight for `timeout`. Wakes at
    /// most once per `timeout` while requests run, never per request.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut wake = Instant::now() + timeout;
        loop {
            tokio::time::sleep_until(wake).await;
            let now = Instant::now();
            match self.idle_since() {
                Some(since) if now.saturating_duration_since(since) >= timeout => return,
                Some(since) => wake = since + timeout,
                None => wake = now + timeout,
            }
        }
    }
}

/// A request in flight, from the service call until its response body is dropped (sent
/// whole, or abandoned by the client).
#[derive(Debug)]
pub(super) struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        let counts = &self.0.0;
        let since_epoch = Instant::now().saturating_duration_since(counts.epoch);
        counts.last_end.fetch_max(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        counts.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// A connection's service, counting its requests into its [`Activity`].
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    activity: Activity,
}

impl<S> Counted<S> {
    pub fn new(inner: S, activity: Activity) -> Counted<S> {
        Counted { inner, activity }
    }
}

impl<S, R, B> Service<R> for Counted<S>
where
    S: Service<R, Response = Response<B>>,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn call(&self, request: R) -> Self::Future {
        CountedFuture { in_flight: Some(self.activity.begin()), inner: self.inner.call(request) }
    }
}

pin_project_lite::pin_project! {
    /// The response on its way; hands its request's place in flight to the body.
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(response.map(|response| response.map(|inner| CountedBody { inner, _in_flight: in_flight })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is dropped.
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A service answering at once with an empty body.
    #[derive(Clone)]
    struct Answer;

    impl Service<()> for Answer {
        type Response = Response<http_body_util::Empty<bytes::Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn call(&self, (): ()) -> Self::Future {
            std::future::ready(Ok(Response::new(http_body_util::Empty::new())))
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(75);

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_timeout_from_its_accept() {
        let activity = Activity::default();
        let started = Instant::now();
        activity.idle_for(TIMEOUT).await;
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_body_in_flight_keeps_the_connection_busy_and_its_end_starts_the_clock() {
        let activity = Activity::default();
        let service = Counted::new(Answer, activity.clone());
        let response = service.call(()).await.unwrap();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(TIMEOUT).await }
        });
        // The stream outlives several timeouts: still not idle.
        tokio::time::sleep(TIMEOUT * 3).await;
        assert!(!idle.is_finished());
        let ended = Instant::now();
        drop(response);
        idle.await.unwrap();
        assert_eq!(ended.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_future_dropped_before_its_answer_ends_the_request() {
        let activity = Activity::default();
        let service = Counted::new(Answer, activity.clone());
        drop(service.call(()));
        assert!(activity.idle_since().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn two_requests_end_in_any_order_and_the_clock_starts_at_the_later_end() {
        let activity = Activity::default();
        let service = Counted::new(Answer, activity.clone());
        let (first, second) = (service.call(()).await.unwrap(), service.call(()).await.unwrap());
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(second);
        assert_eq!(activity.idle_since(), None, "one is still in flight");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let ended = Instant::now();
        drop(first);
        activity.idle_for(TIMEOUT).await;
        assert_eq!(ended.elapsed(), TIMEOUT);
    }
}
