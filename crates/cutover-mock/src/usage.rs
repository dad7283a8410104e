//! The usage a mock reports: by default the prompt's estimate and the answer's tokens,
//! or fixed counts (prompt, completion, cached, reasoning) for tests that check cost to
//! the token; and where a stream carries it (alone after the last choice, riding on the
//! last chunk with choices) or whether it is left out altogether.

use super::wire::Usage;

/// Where the usage goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsagePlacement {
    /// Its own chunk with `"choices": []`, as OpenAI sends it.
    #[default]
    Alone,
    /// On the last chunk that has choices (the one with the `finish_reason`).
    OnLastChunk,
    /// Nowhere: neither in whole answers nor in streams.
    Omitted,
}

/// What usage a mock reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsagePlan {
    /// Prompt (input) tokens; default: estimated from the request.
    pub prompt: Option<u64>,
    /// Completion (output) tokens; default: the answer's tokens.
    pub completion: Option<u64>,
    /// Of the prompt tokens, read from cache.
    pub cached: u64,
    /// Of the completion tokens, reasoning.
    pub reasoning: u64,
    pub placement: UsagePlacement,
}

impl UsagePlan {
    /// The usage of an answer whose prompt was estimated at `prompt` tokens and which
    /// has `completion` tokens; `None` when usage is omitted.
    pub(super) fn usage(&self, prompt: u64, completion: u64) -> Option<Usage> {
        if self.placement == UsagePlacement::Omitted {
            return None;
        }
        let prompt = self.prompt.unwrap_or(prompt);
        let completion = self.completion.unwrap_or(completion);
        Some(Usage::new(prompt, completion).with_details(self.cached.min(prompt), self.reasoning.min(completion)))
    }

    pub(super) fn on_last_chunk(&self) -> bool {
        self.placement == UsagePlacement::OnLastChunk
    }
}
