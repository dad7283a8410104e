//! The client's body of a committed answer: one type, one `poll_frame` per frame, that
//! calls each stage in turn. The upstream's frame is read under its `Deadlines`; a stream
//! is framed and completed by its `Events`; the data is observed by the `Meter` (usage
//! and cost) and the `Teeing` (a mirrored request's side); and once, when the body ends,
//! fails or is dropped, the answer is settled: cost first, then the shadow side, then the
//! `Recorder` (metrics, evidence, breaker verdict), which reads both. A stream's failure
//! after its first byte becomes an error event, its last frame.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use cutover_net::body::BoxError;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::tee::Seen;
use super::{BodyError, Deadlines, Events, Meter, Recorder, Teeing};

pin_project! {
    #[project = AnswerProj]
    pub struct Answer<B> {
        #[pin]
        inner: B,
        #[pin]
        deadlines: Deadlines,
        // `None` for a whole answer. Boxed: a whole answer, the common case, carries no
        // framer in its own allocation.
        events: Option<Box<Events>>,
        meter: Option<Meter>,
        teeing: Option<Teeing>,
        recorder: Recorder,
        // Whether the answer is settled (at its end, failure or drop).
        settled: bool,
    }

    impl<B> PinnedDrop for Answer<B> {
        fn drop(this: Pin<&mut Self>) {
            // The reader left before the end (a settled answer stays as it was).
            this.project().settle(Ending::Cancelled);
        }
    }
}

/// How an answer's body ended.
enum Ending<'a> {
    /// With its last frame.
    Complete,
    /// Broken after its first byte.
    Failed(&'a BodyError),
    /// Dropped before its end: the reader went away.
    Cancelled,
}

impl<B: Body> Answer<B> {
    pub fn new(
        inner: B,
        deadlines: Deadlines,
        events: Option<Events>,
        (mut meter, mut teeing): (Option<Meter>, Option<Teeing>),
        mut recorder: Recorder,
    ) -> Answer<B> {
        let mut settled = false;
        // A body known to be empty (HEAD, 204, 304, a zero length) is complete already; the
        // server may drop it unpolled, which must not read as a client leaving.
        if events.is_none() && inner.is_end_stream() {
            let parts = Parts { events: None, meter: &mut meter, teeing: &mut teeing, recorder: &mut recorder };
            settle(Ending::Complete, parts, &mut settled);
        }
        let events = events.map(Box::new);
        Answer { inner, deadlines, events, meter, teeing, recorder, settled }
    }
}

impl<B> AnswerProj<'_, B> {
    fn settle(&mut self, ending: Ending<'_>) {
        let AnswerProj { events, meter, teeing, recorder, settled, .. } = self;
        settle(ending, Parts { events: events.as_deref(), meter, teeing, recorder }, settled);
    }
}

/// The stages settling reads and writes, borrowed from the answer (or from what it is
/// being built from).
struct Parts<'a> {
    events: Option<&'a Events>,
    meter: &'a mut Option<Meter>,
    teeing: &'a mut Option<Teeing>,
    recorder: &'a mut Recorder,
}

/// Settles the answer, once (`settled` says whether it is): its cost, then its shadow
/// side, then its record, which reads the cost.
fn settle(ending: Ending<'_>, parts: Parts<'_>, settled: &mut bool) {
    let Parts { events, meter, teeing, recorder } = parts;
    if std::mem::replace(settled, true) {
        return;
    }
    let upstream_failed = events.is_some_and(Events::upstream_failed);
    let ttft = recorder.ttft.or_else(|| events.and_then(Events::ttft));
    recorder.ttft = ttft;
    let complete = matches!(ending, Ending::Complete) && !upstream_failed;
    let streamed = events.and_then(Events::usage);
    if let Some(meter) = meter.as_mut() {
        meter.settle(complete, streamed);
        recorder.cost(meter.settled());
    }
    if let Some(teeing) = teeing.take() {
        match ending {
            Ending::Cancelled => teeing.cancel(),
            _ => teeing.send(Seen {
                failed: upstream_failed || matches!(ending, Ending::Failed(_)),
                ttft,
                usage: meter.as_ref().and_then(Meter::usage).or(streamed),
                settled: meter.as_ref().and_then(Meter::settled),
            }),
        }
    }
    match ending {
        Ending::Complete => recorder.ended(upstream_failed),
        Ending::Failed(error) => recorder.failed(error),
        Ending::Cancelled => recorder.cancelled(),
    }
}

impl<B> Body for Answer<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let (mut inner, mut deadlines) = (this.inner.as_mut(), this.deadlines.as_mut());
        let polled = match this.events.as_mut() {
            Some(events) => ready!(events.poll_frame(|cx| deadlines.as_mut().poll_frame(inner.as_mut(), cx), cx)),
            None => ready!(deadlines.poll_frame(inner.as_mut(), cx)),
        };
        match polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(meter) = this.meter.as_mut() {
                        meter.observe(data);
                    }
                    if let Some(teeing) = this.teeing.as_mut() {
                        teeing.push(data);
                    }
                }
                // A body is complete with its last frame (a sized one's last byte, a
                // stream's end): the server may never poll for the end, so the answer is
                // settled now.
                let ended = match this.events.as_deref() {
                    Some(events) => events.is_done(),
                    None => this.inner.is_end_stream(),
                };
                if ended {
                    this.settle(Ending::Complete);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                this.settle(Ending::Failed(&error));
                Poll::Ready(Some(match this.events.as_deref() {
                    Some(events) => Ok(Frame::data(events.error_event(&error))),
                    None => Err(error.into()),
                }))
            }
            None => {
                this.settle(Ending::Complete);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.events {
            Some(events) => events.is_done(),
            // Not before it is settled: an empty sized body is still polled once, to its end.
            None => self.settled && self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.events {
            // The gateway may add a frame, so a stream's length is never known.
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
