//! The token counts an upstream reports for one answer: OpenAI's chat and legacy
//! completions (`prompt_tokens`, `completion_tokens` and their details), embeddings
//! (`prompt_tokens`), the Responses API (`input_tokens`, `output_tokens`), and Anthropic's
//! Messages (`input_tokens`, `output_tokens`, `cache_creation_input_tokens`,
//! `cache_read_input_tokens`), whole or from a streamed event (a chunk's `usage`,
//! `response.completed`'s `response.usage`, `message_start`'s `message.usage`, a
//! `message_delta`'s `usage`). Every count is kept as OpenAI counts it: Anthropic's
//! `input_tokens` excludes the cached tokens, `Usage::input` includes them.

use serde::{Deserialize, Serialize};

use crate::json::{self, Sightings};

mod strip;
#[cfg(test)]
mod tests;

pub use strip::{Stripped, strip_usage};

/// The most tokens one count of one answer may report (2^32, about 4.3 billion: a
/// thousand times the largest context window); a larger count is no honest report and
/// counts as absent, so that one absurd answer cannot saturate the counters and the
/// cost for good.
pub(crate) const MAX_TOKENS: u64 = 1 << 32;

/// What an answer used, as its upstream reported it. `cached_input` (tokens read from a
/// prompt cache) and `cache_write` (tokens written to one, Anthropic's
/// `cache_creation_input_tokens`) are parts of `input`, and `reasoning` part of `output`,
/// as OpenAI counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    #[serde(default)]
    pub cache_write: u64,
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
    /// Anthropic's Messages API.
    Messages,
}

impl Endpoint {
    /// The endpoint of a client path (`/v1/...`), if its answers carry usage.
    pub fn of_path(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::Chat),
            "/v1/completions" => Some(Endpoint::Completions),
            "/v1/embeddings" => Some(Endpoint::Embeddings),
            "/v1/responses" => Some(Endpoint::Responses),
            "/v1/messages" => Some(Endpoint::Messages),
            _ => None,
        }
    }
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
        Usage::from_object(Usage::object_of(json, sightings)?)
    }

    /// The usage object the pass over `json` found: its top-level one, else the one of
    /// its envelope (`response`, `message`).
    fn object_of<'a>(json: &'a [u8], sightings: &Sightings) -> Option<&'a [u8]> {
        let object = |span: &Option<std::ops::Range<usize>>| {
            span.clone().map(|span| &json[span]).filter(|value| value.first() == Some(&b'{'))
        };
        object(&sightings.usage).or_else(|| object(&sightings.envelope_usage))
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
    /// cannot be told from the end. A usage object is read in the same pass that finds
    /// where it ends.
    fn from_answer_end(text: &[u8]) -> Option<Option<Usage>> {
        // Found by its `u`, which the few members after usage rarely hold: a vectorised
        // search that stops about once, where a substring search from the end walks.
        let key = memchr::memrchr_iter(b'u', text).find(|&at| at > 0 && text[at - 1..].starts_with(b"\"usage\""))? - 1;
        let value = text[key + 7..].trim_ascii_start().strip_prefix(b":")?.trim_ascii_start();
        let (usage, value_end) = match json::object(value) {
            Some(mut object) => {
                let usage = Usage::read(&mut object).and_then(Report::whole);
                (usage, object.end()?)
            }
            None => (None, json::value_end(value)?),
        };
        json::closes_top_level(&value[value_end..]).then_some(usage)
    }

    /// The usage in one usage object (`{"prompt_tokens": ...}`) of any of the endpoints,
    /// every field optional since providers and relays omit them freely; a field that is
    /// not a whole number, or past [`MAX_TOKENS`], counts as absent.
    pub fn from_object(object: &[u8]) -> Option<Usage> {
        Usage::read(&mut json::object(object)?)?.whole()
    }

    /// What a stream reported once `json`, its next event (read in one pass:
    /// `sightings`), is taken in after `before`: a whole usage replaces what came before;
    /// a count of output alone (Anthropic's `message_delta` after `message_start`)
    /// replaces only its output, and is no usage by itself.
    pub fn after_event(before: Option<Usage>, json: &[u8], sightings: &Sightings) -> Option<Usage> {
        let object = Usage::object_of(json, sightings).and_then(json::object);
        match object.and_then(|mut object| Usage::read(&mut object)) {
            Some(Report::Whole(usage)) => Some(usage),
            Some(Report::Output(output)) => {
                before.map(|before| Usage { output, reasoning: before.reasoning.min(output), ..before })
            }
            None => before,
        }
    }

    /// The usage in `object`, read member by member (the fields the gateway has no use for
    /// skipped unread) to its end.
    fn read(object: &mut json::Object<'_>) -> Option<Report> {
        let mut fields = UsageFields::default();
        while let Some(key) = object.key() {
            match key {
                b"prompt_tokens" => fields.prompt = count(object.whole_number()),
                b"input_tokens" => fields.input = count(object.whole_number()),
                b"completion_tokens" => fields.completion = count(object.whole_number()),
                b"output_tokens" => fields.output = count(object.whole_number()),
                b"prompt_tokens_details" => fields.prompt_cached = count(detail(object, b"cached_tokens")),
                b"input_tokens_details" => fields.input_cached = count(detail(object, b"cached_tokens")),
                b"completion_tokens_details" => {
                    fields.completion_reasoning = count(detail(object, b"reasoning_tokens"));
                }
                b"output_tokens_details" => fields.output_reasoning = count(detail(object, b"reasoning_tokens")),
                b"cache_read_input_tokens" => fields.cache_read = count(object.whole_number()),
                b"cache_creation_input_tokens" => fields.cache_creation = count(object.whole_number()),
                _ => {}
            }
        }
        let output = fields.completion.or(fields.output);
        if let Some(prompt) = fields.prompt.or(fields.input) {
            // Anthropic's cache counts come beside its `input_tokens`, not inside them.
            let (read, written) = (fields.cache_read.unwrap_or(0), fields.cache_creation.unwrap_or(0));
            let input = prompt.saturating_add(read).saturating_add(written);
            let cached = fields.prompt_cached.or(fields.input_cached).unwrap_or(0).saturating_add(read);
            let reasoning = fields.completion_reasoning.or(fields.output_reasoning).unwrap_or(0);
            let output = output.unwrap_or(0);
            // Parts never exceed their whole, whatever a relay reports.
            let cached_input = cached.min(input);
            return Some(Report::Whole(Usage {
                input,
                cached_input,
                cache_write: written.min(input - cached_input),
                output,
                reasoning: reasoning.min(output),
            }));
        }
        // A count of output alone (Anthropic's `message_delta`) updates what came before.
        output.map(Report::Output)
    }

    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Adds `other`, saturating.
    pub fn add(&mut self, other: &Usage) {
        self.input = self.input.saturating_add(other.input);
        self.cached_input = self.cached_input.saturating_add(other.cached_input);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.output = self.output.saturating_add(other.output);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }
}

/// What one usage object reports.
enum Report {
    Whole(Usage),
    /// Output tokens alone, no input: a streamed update of an earlier usage.
    Output(u64),
}

impl Report {
    fn whole(self) -> Option<Usage> {
        match self {
            Report::Whole(usage) => Some(usage),
            Report::Output(_) => None,
        }
    }
}

/// The fields of a usage object, as each endpoint names them.
#[derive(Default)]
struct UsageFields {
    prompt: Option<u64>,
    input: Option<u64>,
    completion: Option<u64>,
    output: Option<u64>,
    prompt_cached: Option<u64>,
    input_cached: Option<u64>,
    completion_reasoning: Option<u64>,
    output_reasoning: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

/// A token count as reported, if it is one an answer could hold (at most [`MAX_TOKENS`]).
fn count(reported: Option<u64>) -> Option<u64> {
    reported.filter(|&tokens| tokens <= MAX_TOKENS)
}

/// The whole number `field` of the details object that is the value `object` is at
/// (`null` or absent: none).
fn detail(object: &mut json::Object<'_>, field: &[u8]) -> Option<u64> {
    object
        .within(|details| {
            while let Some(key) = details.key() {
                if key == field {
                    return details.whole_number();
                }
            }
            None
        })
        .flatten()
}
