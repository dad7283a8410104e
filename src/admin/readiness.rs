//! `/readyz`: whether a load balancer should send this gateway traffic, beside
//! `/healthz`, which only says the process is alive. The admin listener serves only once
//! the configuration is loaded, the state restored (in a fleet, the database reached) and
//! both listeners bound, so what is left to decide here is: a drain has not begun, and
//! every route has an upstream not known to be down (its probes say up and its breaker
//! is closed). Otherwise 503 with the reasons, so that traffic moves elsewhere before the
//! proxy listener closes.

use std::sync::atomic::{AtomicBool, Ordering};

use cutover_net::body::{self, BoxBody};
use http::{Response, StatusCode};

use crate::proxy::Gateway;

/// What the drain tells `/readyz`. Shared by the server, which begins the drain, and the
/// admin service, which answers the probe.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// From now on `/readyz` answers 503: the gateway is shutting down.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Why the gateway should not get traffic now; empty when it should.
    pub fn reasons(&self, gateway: &Gateway) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.draining() {
            reasons.push("draining: the gateway is shutting down".to_owned());
        }
        for route in gateway.routes_without_an_upstream_up() {
            reasons.push(format!("route {route}: no upstream is up (probes down or circuit breaker open)"));
        }
        reasons
    }

    /// The `/readyz` answer: 200 `{"status":"ready"}`, or 503 with the reasons.
    pub fn answer(&self, gateway: &Gateway) -> Response<BoxBody> {
        let reasons = self.reasons(gateway);
        if reasons.is_empty() {
            return body::json(StatusCode::OK, r#"{"status":"ready"}"#);
        }
        let answer = serde_json::json!({ "status": "not_ready", "reasons": reasons });
        body::json(StatusCode::SERVICE_UNAVAILABLE, answer.to_string())
    }
}
