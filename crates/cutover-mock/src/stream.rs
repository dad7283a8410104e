//! Streamed answers: a task paces the SSE events of one response into a channel that the
//! response body reads, applying the stream faults on the way in the [`Dialect`] of the
//! wire format (OpenAI's chat, the Responses API, Anthropic's Messages).
//!
//! A task rather than a state-machine body so that pacing and faults read as a plain
//! sequence; it ends as soon as the client goes away (the channel closes).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError};
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};

use super::faults::FaultKind;

/// How long "forever" lasts for stalls and unanswered requests.
pub(super) const HANG: Duration = Duration::from_secs(3600);

/// The bytes that differ between the wire formats a stream speaks: how it ends, what its
/// broken event looks like, what its mid-stream error looks like.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dialect {
    /// Sent after the tail, unless the no-done fault drops it; `None`: the stream just ends.
    end: Option<&'static [u8]>,
    /// Injected by the malformed-chunk fault: an event whose data is invalid JSON.
    malformed: &'static [u8],
    /// Sent by the error-event fault after the opening event.
    error: &'static [u8],
}

const OPENAI_ERROR: &[u8] =
    concat!(r#"data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}"#, "\n\n")
        .as_bytes();

/// Chat and legacy completions: `data: [DONE]` last.
pub(super) const CHAT: Dialect =
    Dialect { end: Some(b"data: [DONE]\n\n"), malformed: b"data: {\"choices\": [tru\n\n", error: OPENAI_ERROR };

/// The Responses API: named events, no `[DONE]`.
pub(super) const RESPONSES: Dialect = Dialect { end: None, ..CHAT };

/// Anthropic's Messages API: `message_stop` last, errors as `event: error`.
pub(super) const ANTHROPIC: Dialect = Dialect {
    end: Some(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
    malformed: concat!(
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":tru"#,
        "\n\n"
    )
    .as_bytes(),
    error: concat!(
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "\n\n"
    )
    .as_bytes(),
};

/// The events of one streamed answer, in order.
pub(super) struct StreamPlan {
    /// Sent right after the headers: the role chunk; Anthropic's `message_start`,
    /// `content_block_start` and `ping`.
    pub head: Vec<Bytes>,
    /// Content (or tool-call) chunks: the first after `ttft`, then one per `chunk_gap`.
    pub body: Vec<Bytes>,
    /// Finish and usage chunks, sent right after the last content chunk; the dialect's
    /// end (`[DONE]`, `message_stop`) follows.
    pub tail: Vec<Bytes>,
}

/// Pacing and misbehaviour of one stream.
pub(super) struct Pacing {
    pub ttft: Duration,
    pub chunk_gap: Duration,
    pub fault: Option<FaultKind>,
    /// Turns true when the server shuts down, to end stalls.
    pub stopping: watch::Receiver<bool>,
    /// Fake streaming: wait as long as the paced stream would take, send nothing
    /// meanwhile (not even the role chunk), then every event at once.
    pub buffered: bool,
}

impl Pacing {
    /// How long a paced stream of `count` body events takes to its last one.
    fn generation_time(&self, count: usize) -> Duration {
        let extra = match self.fault {
            Some(FaultKind::SlowFirstToken(extra)) => extra,
            _ => Duration::ZERO,
        };
        self.ttft + extra + self.chunk_gap * count.saturating_sub(1) as u32
    }
}

/// A `200 text/event-stream` response whose body is `plan`, paced by a spawned task.
pub(super) fn response(plan: StreamPlan, pacing: Pacing) -> Response<BoxBody> {
    response_in(plan, pacing, CHAT)
}

/// `response` for streams that end without `[DONE]` (the Responses API's).
pub(super) fn response_without_done(plan: StreamPlan, pacing: Pacing) -> Response<BoxBody> {
    response_in(plan, pacing, RESPONSES)
}

/// `response` speaking `dialect`.
pub(super) fn response_in(plan: StreamPlan, pacing: Pacing, dialect: Dialect) -> Response<BoxBody> {
    // Small: the task should feel the client's pace, not run ahead of it.
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(pump(Pump { tx, stopping: pacing.stopping.clone() }, plan, pacing, dialect));
    let mut response = Response::new(ChannelBody { rx }.boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

type Item = Result<Frame<Bytes>, BoxError>;

/// A body yielding what the pump task sends, one frame per event.
struct ChannelBody {
    rx: mpsc::Receiver<Item>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

struct Pump {
    tx: mpsc::Sender<Item>,
    stopping: watch::Receiver<bool>,
}

impl Pump {
    /// Sends one event; false once the client has gone.
    async fn send(&self, event: Bytes) -> bool {
        self.tx.send(Ok(Frame::data(event))).await.is_ok()
    }

    /// Makes the body fail, so hyper aborts the response without its terminating chunk.
    async fn abort(&self, why: &'static str) {
        let _ = self.tx.send(Err(why.into())).await;
    }

    /// Waits `delay`; false if the client went away meanwhile.
    async fn pause(&self, delay: Duration) -> bool {
        if delay.is_zero() {
            return !self.tx.is_closed();
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.tx.closed() => false,
        }
    }

    /// Goes silent until the client leaves, the server stops, or [`HANG`] passes.
    async fn stall(&mut self) {
        tokio::select! {
            () = tokio::time::sleep(HANG) => {}
            () = self.tx.closed() => {}
            _ = self.stopping.wait_for(|stopping| *stopping) => {}
        }
    }
}

async fn pump(mut pump: Pump, plan: StreamPlan, pacing: Pacing, dialect: Dialect) {
    if pacing.buffered && !pump.pause(pacing.generation_time(plan.body.len())).await {
        return;
    }
    let fault = pacing.fault;
    if fault == Some(FaultKind::ErrorEvent) {
        return error_event(&pump, plan.head, &pacing, dialect).await;
    }
    for event in plan.head {
        if !pump.send(event).await {
            return;
        }
    }
    let count = plan.body.len();
    // "A few" content chunks before a cut or a stall, fewer for short answers.
    let break_at = (count / 2).clamp(count.min(1), 3);
    let mut body = plan.body.into_iter();
    for i in 0..=count {
        let delay = match (i, fault) {
            _ if pacing.buffered => Duration::ZERO,
            (0, Some(FaultKind::SlowFirstToken(extra))) => pacing.ttft + extra,
            (0, _) => pacing.ttft,
            _ if i == count => Duration::ZERO,
            _ => pacing.chunk_gap,
        };
        if !pump.pause(delay).await {
            return;
        }
        if i == break_at {
            match fault {
                Some(FaultKind::StreamCut) => return pump.abort("simulated stream cut").await,
                Some(FaultKind::StreamStall) => {
                    pump.stall().await;
                    return pump.abort("simulated stall ended").await;
                }
                _ => {}
            }
        }
        if i == count / 2
            && fault == Some(FaultKind::MalformedChunk)
            && !pump.send(Bytes::from_static(dialect.malformed)).await
        {
            return;
        }
        if let Some(event) = body.next()
            && !pump.send(event).await
        {
            return;
        }
    }
    for event in plan.tail {
        if !pump.send(event).await {
            return;
        }
    }
    if let (Some(end), false) = (dialect.end, fault == Some(FaultKind::NoDone)) {
        pump.send(Bytes::from_static(end)).await;
    }
}

/// The error-event fault: the opening event, then where the first token would have come
/// the dialect's error event, then a clean end.
async fn error_event(pump: &Pump, head: Vec<Bytes>, pacing: &Pacing, dialect: Dialect) {
    if let Some(opening) = head.into_iter().next()
        && !pump.send(opening).await
    {
        return;
    }
    if pump.pause(pacing.ttft).await {
        pump.send(Bytes::from_static(dialect.error)).await;
    }
}
