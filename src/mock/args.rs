//! The `cutover mock` flags, and their translation into a `MockConfig`.

use std::net::SocketAddr;
use std::time::Duration;

use super::config::{DEFAULT_MODELS, MockConfig};
use super::error::MockError;
use super::faults::{FaultKind, FaultRule};
use super::quirks::Quirk;
use super::usage::{UsagePlacement, UsagePlan};

/// Runs a simulated OpenAI-compatible upstream.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8001")]
    pub listen: SocketAddr,

    /// Name reported in `x-mock-name`, `system_fingerprint` and the answer text.
    #[arg(long, value_name = "NAME", default_value = "mock")]
    pub name: String,

    /// Delay before a response (streams: before the headers), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,

    /// Streams: delay before the first content chunk, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub ttft: u64,

    /// Streams: delay between content chunks, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub chunk_gap: u64,

    /// Completion tokens per answer (content chunks per stream).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub tokens: usize,

    /// Require `Authorization: Bearer <key>`, the key read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,

    /// Model listed by GET /v1/models (repeatable; default: a few OpenAI model names).
    #[arg(long = "model", value_name = "ID")]
    pub models: Vec<String>,

    /// Share of inference requests answered 500; shorthand for `--fault 500:F`.
    #[arg(long, value_name = "F")]
    pub error_rate: Option<f64>,

    /// Inject a fault (repeatable), as KIND[:SHARE[:LIMIT]].
    ///
    /// KIND is one of 500, 503, 429, 429-retry-after=DUR, reset, no-answer,
    /// slow-first-token=DUR, stream-cut, stream-stall, malformed-chunk, no-done,
    /// context-length, content-filter, redirect, html-200, wrong-content-type (DUR: 2s,
    /// 0.5s, 1500ms). SHARE is the share of requests hit, 0..1 or a percentage (default
    /// 1). LIMIT caps the injections, a count or `once`. Rules are tried in order, each with its own coin; the first that hits
    /// decides. Stream faults (stream-cut, stream-stall, malformed-chunk, no-done) skip
    /// non-streamed requests. Faults apply to chat, completions and embeddings, never to
    /// /v1/models. Examples: --fault 500:0.1  --fault stream-cut:5%  --fault 503:1:once
    #[arg(long = "fault", value_name = "SPEC", value_parser = FaultRule::parse)]
    pub faults: Vec<FaultRule>,
    /// Prompt (input) tokens every answer reports (default: estimated from the request).
    #[arg(long, value_name = "N")]
    pub usage_prompt: Option<u64>,
    /// Completion (output) tokens every answer reports (default: the answer's tokens).
    #[arg(long, value_name = "N")]
    pub usage_completion: Option<u64>,
    /// Of the prompt tokens, those reported as read from cache.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub usage_cached: u64,
    /// Of the completion tokens, those reported as reasoning.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub usage_reasoning: u64,
    /// Streams: put the usage on the last chunk with choices instead of a chunk of its own.
    #[arg(long, conflicts_with = "no_usage")]
    pub usage_on_last_chunk: bool,
    /// Report no usage at all, whole answers and streams alike.
    #[arg(long)]
    pub no_usage: bool,
    /// Break one OpenAI-compatible capability of chat completions (repeatable), as NAME[=VALUE].
    ///
    /// NAME is one of wrong-tool, strip-tool-calls, no-tools, invalid-json,
    /// ignore-json-mode, echo-model=NAME, inflate-prompt-tokens=FACTOR, finish-reason=R,
    /// no-stream-usage, reject-images, plain-errors, fake-stream. Examples:
    /// --quirk no-tools  --quirk echo-model=gpt-4o-mini  --quirk inflate-prompt-tokens=1.5
    #[arg(long = "quirk", value_name = "NAME[=VALUE]", value_parser = Quirk::parse)]
    pub quirks: Vec<Quirk>,
}

impl MockArgs {
    /// The configuration these flags describe (`listen` aside).
    pub fn into_config(self) -> Result<MockConfig, MockError> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(MockError::InvalidName(self.name));
        }
        let mut faults = Vec::with_capacity(self.faults.len() + 1);
        if let Some(rate) = self.error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(MockError::InvalidErrorRate(rate));
            }
            faults.push(FaultRule::new(FaultKind::Status500, rate));
        }
        faults.extend(self.faults);
        let api_key = match self.api_key_env {
            None => None,
            Some(var) => match std::env::var(&var) {
                Ok(key) if !key.is_empty() => Some(key),
                Ok(_) => {
                    return Err(MockError::ApiKeyEnv { var, reason: "the variable is empty" });
                }
                Err(_) => {
                    return Err(MockError::ApiKeyEnv { var, reason: "the variable is not set" });
                }
            },
        };
        let models =
            if self.models.is_empty() { DEFAULT_MODELS.iter().map(|&m| m.to_owned()).collect() } else { self.models };
        Ok(MockConfig {
            name: self.name,
            latency: Duration::from_millis(self.latency),
            ttft: Duration::from_millis(self.ttft),
            chunk_gap: Duration::from_millis(self.chunk_gap),
            answer_tokens: self.tokens,
            api_key,
            models,
            faults,
            usage: UsagePlan {
                prompt: self.usage_prompt,
                completion: self.usage_completion,
                cached: self.usage_cached,
                reasoning: self.usage_reasoning,
                placement: match (self.no_usage, self.usage_on_last_chunk) {
                    (true, _) => UsagePlacement::Omitted,
                    (false, true) => UsagePlacement::OnLastChunk,
                    (false, false) => UsagePlacement::Alone,
                },
            },
            quirks: self.quirks,
        })
    }
}
