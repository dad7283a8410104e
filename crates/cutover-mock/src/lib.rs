//! The simulated upstream (`cutover mock`): a real HTTP server that answers chat, legacy
//! completions, embeddings, responses and model listings the way OpenAI does, or with
//! `--api anthropic` Anthropic's Messages API (`/v1/messages`, token counting, models),
//! with configurable pacing, injected faults and quirks (one broken capability each, for
//! `cutover validate` and the shadow comparison), for tests, benchmarks and the demo.
//!
//! Every request is counted (see [`MockServer::calls`]) and recorded
//! ([`MockServer::last_request`]); then the API key is checked (Anthropic mode: and the
//! `anthropic-version` header); then, for inference endpoints only, at most one
//! [`FaultRule`] fires and the configured latency passes. `GET /v1/models` (and
//! Anthropic's token counting) is never faulted nor delayed.
//!
//! The OpenAI side is `chat`, `completions`, `embeddings`, `responses`; the Anthropic
//! side is `anthropic` (its headers, errors, models) and `messages`; the rest (faults,
//! quirks, pacing in `stream`, usage, answers in `runtime`) serves both.

mod anthropic;
mod args;
mod chat;
mod chat_request;
mod completions;
mod config;
mod ctx;
mod embeddings;
mod error;
mod faults;
mod images;
mod instance;
mod messages;
mod messages_request;
mod quirks;
mod reply;
mod responses;
mod runtime;
mod server;
mod state;
mod stream;
mod tool_rule;
mod usage;
mod wire;

#[cfg(test)]
mod tests;

pub use args::MockArgs;
pub use config::{Api, DEFAULT_ANSWER_TOKENS, DEFAULT_ANTHROPIC_MODELS, DEFAULT_MODELS, MockConfig};
pub use error::MockError;
pub use faults::{FAULT_NAMES, FaultKind, FaultRule};
pub use quirks::{QUIRK_NAMES, Quirk};
pub use runtime::UNKNOWN_MODEL_PREFIX;
pub use server::{MockServer, run};
pub use state::RecordedRequest;
pub use usage::{UsagePlacement, UsagePlan};
