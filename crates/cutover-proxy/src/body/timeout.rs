//! The idle and total deadlines of a response body: it fails once the upstream has sent
//! nothing for the idle timeout, or once the request's total time is up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cutover_net::body::BoxError;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{BodyError, Observed};

pin_project! {
    pub struct Deadlines<B> {
        #[pin]
        inner: B,
        // Fires at the earlier of the idle and total deadlines; re-armed lazily, so a
        // frame costs a clock read rather than a timer update. Held inline, not boxed:
        // the whole stack is pinned once, in the response's box.
        #[pin]
        timer: Sleep,
        idle: Duration,
        deadline: Instant,
        last_activity: Instant,
    }
}

impl<B> Deadlines<B> {
    /// `inner` with an idle timeout counted from now and a total deadline of `total`
    /// after `started`, the attempt's start.
    pub fn new(inner: B, idle: Duration, total: Duration, started: Instant) -> Deadlines<B> {
        let now = Instant::now();
        let deadline = started + total;
        let timer = tokio::time::sleep_until((now + idle).min(deadline));
        Deadlines { inner, timer, idle, deadline, last_activity: now }
    }
}

impl<B> Body for Deadlines<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, BodyError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.last_activity = Instant::now();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyError::Body(error.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                while this.timer.as_mut().poll(cx).is_ready() {
                    let now = Instant::now();
                    if now >= *this.deadline {
                        return Poll::Ready(Some(Err(BodyError::TotalTimeout)));
                    }
                    let idle_deadline = *this.last_activity + *this.idle;
                    if now >= idle_deadline {
                        return Poll::Ready(Some(Err(BodyError::Idle(*this.idle))));
                    }
                    this.timer.as_mut().reset(idle_deadline.min(*this.deadline));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body that is only timed knows nothing of the answer it carries.
impl<B> Observed for Deadlines<B> {}
