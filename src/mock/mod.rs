//! The simulated OpenAI-compatible upstream (`cutover mock`): a real HTTP server that
//! answers chat, legacy completions, embeddings, responses and model listings the way OpenAI does,
//! with configurable pacing and injected faults, for tests, benchmarks and the demo.
//!
//! Every request is counted (see [`MockServer::calls`]) and recorded
//! ([`MockServer::last_request`]); then the API key is checked; then, for inference
//! endpoints only, at most one [`FaultRule`] fires and the configured latency passes.
//! `GET /v1/models` is never faulted nor delayed.

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
mod quirks;
mod reply;
mod responses;
mod runtime;
mod server;
mod state;
mod stream;
mod usage;
mod wire;

#[cfg(test)]
mod tests;

pub use args::MockArgs;
pub use config::{DEFAULT_ANSWER_TOKENS, DEFAULT_MODELS, MockConfig};
pub use error::MockError;
pub use faults::{FAULT_NAMES, FaultKind, FaultRule};
pub use quirks::{QUIRK_NAMES, Quirk};
pub use runtime::UNKNOWN_MODEL_PREFIX;
pub use server::{MockServer, run};
pub use state::RecordedRequest;
pub use usage::{UsagePlacement, UsagePlan};
