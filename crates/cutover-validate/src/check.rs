//! The catalogue of checks (id, the capability it stands for, whether it is a quality
//! note) and what one check reports: pass, fail or unsupported, a one-line reason, and
//! its latency.
//!
//! *Unsupported* means the upstream refused the feature outright with a 4xx: it does not
//! offer it (a relay without tools). *Fail* means it took the request and answered wrong,
//! or failed (5xx, a broken connection). Only *pass* satisfies a required check.

use std::time::Duration;

use serde::Serialize;

use super::exchange::{Answer, ExchangeError, Streamed};

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Unsupported,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
        }
    }
}

/// One check of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// `group.name`, stable: `--require` and `--json` use it.
    pub id: &'static str,
    /// What the upstream lacks when this check does not pass, for the parity line.
    pub capability: &'static str,
    /// A quality note is reported but never required by default.
    pub quality_note: bool,
}

const fn check(id: &'static str, capability: &'static str) -> Check {
    Check { id, capability, quality_note: false }
}

/// Every check, in the order they run and are shown.
pub const CATALOGUE: [Check; 21] = [
    check("models", "the model in GET /models"),
    check("chat", "well-formed chat completions"),
    check("streaming", "well-formed streaming"),
    check("streaming.usage", "streamed usage"),
    check("tools.forced", "forced tool calls"),
    check("tools.auto", "tool_choice auto"),
    check("tools.parallel", "parallel tool calls"),
    check("tools.streamed", "streamed tool calls"),
    check("vision", "image input"),
    Check { id: "vision.colour", capability: "naming an image's colour", quality_note: true },
    check("json.mode", "JSON mode"),
    check("json.schema", "structured output"),
    check("params.max_tokens", "max_tokens"),
    check("params.stop", "stop sequences"),
    check("params.sampling", "temperature, seed and n"),
    check("errors.invalid_request", "OpenAI-shaped errors"),
    check("errors.unknown_model", "an error for unknown models"),
    check("honesty.model", "the model asked for"),
    check("honesty.usage", "honest prompt token counts"),
    check("honesty.streaming", "real streaming"),
    check("honesty.tool_calls", "tool calls returned"),
];

/// How long a check's exchange took: to the first content (streams) and to the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub ttft: Option<Duration>,
    pub total: Option<Duration>,
}

impl Latency {
    pub fn whole(answer: &Answer) -> Latency {
        Latency { ttft: None, total: Some(answer.total) }
    }

    pub fn streamed(streamed: &Streamed, ttft: Option<Duration>) -> Latency {
        Latency { ttft, total: Some(streamed.total) }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub status: Status,
    pub reason: String,
    pub latency: Latency,
}

impl Finding {
    pub fn pass(reason: impl Into<String>, latency: Latency) -> Finding {
        Finding { status: Status::Pass, reason: reason.into(), latency }
    }

    pub fn fail(reason: impl Into<String>, latency: Latency) -> Finding {
        Finding { status: Status::Fail, reason: reason.into(), latency }
    }

    /// Pass when `failure` is `None`, else fail with it.
    pub fn unless(failure: Option<String>, passed: impl Into<String>, latency: Latency) -> Finding {
        match failure {
            None => Finding::pass(passed, latency),
            Some(reason) => Finding::fail(reason, latency),
        }
    }

    /// No answer to judge: a failure, or unsupported when the upstream's API cannot
    /// carry what the check asks for.
    pub fn broken(error: &ExchangeError) -> Finding {
        let status = match error {
            ExchangeError::Untranslatable(_) => Status::Unsupported,
            _ => Status::Fail,
        };
        Finding { status, reason: error.to_string(), latency: Latency::default() }
    }

    /// A non-2xx answer: unsupported when the upstream refused with a 4xx, else a failure.
    pub fn refused(status: http::StatusCode, body: &[u8], latency: Latency) -> Finding {
        let reason = format!("HTTP {}: {}", status.as_u16(), error_message(body));
        let status = if status.is_client_error() { Status::Unsupported } else { Status::Fail };
        Finding { status, reason, latency }
    }
}

/// The `error.message` of an OpenAI error body, else the start of the body.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.pointer("/error/message")).and_then(|m| m.as_str()) {
        Some(message) => one_line(message, 120),
        None => one_line(&String::from_utf8_lossy(body), 120),
    }
}

/// `text` on one line, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max { flat } else { format!("{}…", flat.chars().take(max).collect::<String>()) }
}

/// One check's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub check: &'static Check,
    pub required: bool,
    pub finding: Finding,
}
