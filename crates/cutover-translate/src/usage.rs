//! Token counts between the two APIs' arithmetic. OpenAI's `prompt_tokens` counts every
//! input token, cached ones included (`prompt_tokens_details.cached_tokens`); Anthropic's
//! `input_tokens` counts only the tokens neither read from nor written to the cache, with
//! `cache_read_input_tokens` and `cache_creation_input_tokens` beside it.

use serde_json::{Value, json};

/// Usage in Anthropic's terms, which OpenAI's can be derived from (not the other way:
/// OpenAI does not tell cache writes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Input tokens neither read from nor written to the cache.
    pub input: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub output: u64,
}

fn count(usage: &Value, pointer: &str) -> Option<u64> {
    usage.pointer(pointer).and_then(Value::as_u64)
}

impl Usage {
    /// An OpenAI `usage` object; members missing count 0 (relays omit the details).
    pub fn from_openai(usage: &Value) -> Usage {
        let prompt = count(usage, "/prompt_tokens").unwrap_or(0);
        let cached = count(usage, "/prompt_tokens_details/cached_tokens").unwrap_or(0);
        Usage {
            input: prompt.saturating_sub(cached),
            cache_read: cached,
            cache_creation: 0,
            output: count(usage, "/completion_tokens").unwrap_or(0),
        }
    }

    /// Takes the counts an Anthropic `usage` object holds and keeps the others: a stream's
    /// `message_delta` may carry only `output_tokens`, or the input counts too.
    pub fn update_from_anthropic(&mut self, usage: &Value) {
        let fields = [
            ("/input_tokens", &mut self.input),
            ("/cache_read_input_tokens", &mut self.cache_read),
            ("/cache_creation_input_tokens", &mut self.cache_creation),
            ("/output_tokens", &mut self.output),
        ];
        for (pointer, field) in fields {
            if let Some(value) = count(usage, pointer) {
                *field = value;
            }
        }
    }

    pub fn from_anthropic(usage: &Value) -> Usage {
        let mut counted = Usage::default();
        counted.update_from_anthropic(usage);
        counted
    }

    /// OpenAI's `usage`: every input token is a prompt token.
    pub fn to_openai(self) -> Value {
        let prompt = self.input + self.cache_read + self.cache_creation;
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt + self.output,
            "prompt_tokens_details": {"cached_tokens": self.cache_read},
        })
    }

    pub fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_prompt_tokens_lose_their_cached_share_in_anthropic_input_tokens() {
        let usage = Usage::from_openai(&json!({
            "prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
            "prompt_tokens_details": {"cached_tokens": 400}
        }));
        assert_eq!(usage, Usage { input: 600, cache_read: 400, cache_creation: 0, output: 50 });
        assert_eq!(
            usage.to_anthropic(),
            json!({"input_tokens": 600, "output_tokens": 50, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 0})
        );
    }

    #[test]
    fn anthropic_cache_reads_and_writes_are_prompt_tokens_in_openai() {
        let usage = Usage::from_anthropic(&json!({
            "input_tokens": 600, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 100, "output_tokens": 20
        }));
        assert_eq!(
            usage.to_openai(),
            json!({"prompt_tokens": 1100, "completion_tokens": 20, "total_tokens": 1120,
                   "prompt_tokens_details": {"cached_tokens": 400}})
        );
    }

    #[test]
    fn missing_counts_are_zero_and_updates_keep_what_they_do_not_name() {
        assert_eq!(Usage::from_openai(&json!({})), Usage::default());
        let mut usage = Usage::from_anthropic(&json!({"input_tokens": 12, "output_tokens": 1}));
        usage.update_from_anthropic(&json!({"output_tokens": 30}));
        assert_eq!(usage, Usage { input: 12, cache_read: 0, cache_creation: 0, output: 30 });
    }
}
