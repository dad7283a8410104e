//! Upstream health: an active probe per upstream that spends no tokens (`GET
//! {base_url}{health.path}` with the upstream's key, 2xx = up), judged after
//! `down_after` / `up_after` results in a row, and read by the request path with one
//! atomic load so that a candidate that is down gets no split traffic. The passive side
//! is the circuit breaker (`proxy::breaker`); `HealthView` shows both. A change of a
//! candidate's verdict is also a rollout event (`candidate_down` / `candidate_up`), through
//! the `OnChange` hook the server gives the prober.

mod probe;
mod state;

pub use probe::{OnChange, ProbeSource, ProbeTarget, probe_once, run};
pub use state::{Change, HealthEvent, HealthLog, UpstreamHealth};
