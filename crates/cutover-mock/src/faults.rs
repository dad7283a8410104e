//! Fault injection: the misbehaviours the mock can simulate, the `--fault` spec syntax,
//! and the per-request draw that picks at most one of them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::MockError;

/// The fault names `FaultKind::parse` accepts, for help texts and error messages.
pub const FAULT_NAMES: &str = "500, 503, 529, 429, 429-retry-after=<dur>, reset, no-answer, \
     slow-first-token=<dur>, stream-cut, stream-stall, malformed-chunk, no-done, error-event, \
     context-length, content-filter, redirect, html-200, wrong-content-type";

/// One way for the mock to misbehave.
///
/// Each is described as an OpenAI client meets it; in Anthropic mode the same fault
/// speaks Anthropic's shapes (its error kinds, `message_stop` for `[DONE]`), and
/// `ContentFilter` is a whole answer whose `stop_reason` is "refusal".
///
/// `StreamCut`, `StreamStall`, `MalformedChunk`, `NoDone` and `ErrorEvent` only concern
/// streamed requests: a rule with one of them is skipped (its coin is not flipped and its
/// limit not used) for a non-streamed request, which is answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `500` with a `server_error`.
    Status500,
    /// `503` with a `server_error` ("overloaded").
    Status503,
    /// `529`, Anthropic's `overloaded_error` (OpenAI's error shape in OpenAI mode).
    Status529,
    /// `429 rate_limit_exceeded`, with `retry-after` (seconds, rounded up) and
    /// `retry-after-ms` when `retry_after` is set.
    RateLimited { retry_after: Option<Duration> },
    /// The connection is dropped before any response.
    ResetBeforeHeaders,
    /// The request is accepted and never answered (for an hour, or until the client or
    /// the server goes away).
    NoAnswer,
    /// Streams: this much extra delay before the first content chunk. Non-streamed: this
    /// much extra latency.
    SlowFirstToken(Duration),
    /// Streams: headers, role chunk and a few content chunks, then the connection is
    /// aborted mid-body (no terminating chunk, no `[DONE]`).
    StreamCut,
    /// Streams: a few chunks, then silence for an hour without closing.
    StreamStall,
    /// Streams: one event in the middle is invalid JSON; the rest is normal.
    MalformedChunk,
    /// Streams: everything up to the finish (and usage) chunk, then a clean end without
    /// `data: [DONE]`.
    NoDone,
    /// Streams: the opening event (role chunk, Anthropic's `message_start`), then an
    /// error event ("Overloaded") and a clean end: Anthropic's mid-stream overload.
    ErrorEvent,
    /// `400 context_length_exceeded`.
    ContextLengthExceeded,
    /// `400 content_policy_violation`.
    ContentFilter,
    /// `302 Found` to a login page, with an HTML body: what a relay whose account expired,
    /// a captive portal or a wrong base URL answers.
    Redirect,
    /// `200 OK` with an HTML page ("account suspended"): the classic relay failure that
    /// passes for a success by its status.
    Html200,
    /// `200 OK` with a JSON body of the wrong type for the request: `application/json`
    /// (a whole answer) to a request for a stream, `text/plain` to any other.
    WrongContentType,
}

impl FaultKind {
    /// Parses a fault name (see [`FAULT_NAMES`]); durations are written `2s`, `0.5s` or
    /// `1500ms`.
    pub fn parse(s: &str) -> Result<FaultKind, MockError> {
        parse_kind(s.trim()).map_err(|reason| MockError::InvalidFault { spec: s.to_owned(), reason })
    }

    /// Whether the fault only means something for a streamed answer.
    pub fn streams_only(self) -> bool {
        matches!(
            self,
            FaultKind::StreamCut
                | FaultKind::StreamStall
                | FaultKind::MalformedChunk
                | FaultKind::NoDone
                | FaultKind::ErrorEvent
        )
    }
}

fn parse_kind(s: &str) -> Result<FaultKind, String> {
    let (name, value) = match s.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (s, None),
    };
    let kind = match (name, value) {
        ("500", None) => FaultKind::Status500,
        ("503", None) => FaultKind::Status503,
        ("529", None) => FaultKind::Status529,
        ("429", None) => FaultKind::RateLimited { retry_after: None },
        ("429-retry-after", Some(v)) => FaultKind::RateLimited { retry_after: Some(parse_duration(v)?) },
        ("reset", None) => FaultKind::ResetBeforeHeaders,
        ("no-answer", None) => FaultKind::NoAnswer,
        ("slow-first-token", Some(v)) => FaultKind::SlowFirstToken(parse_duration(v)?),
        ("stream-cut", None) => FaultKind::StreamCut,
        ("stream-stall", None) => FaultKind::StreamStall,
        ("malformed-chunk", None) => FaultKind::MalformedChunk,
        ("no-done", None) => FaultKind::NoDone,
        ("error-event", None) => FaultKind::ErrorEvent,
        ("context-length", None) => FaultKind::ContextLengthExceeded,
        ("content-filter", None) => FaultKind::ContentFilter,
        ("redirect", None) => FaultKind::Redirect,
        ("html-200", None) => FaultKind::Html200,
        ("wrong-content-type", None) => FaultKind::WrongContentType,
        ("429-retry-after" | "slow-first-token", None) => {
            return Err(format!("{name} needs a duration, e.g. {name}=2s or {name}=1500ms"));
        }
        (_, Some(_)) if parse_kind(name).is_ok() => return Err(format!("{name} takes no value")),
        _ => {
            return Err(format!("unknown fault {name:?}; expected one of {FAULT_NAMES}"));
        }
    };
    Ok(kind)
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {v:?}; expected e.g. 2s, 0.5s or 1500ms");
    if let Some(ms) = v.strip_suffix("ms") {
        ms.parse::<u64>().map(Duration::from_millis).map_err(|_| bad())
    } else if let Some(secs) = v.strip_suffix('s') {
        let secs: f64 = secs.parse().map_err(|_| bad())?;
        Duration::try_from_secs_f64(secs).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

struct Dur(Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{}ms", self.0.as_millis())
        } else {
            write!(f, "{}s", self.0.as_secs_f64())
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FaultKind::Status500 => f.write_str("500"),
            FaultKind::Status503 => f.write_str("503"),
            FaultKind::Status529 => f.write_str("529"),
            FaultKind::RateLimited { retry_after: None } => f.write_str("429"),
            FaultKind::RateLimited { retry_after: Some(d) } => write!(f, "429-retry-after={}", Dur(d)),
            FaultKind::ResetBeforeHeaders => f.write_str("reset"),
            FaultKind::NoAnswer => f.write_str("no-answer"),
            FaultKind::SlowFirstToken(d) => write!(f, "slow-first-token={}", Dur(d)),
            FaultKind::StreamCut => f.write_str("stream-cut"),
            FaultKind::StreamStall => f.write_str("stream-stall"),
            FaultKind::MalformedChunk => f.write_str("malformed-chunk"),
            FaultKind::NoDone => f.write_str("no-done"),
            FaultKind::ErrorEvent => f.write_str("error-event"),
            FaultKind::ContextLengthExceeded => f.write_str("context-length"),
            FaultKind::ContentFilter => f.write_str("content-filter"),
            FaultKind::Redirect => f.write_str("redirect"),
            FaultKind::Html200 => f.write_str("html-200"),
            FaultKind::WrongContentType => f.write_str("wrong-content-type"),
        }
    }
}

/// A fault injected into a `share` of the requests, at most `limit` times.
///
/// Spec syntax: `KIND[:SHARE[:LIMIT]]`. SHARE is a number in 0..=1 or a percentage
/// (`0.1`, `10%`; default 1). LIMIT is a count or `once`; after that many injections the
/// rule stops firing. Examples: `500:0.1`, `stream-cut`, `503:1:once`, `reset:1:3`,
/// `429-retry-after=1500ms:0.5`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    pub kind: FaultKind,
    pub share: f64,
    pub limit: Option<u64>,
}

impl FaultRule {
    /// `kind` for `share` of the requests, without limit.
    pub fn new(kind: FaultKind, share: f64) -> FaultRule {
        FaultRule { kind, share, limit: None }
    }

    /// `kind` for every request.
    pub fn always(kind: FaultKind) -> FaultRule {
        FaultRule::new(kind, 1.0)
    }

    /// `kind` for the next request only.
    pub fn once(kind: FaultKind) -> FaultRule {
        FaultRule::always(kind).with_limit(1)
    }

    pub fn with_limit(mut self, limit: u64) -> FaultRule {
        self.limit = Some(limit);
        self
    }

    /// Parses `KIND[:SHARE[:LIMIT]]`, see the type's documentation.
    pub fn parse(spec: &str) -> Result<FaultRule, MockError> {
        parse_rule(spec.trim()).map_err(|reason| MockError::InvalidFault { spec: spec.to_owned(), reason })
    }
}

fn parse_rule(spec: &str) -> Result<FaultRule, String> {
    let mut fields = spec.splitn(3, ':');
    let kind = parse_kind(fields.next().unwrap_or_default())?;
    let share = match fields.next() {
        Some(share) => parse_share(share)?,
        None => 1.0,
    };
    let limit = match fields.next() {
        Some("once") => Some(1),
        Some(limit) => match limit.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(format!("bad limit {limit:?}; expected a count of at least 1 or `once`"));
            }
        },
        None => None,
    };
    Ok(FaultRule { kind, share, limit })
}

fn parse_share(s: &str) -> Result<f64, String> {
    let share = match s.strip_suffix('%') {
        Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    };
    match share {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("bad share {s:?}; expected a number between 0 and 1, or a percentage")),
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.share)?;
        match self.limit {
            Some(1) => f.write_str(":once"),
            Some(n) => write!(f, ":{n}"),
            None => Ok(()),
        }
    }
}

/// The rules of one configuration, with how often each has fired, so that limits hold
/// across concurrent requests.
#[derive(Debug)]
pub(super) struct FaultSet {
    rules: Vec<(FaultRule, AtomicU64)>,
}

impl FaultSet {
    pub(super) fn new(rules: &[FaultRule]) -> FaultSet {
        FaultSet { rules: rules.iter().map(|&rule| (rule, AtomicU64::new(0))).collect() }
    }

    /// The fault for one request: the first applicable rule whose coin hits and whose
    /// limit is not used up.
    pub(super) fn pick(&self, streamed: bool) -> Option<FaultKind> {
        self.rules.iter().find_map(|(rule, fired)| {
            let applies = streamed || !rule.kind.streams_only();
            let hits = || rule.share >= 1.0 || (rule.share > 0.0 && fastrand::f64() < rule.share);
            let within_limit = || match rule.limit {
                None => true,
                Some(limit) => {
                    fired.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < limit).then_some(n + 1)).is_ok()
                }
            };
            (applies && hits() && within_limit()).then_some(rule.kind)
        })
    }
}
