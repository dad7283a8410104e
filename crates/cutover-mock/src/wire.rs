//! Pieces of the OpenAI wire format shared by the mock's endpoints: usage objects,
//! prompt-size estimation without building a DOM, and the envelope of stream chunks.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A JSON string literal for `s`.
pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Tokens estimated the usual way: a token per four characters, at least one.
pub(super) fn tokens_for_chars(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

/// `usage` of chat and legacy completions.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl Usage {
    pub(super) fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptDetails { cached_tokens: 0 },
            completion_tokens_details: CompletionDetails { reasoning_tokens: 0 },
        }
    }

    /// The same usage, `cached` of its prompt tokens from cache and `reasoning` of its
    /// completion tokens reasoning.
    pub(super) fn with_details(mut self, cached: u64, reasoning: u64) -> Usage {
        self.prompt_tokens_details.cached_tokens = cached;
        self.completion_tokens_details.reasoning_tokens = reasoning;
        self
    }

    /// The same counts in the Responses API's shape.
    pub(super) fn responses_json(&self) -> serde_json::Value {
        serde_json::json!({
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.prompt_tokens_details.cached_tokens},
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.completion_tokens_details.reasoning_tokens},
            "total_tokens": self.total_tokens,
        })
    }

    /// The same usage with `prompt_tokens` (and the total) multiplied by `factor`.
    pub(super) fn with_prompt_scaled(mut self, factor: f64) -> Usage {
        self.prompt_tokens = (self.prompt_tokens as f64 * factor).round() as u64;
        self.total_tokens = self.prompt_tokens + self.completion_tokens;
        self.prompt_tokens_details.cached_tokens = self.prompt_tokens_details.cached_tokens.min(self.prompt_tokens);
        self
    }

    pub(super) fn prompt_tokens(&self) -> u64 {
        self.prompt_tokens
    }

    pub(super) fn completion_tokens(&self) -> u64 {
        self.completion_tokens
    }

    /// Of the prompt tokens, those read from cache.
    pub(super) fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.cached_tokens
    }
}

/// The characters of text in a message `content` or a `prompt`, counted while parsing:
/// a string, `null`, an array of strings or content parts (`{"type": "text", "text": …}`;
/// image parts count nothing), or token ids (four characters each).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TextLen(pub usize);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextLenVisitor)
    }
}

struct TextLenVisitor;

impl<'de> Visitor<'de> for TextLenVisitor {
    type Value = TextLen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of content parts, or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextLen, E> {
        Ok(TextLen(v.chars().count()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<TextLen, E> {
        Ok(TextLen(0))
    }

    fn visit_none<E: de::Error>(self) -> Result<TextLen, E> {
        Ok(TextLen(0))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<TextLen, E> {
        Ok(TextLen(4))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TextLen, E> {
        Ok(TextLen(4))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextLen, A::Error> {
        let mut total = 0;
        while let Some(TextLen(n)) = seq.next_element()? {
            total += n;
        }
        Ok(TextLen(total))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextLen, A::Error> {
        let mut total = 0;
        while let Some(IsText(is_text)) = map.next_key()? {
            if is_text {
                total += map.next_value::<TextLen>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(TextLen(total))
    }
}

/// A map key, remembering only whether it was `"text"` (so keys are never allocated).
struct IsText(bool);

impl<'de> Deserialize<'de> for IsText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = IsText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IsText, E> {
                Ok(IsText(v == "text"))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `"stream_options": {"include_usage": true}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// The part of every chunk of one stream that does not change, so that an event is the
/// prefix, one choice and a suffix.
pub(super) struct Envelope {
    prefix: String,
    /// With `include_usage`, every chunk before the usage chunk says `"usage": null`.
    usage_null: bool,
}

impl Envelope {
    pub(super) fn new(object: &str, id: &str, created: u64, model: &str, fingerprint: &str, usage: bool) -> Self {
        let prefix = format!(
            "data: {{\"id\":{},\"object\":\"{object}\",\"created\":{created},\"model\":{},\
             \"system_fingerprint\":{},\"choices\":[",
            quote(id),
            quote(model),
            quote(fingerprint),
        );
        Envelope { prefix, usage_null: usage }
    }

    /// The event for a chunk whose only choice is `choice` (a JSON object).
    pub(super) fn event(&self, choice: &str) -> Bytes {
        let suffix = if self.usage_null { "],\"usage\":null}\n\n" } else { "]}\n\n" };
        self.build(&[choice, suffix])
    }

    /// The event for a chunk whose only choice is `choice`, carrying `usage` as well.
    pub(super) fn event_with_usage(&self, choice: &str, usage: &Usage) -> Bytes {
        let usage = serde_json::to_string(usage).unwrap_or_else(|_| String::from("null"));
        self.build(&[choice, "],\"usage\":", &usage, "}\n\n"])
    }

    /// The last events of a stream: the chunk of `last_choice`, then the usage where
    /// `plan` puts it when the client asked for it (`include_usage`).
    pub(super) fn tail(
        &self,
        last_choice: &str,
        usage: Option<&Usage>,
        include_usage: bool,
        on_last_chunk: bool,
    ) -> Vec<Bytes> {
        match usage.filter(|_| include_usage) {
            Some(usage) if on_last_chunk => vec![self.event_with_usage(last_choice, usage)],
            Some(usage) => vec![self.event(last_choice), self.usage_event(usage)],
            None => vec![self.event(last_choice)],
        }
    }

    /// The final `choices: []` chunk carrying `usage`.
    pub(super) fn usage_event(&self, usage: &Usage) -> Bytes {
        let usage = serde_json::to_string(usage).unwrap_or_else(|_| String::from("null"));
        self.build(&["],\"usage\":", &usage, "}\n\n"])
    }

    fn build(&self, parts: &[&str]) -> Bytes {
        let mut event = String::with_capacity(self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        event.push_str(&self.prefix);
        parts.iter().for_each(|part| event.push_str(part));
        Bytes::from(event)
    }
}

/// `s` cut into at most `n` non-empty pieces of similar size, on character boundaries.
pub(super) fn split_even(s: &str, n: usize) -> Vec<&str> {
    let step = s.len().div_ceil(n.max(1)).max(1);
    let mut pieces = Vec::with_capacity(n);
    let mut rest = s;
    while !rest.is_empty() {
        let mut at = step.min(rest.len());
        while !rest.is_char_boundary(at) {
            at += 1;
        }
        let (piece, tail) = rest.split_at(at);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}
