//! Translation between Anthropic's Messages API and OpenAI's chat completions, for an arm
//! whose client speaks one API and whose upstream the other: the client's request for the
//! upstream, and the upstream's answer — whole, or event by event — back for the client.
//! Each direction is a module with the same shape (`UPSTREAM_PATH`, `request`, `answer`,
//! `EventTranslator`); docs/translation.md holds the mapping tables.
//!
//! Pure and synchronous: bytes in, bytes out, no I/O and no HTTP types, so the gateway
//! decides where translation sits and these functions are tested alone. What one API
//! says and the other cannot is refused (`Untranslatable`), never dropped quietly; the
//! few members dropped on purpose are the ones that cannot change an answer.

// The two directions, each client API over the other upstream API.
pub mod chat_over_messages;
pub mod messages_over_chat;

// Shared by both directions.
mod errors;
mod json;
mod sse;
mod tool_call;
mod usage;

/// A request member the other API cannot carry faithfully: refused (HTTP 400), never dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` cannot be translated to the upstream's API: {reason}")]
pub struct Untranslatable {
    /// A JSON path into the client's body, like `messages[2].content[0].type` or `n`
    /// (empty for the body itself).
    pub field: String,
    pub reason: String,
}

/// The request for the upstream, translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub body: Vec<u8>,
    /// Whether the client asked for a stream (and so the upstream was asked for one).
    pub stream: bool,
    /// Whether the client's stream carries OpenAI's usage chunk (`choices: []`): what the
    /// client asked for with `stream_options.include_usage`; always true when the client
    /// speaks Anthropic, whose streams always carry usage.
    pub include_usage: bool,
}

/// An upstream answer translated for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An upstream event stream that cannot be translated (an event whose data is not what
/// its API sends).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the upstream's stream cannot be translated: {0}")]
pub struct BadStream(pub String);
