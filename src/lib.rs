//! cutover: an OpenAI-compatible gateway that moves production LLM traffic from a
//! primary upstream to a candidate one — sticky weighted split, retries and fallback,
//! shadow traffic, and a rollout controller that grows the candidate's share on
//! evidence and rolls it back on a credible regression.
//!
//! The modules follow the architecture described in `docs/architecture.md`: the request
//! path, the control path, what both read, and the edges around them.

// The request path (hot path): auth, routing, split, forwarding, streaming, fallback.
pub mod logging;
pub mod proxy;

// The control path: rollout state, per-step evidence, analysis, controller, notifiers;
// upstream health probes; and reloading the configuration while serving.
pub mod fleet;
pub mod reload;
pub mod rollout;

// Read by both: the validated configuration, the Prometheus series, usage and cost, and
// the shadow comparison.

// Edges: the process (`serve`), its listeners, the admin API, the CLI verbs that talk to
// it, the simulated upstream and the demo built from all of them.
pub mod admin;
pub mod cli;
pub mod demo;
pub mod mock;
pub mod server;
