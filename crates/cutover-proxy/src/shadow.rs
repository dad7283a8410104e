//! Shadow traffic: a sampled share of the primary arm's requests is mirrored to the
//! candidate by a detached task, and the two answers to the same request are compared
//! (`crate::shadow`). Never in the client's way: the request path only decides (a sticky
//! draw, the endpoint, the caps, a free slot — all without waiting) and hands the primary's
//! exchange a tap that tees its answer; the copy, the candidate's answer, reading both and
//! judging them all happen in the task, which nobody awaits. Bounded (`shadow::slots`):
//! `COPY_SLOTS` copies in flight and `PAIR_SLOTS` pairs open (waiting for the primary's
//! answer included) at most, each side's capture at most 272 KiB. No free copy slot drops
//! the mirror (counted `full`, and as a pair the candidate failed: a slow candidate does
//! not get to skip requests); no free pair slot drops it too (counted `waiting`: the
//! primary is the slow one, no evidence either way), and so does a cap (counted `cap`).

use std::sync::Arc;

use bytes::Bytes;
use cutover_config::Credential;
use cutover_cost::now_seconds;
use cutover_model::{Outcome, Role, ShadowDrop, ShadowOutcome, unix_millis};
use cutover_shadow::{Answer, Diff, Judged, Settings, Side, Tap, Timings, diffs::truncated, judge_pair, sampled};
use http::request::Parts;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::body::Tally;
use super::exchange::{Attempt, Exchange, Routing};
use super::gateway::{Gateway, RouteContext};
use super::request::RequestMeta;
use super::translation::ArmRequests;
use cutover_live::stats::{Arm, Sample};

/// Whether a request may be sent twice: only endpoints without side effects (Anthropic's
/// Messages keeps no state either). A Responses
/// API request qualifies only with `"store": false` (OpenAI stores responses unless told
/// not to) and without `previous_response_id` (the candidate has no such conversation).
/// Everything else — files, uploads, batches, assistants, threads, fine-tuning, images,
/// audio, moderations, models, any method but POST — is never mirrored.
pub fn mirrorable(method: &Method, path: &str, body: &[u8]) -> bool {
    if method != Method::POST {
        return false;
    }
    match path {
        "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/messages" => true,
        "/v1/responses" => stateless_response(body),
        _ => false,
    }
}

#[derive(Deserialize)]
struct ResponsesState {
    store: Option<bool>,
    previous_response_id: Option<serde::de::IgnoredAny>,
}

fn stateless_response(body: &[u8]) -> bool {
    serde_json::from_slice::<ResponsesState>(body)
        .is_ok_and(|state| state.store == Some(false) && state.previous_response_id.is_none())
}

/// What the primary's request carries into its mirror.
pub struct Mirrored<'a> {
    pub parts: &'a Parts,
    pub body: &'a Bytes,
    pub meta: &'a RequestMeta,
    pub tally: &'a Tally,
    pub client_credential: Option<Credential>,
    /// How the request reaches each arm: the copy is the candidate's, translated if it is.
    pub arms: &'a ArmRequests,
}

/// Starts a mirror of a primary-arm request if the route's share samples it and nothing
/// stops it; the primary's tap to hand its exchange when it does. Never waits.
pub fn mirror(gateway: &Arc<Gateway>, route: RouteContext<'_>, request: Mirrored<'_>) -> Option<Tap> {
    let share = route.live.shadow();
    if share <= 0.0
        || !sampled(share, request.tally.user)
        || !mirrorable(&request.parts.method, request.parts.uri.path(), request.body)
    {
        return None;
    }
    if capped(gateway, route) {
        route.metrics.record_shadow_drop(ShadowDrop::Cap);
        route.live.mirroring.caps.record_drop(unix_millis());
        return None;
    }
    let mut slot = match gateway.shadow_slots.admit() {
        Ok(slot) => slot,
        Err(reason) => {
            route.metrics.record_shadow_drop(reason);
            if reason == ShadowDrop::Full {
                count_against_the_candidate(request.tally);
            }
            return None;
        }
    };
    let (primary_tap, primary_side) = Tap::pair();
    let (candidate_tap, candidate_side) = Tap::pair();
    let mut copy = Request::new(());
    *copy.method_mut() = request.parts.method.clone();
    *copy.uri_mut() = request.parts.uri.clone();
    *copy.headers_mut() = request.parts.headers.clone();
    let (copy, ()) = copy.into_parts();
    let routing = Routing {
        route: route.id,
        first_role: Role::Shadow,
        tally: Tally { stats: request.tally.stats.clone(), control: false, user: request.tally.user },
        client_credential: request.client_credential,
        tap: Some(candidate_tap),
        // A mirror is bounded by the shadow slots, not the clients' admission.
        admitted: None,
        arms: request.arms.clone(),
    };
    let pair = PairContext {
        gateway: gateway.clone(),
        route: route.id,
        body: request.body.clone(),
        meta: request.meta.clone(),
        tally: routing.tally.clone(),
    };
    tokio::spawn(async move {
        pair.send_copy(copy, routing).await;
        slot.copy_done();
        let candidate = candidate_side.await.unwrap_or_default();
        // The primary's side comes when the client's answer ends (or its exchange gave up).
        if let Ok(primary) = primary_side.await {
            // Reading both answers and judging them is CPU work (JSON up to 272 KiB a
            // side, a JSON Schema compiled per tool call): off the async workers, and still
            // within the pair's slot, so at most `PAIR_SLOTS` blocking threads judge at once.
            let judged = tokio::task::spawn_blocking(move || pair.compare(primary, candidate)).await;
            if let Err(error) = judged {
                tracing::error!(%error, "judging a shadow pair panicked");
            }
        }
        drop(slot);
    });
    Some(primary_tap)
}

/// A mirror dropped because the candidate's copies are slow counts as a pair the
/// candidate failed.
fn count_against_the_candidate(tally: &Tally) {
    tally.stats.agreement().record_dropped_full(tally.user);
    let unanswered =
        Sample { outcome: Outcome::UpstreamError, duration: Default::default(), ttft: None, user: tally.user };
    tally.stats.record(Arm::Shadow, unanswered);
}

/// Whether a cap of the route stops this mirror: `shadow_max_rps`, then
/// `shadow_max_usd_per_hour` (the last hour of the mirrors' cost, re-read once a second).
fn capped(gateway: &Gateway, route: RouteContext<'_>) -> bool {
    let settings = &route.config.shadow_settings;
    let caps = &route.live.mirroring.caps;
    if settings.max_rps.is_some_and(|rps| !caps.take_rate(rps, Instant::now())) {
        return true;
    }
    settings.max_usd_per_hour.is_some_and(|usd| {
        let now = now_seconds();
        !caps.within_budget(usd, now, || {
            gateway.metrics.cost.window(route.id, now, 3600)[Role::Shadow as usize].cost.as_dollars()
        })
    })
}

/// What the mirror's task keeps of the request.
struct PairContext {
    gateway: Arc<Gateway>,
    route: cutover_config::RouteId,
    body: Bytes,
    meta: RequestMeta,
    /// The step's evidence and the sticky user, as when the request came.
    tally: Tally,
}

impl PairContext {
    /// Sends the copy to the candidate and reads its answer to the end (which records the
    /// shadow arm's outcome and timings, and sends the candidate's side).
    async fn send_copy(&self, copy: Parts, routing: Routing) {
        let exchange = Exchange::new(&self.gateway, copy, self.body.clone(), self.meta.clone(), routing);
        let metrics = exchange.route.metrics;
        let started = Instant::now();
        match exchange.attempt(Role::Shadow, started, None).await {
            Attempt::Committed(response) => {
                let complete = response.into_body().collect().await.is_ok();
                metrics.record_shadow(if complete { ShadowOutcome::Mirrored } else { ShadowOutcome::Failed });
            }
            Attempt::Failed(failure) => {
                exchange.record_failure(Role::Shadow, started, failure.outcome());
                metrics.record_shadow(ShadowOutcome::Failed);
            }
        }
    }

    /// Judges the pair and records it: the agreement, the primary's side as the shadow
    /// arm's control (same requests), and the diff when the route keeps them.
    fn compare(&self, primary: Side, candidate: Side) {
        if primary.cancelled() || candidate.cancelled() {
            return;
        }
        let gateway = &self.gateway;
        let route = &gateway.config.routes[self.route];
        let expected = self.meta.model.as_deref().map(|model| {
            let candidate = route.candidate.map(|index| &gateway.config.upstreams[index]);
            candidate.and_then(|upstream| upstream.model_aliases.get(model)).map_or(model, String::as_str)
        });
        let settings = Settings { min_similarity: route.shadow_settings.min_similarity, expected_model: expected };
        let (judged, primary_answer, candidate_answer) = judge_pair(&self.body, &primary, &candidate, settings);
        let timings = (primary.ok() && candidate.ok()).then_some(Timings {
            primary: primary.duration,
            candidate: candidate.duration,
            primary_ttft: primary.ttft,
            candidate_ttft: candidate.ttft,
        });
        let stats = &self.tally.stats;
        stats.agreement().record(self.tally.user, (primary.ok(), candidate.ok()), &judged, timings);
        if let Some(outcome) = primary.outcome {
            let sample = Sample { outcome, duration: primary.duration, ttft: primary.ttft, user: self.tally.user };
            stats.record(Arm::ShadowPrimary, sample);
            if let Some(cost) = primary.cost.filter(|_| primary.ok()) {
                stats.record_cost(Arm::ShadowPrimary, cost, self.tally.user);
            }
        }
        let keep = route.shadow_settings.keep_diffs;
        if keep > 0 && !judged.agrees() {
            let diff = diff(&self.body, (&primary, &primary_answer), (&candidate, &candidate_answer), &judged);
            gateway.live.route(self.route).mirroring.diffs.push(diff, keep);
        }
    }
}

/// A kept disagreement: bodies only (never a header), each truncated.
fn diff(request: &[u8], primary: (&Side, &Answer), candidate: (&Side, &Answer), judged: &Judged) -> Diff {
    Diff {
        at: unix_millis(),
        dimensions: judged.disagreements().collect(),
        notes: judged.notes.clone(),
        request: truncated(request),
        primary: readable(primary.0, primary.1),
        candidate: readable(candidate.0, candidate.1),
    }
}

/// An answer as people read it: its text and tool calls when it has any, else its bytes.
fn readable(side: &Side, answer: &Answer) -> String {
    if answer.content.is_empty() && answer.tool_calls.is_empty() {
        return truncated(&side.captured.head);
    }
    let mut text = answer.content.clone();
    for call in &answer.tool_calls {
        text.push_str(&format!("\n→ {}({})", call.name, call.arguments));
    }
    truncated(text.as_bytes())
}

#[cfg(test)]
mod tests;
