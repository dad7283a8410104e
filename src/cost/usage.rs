//! The token counts an upstream reports for one answer, read from OpenAI's wire format:
//! chat and legacy completions (`prompt_tokens`, `completion_tokens` and their details),
//! embeddings (`prompt_tokens`), the Responses API (`input_tokens`, `output_tokens`), whole
//! or from a streamed event (a chunk's `usage`, `response.completed`'s `response.usage`).

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

/// The `"usage"` key's searcher, built once: streams look for it in every event.
pub static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// What an answer used, as its upstream reported it. `cached_input` is part of `input`,
/// and `reasoning` part of `output`, as OpenAI counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning: u64,
}

/// The endpoints whose answers carry usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Responses,
}

impl Endpoint {
    /// The endpoint of a client path (`/v1/...`), if its answers carry usage.
    pub fn of_path(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::Chat),
            "/v1/completions" => Some(Endpoint::Completions),
            "/v1/embeddings" => Some(Endpoint::Embeddings),
            "/v1/responses" => Some(Endpoint::Responses),
            _ => None,
        }
    }
}

/// A usage object of any of the endpoints; every field optional, since providers and
/// relays omit them freely.
#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl Usage {
    /// The usage in a JSON answer or event, if it reports one. A usage object that
    /// counts no input at all (`{}`, a relay's placeholder) is no usage.
    /// Found by one allocation-free pass over the answer (`json::top_level_member`,
    /// which also checks that the whole answer is valid JSON); only the usage object
    /// itself is parsed.
    pub fn from_json(json: &[u8]) -> Option<Usage> {
        let usage_in = |object: &[u8]| -> Option<WireUsage> {
            serde_json::from_slice::<Option<WireUsage>>(crate::json::top_level_member(object, b"usage")?).ok()?
        };
        let wire = usage_in(json).or_else(|| usage_in(crate::json::top_level_member(json, b"response")?))?;
        wire.into_usage()
    }

    /// Cheap test before any parse: whether `json` may carry a usage object (a `"usage"`
    /// key followed by an object, not `null`). An escaped occurrence inside a string
    /// cannot match: its closing quote is preceded by a backslash.
    pub fn may_carry(json: &[u8]) -> bool {
        let mut from = 0;
        while let Some(found) = USAGE_KEY.find(&json[from..]) {
            let after = json[from + found + 7..].trim_ascii_start();
            if let Some(value) = after.strip_prefix(b":") {
                return value.trim_ascii_start().first() == Some(&b'{');
            }
            from += found + 7;
        }
        false
    }

    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Adds `other`, saturating.
    pub fn add(&mut self, other: &Usage) {
        self.input = self.input.saturating_add(other.input);
        self.cached_input = self.cached_input.saturating_add(other.cached_input);
        self.output = self.output.saturating_add(other.output);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }
}

impl WireUsage {
    fn into_usage(self) -> Option<Usage> {
        let input = self.prompt_tokens.or(self.input_tokens)?;
        let output = self.completion_tokens.or(self.output_tokens).unwrap_or(0);
        let input_details = self.prompt_tokens_details.or(self.input_tokens_details);
        let output_details = self.completion_tokens_details.or(self.output_tokens_details);
        let cached = input_details.and_then(|details| details.cached_tokens).unwrap_or(0);
        let reasoning = output_details.and_then(|details| details.reasoning_tokens).unwrap_or(0);
        // Parts never exceed their whole, whatever a relay reports.
        Some(Usage { input, cached_input: cached.min(input), output, reasoning: reasoning.min(output) })
    }
}
