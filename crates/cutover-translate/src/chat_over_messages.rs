//! A client that speaks OpenAI's chat completions, over an upstream that speaks
//! Anthropic's Messages API: the chat request as a Messages request (`request`, with its
//! messages in `content`, its images in `image` and its tools in `tools`), the message as a chat completion
//! (`answer`), and the Messages events as a chunk stream (`stream`).

mod answer;
mod content;
mod image;
mod request;
mod stream;
mod tools;

pub use crate::Request;
pub use answer::answer;
pub use request::{DEFAULT_MAX_TOKENS, request};
pub use stream::EventTranslator;

/// The upstream path, after the upstream's base path (which already holds `/v1`).
pub const UPSTREAM_PATH: &str = "/messages";

/// Seconds since the Unix epoch: a chat completion's `created`.
fn now_seconds() -> u64 {
    u64::try_from(cutover_model::unix_millis() / 1000).unwrap_or(0)
}
