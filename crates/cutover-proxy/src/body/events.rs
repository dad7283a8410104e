//! An event stream forwarded whole event by whole event: the held beginning first, then
//! every event already received joined into one frame (one write per batch, no waiting
//! for more), each checked by the framer. A stream the upstream finished but left without
//! its end marker (`[DONE]`, Anthropic's `message_stop`) gets it; one cut short fails.
//! `ErrorEvent` then tells the client of a failure in-band, in its API's shape, since a
//! stream that merely stops would pass for a complete answer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cutover_model::Api;
use cutover_wire::sse::SseFramer;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::hold::Held;
use super::{BodyError, Observed};
use crate::error::stream_error_event;

/// A frame of an event stream never grows past this by joining ready events.
const MAX_BATCH_BYTES: usize = 64 * 1024;

type Polled<E> = Poll<Option<Result<Frame<Bytes>, E>>>;

/// What a complete stream of its endpoint ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// No marker the gateway checks (the Responses API ends with its own last event).
    Unmarked,
    /// `data: [DONE]`: chat and legacy completions.
    Done,
    /// `event: message_stop`: Anthropic's Messages.
    MessageStop,
}

impl StreamEnd {
    pub fn for_path(path: &str) -> StreamEnd {
        match path {
            "/v1/chat/completions" | "/v1/completions" => StreamEnd::Done,
            "/v1/messages" => StreamEnd::MessageStop,
            _ => StreamEnd::Unmarked,
        }
    }

    /// The marker added to a finished answer whose upstream left it out.
    fn marker(self) -> Option<&'static [u8]> {
        match self {
            StreamEnd::Unmarked => None,
            StreamEnd::Done => Some(b"data: [DONE]\n\n"),
            StreamEnd::MessageStop => Some(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        }
    }
}

pin_project! {
    #[project = EventsProj]
    pub struct Events<B> {
        #[pin]
        inner: B,
        framer: SseFramer,
        end: StreamEnd,
        // Events read before the gateway committed to this upstream, sent first.
        held: std::vec::IntoIter<Bytes>,
        started: Instant,
        ttft: Option<Duration>,
        // A failure found behind events still to send: reported after them.
        failure: Option<BodyError>,
        // Set once the last frame (the upstream's, or one added here) has gone out.
        done: bool,
        // Where several ready chunks are joined: reused batch after batch (see `Batch`).
        joined: BytesMut,
    }
}

impl<B> Events<B> {
    /// The rest of a stream whose beginning was `held`; the attempt started at `started`.
    pub fn new(inner: B, held: Held, end: StreamEnd, started: Instant) -> Events<B> {
        let Held { framer, events, ttft, .. } = held;
        let held = events.into_iter();
        Events { inner, framer, end, held, started, ttft, failure: None, done: false, joined: BytesMut::new() }
    }
}

impl<B: Body<Data = Bytes, Error = BodyError>> Body for Events<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<BodyError> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(failure) = this.failure.take() {
            *this.done = true;
            return Poll::Ready(Some(Err(failure)));
        }
        if let Some(held) = this.held.next() {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        let mut batch = Batch::new(this.joined);
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return this.failed(batch, error.in_stream()),
                Poll::Ready(None) => return this.end(batch),
                Poll::Pending if batch.is_empty() => {
                    batch.give_back(this.joined);
                    return Poll::Pending;
                }
                Poll::Pending => return batch.into_frame(this.joined),
            };
            let Ok(data) = frame.into_data() else { continue };
            let had_token = this.framer.saw_token();
            match this.framer.push(data) {
                Ok(ready) => batch.push(ready),
                Err(fault) => return this.failed(batch, fault.into()),
            }
            if !had_token && this.framer.saw_token() {
                *this.ttft = Some(this.started.elapsed());
            }
            if batch.len() >= MAX_BATCH_BYTES {
                return batch.into_frame(this.joined);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // The gateway may add a frame, so the stream's length is never known.
        SizeHint::default()
    }
}

impl<B> EventsProj<'_, B> {
    /// Ends the stream with `error`, after the events in `batch` if there are any.
    fn failed(&mut self, batch: Batch, error: BodyError) -> Polled<BodyError> {
        if batch.is_empty() {
            batch.give_back(self.joined);
            *self.done = true;
            return Poll::Ready(Some(Err(error)));
        }
        *self.failure = Some(error);
        batch.into_frame(self.joined)
    }

    /// The end of the upstream's stream: its unterminated last event completed, and
    /// The end marker supplied to an answer that finished without it.
    fn end(&mut self, mut batch: Batch) -> Polled<BodyError> {
        match self.framer.finish() {
            Ok(last) => batch.push(last.unwrap_or_default()),
            Err(fault) => return self.failed(batch, fault.into()),
        }
        let framer = &self.framer;
        if let Some(marker) = self.end.marker()
            && !framer.saw_error()
            && !framer.saw_done()
        {
            if !framer.saw_finish() {
                return self.failed(batch, BodyError::Cut);
            }
            batch.push(Bytes::from_static(marker));
        }
        *self.done = true;
        if batch.is_empty() {
            batch.give_back(self.joined);
            return Poll::Ready(None);
        }
        batch.into_frame(self.joined)
    }
}

impl<B> Observed for Events<B> {
    fn ttft(&self) -> Option<Duration> {
        self.ttft
    }

    fn upstream_failed(&self) -> bool {
        self.framer.saw_error()
    }

    fn usage(&self) -> Option<cutover_wire::usage::Usage> {
        self.framer.usage()
    }
}

/// Ready events gathered into one frame: a single chunk stays as it came, uncopied;
/// several are copied into the stream's joining buffer, which is split off as the frame,
/// so that batch after batch reuses one allocation (reclaimed once earlier frames are
/// written and dropped) rather than growing a new one. The buffer is borrowed from the
/// stream for the batch and given back by `into_frame` or `give_back`.
struct Batch {
    one: Option<Bytes>,
    joined: BytesMut,
}

/// The joining buffer is allocated this large at least.
const JOINED_BUFFER_BYTES: usize = 8 * 1024;

impl Batch {
    /// An empty batch over the stream's joining buffer (empty between batches).
    fn new(joined: &mut BytesMut) -> Batch {
        Batch { one: None, joined: std::mem::take(joined) }
    }

    fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.joined.is_empty() {
            let Some(first) = self.one.take() else {
                self.one = Some(bytes);
                return;
            };
            let needed = first.len() + bytes.len();
            if self.joined.capacity() < needed {
                self.joined.reserve(needed.max(JOINED_BUFFER_BYTES));
            }
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&bytes);
    }

    fn len(&self) -> usize {
        self.one.as_ref().map_or(self.joined.len(), Bytes::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch as one frame; the joining buffer's spare room goes back to `home`.
    fn into_frame<E>(mut self, home: &mut BytesMut) -> Polled<E> {
        let bytes = match self.one.take() {
            Some(one) => one,
            None => self.joined.split().freeze(),
        };
        self.give_back(home);
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    /// An empty batch's buffer back to the stream.
    fn give_back(self, home: &mut BytesMut) {
        *home = self.joined;
    }
}

pin_project! {
    /// Turns a failure of the stream below into OpenAI's error event, its last frame:
    /// SDKs raise on it. Never fails itself.
    pub struct ErrorEvent<B> {
        #[pin]
        inner: B,
        // The client's API, whose shape the error event takes.
        api: Api,
        done: bool,
    }
}

impl<B> ErrorEvent<B> {
    pub fn new(inner: B, api: Api) -> ErrorEvent<B> {
        ErrorEvent { inner, api, done: false }
    }
}

impl<B: Body<Data = Bytes, Error = BodyError>> Body for ErrorEvent<B> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Infallible> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => Some(Ok(frame)),
            Some(Err(error)) => {
                *this.done = true;
                Some(Ok(Frame::data(stream_error_event(&error.to_string(), *this.api))))
            }
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
