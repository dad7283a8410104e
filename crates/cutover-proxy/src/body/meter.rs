//! An answer's usage and cost, read on the way through and settled exactly once: when
//! the body ends, fails, or is dropped because the client left. A stream's usage is read by
//! its framer (`Events`, which reads each event in its one pass); a whole answer of
//! an endpoint that reports usage is kept aside within a bound (held as it came when it
//! is one chunk, else copied: the whole of it up to `MAX_WHOLE_BYTES`, past that only
//! its tail, where `usage` comes) and its usage read once at its end, from the end
//! (`Usage::from_answer`). Other endpoints are not metered at all.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use cutover_config::{Config, RouteId};
use cutover_cost::{Charge, Ending, Nanos};
use cutover_metrics::Metrics;
use cutover_model::Role;
use cutover_wire::{sse::UsageWatch, usage::Usage};
use http::StatusCode;

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
    /// The usage the answer was settled with.
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

    /// Takes a data frame of the answer: a whole answer's is kept for its usage.
    pub fn observe(&mut self, data: &Bytes) {
        if let Some(capture) = self.whole.as_mut() {
            capture.push(data);
        }
    }

    /// Settles the answer's cost, once: `complete` when it ended in good order, with
    /// `streamed` the usage its stream reported (a whole answer's is read here, from what
    /// was kept).
    pub fn settle(&mut self, complete: bool, streamed: Option<Usage>) {
        if self.settled.is_some() {
            return;
        }
        self.usage = match self.whole.take() {
            Some(capture) if complete => capture.usage(),
            Some(_) => None,
            None => streamed,
        };
        let ending = Ending { success_status: self.success_status, complete };
        self.settled = Some(self.charge.settle(&self.metrics.cost, self.usage, ending));
    }

    /// What the answer cost and which arm pays, once settled.
    pub fn settled(&self) -> Option<Settled> {
        self.settled.map(|cost| Settled { arm: self.charge.arm, cost })
    }

    /// The usage it was settled with.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // Never unsettled in an answer (`Answer` settles it however the body ends); a
        // meter dropped before it reached one still leaves its count.
        self.settle(false, None);
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
