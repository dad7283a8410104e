//! The idle and total deadlines of a response body: reading it fails once the upstream
//! has sent nothing for the idle timeout, or once the request's total time is up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cutover_net::body::BoxError;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::BodyError;

pin_project! {
    /// The clock of one answer's body, polled with it by `Answer`.
    pub struct Deadlines {
        // Fires at the earlier of the idle and total deadlines; re-armed lazily, so a
        // frame costs a clock read rather than a timer update, and registered only when
        // the body first has to wait (an answer read in one go never touches the timer
        // wheel). Held inline, not boxed: the answer is pinned once, in its box.
        #[pin]
        timer: Sleep,
        idle: Duration,
        deadline: Instant,
        last_activity: Instant,
    }
}

impl Deadlines {
    /// An idle timeout counted from now and a total deadline of `total` after `started`,
    /// the attempt's start.
    pub fn new(idle: Duration, total: Duration, started: Instant) -> Deadlines {
        let now = Instant::now();
        let deadline = started + total;
        let timer = tokio::time::sleep_until((now + idle).min(deadline));
        Deadlines { timer, idle, deadline, last_activity: now }
    }

    /// `inner`'s next frame, or the deadline it missed.
    pub fn poll_frame<B>(
        self: Pin<&mut Self>,
        inner: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BodyError>>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let mut this = self.project();
        match inner.poll_frame(cx) {
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
}
