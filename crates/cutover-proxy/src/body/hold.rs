//! A stream's beginning, held while the gateway can still fall over: read until its first
//! token and `stream_commit` beyond, so that a stream that stays silent, breaks, errs or
//! sends garbage before then is a failed attempt rather than a broken answer.

use std::time::Duration;

use bytes::Bytes;
use cutover_net::body::BoxError;
use cutover_wire::sse::{SseFramer, StreamFault};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::{EarlyStreamError, TransportError};

/// How long a stream may be held.
#[derive(Debug, Clone, Copy)]
pub struct HoldLimits {
    /// The first token is due within this long of the attempt's start…
    pub first_token: Duration,
    /// …and never later than the request's total timeout.
    pub total: Duration,
    /// After the first token, read on this long before committing.
    pub commit: Duration,
}

/// A stream's beginning, read while the gateway could still fall over.
#[derive(Debug, Default)]
pub struct Held {
    pub framer: SseFramer,
    /// Whole events read so far, sent to the client first once committed.
    pub events: Vec<Bytes>,
    pub ttft: Option<Duration>,
    /// The bytes of `events`, bounded by [`MAX_HELD_BYTES`].
    pub bytes: usize,
}

/// The most of a stream's beginning held in memory. Before its first token a stream is
/// not an answer yet, so more is a fault; after it, the stream is committed at once.
const MAX_HELD_BYTES: usize = 4 << 20;

/// Reads `body` until its first token and `limits.commit` beyond; the attempt started at
/// `started`. A stream that ends complete before then is held whole.
#[cfg(test)]
pub async fn hold<B>(body: &mut B, limits: HoldLimits, started: Instant) -> Result<Held, TransportError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    hold_with(body, limits, started, SseFramer::new()).await
}

/// `hold`, framing the stream with `framer` (one that watches usage, say), which the
/// committed stream keeps: every event passes through it exactly once.
pub async fn hold_with<B>(
    body: &mut B,
    limits: HoldLimits,
    started: Instant,
    framer: SseFramer,
) -> Result<Held, TransportError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let token_deadline = started + limits.first_token.min(limits.total);
    let early = |error| Err(TransportError::Stream(error));
    let mut held = Held { framer, ..Held::default() };
    loop {
        let until = match held.ttft {
            None => token_deadline,
            Some(ttft) => started + ttft + limits.commit,
        };
        if held.ttft.is_some() && Instant::now() >= until {
            return Ok(held);
        }
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if held.ttft.is_some() => return Ok(held),
            Err(_) => return Err(TransportError::FirstTokenTimeout(limits.first_token)),
            Ok(None) if held.framer.saw_finish() || held.framer.saw_done() => return Ok(held),
            Ok(None) => return early(EarlyStreamError::Closed),
            Ok(Some(Err(error))) => return early(EarlyStreamError::Broke(error.into())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data()
            && let Err(error) = held.take(data, started)
        {
            return early(error);
        }
        if held.bytes > MAX_HELD_BYTES {
            if held.ttft.is_some() {
                return Ok(held);
            }
            return early(EarlyStreamError::Fault(StreamFault::Oversized));
        }
    }
}

impl Held {
    /// Takes one chunk of the stream: its whole events are kept, and its first token timed.
    fn take(&mut self, data: Bytes, started: Instant) -> Result<(), EarlyStreamError> {
        let ready = self.framer.push(data)?;
        if self.framer.saw_error() {
            return Err(EarlyStreamError::ErrorEvent);
        }
        if !ready.is_empty() {
            self.bytes += ready.len();
            self.events.push(ready);
        }
        if self.ttft.is_none() && self.framer.saw_token() {
            self.ttft = Some(started.elapsed());
        }
        Ok(())
    }
}
