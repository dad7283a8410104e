//! An answer's usage and cost, read on the way through and settled exactly once: when
//! the body ends, fails, or is dropped because the client left. Streams are read by the
//! framer below (`Events`, which reads each event in its one pass); a whole answer of
//! an endpoint that reports usage is kept aside within a bound (held as it came when it
//! is one chunk, else copied: the whole of it up to `MAX_WHOLE_BYTES`, past that only
//! its tail, where `usage` comes) and its usage read once at its end, from the end
//! (`Usage::from_answer`). Other endpoints are not metered at all.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use cutover_config::{Config, RouteId};
use cutover_cost::{Charge, Ending, Nanos};
use cutover_metrics::Metrics;
use cutover_model::Role;
use cutover_wire::{sse::UsageWatch, usage::Usage};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::{BodyError, Observed};
use crate::request::RequestMeta;

/// A whole answer up to this size is kept for its usage…
const MAX_WHOLE_BYTES: usize = 256 << 10;
/// …a larger one only this much of its end.
const TAIL_BYTES: usize = 16 << 10;

/// How a stream's framer should treat usage for this request.
pub fn usage_watch(meta: &RequestMeta) -> UsageWatch {
    match meta.endpoint {
        None => UsageWatch::Ignore,
        Some(_) if meta.usage_injected => UsageWatch::Strip,
        Some(_) => UsageWatch::Read,
    }
}

/// A settled answer's cost, for the rollout's evidence: the arm the split chose (a
/// fallback's answer is the candidate arm's: it is what serving that user cost) and what
/// the answer cost, `None` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub arm: Role,
    pub cost: Option<Nanos>,
}

/// The metering of one committed answer, settled once.
pub struct Meter {
    metrics: Arc<Metrics>,
    charge: Charge,
    success_status: bool,
    /// `None` for a stream, whose framer reads the usage.
    whole: Option<Capture>,
    /// A stream's usage as last read from its framer.
    usage: Option<Usage>,
    /// `Some(cost)` once settled (`Some(None)`: settled, cost unknown).
    settled: Option<Option<Nanos>>,
}

impl Meter {
    /// The meter of an answer with `status` from `role`'s upstream (`upstream` its index),
    /// for a request of the arm `arm`; `None` for an endpoint that reports no usage.
    #[allow(clippy::too_many_arguments)]
    pub fn for_answer(
        config: &Config,
        metrics: &Arc<Metrics>,
        route: RouteId,
        meta: &RequestMeta,
        upstream: usize,
        role: Role,
        arm: Role,
        status: StatusCode,
        streamed: bool,
    ) -> Option<Meter> {
        let endpoint = meta.endpoint?;
        let model = config.pricing.lookup(upstream, &config.upstreams[upstream], meta.model.as_deref());
        let charge = Charge { route, answered_by: role, arm, endpoint, model };
        let success_status = status.is_success();
        // Only a successful whole answer is worth a copy; an error answer's cost is nothing.
        let whole = (!streamed && success_status).then(Capture::default);
        Some(Meter { metrics: metrics.clone(), charge, success_status, whole, usage: None, settled: None })
    }

    fn settle(&mut self, complete: bool) {
        if self.settled.is_some() {
            return;
        }
        if let Some(capture) = self.whole.take().filter(|_| complete) {
            self.usage = capture.usage();
        }
        let ending = Ending { success_status: self.success_status, complete };
        self.settled = Some(self.charge.settle(&self.metrics.cost, self.usage, ending));
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // The client left before the end: what the stream reported so far still counts.
        self.settle(false);
    }
}

/// A bounded copy of a whole answer. An answer in one chunk, the usual case, is held as
/// it came (a reference, no copy); only a second chunk starts a copy.
#[derive(Default)]
struct Capture {
    only: Option<Bytes>,
    bytes: BytesMut,
    /// Past `MAX_WHOLE_BYTES`: `bytes` holds only the tail.
    overflowed: bool,
}

impl Capture {
    fn push(&mut self, data: &Bytes) {
        if self.bytes.is_empty() && !self.overflowed {
            match self.only.take() {
                None if data.len() <= MAX_WHOLE_BYTES => {
                    self.only = Some(data.clone());
                    return;
                }
                None => {}
                Some(first) => self.copy(&first),
            }
        }
        self.copy(data);
    }

    fn copy(&mut self, data: &[u8]) {
        if !self.overflowed && self.bytes.len() + data.len() <= MAX_WHOLE_BYTES {
            self.bytes.extend_from_slice(data);
            return;
        }
        self.overflowed = true;
        let data = &data[data.len().saturating_sub(TAIL_BYTES)..];
        let keep = TAIL_BYTES - data.len();
        if self.bytes.len() > keep {
            self.bytes.advance(self.bytes.len() - keep);
        }
        self.bytes.extend_from_slice(data);
    }

    fn usage(&self) -> Option<Usage> {
        match &self.only {
            Some(only) => Usage::from_answer(only),
            None if self.overflowed => Usage::from_answer_tail(&self.bytes),
            None => Usage::from_answer(&self.bytes),
        }
    }
}

pin_project! {
    /// A body whose usage is read and whose cost is settled by its `Meter`.
    pub struct Metered<B> {
        #[pin]
        inner: B,
        meter: Option<Meter>,
    }
}

impl<B: Body + Observed> Metered<B> {
    pub fn new(inner: B, mut meter: Option<Meter>) -> Metered<B> {
        if let Some(meter) = meter.as_mut() {
            // A stream that ended while it was held has reported its usage already.
            meter.usage = inner.usage();
            // A body known to be empty is complete already (`Recorded` gives its verdict
            // at once, and reads its cost then).
            if inner.is_end_stream() {
                meter.settle(!inner.upstream_failed());
            }
        }
        Metered { inner, meter }
    }
}

impl<B: Body<Data = Bytes, Error = BodyError> + Observed> Body for Metered<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        let Some(meter) = this.meter.as_mut() else { return Poll::Ready(polled) };
        let inner = this.inner.as_ref().get_ref();
        match &polled {
            Some(Ok(frame)) => {
                match (&mut meter.whole, frame.data_ref()) {
                    (Some(capture), Some(data)) => capture.push(data),
                    (None, _) => meter.usage = inner.usage().or(meter.usage),
                    _ => {}
                }
                if inner.is_end_stream() {
                    meter.settle(!inner.upstream_failed());
                }
            }
            Some(Err(_)) => meter.settle(false),
            None => {
                if meter.whole.is_none() {
                    meter.usage = inner.usage().or(meter.usage);
                }
                meter.settle(!inner.upstream_failed());
            }
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

impl<B: Observed> Observed for Metered<B> {
    fn ttft(&self) -> Option<Duration> {
        self.inner.ttft()
    }

    fn upstream_failed(&self) -> bool {
        self.inner.upstream_failed()
    }

    fn usage(&self) -> Option<Usage> {
        self.meter.as_ref().and_then(|meter| meter.usage).or_else(|| self.inner.usage())
    }

    fn settled(&self) -> Option<Settled> {
        let meter = self.meter.as_ref()?;
        meter.settled.map(|cost| Settled { arm: meter.charge.arm, cost })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(body: &[u8], frame: usize) -> Option<Usage> {
        let mut capture = Capture::default();
        body.chunks(frame).for_each(|data| capture.push(&Bytes::copy_from_slice(data)));
        assert!(capture.bytes.len() <= MAX_WHOLE_BYTES);
        capture.usage()
    }

    #[test]
    fn a_whole_answer_is_read_for_its_usage_in_any_framing() {
        let body = br#"{"data":[{"embedding":[0.5]}],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        for frame in [1, 7, body.len()] {
            assert_eq!(captured(body, frame), Some(Usage { input: 8, ..Usage::default() }));
        }
    }

    #[test]
    fn a_large_answer_keeps_only_its_tail_and_still_finds_the_usage_there() {
        let floats = vec!["0.123456"; 100_000].join(",");
        let body =
            format!(r#"{{"data":[{{"embedding":[{floats}]}}],"usage":{{"prompt_tokens":4096,"total_tokens":4096}}}}"#);
        assert!(body.len() > MAX_WHOLE_BYTES);
        for frame in [8 << 10, 64 << 10, body.len()] {
            assert_eq!(captured(body.as_bytes(), frame), Some(Usage { input: 4096, ..Usage::default() }), "{frame}");
        }
    }
}
