//! Which requests are mirrored, and the slots that bound the mirrors: driven without a
//! socket (every slot is taken beforehand, so no copy is ever sent; the runtime is there
//! only so that a mirror started by mistake fails the assertion, not `tokio::spawn`).

use std::path::Path;

use cutover_config::Config;
use cutover_metrics::Metrics;
use cutover_model::Api;
use cutover_shadow::slots::{COPY_SLOTS, PAIR_SLOTS};

use super::*;
use cutover_live::LiveState;
use cutover_model::RouteState;

#[test]
fn only_requests_without_side_effects_are_mirrorable() {
    let post = Method::POST;
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages"] {
        assert!(mirrorable(&post, path, b"{}"), "{path}");
        assert!(!mirrorable(&Method::GET, path, b"{}"), "{path}");
    }
    assert!(mirrorable(&post, "/v1/responses", br#"{"model":"m","store":false,"input":"hi"}"#));
    assert!(!mirrorable(&post, "/v1/responses", br#"{"model":"m","input":"hi"}"#), "stored by default");
    assert!(!mirrorable(&post, "/v1/responses", br#"{"model":"m","store":true}"#));
    assert!(!mirrorable(&post, "/v1/responses", br#"{"store":false,"previous_response_id":"resp_1"}"#));
    let side_effects = ["/v1/files", "/v1/batches", "/v1/images/generations", "/v1/audio/speech", "/v1/moderations"];
    for path in side_effects.into_iter().chain(["/v1/messages/batches", "/v1/messages/count_tokens"]) {
        assert!(!mirrorable(&post, path, b"{}"), "{path}");
    }
}

/// A gateway whose only route has a candidate and mirrors every request.
fn mirroring_gateway() -> Arc<Gateway> {
    let text = "[upstreams.primary]\nbase_url = \"http://127.0.0.1:9\"\n\n\
        [upstreams.candidate]\nbase_url = \"http://127.0.0.1:9\"\n\n\
        [[routes]]\nname = \"default\"\nprimary = \"primary\"\ncandidate = \"candidate\"\n";
    let config: Config = cutover_config::load_str(text, Path::new("."), |_| None).unwrap();
    let states = config.routes.map(|_, route| RouteState::initial(&route.name, 0));
    let metrics = Arc::new(Metrics::new(&config));
    let live = Arc::new(LiveState::new(&states));
    let gateway = Arc::new(Gateway::new(Arc::new(config), metrics, live));
    gateway.live.route(default_route(&gateway)).set_shadow(1.0);
    gateway
}

fn default_route(gateway: &Gateway) -> cutover_config::RouteId {
    gateway.config.routes.first_id().unwrap()
}

/// Offers one chat request of the route to the mirror.
fn offer(gateway: &Arc<Gateway>) -> Option<Tap> {
    let route = gateway.route(default_route(gateway));
    let (parts, ()) = Request::post("/v1/chat/completions").body(()).unwrap().into_parts();
    let body = Bytes::from_static(br#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}"#);
    let tally = Tally { stats: route.live.stats(), control: false, user: None };
    let meta = RequestMeta::default();
    let arms = ArmRequests::new(&gateway.config, route.config, Api::OpenAi, parts.uri.path(), &body, &meta);
    let request =
        Mirrored { parts: &parts, body: &body, meta: &meta, tally: &tally, client_credential: None, arms: &arms };
    mirror(gateway, route, request)
}

#[tokio::test]
async fn pairs_waiting_for_a_slow_primary_are_bounded_and_the_excess_is_dropped_and_counted() {
    let gateway = mirroring_gateway();
    // Every pair slot held by a pair whose copy was answered and that waits for the primary.
    let _waiting: Vec<_> = (0..PAIR_SLOTS)
        .map(|_| {
            let mut slot = gateway.shadow_slots.admit().unwrap();
            slot.copy_done();
            slot
        })
        .collect();
    assert!(offer(&gateway).is_none(), "a mirror beyond the pair slots must not start");
    let route = gateway.route(default_route(&gateway));
    assert_eq!(route.metrics.shadow_drops(ShadowDrop::Waiting), 1);
    assert_eq!(route.metrics.shadow_drops(ShadowDrop::Full), 0);
    // A slow primary is no evidence against the candidate.
    let agreement = route.live.stats().agreement().snapshot();
    assert_eq!((agreement.pairs, agreement.dropped_full), (0, 0));
}

#[tokio::test]
async fn copies_beyond_their_slots_are_dropped_full_and_count_against_the_candidate() {
    let gateway = mirroring_gateway();
    let _in_flight: Vec<_> = (0..COPY_SLOTS).map(|_| gateway.shadow_slots.admit().unwrap()).collect();
    assert!(offer(&gateway).is_none());
    let route = gateway.route(default_route(&gateway));
    assert_eq!(route.metrics.shadow_drops(ShadowDrop::Full), 1);
    assert_eq!(route.live.stats().agreement().snapshot().dropped_full, 1);
}
