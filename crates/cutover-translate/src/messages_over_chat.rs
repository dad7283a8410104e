//! A client that speaks Anthropic's Messages API, over an upstream that speaks OpenAI's
//! chat completions: the Messages request as a chat request (`request`, with its content
//! blocks in `content` and its tools in `tools`), the chat completion as a message
//! (`answer`), and the chunk stream as Messages events (`stream`).

mod answer;
mod content;
mod request;
mod stream;
mod tools;

pub use crate::Request;
pub use answer::answer;
pub use request::request;
pub use stream::EventTranslator;

/// The upstream path, after the upstream's base path (which already holds `/v1`).
pub const UPSTREAM_PATH: &str = "/chat/completions";
