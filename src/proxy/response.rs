//! The body of a proxied response: forwards the upstream's frames as they arrive (event
//! streams whole event by whole event, checked by the framer), enforces the idle and
//! total timeouts, never lets a broken stream pass for a complete one, and records the
//! attempt's metrics when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::breaker::HealthReport;
use super::error::stream_error_event;
use super::sse::SseFramer;
use crate::config::{RouteId, Timeouts};
use crate::metrics::{Metrics, Outcome, Role};
use crate::net::body::BoxError;
use crate::rollout::stats::{Arm, Sample, StepStats};

/// Where a request's attempts count in the current rollout step's evidence.
#[derive(Clone)]
pub struct Tally {
    pub stats: Arc<StepStats>,
    /// A primary request from the control slice (counted there as well).
    pub control: bool,
    pub user: Option<u64>,
}

impl Tally {
    pub fn record(&self, role: Role, outcome: Outcome, duration: Duration, ttft: Option<Duration>) {
        let sample = Sample { outcome, duration, ttft, user: self.user };
        let arm = match role {
            Role::Primary => Arm::Primary,
            Role::Candidate => Arm::Candidate,
            Role::Shadow => Arm::Shadow,
        };
        self.stats.record(arm, sample);
        if role == Role::Primary && self.control {
            self.stats.record(Arm::Control, sample);
        }
    }
}

/// Records one attempt's outcome, duration and TTFT exactly once, in the metrics and the
/// step's evidence: when the body ends, fails, or is dropped because the client went away.
pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub tally: Tally,
    pub route: RouteId,
    pub role: Role,
    pub started: Instant,
    pub outcome: Outcome,
    pub ttft: Option<Duration>,
    recorded: bool,
}

impl Recorder {
    pub fn new(
        metrics: Arc<Metrics>,
        tally: Tally,
        route: RouteId,
        role: Role,
        started: Instant,
        outcome: Outcome,
    ) -> Recorder {
        Recorder { metrics, tally, route, role, started, outcome, ttft: None, recorded: false }
    }

    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let duration = self.started.elapsed();
        if let Some(arm) = self.metrics.route(self.route).arm(self.role) {
            arm.record(self.outcome, duration, self.ttft);
        }
        self.tally.record(self.role, self.outcome, duration, self.ttft);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What the gateway knows of an event stream it forwards.
pub struct StreamWatch {
    pub framer: SseFramer,
    /// Chat and legacy completion streams end with `[DONE]`; the gateway supplies it
    /// when the upstream finished the answer but forgot it, and reports a cut otherwise.
    pub expects_done: bool,
    /// Events read before the gateway committed to this upstream, sent first.
    pub held: std::vec::IntoIter<Bytes>,
}

pub struct ProxyBody {
    inner: Incoming,
    /// The verdict owed to the upstream's breaker for a committed answer: a failure after
    /// the first byte cannot fall over, but it still speaks against the upstream's health.
    health: Option<HealthReport>,
    stream: Option<StreamWatch>,
    recorder: Recorder,
    idle_timeout: Duration,
    deadline: Instant,
    last_activity: Instant,
    /// Fires at the earlier of the idle and total deadlines; re-armed lazily, so frames
    /// cost a clock read rather than a timer update.
    timer: Pin<Box<Sleep>>,
    /// Set once the last frame (the upstream's, or one the gateway added) has gone out.
    done: bool,
}

type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

impl ProxyBody {
    pub fn new(
        inner: Incoming,
        stream: Option<StreamWatch>,
        recorder: Recorder,
        health: Option<HealthReport>,
        timeouts: &Timeouts,
        started: Instant,
    ) -> ProxyBody {
        let now = Instant::now();
        let (idle_timeout, deadline) = (timeouts.idle, started + timeouts.total);
        let timer = Box::pin(tokio::time::sleep_until((now + idle_timeout).min(deadline)));
        ProxyBody { inner, health, stream, recorder, idle_timeout, deadline, last_activity: now, timer, done: false }
    }

    /// Ends the body after a failure: streams get an error event (SDKs raise on it, where
    /// a stream that merely stops would pass for a complete answer), other bodies an
    /// error that makes the server abort the response.
    fn fail(&mut self, mut tail: BytesMut, message: &str) -> Polled {
        self.recorder.outcome = Outcome::UpstreamError;
        if let Some(health) = self.health.take() {
            health.failed();
        }
        self.recorder.finish();
        self.done = true;
        tracing::warn!(
            route = %self.recorder.metrics.route(self.recorder.route).name,
            role = self.recorder.role.as_str(),
            message,
            "answer failed after the first byte"
        );
        if self.stream.is_none() {
            return Poll::Ready(Some(Err(message.to_owned().into())));
        }
        tail.extend_from_slice(&stream_error_event(message));
        Poll::Ready(Some(Ok(Frame::data(tail.freeze()))))
    }

    /// The end of the upstream's body; `tail` holds events still to send.
    fn end(&mut self, mut tail: BytesMut) -> Polled {
        self.done = true;
        let Some(stream) = &mut self.stream else {
            if let Some(health) = self.health.take() {
                health.succeeded();
            }
            self.recorder.finish();
            return Poll::Ready(None);
        };
        match stream.framer.finish() {
            Ok(last) => tail.extend_from_slice(&last.unwrap_or_default()),
            Err(fault) => return self.fail(tail, &fault.to_string()),
        }
        let framer = &stream.framer;
        if framer.saw_error() {
            self.recorder.outcome = Outcome::UpstreamError;
            if let Some(health) = self.health.take() {
                health.failed();
            }
        } else if stream.expects_done && !framer.saw_done() {
            if !framer.saw_finish() {
                return self.fail(tail, "the upstream closed the stream before the answer was complete");
            }
            tail.extend_from_slice(b"data: [DONE]\n\n");
        }
        if let Some(health) = self.health.take() {
            health.succeeded();
        }
        self.recorder.finish();
        if tail.is_empty() { Poll::Ready(None) } else { Poll::Ready(Some(Ok(Frame::data(tail.freeze())))) }
    }

    /// A failure message once the idle or total deadline has passed; re-arms the timer otherwise.
    fn poll_timeout(&mut self, cx: &mut Context<'_>) -> Option<String> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now >= self.deadline {
                return Some("the upstream exceeded the request timeout".to_owned());
            }
            let idle_deadline = self.last_activity + self.idle_timeout;
            if now >= idle_deadline {
                return Some(format!("the upstream sent nothing for {:?}", self.idle_timeout));
            }
            self.timer.as_mut().reset(idle_deadline.min(self.deadline));
        }
        None
    }

    /// Takes one upstream frame of an event stream: the whole, valid events it completes.
    fn accept(&mut self, frame: Frame<Bytes>) -> Result<Option<Bytes>, String> {
        let Some(stream) = self.stream.as_mut() else { return Ok(frame.into_data().ok()) };
        let Ok(data) = frame.into_data() else { return Ok(None) };
        let had_token = stream.framer.saw_token();
        let ready = stream.framer.push(data).map_err(|fault| fault.to_string())?;
        if !had_token && stream.framer.saw_token() {
            self.recorder.ttft = Some(self.recorder.started.elapsed());
        }
        Ok((!ready.is_empty()).then_some(ready))
    }

    /// Event streams: every event already received goes out in one frame (one write
    /// instead of one per event, and no waiting for more: only what is ready is joined).
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Polled {
        let mut batch = Batch::default();
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.last_activity = Instant::now();
                    match self.accept(frame) {
                        Ok(Some(ready)) => batch.push(ready),
                        Ok(None) => {}
                        Err(message) => return self.fail(batch.into_mut(), &message),
                    }
                    if batch.len() >= MAX_BATCH_BYTES {
                        return batch.into_frame();
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    return self.fail(batch.into_mut(), &format!("the upstream stream broke: {error}"));
                }
                Poll::Ready(None) => return self.end(batch.into_mut()),
                Poll::Pending if !batch.is_empty() => return batch.into_frame(),
                Poll::Pending => {
                    return match self.poll_timeout(cx) {
                        Some(message) => self.fail(BytesMut::new(), &message),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }

    /// Other bodies pass through frame by frame.
    fn poll_plain(&mut self, cx: &mut Context<'_>) -> Polled {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.last_activity = Instant::now();
                // A sized body is complete with its last byte: the server may never poll
                // for the end, so the answer's verdict is given now.
                if self.inner.is_end_stream() {
                    let _ = self.end(BytesMut::new());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => self.fail(BytesMut::new(), &format!("the upstream body broke: {error}")),
            Poll::Ready(None) => self.end(BytesMut::new()),
            Poll::Pending => match self.poll_timeout(cx) {
                Some(message) => self.fail(BytesMut::new(), &message),
                None => Poll::Pending,
            },
        }
    }
}

/// A frame of an event stream never grows past this by joining ready events.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Ready events joined into one frame; a single event stays as it came, uncopied.
#[derive(Default)]
enum Batch {
    #[default]
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Batch {
    fn push(&mut self, bytes: Bytes) {
        *self = match std::mem::take(self) {
            Batch::Empty => Batch::One(bytes),
            Batch::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + bytes.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&bytes);
                Batch::Many(joined)
            }
            Batch::Many(mut joined) => {
                joined.extend_from_slice(&bytes);
                Batch::Many(joined)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Batch::Empty => 0,
            Batch::One(bytes) => bytes.len(),
            Batch::Many(bytes) => bytes.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_mut(self) -> BytesMut {
        match self {
            Batch::Empty => BytesMut::new(),
            Batch::One(bytes) => BytesMut::from(&bytes[..]),
            Batch::Many(bytes) => bytes,
        }
    }

    fn into_frame(self) -> Polled {
        let bytes = match self {
            Batch::Empty => Bytes::new(),
            Batch::One(bytes) => bytes,
            Batch::Many(bytes) => bytes.freeze(),
        };
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(held) = this.stream.as_mut().and_then(|stream| stream.held.next()) {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        if this.stream.is_some() { this.poll_stream(cx) } else { this.poll_plain(cx) }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // A stream may grow by a frame the gateway adds; other bodies pass through as sized.
        if self.stream.is_some() { SizeHint::default() } else { self.inner.size_hint() }
    }
}
