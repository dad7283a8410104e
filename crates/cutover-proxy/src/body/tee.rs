//! A mirrored request's answer, teed for the shadow comparison: each data frame's bytes
//! are copied into a bounded `Captured` (nothing here can change, delay or hold back a
//! byte the reader gets), and when the body ends, fails or is dropped the side is sent
//! once through its `Tap`, with the timings, usage and cost `Answer` observed. Usage the
//! gateway asked for on the client's behalf (and strips from the client's stream) is
//! still read, from the meter. Answers of requests that are not mirrored carry no tap.

use std::time::Duration;

use bytes::Bytes;
use cutover_model::Outcome;
use cutover_shadow::{Side, Tap};
use http::StatusCode;
use tokio::time::Instant;

use super::Settled;
use crate::failure::outcome_for_status;

/// One side being captured.
pub struct Teeing {
    tap: Tap,
    side: Side,
    started: Instant,
    status: StatusCode,
}

/// What the answer showed by its end, for its side.
pub struct Seen {
    /// The body broke, or the upstream said inside it that the answer failed.
    pub failed: bool,
    pub ttft: Option<Duration>,
    pub usage: Option<cutover_wire::usage::Usage>,
    pub settled: Option<Settled>,
}

impl Teeing {
    /// The capture of an answer with `status`, whose attempt started at `started`.
    pub fn new(tap: Tap, status: StatusCode, streamed: bool, started: Instant) -> Teeing {
        Teeing { tap, side: Side { streamed, ..Side::default() }, started, status }
    }

    /// Takes a data frame as the reader gets it.
    pub fn push(&mut self, data: &Bytes) {
        self.side.captured.push(data);
    }

    /// Sends the side of an answer that ended (or broke) as `seen` says.
    pub fn send(self, seen: Seen) {
        let Teeing { tap, mut side, started, status } = self;
        side.outcome = Some(if seen.failed { Outcome::UpstreamError } else { outcome_for_status(status) });
        side.duration = started.elapsed();
        side.ttft = seen.ttft;
        side.usage = seen.usage;
        side.cost = seen.settled.map(|settled| settled.cost.map(|nanos| nanos.0));
        tap.send(side);
    }

    /// The reader left before the end: a side with nothing to compare.
    pub fn cancel(self) {
        let Teeing { tap, mut side, started, .. } = self;
        side.outcome = Some(Outcome::Cancelled);
        side.duration = started.elapsed();
        tap.send(side);
    }
}
