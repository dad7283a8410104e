//! The body of a proxied response, as a stack of wrappers over any body, one concern
//! each: `Deadlines` (idle and total timeouts), `Events` (an event stream forwarded whole
//! event by whole event, batched, checked and completed), `Recorded` (the attempt's
//! metrics, evidence and breaker verdict, once), `Metered` (the answer's usage and cost,
//! settled once, below `Recorded`), `Teed` (a mirrored request's answer captured for the
//! shadow comparison, between the two) and `ErrorEvent` (a failure after the first byte told
//! in-band). `hold` reads a stream's beginning before it is committed.
//!
//! The layers compose generically and are boxed once, at the top: a frame costs no
//! allocation and no dynamic dispatch on its way through them.

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

pub use events::{ErrorEvent, Events, StreamEnd};
#[cfg(test)]
pub use hold::hold;
pub use hold::{Held, HoldLimits, hold_with};
pub use meter::{Meter, Metered, Settled, usage_watch};
pub use record::{Recorded, Recorder, Tally};
pub use tee::{Teed, Teeing};
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

/// What a layer knows of the answer beyond its frames, for `Recorded` above it.
pub trait Observed {
    /// When the first token passed, counted from the attempt's start.
    fn ttft(&self) -> Option<Duration> {
        None
    }

    /// The upstream itself reported a failure inside an answer that ended in good order.
    fn upstream_failed(&self) -> bool {
        false
    }

    /// The usage the upstream reported in the answer so far.
    fn usage(&self) -> Option<cutover_wire::usage::Usage> {
        None
    }

    /// What the answer cost and which arm pays, once its meter has settled (at its end):
    /// `None` while unsettled or for an endpoint without usage. Read by `Recorded` when the
    /// answer ends, for the rollout's cost evidence.
    fn settled(&self) -> Option<Settled> {
        None
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
    let timed = Deadlines::new(inner, timeouts.idle, timeouts.total, started);
    match stream {
        None => Recorded::new(Teed::new(Metered::new(timed, meter), teeing), recorder)
            .map_err(BoxError::from)
            .boxed_unsync(),
        Some(EventStream { held, end, api }) => {
            let events = Metered::new(Events::new(timed, held, end, started), meter);
            ErrorEvent::new(Recorded::new(Teed::new(events, teeing), recorder), api)
                .map_err(|never| match never {})
                .boxed_unsync()
        }
    }
}

#[cfg(test)]
mod tests;
