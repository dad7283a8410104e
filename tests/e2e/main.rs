//! End-to-end tests: real servers on loopback. In-process gateways and mocks (port 0)
//! for the request path; the real binary, driven by the official `openai` Python SDK and
//! raw HTTP, for what users run.

// This whole crate is tests: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod binary;
mod cli;
mod sdk;
mod support;

mod admin;
mod faults;
mod proxy;
mod rollout;
mod state_file;
