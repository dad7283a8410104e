//! Networking plumbing shared by every listener and client cutover runs: the accept loop
//! with graceful shutdown and the clocks and budget of each connection, the process's
//! descriptor budget, the bearer token of a request, the body types the listeners answer
//! with, the one way to an upstream (`upstream`) over the pooled HTTP client (TLS, and
//! webhooks) or the in-task HTTP/1 connections of plain-HTTP upstreams.

pub mod auth;
pub mod body;
pub mod cap;
pub mod client;
pub mod descriptors;
mod dormant;
mod head_clock;
mod idle;
mod open;
mod paced;
pub mod pool;
pub mod serve;
pub mod upstream;
