//! The body of a proxied response: forwards the upstream's frames as they arrive, lets
//! the SSE observer read along, enforces the idle and total timeouts, never lets a broken
//! stream pass for a complete one, and records the attempt's metrics when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::error::stream_error_event;
use super::sse::SseObserver;
use crate::metrics::{Metrics, Outcome, Role};
use crate::net::body::BoxError;

/// Records one attempt's outcome, duration and TTFT exactly once: when the body ends,
/// fails, or is dropped because the client went away.
pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub route: usize,
    pub role: Role,
    pub started: Instant,
    pub outcome: Outcome,
    pub ttft: Option<Duration>,
    recorded: bool,
}

impl Recorder {
    pub fn new(metrics: Arc<Metrics>, route: usize, role: Role, started: Instant, outcome: Outcome) -> Recorder {
        Recorder { metrics, route, role, started, outcome, ttft: None, recorded: false }
    }

    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        if let Some(arm) = self.metrics.route(self.route).arm(self.role) {
            arm.record(self.outcome, self.started.elapsed(), self.ttft);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Stream-specific behaviour of a proxied body.
pub struct StreamWatch {
    pub observer: SseObserver,
    /// Chat and legacy completion streams end with `[DONE]`; the gateway supplies it
    /// when the upstream finished the answer but forgot it, and reports a cut otherwise.
    pub expects_done: bool,
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

    /// Ends the body after a failure: streams get an error event (SDKs raise on it),
    /// other bodies an error that makes the server abort the response.
    fn fail(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.recorder.outcome = Outcome::UpstreamError;
        self.recorder.finish();
        if self.stream.is_some() {
            self.done = true;
            tracing::warn!(route = self.recorder.route, role = self.recorder.role.as_str(), %message, "stream failed after the first byte");
            Poll::Ready(Some(Ok(Frame::data(stream_error_event(&message)))))
        } else {
            self.done = true;
            Poll::Ready(Some(Err(message.into())))
        }
    }

    fn end(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(stream) = &self.stream {
            if stream.expects_done && !stream.observer.saw_done() && !stream.observer.saw_error() {
                if !stream.observer.saw_finish() {
                    return self.fail("the upstream closed the stream before the answer was complete".to_owned());
                }
                self.recorder.finish();
                self.done = true;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n")))));
            }
            if stream.observer.saw_error() {
                self.recorder.outcome = Outcome::UpstreamError;
            }
        }
        self.recorder.finish();
        self.done = true;
        Poll::Ready(None)
    }

    /// Whether the idle or total deadline has passed; re-arms the timer otherwise.
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
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.last_activity = Instant::now();
                if let (Some(data), Some(stream)) = (frame.data_ref(), this.stream.as_mut())
                    && stream.observer.feed(data).first_token
                {
                    this.recorder.ttft = Some(this.recorder.started.elapsed());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => this.fail(format!("the upstream stream broke: {error}")),
            Poll::Ready(None) => this.end(),
            Poll::Pending => match this.poll_timeout(cx) {
                Some(message) => this.fail(message),
                None => Poll::Pending,
            },
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
