//! End-to-end tests: real servers on loopback. In-process gateways and mocks (port 0)
//! for the request path; the real binary, driven by the official `openai` Python SDK and
//! raw HTTP, for what users run.

// This whole crate is tests: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

// Harnesses: configs, waiting, the binary as a child process, a served gateway, in-process.
mod binary;
mod configs;
mod fleet_db;
mod script_report;
mod served;
mod state_file;
mod support;
mod wait;

// The repository itself: its crates' graph is the architecture's.
mod layers;

// What users run: the binary, its command line and the SDK.
mod anthropic;
mod check;
mod clients;
mod demo;
mod deploy;
mod image;
mod lifecycle;
mod logs;
mod refusals;
mod rollout_cli;
mod sdk;
mod secrets;
mod soak;
mod state_ownership;
mod upstreams;
mod version;

// The gateway's behaviour, in process.
mod admin;
mod alerts;
mod cost;
mod dashboard;
mod edges;
mod faults;
mod fleet;
mod health;
mod hostile;
mod prometheus;
mod proxy;
mod rollout;
mod shadow;
mod validate;
