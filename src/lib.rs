//! cutover: an OpenAI-compatible gateway that moves production LLM traffic from a
//! primary upstream to a candidate one — sticky weighted split, fallback, metrics —
//! without the users noticing anything but the bill.
//!
//! The modules follow the architecture of `DESIGN.md`: the request path, the state
//! it reads, and the edges around them.

// The request path (hot path).
pub mod proxy;

// State shared by the request path and the control path.
pub mod config;
pub mod metrics;
pub mod rollout;

// Edges: listeners, the admin API, the process around them, the simulated upstream.
pub mod admin;
pub mod cli;
pub mod demo;
pub mod mock;
pub mod net;
pub mod server;
