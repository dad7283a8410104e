//! The `cutover mock` flags, and their translation into a `MockConfig`.

use std::net::SocketAddr;
use std::time::Duration;

use super::config::{Api, MockConfig};
use super::error::MockError;
use super::faults::{FaultKind, FaultRule};
use super::quirks::Quirk;
use super::usage::{UsagePlacement, UsagePlan};

/// Runs a simulated OpenAI-compatible (or Anthropic) upstream.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// The API to speak: openai (chat, completions, embeddings, responses) or anthropic
    /// (POST /v1/messages, /v1/messages/count_tokens, Anthropic's errors and model list).
    #[arg(long, value_enum, value_name = "API", default_value_t = Api::OpenAi)]
    pub api: Api,

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

    /// Require `Authorization: Bearer <key>` (with --api anthropic: `x-api-key: <key>`), the
    /// key read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,

    /// Model listed by GET /v1/models (repeatable; default: a few OpenAI model names, or
    /// Claude model names with --api anthropic).
    #[arg(long = "model", value_name = "ID")]
    pub models: Vec<String>,

    /// Share of inference requests answered 500; shorthand for `--fault 500:F`.
    #[arg(long, value_name = "F")]
    pub error_rate: Option<f64>,

    /// Inject a fault (repeatable), as KIND[:SHARE[:LIMIT]].
    ///
    /// KIND is one of 500, 503, 529, 429, 429-retry-after=DUR, reset, no-answer,
    /// slow-first-token=DUR, stream-cut, stream-stall, malformed-chunk, no-done,
    /// error-event, context-length, content-filter, redirect, html-200, wrong-content-type
    /// (DUR: 2s, 0.5s, 1500ms). 529 is Anthropic's overloaded_error; error-event is an
    /// error event in the middle of a stream (Anthropic's mid-stream overload) that ends
    /// it cleanly. SHARE is the share of requests hit, 0..1 or a percentage (default 1).
    /// LIMIT caps the injections, a count or `once`. Rules are tried in order, each with
    /// its own coin; the first that hits decides. Stream faults (stream-cut, stream-stall,
    /// malformed-chunk, no-done, error-event) skip non-streamed requests. Faults apply to
    /// chat, completions, embeddings, responses and messages, never to /v1/models nor
    /// token counting. Examples: --fault 500:0.1  --fault stream-cut:5%  --fault 503:1:once
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
    /// With --api anthropic: prompt tokens reported as written to the cache
    /// (cache_creation_input_tokens); input_tokens is the prompt less cached and written.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub usage_cache_write: u64,
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
    /// --quirk no-tools  --quirk echo-model=gpt-4o-mini  --quirk inflate-prompt-tokens=1.5.
    /// With --api anthropic they apply to messages, except invalid-json and
    /// ignore-json-mode (the Messages API has no JSON mode).
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
        if self.usage_cache_write > 0 && self.api != Api::Anthropic {
            return Err(MockError::AnthropicOnly("--usage-cache-write"));
        }
        let models = if self.models.is_empty() { self.api.default_models() } else { self.models };
        Ok(MockConfig {
            api: self.api,
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
            cache_write: self.usage_cache_write,
            quirks: self.quirks,
        })
    }
}
