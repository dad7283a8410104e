//! Admission by what a request costs, not by connections. Every proxied request in
//! flight may hold an upstream connection (a descriptor) and its body in memory, and one
//! HTTP/2 client connection carries up to `http2_max_streams` of them, so the connection
//! budget alone bounds nothing. A request is admitted when it arrives, before its body is
//! read, within two limits: the gateway's (`server.max_inflight`, which the start-up
//! descriptor check accounts for) and its client connection's
//! (`server.max_inflight_per_connection`, so that one client cannot take the whole
//! budget from the others). Past either the client gets an immediate `503` in OpenAI's
//! error shape with `Retry-After`, counted by limit; the request's place is held by its
//! answer until the answer's body is dropped.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};

use cutover_metrics::{Metrics, Overload};

/// The limits, shared by every connection of the proxy listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub max_inflight: usize,
    pub per_connection: usize,
}

impl Admission {
    pub fn new(max_inflight: usize, per_connection: usize) -> Admission {
        Admission { max_inflight: max_inflight.max(1), per_connection: per_connection.max(1) }
    }

    /// The limit a refusal of kind `overload` is past.
    pub fn limit(&self, overload: Overload) -> usize {
        match overload {
            Overload::Gateway => self.max_inflight,
            Overload::Connection => self.per_connection,
        }
    }

    /// Admits one request of the connection whose requests in flight `connection` counts,
    /// or says which limit it is past (and counts the refusal).
    pub fn admit(&self, metrics: &Arc<Metrics>, connection: &Arc<AtomicUsize>) -> Result<Admitted, Overload> {
        if !try_enter(connection, self.per_connection) {
            metrics.admission.record_refusal(Overload::Connection);
            return Err(Overload::Connection);
        }
        if !try_enter(&metrics.admission.in_flight, self.max_inflight) {
            connection.fetch_sub(1, Relaxed);
            metrics.admission.record_refusal(Overload::Gateway);
            return Err(Overload::Gateway);
        }
        Ok(Admitted { metrics: metrics.clone(), connection: connection.clone() })
    }
}

/// Takes a place under `limit` in `count`, if there is one.
fn try_enter(count: &AtomicUsize, limit: usize) -> bool {
    count.fetch_update(AcqRel, Relaxed, |now| (now < limit).then_some(now + 1)).is_ok()
}

/// One admitted request's place, given back when it is dropped: with the answer's body,
/// or at once for an answer the gateway composes itself.
#[derive(Debug)]
pub struct Admitted {
    metrics: Arc<Metrics>,
    connection: Arc<AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.metrics.admission.in_flight.fetch_sub(1, Relaxed);
        self.connection.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_config::testing::{load, two_upstreams_toml};

    fn metrics() -> Arc<Metrics> {
        let config = load(&two_upstreams_toml("", ""), std::path::Path::new("/tmp"), |_| None);
        Arc::new(Metrics::new(&config))
    }

    #[test]
    fn a_connection_past_its_share_is_refused_while_another_connection_is_admitted() {
        let (metrics, admission) = (metrics(), Admission::new(10, 2));
        let (busy, other) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let held = [admission.admit(&metrics, &busy).unwrap(), admission.admit(&metrics, &busy).unwrap()];
        assert_eq!(admission.admit(&metrics, &busy).unwrap_err(), Overload::Connection);
        assert!(admission.admit(&metrics, &other).is_ok(), "a bystander connection is admitted");
        assert_eq!(metrics.admission.refusals(Overload::Connection), 1);
        drop(held);
        assert_eq!(busy.load(Relaxed), 0);
        assert!(admission.admit(&metrics, &busy).is_ok(), "a place given back is taken again");
    }

    #[test]
    fn the_gateway_limit_counts_every_connection_and_a_refusal_takes_no_place() {
        let (metrics, admission) = (metrics(), Admission::new(3, 2));
        let connections: Vec<_> = (0..4).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let held: Vec<_> = connections[..3].iter().map(|c| admission.admit(&metrics, c).unwrap()).collect();
        assert_eq!(metrics.admission.in_flight.load(Relaxed), 3);
        assert_eq!(admission.admit(&metrics, &connections[3]).unwrap_err(), Overload::Gateway);
        assert_eq!(connections[3].load(Relaxed), 0, "the refused request holds no place on its connection");
        assert_eq!(metrics.admission.in_flight.load(Relaxed), 3);
        assert_eq!(metrics.admission.refusals(Overload::Gateway), 1);
        drop(held);
        assert_eq!(metrics.admission.in_flight.load(Relaxed), 0);
    }

    #[test]
    fn limits_of_zero_admit_one() {
        assert_eq!(Admission::new(0, 0), Admission { max_inflight: 1, per_connection: 1 });
    }
}
