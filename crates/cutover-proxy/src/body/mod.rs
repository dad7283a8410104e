//! The body of a proxied response: one type, `Answer`, whose single `poll_frame` calls
//! each concern's stage in turn, each stage a module of its own and specified without a
//! socket: `Deadlines` (idle and total timeouts), `Events` (an event stream forwarded
//! whole event by whole event, batched, checked and completed, a failure told in-band),
//! `Meter` (the answer's usage and cost, settled once), `Teeing` (a mirrored request's
//! answer captured for the shadow comparison) and `Recorder` (the attempt's metrics,
//! evidence and breaker verdict, once). `hold` reads a stream's beginning before it is
//! committed.
//!
//! The answer is boxed once, for hyper: a frame costs no allocation and no dynamic
//! dispatch on its way through the stages.

mod answer;
mod events;
mod hold;
mod meter;
mod record;
mod tee;
mod timeout;

use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

pub use answer::Answer;
pub use events::{Events, StreamEnd};
#[cfg(test)]
pub use hold::hold;
pub use hold::{Held, HoldLimits, hold_with};
pub use meter::{Meter, Settled, usage_watch};
pub use record::{Recorder, Tally};
pub use tee::Teeing;
pub use timeout::Deadlines;

use cutover_config::Timeouts;
use cutover_model::Api;
use cutover_net::body::{BoxBody, BoxError};

/// Why a response body stopped short, after its first byte.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the upstream exceeded the request timeout")]
    TotalTimeout,
    #[error("the upstream sent nothing for {0:?}")]
    Idle(Duration),
    #[error("the upstream body broke: {0}")]
    Body(#[source] BoxError),
    #[error("the upstream stream broke: {0}")]
    Stream(#[source] BoxError),
    #[error(transparent)]
    Fault(#[from] cutover_wire::sse::StreamFault),
    #[error("the upstream closed the stream before the answer was complete")]
    Cut,
}

impl BodyError {
    /// The same failure, told of an event stream.
    fn in_stream(self) -> BodyError {
        match self {
            BodyError::Body(source) => BodyError::Stream(source),
            other => other,
        }
    }
}

/// A committed event stream: its held beginning, what it must end with, and the API its
/// client speaks (the shape of an error told in-band).
pub struct EventStream {
    pub held: Held,
    pub end: StreamEnd,
    pub api: Api,
}

/// The client's body of a committed answer from `inner`, whose attempt started at `started`;
/// `meter` settles its usage and cost, `teeing` captures it for the shadow comparison.
pub fn answer<B>(
    inner: B,
    stream: Option<EventStream>,
    recorder: Recorder,
    (meter, teeing): (Option<Meter>, Option<Teeing>),
    timeouts: &Timeouts,
    started: Instant,
) -> BoxBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let deadlines = Deadlines::new(timeouts.idle, timeouts.total, started);
    let events = stream.map(|EventStream { held, end, api }| Events::new(held, end, api, started));
    Answer::new(inner, deadlines, events, (meter, teeing), recorder).boxed_unsync()
}

#[cfg(test)]
mod tests;
