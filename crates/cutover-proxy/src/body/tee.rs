//! A mirrored request's answers, teed on their way through the stack for the shadow
//! comparison: each data frame's bytes are copied into a bounded `Captured` (only the
//! frames pass through; nothing here can change, delay or hold back a byte the reader
//! gets), and when the body ends, fails or is dropped the side is sent once through its
//! `Tap`, with the timings, usage and cost the layers below observed. Sits between
//! `Metered` and `Recorded`, so usage the gateway asked for on the client's behalf (and
//! strips from the client's stream) is still read, from the meter. Answers of requests
//! that are not mirrored carry no tap and pass with one branch per frame.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use cutover_model::Outcome;
use cutover_shadow::{Side, Tap};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::{BodyError, Observed, Settled};
use crate::failure::outcome_for_status;

/// One side being captured.
pub struct Teeing {
    tap: Tap,
    side: Side,
    started: Instant,
    status: StatusCode,
}

impl Teeing {
    /// The capture of an answer with `status`, whose attempt started at `started`.
    pub fn new(tap: Tap, status: StatusCode, streamed: bool, started: Instant) -> Teeing {
        Teeing { tap, side: Side { streamed, ..Side::default() }, started, status }
    }
}

pin_project! {
    pub struct Teed<B> {
        #[pin]
        inner: B,
        teeing: Option<Teeing>,
    }

    impl<B> PinnedDrop for Teed<B> {
        fn drop(this: Pin<&mut Self>) {
            // The reader left before the end: nothing to compare with.
            if let Some(teeing) = this.project().teeing.take() {
                let Teeing { tap, mut side, started, .. } = teeing;
                side.outcome = Some(Outcome::Cancelled);
                side.duration = started.elapsed();
                tap.send(side);
            }
        }
    }
}

impl<B: Body + Observed> Teed<B> {
    pub fn new(inner: B, mut teeing: Option<Teeing>) -> Teed<B> {
        // A body known to be empty is complete already.
        if inner.is_end_stream()
            && let Some(teeing) = teeing.take()
        {
            teeing.send(&inner, false);
        }
        Teed { inner, teeing }
    }
}

impl Teeing {
    /// Sends the side: failed if the body `broke`, else as its status and the upstream's
    /// own in-band error say, with what the layers below observed.
    fn send<B: Observed>(self, inner: &B, broke: bool) {
        let Teeing { tap, mut side, started, status } = self;
        side.outcome =
            Some(if broke || inner.upstream_failed() { Outcome::UpstreamError } else { outcome_for_status(status) });
        side.duration = started.elapsed();
        side.ttft = inner.ttft();
        side.usage = inner.usage();
        side.cost = inner.settled().map(|settled| settled.cost.map(|nanos| nanos.0));
        tap.send(side);
    }
}

impl<B: Body<Data = Bytes, Error = BodyError> + Observed> Body for Teed<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        let Some(teeing) = this.teeing.as_mut() else { return Poll::Ready(polled) };
        let ended = match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    teeing.side.captured.push(data);
                }
                this.inner.is_end_stream().then_some(false)
            }
            Some(Err(_)) => Some(true),
            None => Some(false),
        };
        if let Some(broke) = ended
            && let Some(teeing) = this.teeing.take()
        {
            teeing.send(this.inner.as_ref().get_ref(), broke);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Observed> Observed for Teed<B> {
    fn ttft(&self) -> Option<Duration> {
        self.inner.ttft()
    }

    fn upstream_failed(&self) -> bool {
        self.inner.upstream_failed()
    }

    fn usage(&self) -> Option<cutover_wire::usage::Usage> {
        self.inner.usage()
    }

    fn settled(&self) -> Option<Settled> {
        self.inner.settled()
    }
}
