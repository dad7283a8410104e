//! Prompt tokens counted locally, to hold an upstream's reported `prompt_tokens` against:
//! `tiktoken-rs`, which ships OpenAI's encodings (o200k_base for the gpt-4o, gpt-4.1,
//! gpt-5 and o-series families, cl100k_base for every other model).
//!
//! The chat format adds tokens around the messages' text. As OpenAI documents it for its
//! current chat models (the cookbook's `num_tokens_from_messages`): every message costs
//! 3 tokens of framing plus its role and content, a `name` 1 more, and every answer is
//! primed with 3 (`<|start|>assistant<|message|>`). That is what [`chat_prompt_tokens`]
//! counts; tools and images are not in the suite's usage probe, so their (undocumented)
//! overhead never enters the comparison.
//!
//! Tolerance: a reported count more than [`TOLERANCE_RATIO`] above the local count plus
//! [`TOLERANCE_TOKENS`] fails. Below is never a failure (an upstream that undercounts
//! does not overcharge).

use tiktoken_rs::CoreBPE;

/// Framing tokens per message.
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens that prime every answer.
pub const REPLY_PRIMING: u64 = 3;
/// Share above the local count that is still honest (encodings drift between snapshots).
pub const TOLERANCE_RATIO: f64 = 0.10;
/// Absolute slack on top, for short prompts.
pub const TOLERANCE_TOKENS: u64 = 4;

/// The encoding OpenAI uses for `model`, and its name.
pub fn encoding_for(model: &str) -> (&'static CoreBPE, &'static str) {
    let bare = model.rsplit('/').next().unwrap_or(model);
    let o200k = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "o1", "o3", "o4"];
    if o200k.iter().any(|family| bare.starts_with(family)) {
        (tiktoken_rs::o200k_base_singleton(), "o200k_base")
    } else {
        (tiktoken_rs::cl100k_base_singleton(), "cl100k_base")
    }
}

/// The prompt tokens of `messages` (role, content) for `model`, chat framing included.
pub fn chat_prompt_tokens(model: &str, messages: &[(&str, &str)]) -> u64 {
    let (encoding, _) = encoding_for(model);
    let text: u64 = messages
        .iter()
        .map(|(role, content)| {
            TOKENS_PER_MESSAGE
                + encoding.encode_ordinary(role).len() as u64
                + encoding.encode_ordinary(content).len() as u64
        })
        .sum();
    text + REPLY_PRIMING
}

/// Whether `reported` is within the tolerance of `local`.
pub fn honest(reported: u64, local: u64) -> bool {
    reported as f64 <= local as f64 * (1.0 + TOLERANCE_RATIO) + TOLERANCE_TOKENS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_get_their_encoding() {
        assert_eq!(encoding_for("gpt-4.1-mini").1, "o200k_base");
        assert_eq!(encoding_for("openai/gpt-4o").1, "o200k_base");
        assert_eq!(encoding_for("gpt-3.5-turbo").1, "cl100k_base");
    }

    #[test]
    fn framing_is_counted_per_message_and_for_the_reply() {
        // "Hello" and "user" are one token each in both encodings.
        assert_eq!(chat_prompt_tokens("gpt-4.1", &[("user", "Hello")]), 3 + 1 + 1 + 3);
    }

    #[test]
    fn tolerance_is_ten_percent_and_four_tokens_above_only() {
        assert!(honest(114, 100));
        assert!(!honest(115, 100));
        assert!(honest(10, 100));
    }
}
