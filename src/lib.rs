//! cutover: an OpenAI-compatible gateway that moves production LLM traffic from a
//! primary upstream to a candidate one — sticky weighted split, retries and fallback,
//! shadow traffic, and a rollout controller that grows the candidate's share on
//! evidence and rolls it back on a credible regression.
//!
//! The layers that are crates of their own (`crates/cutover-*`: the model, the wire
//! formats, the configuration, cost, metrics, shadow comparison, networking,
//! notifications, health, alerts, validation, the rollout's control path and its state,
//! the mock upstream, the request path) are drawn in `docs/architecture.md`; this crate
//! holds the rest: reloading the configuration while serving, and the edges.

// Reloading the configuration while serving: what a new file changes, and the swap.
pub mod reload;

// Edges: the process (`serve`) and its logging, the admin API, the CLI verbs that talk to
// it, the simulated upstream and the demo built from all of them.
pub mod admin;
pub mod cli;
pub mod demo;
pub mod logging;
pub mod server;
/// The mock upstream, a crate of its own (`cutover-mock`), kept at its old path.
pub use cutover_mock as mock;
/// The request path (auth, routing, split, forwarding, streaming, fallback), a crate of
/// its own (`cutover-proxy`), kept at its old path.
pub use cutover_proxy as proxy;
