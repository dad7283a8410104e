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

use super::error::stream_error_event;
use super::sse::SseFramer;
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
    pub route: usize,
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
        route: usize,
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
        idle_timeout: Duration,
        deadline: Instant,
    ) -> ProxyBody {
        let now = Instant::now();
        let timer = Box::pin(tokio::time::sleep_until((now + idle_timeout).min(deadline)));
        ProxyBody { inner, stream, recorder, idle_timeout, deadline, last_activity: now, timer, done: false }
    }

    /// Ends the body after a failure: streams get an error event (SDKs raise on it, where
    /// a stream that merely stops would pass for a complete answer), other bodies an
    /// error that makes the server abort the response.
    fn fail(&mut self, mut tail: BytesMut, message: &str) -> Polled {
        self.recorder.outcome = Outcome::UpstreamError;
        self.recorder.finish();
        self.done = true;
        tracing::warn!(
            route = self.recorder.route,
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

    fn end(&mut self) -> Polled {
        self.done = true;
        let Some(stream) = &mut self.stream else {
            self.recorder.finish();
            return Poll::Ready(None);
        };
        let mut tail = BytesMut::new();
        match stream.framer.finish() {
            Ok(last) => tail.extend_from_slice(&last.unwrap_or_default()),
            Err(fault) => return self.fail(tail, &fault.to_string()),
        }
        let framer = &stream.framer;
        if framer.saw_error() {
            self.recorder.outcome = Outcome::UpstreamError;
        } else if stream.expects_done && !framer.saw_done() {
            if !framer.saw_finish() {
                return self.fail(tail, "the upstream closed the stream before the answer was complete");
            }
            tail.extend_from_slice(b"data: [DONE]\n\n");
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

    /// Passes one upstream frame on: event streams only as whole, valid events.
    fn forward(&mut self, frame: Frame<Bytes>) -> Option<Polled> {
        let Some(stream) = self.stream.as_mut() else { return Some(Poll::Ready(Some(Ok(frame)))) };
        let Ok(data) = frame.into_data() else { return None };
        let had_token = stream.framer.saw_token();
        match stream.framer.push(data) {
            Ok(ready) if ready.is_empty() => None,
            Ok(ready) => {
                if !had_token && stream.framer.saw_token() {
                    self.recorder.ttft = Some(self.recorder.started.elapsed());
                }
                Some(Poll::Ready(Some(Ok(Frame::data(ready)))))
            }
            Err(fault) => Some(self.fail(BytesMut::new(), &fault.to_string())),
        }
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
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_activity = Instant::now();
                    if let Some(polled) = this.forward(frame) {
                        return polled;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    return this.fail(BytesMut::new(), &format!("the upstream stream broke: {error}"));
                }
                Poll::Ready(None) => return this.end(),
                Poll::Pending => {
                    return match this.poll_timeout(cx) {
                        Some(message) => this.fail(BytesMut::new(), &message),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // A stream may grow by a frame the gateway adds; other bodies pass through as sized.
        if self.stream.is_some() { SizeHint::default() } else { self.inner.size_hint() }
    }
}
