//! Shadow traffic: a share of primary requests is mirrored to the candidate by a detached
//! task, its answer read to the end and recorded as the shadow arm's, never shown to the
//! client. Bounded by a semaphore: when every slot is busy the copy is dropped and
//! counted, never waited for.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::exchange::{Attempt, Exchange, Routing};
use super::gateway::Gateway;
use super::request::RequestMeta;
use crate::metrics::{Role, ShadowOutcome};

/// Whether a request may be sent twice: only the stateless generation endpoints. The
/// Responses API stores conversations at the provider by default, so it is never mirrored.
pub fn mirrorable(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path, "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings")
}

/// Starts a mirrored copy of the request described by `parts` and `body`, if a slot is free.
pub fn mirror(gateway: &Arc<Gateway>, parts: &Parts, body: &Bytes, meta: &RequestMeta, routing: Routing) {
    let route_metrics = gateway.metrics.route(routing.route);
    let Ok(permit) = gateway.shadow_slots.clone().try_acquire_owned() else {
        route_metrics.record_shadow(ShadowOutcome::Dropped);
        return;
    };
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.headers_mut() = parts.headers.clone();
    let (copy, ()) = copy.into_parts();
    let (gateway, body, meta) = (gateway.clone(), body.clone(), meta.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let exchange = Exchange::new(&gateway, copy, body, meta, routing);
        let started = Instant::now();
        let metrics = exchange.route.metrics;
        match exchange.attempt(Role::Shadow, started, None).await {
            Attempt::Committed(response) => {
                // Reading to the end is what records the shadow arm's outcome and timings.
                let complete = response.into_body().collect().await.is_ok();
                metrics.record_shadow(if complete { ShadowOutcome::Mirrored } else { ShadowOutcome::Failed });
            }
            Attempt::Failed(failure) => {
                exchange.record_failure(Role::Shadow, started, failure.outcome());
                metrics.record_shadow(ShadowOutcome::Failed);
            }
        }
    });
}
