//! An event stream forwarded whole event by whole event: the held beginning first, then
//! every event already received joined into one frame (one write per batch, no waiting
//! for more), each checked by the framer. A stream the upstream finished but left without
//! its end marker (`[DONE]`, Anthropic's `message_stop`) gets it; one cut short fails,
//! and its failure is told to the client in-band, as an error event in its API's shape
//! (`error_event`). Socket-free: `Answer` hands it the upstream's frames.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cutover_model::Api;
use cutover_wire::sse::SseFramer;
use http_body::Frame;
use tokio::time::Instant;

use super::BodyError;
use super::hold::Held;
use crate::error::stream_error_event;

/// A frame of an event stream never grows past this by joining ready events.
const MAX_BATCH_BYTES: usize = 64 * 1024;

pub type Polled<E> = Poll<Option<Result<Frame<Bytes>, E>>>;

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

/// An event stream's framing and end, for `Answer`, which polls the upstream's body (with
/// its deadlines) through it.
pub struct Events {
    framer: SseFramer,
    end: StreamEnd,
    /// The client's API, whose shape an error told in-band takes.
    api: Api,
    /// Events read before the gateway committed to this upstream, sent first.
    held: std::vec::IntoIter<Bytes>,
    started: Instant,
    ttft: Option<Duration>,
    /// A failure found behind events still to send: reported after them.
    failure: Option<BodyError>,
    /// Set once the last frame (the upstream's, or one added here) has gone out.
    done: bool,
    /// Where several ready chunks are joined: reused batch after batch (see `Batch`).
    joined: BytesMut,
}

impl Events {
    /// The rest of a stream whose beginning was `held`, told to a client of `api`; the
    /// attempt started at `started`.
    pub fn new(held: Held, end: StreamEnd, api: Api, started: Instant) -> Events {
        let Held { framer, events, ttft, .. } = held;
        let held = events.into_iter();
        Events { framer, end, api, held, started, ttft, failure: None, done: false, joined: BytesMut::new() }
    }

    /// The next frame for the client: held events first, then every event the upstream
    /// has ready (read by `upstream`) as one batch; the stream's failure after them.
    pub fn poll_frame<F>(&mut self, mut upstream: F, cx: &mut Context<'_>) -> Polled<BodyError>
    where
        F: FnMut(&mut Context<'_>) -> Polled<BodyError>,
    {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(failure) = self.failure.take() {
            self.done = true;
            return Poll::Ready(Some(Err(failure)));
        }
        if let Some(held) = self.held.next() {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        let mut batch = Batch::new(&mut self.joined);
        loop {
            let frame = match upstream(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return self.failed(batch, error.in_stream()),
                Poll::Ready(None) => return self.end(batch),
                Poll::Pending if batch.is_empty() => {
                    batch.give_back(&mut self.joined);
                    return Poll::Pending;
                }
                Poll::Pending => return batch.into_frame(&mut self.joined),
            };
            let Ok(data) = frame.into_data() else { continue };
            let had_token = self.framer.saw_token();
            match self.framer.push(data) {
                Ok(ready) => batch.push(ready),
                Err(fault) => return self.failed(batch, fault.into()),
            }
            if !had_token && self.framer.saw_token() {
                self.ttft = Some(self.started.elapsed());
            }
            if batch.len() >= MAX_BATCH_BYTES {
                return batch.into_frame(&mut self.joined);
            }
        }
    }

    /// Whether the last frame has gone out.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When the first token passed, counted from the attempt's start.
    pub fn ttft(&self) -> Option<Duration> {
        self.ttft
    }

    /// The upstream itself reported a failure inside the stream (an error event).
    pub fn upstream_failed(&self) -> bool {
        self.framer.saw_error()
    }

    /// The usage the upstream reported in the stream so far.
    pub fn usage(&self) -> Option<cutover_wire::usage::Usage> {
        self.framer.usage()
    }

    /// The stream's last frame when it failed after its first byte: an error event in the
    /// client's API's shape (OpenAI's SDKs raise on it), since a stream that merely stops
    /// would pass for a complete answer.
    pub fn error_event(&self, error: &BodyError) -> Bytes {
        stream_error_event(&error.to_string(), self.api)
    }

    /// Ends the stream with `error`, after the events in `batch` if there are any.
    fn failed(&mut self, batch: Batch, error: BodyError) -> Polled<BodyError> {
        if batch.is_empty() {
            batch.give_back(&mut self.joined);
            self.done = true;
            return Poll::Ready(Some(Err(error)));
        }
        self.failure = Some(error);
        batch.into_frame(&mut self.joined)
    }

    /// The end of the upstream's stream: its unterminated last event completed, and
    /// the end marker supplied to an answer that finished without it.
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
        self.done = true;
        if batch.is_empty() {
            batch.give_back(&mut self.joined);
            return Poll::Ready(None);
        }
        batch.into_frame(&mut self.joined)
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
