//! The body stack driven with made-up frames and paused time: no socket, no upstream.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::{BreakerPolicy, RouteId, Timeouts};
use cutover_metrics::Metrics;
use cutover_model::{Api, Outcome, Role};
use cutover_net::body::BoxBody;
use cutover_wire::sse::StreamFault;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::breaker::{Admission, Breaker, HealthReport};
use crate::error::{EarlyStreamError, TransportError};
use cutover_live::stats::{Arm, StepStats};

/// A body whose frames the test sends as it goes; dropping the sender ends it.
struct Feed(mpsc::UnboundedReceiver<Result<Frame<Bytes>, std::io::Error>>);

impl Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}

struct Sender(mpsc::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>);

impl Sender {
    fn send(&self, data: &'static str) {
        let _ = self.0.send(Ok(Frame::data(Bytes::from_static(data.as_bytes()))));
    }

    fn break_off(&self) {
        let _ = self.0.send(Err(std::io::Error::other("connection reset")));
    }
}

fn feed() -> (Sender, Feed) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Sender(sender), Feed(receiver))
}

const TOKEN: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
const FINISH: &str = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const DONE: &str = "data: [DONE]\n\n";

/// Where an answer's side effects land: the metrics, the step's evidence, the breaker.
struct Fixture {
    metrics: Arc<Metrics>,
    stats: Arc<StepStats>,
    breaker: Arc<Breaker>,
    route: RouteId,
    timeouts: Timeouts,
}

impl Fixture {
    fn new() -> Fixture {
        let text = "[upstreams.primary]\nbase_url = \"http://127.0.0.1:9\"\n\n[[routes]]\nname = \"default\"\nprimary = \"primary\"\n";
        let config = cutover_config::load_str(text, Path::new("."), |_| None).unwrap();
        let policy = BreakerPolicy { consecutive_failures: 2, min_requests: 1000, ..BreakerPolicy::default() };
        Fixture {
            metrics: Arc::new(Metrics::new(&config)),
            stats: Arc::new(StepStats::default()),
            breaker: Arc::new(Breaker::new(policy)),
            route: config.routes.first_id().unwrap(),
            timeouts: Timeouts { idle: Duration::from_secs(1), total: Duration::from_secs(10), ..Timeouts::default() },
        }
    }

    fn recorder(&self, started: Instant) -> Recorder {
        let tally = Tally { stats: self.stats.clone(), control: false, user: None };
        let health = HealthReport::new(self.breaker.clone(), Admission::Allowed);
        let mut recorder = Recorder::new(self.metrics.clone(), tally, self.route, Role::Primary, started, Outcome::Ok);
        recorder.report_to(Some(health));
        recorder
    }

    /// The client's body of an event stream held up to its first token.
    fn stream(&self, upstream: Feed, held: Held) -> BoxBody {
        self.stream_of(upstream, held, StreamEnd::Done, Api::OpenAi)
    }

    /// The same, for an endpoint that ends with `end`, to a client of `api`.
    fn stream_of(&self, upstream: Feed, held: Held, end: StreamEnd, api: Api) -> BoxBody {
        let started = Instant::now();
        let stream = EventStream { held, end, api };
        answer(upstream, Some(stream), self.recorder(started), (None, None), &self.timeouts, started)
    }

    /// How many attempts were recorded with `outcome`, in the metrics and in the evidence.
    fn recorded(&self, outcome: Outcome) -> (u64, u64) {
        let metrics = self.metrics.route(self.route).arm(Role::Primary).unwrap().count(outcome);
        let snapshot = self.stats.snapshot().arm(Arm::Primary);
        let evidence = match outcome {
            Outcome::Ok => snapshot.ok,
            Outcome::ClientError => snapshot.client_errors,
            Outcome::UpstreamError => snapshot.upstream_errors,
            // Never evidence: the step's arms have no such count.
            Outcome::Cancelled => 0,
        };
        (metrics, evidence)
    }
}

/// Everything the client receives, frame by frame.
async fn frames(mut body: BoxBody) -> Vec<String> {
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames.push(String::from_utf8(data.to_vec()).unwrap());
    }
    frames
}

fn limits() -> HoldLimits {
    HoldLimits { first_token: Duration::from_secs(2), total: Duration::from_secs(10), commit: Duration::ZERO }
}

/// The failure a whole answer's body ended with.
fn body_error(error: cutover_net::body::BoxError) -> BodyError {
    *error.downcast::<BodyError>().expect("a body error")
}

#[tokio::test(start_paused = true)]
async fn a_body_silent_for_the_idle_timeout_fails() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let start = Instant::now();
    let mut body = answer(body, None, fixture.recorder(start), (None, None), &fixture.timeouts, start);
    upstream.send("x");
    assert!(body.frame().await.unwrap().is_ok());
    let error = body_error(body.frame().await.unwrap().unwrap_err());
    assert!(matches!(error, BodyError::Idle(idle) if idle == Duration::from_secs(1)), "{error}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(error.to_string(), "the upstream sent nothing for 1s");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_keeps_talking_still_ends_at_the_total_timeout() {
    let mut fixture = Fixture::new();
    fixture.timeouts.total = Duration::from_secs(3);
    let (upstream, body) = feed();
    let started = Instant::now();
    let mut body = answer(body, None, fixture.recorder(started), (None, None), &fixture.timeouts, started);
    tokio::spawn(async move {
        loop {
            upstream.send("x");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let error = loop {
        match body.frame().await.unwrap() {
            Ok(_) => continue,
            Err(error) => break body_error(error),
        }
    };
    assert!(matches!(error, BodyError::TotalTimeout), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn the_hold_fails_a_stream_without_a_first_token_in_time() {
    let (upstream, mut body) = feed();
    upstream.send("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
    let started = Instant::now();
    let error = hold(&mut body, limits(), started).await.unwrap_err();
    assert!(matches!(error, TransportError::FirstTokenTimeout(_)), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    drop(upstream);
}

#[tokio::test(start_paused = true)]
async fn the_hold_keeps_the_events_up_to_the_first_token_and_its_time() {
    let (upstream, mut body) = feed();
    let started = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        upstream.send(TOKEN);
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let held = hold(&mut body, limits(), started).await.unwrap();
    assert_eq!(held.ttft, Some(Duration::from_millis(300)));
    assert_eq!(held.events, vec![Bytes::from_static(TOKEN.as_bytes())]);
}

#[tokio::test(start_paused = true)]
async fn the_hold_fails_a_stream_that_closes_errs_or_breaks_before_its_first_token() {
    let (upstream, mut body) = feed();
    drop(upstream);
    let error = hold(&mut body, limits(), Instant::now()).await.unwrap_err();
    assert!(matches!(error, TransportError::Stream(EarlyStreamError::Closed)), "{error}");

    let (upstream, mut body) = feed();
    upstream.send("data: {\"error\":{\"message\":\"overloaded\"}}\n\n");
    let error = hold(&mut body, limits(), Instant::now()).await.unwrap_err();
    assert_eq!(error.to_string(), "the stream failed before its first token: the upstream sent an error event");

    let (upstream, mut body) = feed();
    upstream.break_off();
    let error = hold(&mut body, limits(), Instant::now()).await.unwrap_err();
    assert_eq!(error.to_string(), "the stream failed before its first token: the stream broke: connection reset");
    assert!(error.retryable() && error.is_upstream_fault());
}

#[tokio::test(start_paused = true)]
async fn the_hold_keeps_a_bounded_beginning_failing_before_the_first_token_committing_after_it() {
    let role_only = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n";
    let (upstream, mut body) = feed();
    for _ in 0..(5 << 20) / role_only.len() {
        upstream.send(role_only);
    }
    let error = hold(&mut body, limits(), Instant::now()).await.unwrap_err();
    assert!(matches!(error, TransportError::Stream(EarlyStreamError::Fault(StreamFault::Oversized))), "{error}");

    let (upstream, mut body) = feed();
    upstream.send(TOKEN);
    for _ in 0..(5 << 20) / TOKEN.len() {
        upstream.send(TOKEN);
    }
    let started = Instant::now();
    let holding_a_while = HoldLimits { commit: Duration::from_secs(1), ..limits() };
    let held = hold(&mut body, holding_a_while, started).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO, "committed at the bound, not after the commit time");
    assert!(held.bytes > 4 << 20 && held.bytes < (4 << 20) + 4096, "{}", held.bytes);
}

#[tokio::test(start_paused = true)]
async fn a_finished_answer_without_done_gets_done_supplied() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(TOKEN);
    upstream.send(FINISH);
    drop(upstream);
    let frames = frames(fixture.stream(body, Held::default())).await;
    assert_eq!(frames.concat(), format!("{TOKEN}{FINISH}{DONE}"));
    assert_eq!(fixture.recorded(Outcome::Ok), (1, 1));
    assert!(!fixture.breaker.is_open());
}

#[tokio::test(start_paused = true)]
async fn ready_events_go_out_in_one_frame_after_the_held_ones() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let mut held = Held::default();
    held.events.push(Bytes::from_static(TOKEN.as_bytes()));
    upstream.send(TOKEN);
    upstream.send(FINISH);
    upstream.send(DONE);
    drop(upstream);
    let frames = frames(fixture.stream(body, held)).await;
    assert_eq!(frames, vec![TOKEN.to_owned(), format!("{TOKEN}{FINISH}{DONE}")]);
}

#[tokio::test(start_paused = true)]
async fn an_event_split_across_frames_goes_out_whole() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let mut body = fixture.stream(body, Held::default());
    upstream.send("data: {\"choices\":[{\"delta\":");
    let pending = tokio::time::timeout(Duration::from_millis(10), body.frame()).await;
    assert!(pending.is_err(), "half an event is not forwarded");
    upstream.send("{\"content\":\"Hi\"}}]}\n\n");
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(frame, TOKEN.as_bytes());
}

#[tokio::test(start_paused = true)]
async fn a_malformed_event_is_refused_and_the_stream_ends_with_an_error_event() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(TOKEN);
    upstream.send("data: {not json\n\n");
    upstream.send(FINISH);
    let frames = frames(fixture.stream(body, Held::default())).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0], TOKEN);
    assert!(frames[1].contains("\"upstream_stream_error\"") && frames[1].contains("not valid JSON"), "{frames:?}");
    assert_eq!(fixture.recorded(Outcome::UpstreamError), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_after_its_first_token_ends_with_an_error_event_and_no_done() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(TOKEN);
    drop(upstream);
    let text = frames(fixture.stream(body, Held::default())).await.concat();
    assert!(text.starts_with(TOKEN), "{text}");
    assert!(text.contains("before the answer was complete"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_idle_after_its_first_token_ends_with_an_error_event() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(TOKEN);
    let text = frames(fixture.stream(body, Held::default())).await.concat();
    assert!(text.ends_with("\n\n") && text.contains("the upstream sent nothing for 1s"), "{text}");
    drop(upstream);
}

#[tokio::test(start_paused = true)]
async fn a_failed_stream_is_recorded_once_with_its_ttft_and_counts_once_against_the_breaker() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let body = fixture.stream(body, Held::default());
    tokio::time::advance(Duration::from_millis(250)).await;
    upstream.send(TOKEN);
    upstream.break_off();
    let text = frames(body).await.concat();
    assert!(text.contains("the upstream stream broke: connection reset"), "{text}");
    assert_eq!(fixture.recorded(Outcome::UpstreamError), (1, 1));
    assert_eq!(fixture.recorded(Outcome::Ok), (0, 0));
    let ttft = fixture.metrics.route(fixture.route).arm(Role::Primary).unwrap().ttft.cumulative().1;
    assert_eq!(ttft, 1, "the TTFT of a stream that failed later still counts");
    assert!(!fixture.breaker.is_open(), "one failure of the two that open it");
    fixture.breaker.on_failure(Admission::Allowed);
    assert!(fixture.breaker.is_open());
}

#[tokio::test(start_paused = true)]
async fn an_upstream_error_event_passes_but_counts_as_a_failure() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(TOKEN);
    upstream.send("data: {\"error\":{\"message\":\"overloaded\"}}\n\n");
    drop(upstream);
    let text = frames(fixture.stream(body, Held::default())).await.concat();
    assert!(text.ends_with("\"overloaded\"}}\n\n") && !text.contains("[DONE]"), "{text}");
    assert_eq!(fixture.recorded(Outcome::UpstreamError), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_sized_body_is_judged_with_its_last_byte() {
    let fixture = Fixture::new();
    let started = Instant::now();
    let inner = Full::new(Bytes::from_static(b"{\"ok\":true}"));
    let mut body = answer(inner, None, fixture.recorder(started), (None, None), &fixture.timeouts, started);
    assert_eq!(body.size_hint().exact(), Some(11), "a sized body stays sized");
    assert!(body.frame().await.unwrap().is_ok());
    assert_eq!(fixture.recorded(Outcome::Ok), (1, 1), "recorded before the server polls for the end");
    assert!(body.frame().await.is_none());
    drop(body);
    assert_eq!(fixture.recorded(Outcome::Ok), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_client_left_is_counted_cancelled_and_kept_out_of_the_evidence() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let mut body = fixture.stream(body, Held::default());
    upstream.send(TOKEN);
    assert!(body.frame().await.unwrap().is_ok());
    drop(body);
    assert_eq!(fixture.recorded(Outcome::Cancelled).0, 1, "counted once, as cancelled");
    assert_eq!(fixture.recorded(Outcome::Ok), (0, 0), "not a success, and no latency");
    assert_eq!(fixture.recorded(Outcome::UpstreamError), (0, 0), "not the upstream's failure");
    let evidence = fixture.stats.snapshot().arm(Arm::Primary);
    assert_eq!(evidence.requests(), 0, "the step's evidence does not count it");
    assert!(!fixture.breaker.is_open());
}

#[tokio::test(start_paused = true)]
async fn an_empty_body_dropped_unpolled_is_a_complete_answer_not_a_cancellation() {
    let fixture = Fixture::new();
    let started = Instant::now();
    let empty = http_body_util::Empty::<Bytes>::new();
    drop(answer(empty, None, fixture.recorder(started), (None, None), &fixture.timeouts, started));
    assert_eq!(fixture.recorded(Outcome::Ok), (1, 1));
    assert_eq!(fixture.recorded(Outcome::Cancelled).0, 0);
}

/// The client's body of a stream teed for the shadow comparison, and the side it sends.
fn teed_stream(fixture: &Fixture, upstream: Feed) -> (BoxBody, tokio::sync::oneshot::Receiver<cutover_shadow::Side>) {
    let started = Instant::now();
    let (tap, side) = cutover_shadow::Tap::pair();
    let teeing = Teeing::new(tap, http::StatusCode::OK, true, started);
    let stream = EventStream { held: Held::default(), end: StreamEnd::Done, api: Api::OpenAi };
    (answer(upstream, Some(stream), fixture.recorder(started), (None, Some(teeing)), &fixture.timeouts, started), side)
}

#[tokio::test(start_paused = true)]
async fn a_teed_stream_reaches_the_client_byte_for_byte_and_its_side_is_captured() {
    let (fixture, plain_fixture) = (Fixture::new(), Fixture::new());
    let (upstream, body) = feed();
    let (plain_upstream, plain_body) = feed();
    for sender in [&upstream, &plain_upstream] {
        sender.send(TOKEN);
        sender.send(FINISH);
        sender.send(DONE);
    }
    drop((upstream, plain_upstream));
    let (teed, side) = teed_stream(&fixture, body);
    let (teed, plain) = (frames(teed).await, frames(plain_fixture.stream(plain_body, Held::default())).await);
    assert_eq!(teed, plain, "the tee changes nothing the client gets");
    let side = side.await.unwrap();
    assert!(side.ok() && side.streamed);
    assert_eq!(side.captured.whole().unwrap(), teed.concat().into_bytes());
    let answer = cutover_shadow::Answer::read(&side.captured, true);
    assert_eq!((answer.content.as_str(), answer.finish_reason.as_deref()), ("Hi", Some("stop")));
}

#[tokio::test(start_paused = true)]
async fn a_teed_answer_the_client_left_reports_a_cancelled_side_and_a_broken_one_a_failed_side() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    let (mut teed, side) = teed_stream(&fixture, body);
    upstream.send(TOKEN);
    assert!(teed.frame().await.unwrap().is_ok());
    drop(teed);
    assert!(side.await.unwrap().cancelled());
    let (upstream, body) = feed();
    let (teed, side) = teed_stream(&fixture, body);
    upstream.send(TOKEN);
    upstream.break_off();
    let _ = frames(teed).await;
    assert_eq!(side.await.unwrap().outcome, Some(Outcome::UpstreamError));
}

const MESSAGE_DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
const MESSAGE_STOPPED: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n";

#[tokio::test(start_paused = true)]
async fn a_messages_stream_that_finished_without_message_stop_gets_it_and_never_a_done() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(MESSAGE_DELTA);
    upstream.send(MESSAGE_STOPPED);
    drop(upstream);
    let received = frames(fixture.stream_of(body, Held::default(), StreamEnd::MessageStop, Api::Anthropic)).await;
    let received = received.concat();
    assert!(received.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{received}");
    assert!(!received.contains("[DONE]"), "{received}");
    assert_eq!(fixture.recorded(Outcome::Ok), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_messages_stream_cut_before_its_end_tells_the_client_with_anthropics_error_event() {
    let fixture = Fixture::new();
    let (upstream, body) = feed();
    upstream.send(MESSAGE_DELTA);
    drop(upstream);
    let received = frames(fixture.stream_of(body, Held::default(), StreamEnd::MessageStop, Api::Anthropic)).await;
    let last = received.last().unwrap();
    let data = last.strip_prefix("event: error\ndata: ").and_then(|rest| rest.strip_suffix("\n\n"));
    let error: serde_json::Value =
        serde_json::from_str(data.unwrap_or_else(|| panic!("not an error event: {last}"))).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "api_error");
    assert!(!received.concat().contains("message_stop"));
    assert_eq!(fixture.recorded(Outcome::UpstreamError), (1, 1));
}

/// A fixture whose upstream has prices, and the meter of a chat answer from it.
fn priced() -> (Fixture, cutover_config::Config) {
    let text = "[upstreams.primary]\nbase_url = \"http://127.0.0.1:9\"\n\n[prices.primary]\n\"gpt-4.1\" = { input = 2.0, output = 8.0 }\n\n[[routes]]\nname = \"default\"\nprimary = \"primary\"\n";
    let config = cutover_config::load_str(text, Path::new("."), |_| None).unwrap();
    let mut fixture = Fixture::new();
    fixture.metrics = Arc::new(Metrics::new(&config));
    fixture.route = config.routes.first_id().unwrap();
    (fixture, config)
}

fn chat_meter(fixture: &Fixture, config: &cutover_config::Config, streamed: bool) -> Option<Meter> {
    let mut meta = crate::request::parse_meta(br#"{"model":"gpt-4.1"}"#).unwrap();
    meta.endpoint = Some(cutover_wire::usage::Endpoint::Chat);
    let status = http::StatusCode::OK;
    Meter::for_answer(config, &fixture.metrics, fixture.route, &meta, 0, Role::Primary, Role::Primary, status, streamed)
}

/// The route's primary arm in the cost ledger now.
fn spent(fixture: &Fixture) -> cutover_cost::Totals {
    let report = cutover_cost::report(&fixture.metrics.cost, None, 3600, cutover_cost::now_seconds());
    report.routes[0].arms[0].totals
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_in_two_frames_is_metered_once_at_its_end_for_the_ledger_the_evidence_and_its_side() {
    let (fixture, config) = priced();
    let (upstream, body) = feed();
    let started = Instant::now();
    let (tap, side) = cutover_shadow::Tap::pair();
    let teeing = Teeing::new(tap, http::StatusCode::OK, false, started);
    let meter = chat_meter(&fixture, &config, false);
    let answer = answer(body, None, fixture.recorder(started), (meter, Some(teeing)), &fixture.timeouts, started);
    let (head, tail) = (
        r#"{"choices":[{"message":{"content":"Hi"}}],"#,
        r#""usage":{"prompt_tokens":1000000,"completion_tokens":1000000}}"#,
    );
    upstream.send(head);
    upstream.send(tail);
    drop(upstream);
    assert_eq!(frames(answer).await.concat(), [head, tail].concat());
    // $2 of input and $8 of output, in nano-dollars.
    let cost = 10_000_000_000;
    let totals = spent(&fixture);
    assert_eq!((totals.requests, totals.successful, totals.cost.0), (1, 1, cost));
    assert_eq!(fixture.stats.snapshot().arm(Arm::Primary).spend.nanos.iter().sum::<u64>(), cost);
    let side = side.await.unwrap();
    assert_eq!(side.usage.map(|usage| (usage.input, usage.output)), Some((1_000_000, 1_000_000)));
    assert_eq!(side.cost, Some(Some(cost)));
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_client_left_after_its_usage_is_charged_for_it_but_costs_the_evidence_nothing() {
    let (fixture, config) = priced();
    let (upstream, body) = feed();
    let started = Instant::now();
    let framer = cutover_wire::sse::SseFramer::watching_usage(cutover_wire::sse::UsageWatch::Read);
    let stream = EventStream { held: Held { framer, ..Held::default() }, end: StreamEnd::Done, api: Api::OpenAi };
    let meter = chat_meter(&fixture, &config, true);
    let mut answer = answer(body, Some(stream), fixture.recorder(started), (meter, None), &fixture.timeouts, started);
    upstream.send(TOKEN);
    upstream.send("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":500000,\"completion_tokens\":0}}\n\n");
    assert!(answer.frame().await.unwrap().is_ok());
    drop(answer);
    let totals = spent(&fixture);
    assert_eq!((totals.requests, totals.successful, totals.cost.0), (1, 0, 1_000_000_000));
    assert_eq!(totals.tokens.input, 500_000);
    assert_eq!(fixture.recorded(Outcome::Cancelled).0, 1);
    assert_eq!(fixture.stats.snapshot().arm(Arm::Primary).spend.nanos.iter().sum::<u64>(), 0);
}
