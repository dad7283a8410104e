//! The token counts an upstream reports for one answer, read from OpenAI's wire format:
//! chat and legacy completions (`prompt_tokens`, `completion_tokens` and their details),
//! embeddings (`prompt_tokens`), the Responses API (`input_tokens`, `output_tokens`), whole
//! or from a streamed event (a chunk's `usage`, `response.completed`'s `response.usage`).

use serde::{Deserialize, Serialize};

use crate::json::{self, Sightings};

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
    /// The usage in a JSON answer or event, if it reports one: its top-level `usage`, or
    /// the `response.usage` of a streamed Responses API event. A usage object that counts
    /// no input at all (`{}`, a relay's placeholder) is no usage.
    pub fn from_json(json: &[u8]) -> Option<Usage> {
        Usage::sighted(json, &json::read(json)?)
    }

    /// The usage of `json`, already read in one pass (`sightings`): only the usage object
    /// itself is parsed.
    pub fn sighted(json: &[u8], sightings: &Sightings) -> Option<Usage> {
        let object = |span: &Option<std::ops::Range<usize>>| {
            span.clone().map(|span| &json[span]).filter(|value| value.first() == Some(&b'{'))
        };
        Usage::from_object(object(&sightings.usage).or_else(|| object(&sightings.response_usage))?)
    }

    /// The usage of a whole answer. OpenAI puts `usage` last, so it is looked for from the
    /// end: the last `"usage"` key, taken when the bytes after its value close exactly
    /// the top-level object; otherwise (usage elsewhere, or nested keys named so) the
    /// answer is read in one pass like an event. Only the usage object is parsed.
    pub fn from_answer(answer: &[u8]) -> Option<Usage> {
        match Usage::from_answer_end(answer) {
            Some(usage) => usage,
            None => Usage::from_json(answer),
        }
    }

    /// The usage of an answer of which only `tail`, its end, is known: its last
    /// top-level `usage` member if the tail holds it.
    pub fn from_answer_tail(tail: &[u8]) -> Option<Usage> {
        Usage::from_answer_end(tail).flatten()
    }

    /// `Some(usage)` when the last `"usage"` key of `text` is a member of the top-level
    /// object (`Some(None)`: it is, but its value is no usage object); `None` when that
    /// cannot be told from the end.
    fn from_answer_end(text: &[u8]) -> Option<Option<Usage>> {
        let key = memchr::memmem::rfind(text, b"\"usage\"")?;
        let value = text[key + 7..].trim_ascii_start().strip_prefix(b":")?.trim_ascii_start();
        let start = text.len() - value.len();
        let end = start + json::top_level_member_end(value)?;
        Some(if value.first() == Some(&b'{') { Usage::from_object(&text[start..end]) } else { None })
    }

    /// The usage in one usage object (`{"prompt_tokens": ...}`).
    pub fn from_object(object: &[u8]) -> Option<Usage> {
        serde_json::from_slice::<WireUsage>(object).ok()?.into_usage()
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
