//! Active health probes: a stopped upstream is marked down after `down_after` failed
//! probes and up again after `up_after` good ones; a candidate that is down gets no split
//! traffic (its users are served by the primary, not by a fallback, and count as the
//! candidate's failures in the rollout's evidence), and with `fallback = "both"` a
//! primary that is down sends its users to the candidate. A
//! candidate going down and up again is a rollout event (`candidate_down`,
//! `candidate_up`): in `GET /admin/events`, the route's view, the metrics and the
//! notifiers.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cutover::mock::{MockConfig, MockServer};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::support::{ADMIN_TOKEN, Setup, TempDir, UPSTREAM_KEY, in_process_config, metric, send, start_gateway};
use crate::wait::until;

/// Probes every 50 ms, two in a row to change the verdict.
const FAST_PROBES: &str = "[health]\ninterval = \"50ms\"\ntimeout = \"500ms\"\ndown_after = 2\nup_after = 2\n";

/// The entry of `upstream` in `GET /admin/upstreams`.
async fn upstream_view(setup: &Setup, upstream: &str) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = send(Method::GET, &setup.admin_url("/admin/upstreams"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let listed = reply.json();
    let entry = listed.as_array().and_then(|all| all.iter().find(|entry| entry["name"] == upstream)).cloned();
    entry.unwrap_or_else(|| panic!("no upstream {upstream:?} in {listed}"))
}

async fn wait_until_up_is(setup: &Setup, upstream: &str, up: bool) -> Value {
    until(&format!("{upstream} up = {up}"), async || {
        let view = upstream_view(setup, upstream).await;
        (view["probe"]["up"] == up).then_some(view)
    })
    .await
}

/// Serves a new mock named `name` on `address`, where a stopped one was.
async fn restart_mock(name: &str, address: std::net::SocketAddr, config: MockConfig) -> MockServer {
    let listener = TcpListener::bind(address).await.expect("rebind the stopped mock's port");
    MockServer::start_on(listener, config.with_name(name)).await
}

#[tokio::test]
async fn a_stopped_upstream_is_down_after_down_after_probes_and_up_again_after_up_after() {
    let Setup { primary, candidate, gateway, _dir } =
        Setup::new(MockConfig::default(), MockConfig::default(), FAST_PROBES).await;
    let setup = Setup { primary, candidate: MockServer::start(MockConfig::default()).await.unwrap(), gateway, _dir };
    let address = candidate.addr();
    wait_until_up_is(&setup, "candidate", true).await;
    until("a first probe of the candidate", async || {
        (upstream_view(&setup, "candidate").await["probe"]["probes"].as_u64() > Some(0)).then_some(())
    })
    .await;
    candidate.shutdown().await;

    let down = wait_until_up_is(&setup, "candidate", false).await;
    let change = &down["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(change["change"], "down");
    let reason = change["reason"].as_str().unwrap();
    assert!(reason.starts_with("2 probes failed in a row, last: "), "{reason}");
    assert!(down["probe"]["last_error"].as_str().is_some_and(|error| !error.is_empty()), "{down}");
    assert_eq!(down["up"], false);
    assert_eq!(down["breaker_open"], false, "no traffic: the breaker knows nothing");
    let page = setup.metrics().await;
    assert_eq!(metric(&page, "cutover_upstream_up{upstream=\"candidate\"}"), 0.0);
    assert_eq!(metric(&page, "cutover_upstream_up{upstream=\"primary\"}"), 1.0);

    let _candidate = restart_mock("candidate", address, MockConfig::default()).await;
    let up = wait_until_up_is(&setup, "candidate", true).await;
    let change = up["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(change["change"], "up");
    assert_eq!(change["reason"], "2 probes succeeded in a row");
    assert_eq!(metric(&setup.metrics().await, "cutover_upstream_up{upstream=\"candidate\"}"), 1.0);
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn an_upstream_whose_only_connection_a_stream_holds_is_still_probed_up() {
    // Four seconds of stream (40 chunks, 100 ms apart) on the primary's one connection.
    let slow =
        MockConfig { chunk_gap: std::time::Duration::from_millis(100), answer_tokens: 40, ..MockConfig::default() };
    let primary = MockServer::start(slow.with_name("primary")).await.unwrap();
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("health-capped");
    let config = in_process_config(&primary.base_url(), &candidate.base_url())
        .upstream_line("primary", "max_connections = 1")
        .section(FAST_PROBES)
        .build();
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    wait_until_up_is(&setup, "primary", true).await;
    let body =
        serde_json::json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Go on"}]});
    let url = format!("http://{}/v1/chat/completions", setup.gateway.proxy_addr);
    let mut stream = crate::binary::Streaming::open(&url, &[], &body).await;
    assert_eq!(stream.status, StatusCode::OK);
    stream.next().await.expect("a first chunk");
    // Probes every 50 ms with a 500 ms timeout: two seconds of them while the stream
    // holds the cap, each of which would time out queued behind it.
    let probed = upstream_view(&setup, "primary").await["probe"]["probes"].as_u64().unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let view = upstream_view(&setup, "primary").await;
    assert_eq!(view["probe"]["up"], true, "a busy upstream was taken for a down one: {view}");
    assert!(view["probe"]["probes"].as_u64().unwrap_or(0) >= probed + 10, "the probes stopped: {view}");
    assert!(view["probe"]["last_error"].is_null(), "{view}");
    let (rest, whole) = stream.rest_or_cut().await;
    assert!(whole, "the stream was cut: {}", String::from_utf8_lossy(&rest));
    // The stream's connection and the probes' own, beside the cap.
    assert_eq!(setup.primary.connections(), 2);
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn probes_carry_the_upstreams_key_and_a_refusal_is_down() {
    let primary = MockServer::start(MockConfig::default().with_name("primary").with_api_key("sk-other")).await.unwrap();
    let candidate =
        MockServer::start(MockConfig::default().with_name("candidate").with_api_key(UPSTREAM_KEY)).await.unwrap();
    let dir = TempDir::new("health-key");
    let config = in_process_config(&primary.base_url(), &candidate.base_url())
        .upstream_line("candidate", "api_key_env = \"UPSTREAM_KEY\"")
        .section(FAST_PROBES)
        .build();
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    // The primary's mock wants a key the gateway does not have: 401 on every probe.
    let primary = wait_until_up_is(&setup, "primary", false).await;
    assert_eq!(primary["probe"]["last_error"], "HTTP 401 Unauthorized");
    let candidate = upstream_view(&setup, "candidate").await;
    assert_eq!(candidate["probe"]["up"], true);
    assert!(candidate["probe"]["successes_in_a_row"].as_u64() > Some(0), "{candidate}");
    assert!(!candidate.to_string().contains(UPSTREAM_KEY), "the view shows no key: {candidate}");
    assert!(setup.candidate.calls_to("/v1/models") > 0);
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn a_down_candidate_gets_no_split_traffic_and_its_users_are_served_by_the_primary() {
    let Setup { primary, candidate, gateway, _dir } =
        Setup::new(MockConfig::default(), MockConfig::default(), FAST_PROBES).await;
    let address = candidate.addr();
    let setup = Setup { primary, candidate: MockServer::start(MockConfig::default()).await.unwrap(), gateway, _dir };
    setup.set_weight(100.0).await;
    candidate.shutdown().await;
    wait_until_up_is(&setup, "candidate", false).await;

    for user in 0..20 {
        let reply = setup.chat(&format!("user-{user}"), user % 2 == 0).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-cutover-upstream"), Some("primary"));
        assert_eq!(reply.header("x-cutover-fallback"), None, "sent to the primary at once, not after a failure");
    }
    let view = upstream_view(&setup, "candidate").await;
    assert_eq!(view["probe"]["rerouted_requests"], 20);
    let page = setup.metrics().await;
    let candidate_attempts: f64 = ["ok", "client_error", "upstream_error", "cancelled"]
        .iter()
        .map(|outcome| {
            let series = format!(
                "cutover_requests_total{{route=\"default\",upstream=\"candidate\",role=\"candidate\",outcome=\"{outcome}\"}}"
            );
            metric(&page, &series)
        })
        .sum();
    assert_eq!(candidate_attempts, 0.0, "no attempt on the down candidate");
    // In the rollout's evidence each of those users is a failure of the candidate (it is
    // failing them), and the primary that served them in its place gives no evidence.
    let arms = rollout_view(&setup).await["arms"].clone();
    assert_eq!(arms["candidate"]["requests"], 20, "{arms}");
    assert_eq!(arms["candidate"]["upstream_errors"], 20, "{arms}");
    assert_eq!(arms["primary"]["requests"], 0, "{arms}");

    // Back up: its users return to it.
    let _candidate = restart_mock("candidate", address, MockConfig::default()).await;
    wait_until_up_is(&setup, "candidate", true).await;
    assert_eq!(setup.chat("user-1", false).await.header("x-cutover-upstream"), Some("candidate"));
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn a_down_primary_sends_its_users_to_the_candidate_with_fallback_both() {
    let route = format!("fallback = \"both\"\n{FAST_PROBES}");
    let Setup { primary, candidate, gateway, _dir } =
        Setup::new(MockConfig::default(), MockConfig::default(), &route).await;
    let setup = Setup { primary: MockServer::start(MockConfig::default()).await.unwrap(), candidate, gateway, _dir };
    primary.shutdown().await;
    wait_until_up_is(&setup, "primary", false).await;
    for user in 0..10 {
        let reply = setup.chat(&format!("user-{user}"), false).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-cutover-upstream"), Some("candidate"));
        assert_eq!(reply.header("x-cutover-fallback"), None);
    }
    let arms = rollout_view(&setup).await["arms"].clone();
    assert_eq!(arms["primary"]["upstream_errors"], 10, "a down primary fails its users in the evidence: {arms}");
    assert_eq!(arms["candidate"]["requests"], 0, "the candidate only stood in: {arms}");
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_naming_the_route_while_none_of_its_upstreams_is_up_and_200_once_one_is() {
    let Setup { primary, candidate, gateway, _dir } =
        Setup::new(MockConfig::default(), MockConfig::default(), FAST_PROBES).await;
    let candidate_at = candidate.addr();
    // Stand-ins hold the fields; the real mocks are stopped one by one below.
    let (spare_primary, spare_candidate) = (
        MockServer::start(MockConfig::default()).await.unwrap(),
        MockServer::start(MockConfig::default()).await.unwrap(),
    );
    let setup = Setup { primary: spare_primary, candidate: spare_candidate, gateway, _dir };
    let readyz = async || send(Method::GET, &setup.admin_url("/readyz"), &[], "").await;
    let ready = readyz().await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());

    // Only the candidate down: the primary still serves the route.
    candidate.shutdown().await;
    wait_until_up_is(&setup, "candidate", false).await;
    assert_eq!(readyz().await.status, StatusCode::OK);

    // Both down: nothing can serve the route.
    primary.shutdown().await;
    wait_until_up_is(&setup, "primary", false).await;
    let not_ready = readyz().await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", not_ready.text());
    assert_eq!(
        not_ready.json()["reasons"][0],
        "route default: no upstream is up (probes down or circuit breaker open)"
    );

    let _candidate = restart_mock("candidate", candidate_at, MockConfig::default()).await;
    wait_until_up_is(&setup, "candidate", true).await;
    assert_eq!(readyz().await.status, StatusCode::OK);
    setup.gateway.shutdown().await;
}

/// A webhook receiver on loopback that answers 200 and keeps every JSON body it gets.
async fn start_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let store = store.clone();
                async move {
                    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
                    store.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (url, received)
}

/// The route's rollout view, `GET /admin/rollouts/default`.
async fn rollout_view(setup: &Setup) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = send(Method::GET, &setup.admin_url("/admin/rollouts/default"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// The route's events in `GET /admin/events`, newest first.
async fn route_events(setup: &Setup) -> Vec<Value> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply =
        send(Method::GET, &setup.admin_url("/admin/events?route=default"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn a_candidate_going_down_and_up_is_a_rollout_event_in_the_log_the_view_and_the_notifiers() {
    let (hook, received) = start_receiver().await;
    let extra = format!("{FAST_PROBES}\n[[notify]]\nname = \"hook\"\nurl = \"{hook}\"\nmin_severity = \"info\"\n");
    let Setup { primary, candidate, gateway, _dir } =
        Setup::new(MockConfig::default(), MockConfig::default(), &extra).await;
    let address = candidate.addr();
    let setup = Setup { primary, candidate: MockServer::start(MockConfig::default()).await.unwrap(), gateway, _dir };
    until("a first probe of the candidate", async || {
        (upstream_view(&setup, "candidate").await["probe"]["probes"].as_u64() > Some(0)).then_some(())
    })
    .await;
    assert!(route_events(&setup).await.is_empty(), "an upstream that stays up records nothing");
    candidate.shutdown().await;

    let down = until("a candidate_down event", async || {
        route_events(&setup).await.into_iter().find(|event| event["kind"] == "candidate_down")
    })
    .await;
    assert_eq!(down["actor"], "prober");
    assert_eq!(down["route"], "default");
    assert!(down["reason"].as_str().unwrap().starts_with("2 probes failed in a row, last: "), "{down}");
    assert_eq!(down["from_phase"], down["to_phase"], "the route's phase is unchanged: {down}");
    assert_eq!(upstream_view(&setup, "candidate").await["probe"]["up"], false);

    let _candidate = restart_mock("candidate", address, MockConfig::default()).await;
    let up = until("a candidate_up event", async || {
        route_events(&setup).await.into_iter().find(|event| event["kind"] == "candidate_up")
    })
    .await;
    assert_eq!(up["reason"], "2 probes succeeded in a row");
    let kinds: Vec<Value> = route_events(&setup).await.iter().map(|event| event["kind"].clone()).collect();
    assert_eq!(kinds, ["candidate_up", "candidate_down"], "newest first");

    let auth = format!("Bearer {ADMIN_TOKEN}");
    let view = send(Method::GET, &setup.admin_url("/admin/rollouts/default"), &[("authorization", &auth)], "").await;
    let shown: Vec<Value> =
        view.json()["events"].as_array().unwrap().iter().map(|event| event["kind"].clone()).collect();
    assert_eq!(shown, ["candidate_up", "candidate_down"], "the route's view: {}", view.text());
    let page = setup.metrics().await;
    for kind in ["candidate_down", "candidate_up"] {
        let series = format!("cutover_rollout_transitions_total{{route=\"default\",kind=\"{kind}\"}}");
        assert_eq!(metric(&page, &series), 1.0, "{series}");
    }

    let posted = until("both events posted to the notifier", async || {
        let posted: Vec<Value> =
            received.lock().unwrap().iter().filter(|body| body["type"] == "rollout").cloned().collect();
        (posted.len() >= 2).then_some(posted)
    })
    .await;
    let posted_kinds: Vec<&Value> = posted.iter().map(|body| &body["event"]["kind"]).collect();
    assert_eq!(posted_kinds, ["candidate_down", "candidate_up"]);
    assert_eq!(posted[0]["severity"], "warning", "{}", posted[0]);
    assert_eq!(posted[1]["severity"], "info", "{}", posted[1]);
    setup.gateway.shutdown().await;
}
