//! Shadow comparison end to end: mock upstreams (some disagreeing on purpose through their
//! quirks) behind an in-process gateway that mirrors the primary arm's requests, and the
//! agreement, drops, diffs and verdicts that follow.

use std::time::Duration;

use cutover::mock::{MockConfig, Quirk};
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{
    ADMIN_TOKEN, GATEWAY_KEY, Reply, Setup, TempDir, held_to, metric, send, start_gateway, unhurried_upstreams,
};
use crate::wait::until;

async fn admin(setup: &Setup, method: Method, path: &str, body: &str) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    send(method, &setup.admin_url(path), &[("authorization", &auth)], body.to_owned()).await
}

async fn view(setup: &Setup) -> Value {
    admin(setup, Method::GET, "/admin/rollouts/default", "").await.json()
}

async fn post(setup: &Setup, path: &str, user: &str, body: &str) -> Reply {
    send(Method::POST, &setup.url(path), &[("x-user-id", user)], body.to_owned()).await
}

/// Waits until the step has compared `pairs` pairs, and returns its agreement.
async fn pairs_compared(setup: &Setup, pairs: u64) -> Value {
    until(&format!("{pairs} pairs compared"), async || {
        let agreement = view(setup).await["shadow_agreement"].clone();
        (agreement["pairs"].as_u64() >= Some(pairs)).then_some(agreement)
    })
    .await
}

/// The agreement of `dimension` (`None`: no pair judged on it).
fn ratio(agreement: &Value, dimension: &str) -> Option<f64> {
    agreement["dimensions"][dimension]["ratio"].as_f64()
}

const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}}}]"#;

/// A request that exercises the dimension a quirk breaks.
fn request_for(kind: &str) -> String {
    let messages = r#""messages":[{"role":"user","content":"What is the weather in Paris?"}]"#;
    match kind {
        "tools" => format!(
            r#"{{"model":"gpt-4.1",{messages},{TOOLS},"tool_choice":{{"type":"function","function":{{"name":"get_weather"}}}}}}"#
        ),
        "json" => format!(r#"{{"model":"gpt-4.1",{messages},"response_format":{{"type":"json_object"}}}}"#),
        "stream" => format!(r#"{{"model":"gpt-4.1",{messages},"stream":true}}"#),
        _ => format!(r#"{{"model":"gpt-4.1",{messages}}}"#),
    }
}

#[tokio::test]
async fn each_mock_disagreement_lowers_exactly_its_dimensions_agreement_and_no_other() {
    // (quirk, request, the one dimension it must lower)
    let cases = [
        ("wrong-tool", "tools", "tool_calls"),
        ("strip-tool-calls", "tools", "tool_calls"),
        ("no-tools", "tools", "outcome"),
        ("invalid-json", "json", "json_valid"),
        ("ignore-json-mode", "json", "json_valid"),
        ("echo-model=gpt-4o-mini", "plain", "model"),
        ("inflate-prompt-tokens=1.5", "plain", "prompt_tokens"),
        ("inflate-prompt-tokens=2", "stream", "prompt_tokens"),
        ("inflate-prompt-tokens=2", "json", "prompt_tokens"),
        ("inflate-prompt-tokens=2", "tools", "prompt_tokens"),
        ("finish-reason=length", "plain", "finish_reason"),
        ("no-stream-usage", "stream", "prompt_tokens"),
    ];
    for (quirk, kind, dimension) in cases {
        let candidate = MockConfig::default().with_quirk(Quirk::parse(quirk).unwrap());
        let setup = Setup::unhurried(MockConfig::default(), candidate, "shadow = 1.0").await;
        for user in 0..4 {
            let reply = post(&setup, "/v1/chat/completions", &format!("user-{user}"), &request_for(kind)).await;
            assert_eq!(reply.status, StatusCode::OK, "{quirk}: the client gets the primary's answer");
        }
        let agreement = pairs_compared(&setup, 4).await;
        assert_eq!(ratio(&agreement, dimension), Some(0.0), "{quirk} lowers {dimension}: {agreement:#}");
        for (other, row) in agreement["dimensions"].as_object().unwrap() {
            if other != dimension && row["judged"].as_u64() > Some(0) {
                assert_eq!(row["ratio"].as_f64(), Some(1.0), "{quirk} lowered {other} too: {agreement:#}");
            }
        }
        assert_eq!(agreement["overall"].as_f64(), Some(0.0), "{quirk}: {agreement:#}");
    }
}

#[tokio::test]
async fn agreeing_mocks_agree_on_every_dimension_judged_and_the_gauges_say_so() {
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), "shadow = 1.0").await;
    for (user, kind) in ["tools", "json", "stream", "plain"].into_iter().enumerate() {
        let reply = post(&setup, "/v1/chat/completions", &format!("user-{user}"), &request_for(kind)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let agreement = pairs_compared(&setup, 4).await;
    assert_eq!(agreement["overall"].as_f64(), Some(1.0), "{agreement:#}");
    for dimension in [
        "outcome",
        "finish_reason",
        "tool_calls",
        "tool_arguments_json",
        "tool_arguments_schema",
        "json_valid",
        "content",
        "model",
        "prompt_tokens",
    ] {
        assert_eq!(ratio(&agreement, dimension), Some(1.0), "{dimension} was judged and agreed: {agreement:#}");
    }
    assert_eq!(agreement["tool_f1"].as_f64(), Some(1.0));
    let page = setup.metrics().await;
    assert_eq!(metric(&page, r#"cutover_shadow_agreement_ratio{route="default",dimension="overall"}"#), 1.0);
    assert_eq!(metric(&page, r#"cutover_shadow_agreement_ratio{route="default",dimension="tool_calls"}"#), 1.0);
}

#[tokio::test]
async fn the_candidate_receives_the_sampled_share_of_users_and_the_counts_equal_the_metrics() {
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), "shadow = 0.2").await;
    let users = 500u64;
    for user in 0..users {
        assert_eq!(setup.chat(&format!("user-{user}"), false).await.status, StatusCode::OK);
    }
    // The mirrors finish after the clients' answers: wait for the comparisons to settle.
    let mirrored = until("every mirror compared", async || {
        let (page, view) = (setup.metrics().await, view(&setup).await);
        let mirrored = metric(&page, r#"cutover_shadow_requests_total{route="default",outcome="mirrored"}"#) as u64;
        (mirrored > 0 && view["shadow_agreement"]["pairs"].as_u64() == Some(mirrored)).then_some(mirrored)
    })
    .await;
    // Binomial(500, 0.2): mean 100, sd 8.9; ±40 is 4.5 sd (the draw is a hash of each
    // user, so the same users every run).
    assert!((60..=140).contains(&mirrored), "{mirrored} of {users} users mirrored at 20%");
    assert_eq!(setup.candidate.calls(), mirrored, "every mirror counted reached the candidate, once");
    let page = setup.metrics().await;
    for outcome in ["dropped", "failed"] {
        assert_eq!(
            metric(&page, &format!(r#"cutover_shadow_requests_total{{route="default",outcome="{outcome}"}}"#)),
            0.0
        );
    }
    // Sticky: the same users again are mirrored again, and no others.
    for user in 0..users {
        setup.chat(&format!("user-{user}"), false).await;
    }
    until("the second round mirrored", async || (setup.candidate.calls() == 2 * mirrored).then_some(())).await;
}

#[tokio::test]
async fn a_full_pool_drops_mirrors_instead_of_blocking_and_counts_them_against_a_slow_candidate() {
    let slow = MockConfig::default().with_latency(Duration::from_secs(5));
    let setup = Setup::unhurried(MockConfig::default(), slow, "shadow = 1.0").await;
    // 64 mirrors fill the pool for 5 s; the clients' answers come from the primary meanwhile.
    let replies = futures_join(&setup, 100).await;
    assert!(replies.iter().all(|status| *status == StatusCode::OK));
    let page = setup.metrics().await;
    let dropped = metric(&page, r#"cutover_shadow_dropped_total{route="default",reason="full"}"#);
    assert!(dropped >= 1.0, "the 65th mirror onwards is dropped, not queued: {dropped}");
    let agreement = view(&setup).await["shadow_agreement"].clone();
    assert_eq!(agreement["dropped_slow_candidate"].as_f64(), Some(dropped), "{agreement:#}");
    assert!(
        ratio(&agreement, "outcome").is_some_and(|ratio| ratio < 1.0),
        "dropped mirrors speak against the candidate"
    );
}

/// Sends `count` chat requests from distinct users at once; their statuses.
async fn futures_join(setup: &Setup, count: usize) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..count {
        let url = setup.url("/v1/chat/completions");
        tasks.spawn(async move {
            let body = r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}"#;
            send(Method::POST, &url, &[("x-user-id", &format!("u{user}"))], body).await.status
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn a_rate_cap_drops_mirrors_as_cap_and_the_status_says_it_is_binding() {
    let setup =
        Setup::unhurried(MockConfig::default(), MockConfig::default(), "shadow = 1.0\nshadow_max_rps = 1").await;
    for user in 0..10 {
        setup.chat(&format!("user-{user}"), false).await;
    }
    let page = setup.metrics().await;
    assert!(metric(&page, r#"cutover_shadow_dropped_total{route="default",reason="cap"}"#) >= 1.0);
    assert_eq!(metric(&page, r#"cutover_shadow_dropped_total{route="default",reason="full"}"#), 0.0);
    let view = view(&setup).await;
    assert_eq!(view["shadow_caps"]["binding"], true, "{view:#}");
    // A cap is the operator's, not the candidate's doing: no evidence either way.
    assert_eq!(view["shadow_agreement"]["dropped_slow_candidate"], 0);
}

#[tokio::test]
async fn a_spend_cap_drops_mirrors_as_cap_once_the_hours_mirrors_cost_more() {
    let priced = "shadow = 1.0\nshadow_max_usd_per_hour = 0.01\n\n[prices.candidate]\n\"gpt-4.1\" = { input = 1000.0, output = 1000.0 }\n";
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), priced).await;
    let mut user = 0;
    // Each mirror costs a few cents here; the budget is re-read once a second.
    until("a mirror dropped by the spend cap", async || {
        user += 1;
        setup.chat(&format!("user-{user}"), false).await;
        let page = setup.metrics().await;
        (metric(&page, r#"cutover_shadow_dropped_total{route="default",reason="cap"}"#) >= 1.0).then_some(())
    })
    .await;
    assert_eq!(view(&setup).await["shadow_caps"]["binding"], true);
}

#[tokio::test]
async fn requests_with_side_effects_are_never_mirrored() {
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), "shadow = 1.0").await;
    send(Method::GET, &setup.url("/v1/models"), &[], "").await;
    let stored = r#"{"model":"gpt-4.1","input":"hi"}"#;
    let chained = r#"{"model":"gpt-4.1","input":"hi","store":false,"previous_response_id":"resp_1"}"#;
    for body in [stored, chained, r#"{"model":"gpt-4.1","input":"hi","store":true}"#] {
        post(&setup, "/v1/responses", "u", body).await;
    }
    post(&setup, "/v1/files", "u", r#"{"model":"gpt-4.1"}"#).await;
    post(&setup, "/v1/images/generations", "u", r#"{"model":"gpt-4.1","prompt":"a cat"}"#).await;
    // A stateless one of each mirrorable endpoint, then wait for the mirrors.
    post(&setup, "/v1/responses", "u", r#"{"model":"gpt-4.1","input":"hi","store":false}"#).await;
    setup.chat("u", false).await;
    until("both mirrors arrive", async || (setup.candidate.calls() >= 2).then_some(())).await;
    pairs_compared(&setup, 2).await;
    assert_eq!(setup.candidate.calls(), 2, "only the stateless response and the chat were mirrored");
    assert_eq!(setup.candidate.calls_to("/v1/responses"), 1);
    assert_eq!(setup.candidate.calls_to("/v1/chat/completions"), 1);
}

#[tokio::test]
async fn no_diff_is_kept_unless_enabled_and_kept_ones_hold_bodies_but_never_a_header() {
    let lying = || MockConfig::default().with_quirk(Quirk::parse("echo-model=gpt-4o-mini").unwrap());
    let off = Setup::unhurried(MockConfig::default(), lying(), "shadow = 1.0").await;
    off.chat("alice", false).await;
    pairs_compared(&off, 1).await;
    let diffs = admin(&off, Method::GET, "/admin/shadow/default/diffs", "").await.json();
    held_to::<cutover_model::view::ShadowDiffs>(&diffs);
    assert_eq!(
        (diffs["keep_diffs"].as_u64(), diffs["diffs"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "{diffs:#}"
    );

    let on = Setup::unhurried(MockConfig::default(), lying(), "shadow = 1.0\nshadow_keep_diffs = 2").await;
    for user in ["alice", "bob", "carol"] {
        let body = request_for("plain");
        let headers = [("x-user-id", user), ("authorization", &format!("Bearer {GATEWAY_KEY}") as &str)];
        send(Method::POST, &on.url("/v1/chat/completions"), &headers, body).await;
    }
    pairs_compared(&on, 3).await;
    let reply = admin(&on, Method::GET, "/admin/shadow/default/diffs?dimension=model", "").await;
    let diffs = reply.json();
    held_to::<cutover_model::view::ShadowDiffs>(&diffs);
    let kept = diffs["diffs"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "the ring keeps its last 2: {diffs:#}");
    assert_eq!(kept[0]["dimensions"], serde_json::json!(["model"]));
    assert!(kept[0]["request"].as_str().unwrap().contains("What is the weather"));
    assert!(kept[0]["candidate"].as_str().unwrap().contains("Simulated answer"));
    for secret in [GATEWAY_KEY, ADMIN_TOKEN, crate::support::UPSTREAM_KEY, "authorization", "x-user-id"] {
        assert!(!reply.text().contains(secret), "{secret} stored in a diff");
    }
    let content = admin(&on, Method::GET, "/admin/shadow/default/diffs?dimension=content", "").await.json();
    assert_eq!(content["diffs"].as_array().map(Vec::len), Some(0));
    let unknown = admin(&on, Method::GET, "/admin/shadow/default/diffs?dimension=vibes", "").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

/// A shadow step judged on agreement alone, then a long step.
fn agreement_plan(criterion: &str) -> String {
    format!(
        "retries = 0\n[routes.rollout]\ninterval = \"200ms\"\nfailure_limit = 2\nsteps = [\n\
         {{ weight = 0, shadow = 1.0, min_duration = \"300ms\", max_duration = \"1h\", min_requests = 20, {criterion} }},\n\
         {{ weight = 50, min_duration = \"1h\", min_requests = 20 }},\n]\n"
    )
}

/// Sends chats from 200 users until the rollout leaves the shadow step; its view then.
async fn drive_out_of_shadowing(setup: &Setup) -> Value {
    let mut user = 0;
    until("the shadow step decided", async || {
        for _ in 0..20 {
            user = (user + 1) % 200;
            assert_eq!(setup.chat(&format!("user-{user}"), false).await.status, StatusCode::OK);
        }
        let view = view(setup).await;
        (!["shadowing", "pending"].contains(&view["phase"].as_str().unwrap_or_default())).then_some(view)
    })
    .await
}

#[tokio::test]
async fn min_shadow_agreement_holds_for_an_agreeing_candidate_and_the_step_advances() {
    let route = agreement_plan("min_shadow_agreement = 90");
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    let view = drive_out_of_shadowing(&setup).await;
    assert_eq!(view["phase"], "progressing", "{view:#}");
    assert_eq!(view["weight"], 50.0);
}

#[tokio::test]
async fn min_shadow_agreement_on_a_dimension_fails_a_shadow_step_whose_candidate_disagrees() {
    let route = agreement_plan("min_shadow_agreement = { model = 95 }");
    let lying = MockConfig::default().with_quirk(Quirk::parse("echo-model=gpt-4o-mini").unwrap());
    let setup = Setup::unhurried(MockConfig::default(), lying, &route).await;
    let view = drive_out_of_shadowing(&setup).await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
    let events = admin(&setup, Method::GET, "/admin/events?route=default", "").await.json();
    let failed = events.as_array().unwrap().iter().find(|event| event["kind"] == "check_failed");
    let reason = failed.map(|event| event["reason"].as_str().unwrap_or_default().to_owned()).unwrap_or_default();
    assert!(reason.starts_with("fail: min_shadow_agreement.model = 0.00, limit 95"), "{events:#}");
}

#[tokio::test]
async fn the_shadow_share_set_at_run_time_is_in_effect_at_once_and_survives_a_restart() {
    let primary = cutover::mock::MockServer::start(MockConfig::default().with_name("primary")).await.unwrap();
    let candidate = cutover::mock::MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("shadow-share");
    let config = unhurried_upstreams(&primary.base_url(), &candidate.base_url(), "");
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    setup.chat("alice", false).await;
    assert_eq!(setup.candidate.calls(), 0, "no shadow share in the configuration");
    let set = admin(&setup, Method::POST, "/admin/rollouts/default/shadow", r#"{"share": 1.0}"#).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["shadow"], 1.0);
    setup.chat("alice", false).await;
    until("the mirror arrives", async || (setup.candidate.calls() == 1).then_some(())).await;
    let refused = admin(&setup, Method::POST, "/admin/rollouts/default/shadow", r#"{"share": 1.5}"#).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text());
    let Setup { primary, candidate, gateway, _dir: dir } = setup;
    gateway.shutdown().await;
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    assert_eq!(view(&setup).await["shadow"], 1.0, "the share was kept in the state file");
    let cleared = admin(&setup, Method::POST, "/admin/rollouts/default/shadow", r#"{"share": null}"#).await;
    assert_eq!(cleared.json()["shadow"], 0.0, "back to the configuration's share");
}

/// An upstream that answers every request with the same bytes, so that what a client
/// receives can be compared byte for byte (the mock varies ids and timestamps).
async fn fixed_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                // The head, then as much body as it declares.
                let (head_end, length) = loop {
                    let Ok(read @ 1..) = socket.read(&mut buffer).await else { return };
                    request.extend_from_slice(&buffer[..read]);
                    if let Some(end) = request.windows(4).position(|window| window == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let Ok(read @ 1..) = socket.read(&mut buffer).await else { return };
                    request.extend_from_slice(&buffer[..read]);
                }
                let streamed = String::from_utf8_lossy(&request[head_end..]).contains("\"stream\":true");
                let (kind, body) =
                    if streamed { ("text/event-stream", FIXED_STREAM) } else { ("application/json", FIXED_JSON) };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{address}/v1")
}

const FIXED_JSON: &str = r#"{"id":"chatcmpl-fixed","object":"chat.completion","created":1,"model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":"Always the same."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#;
const FIXED_STREAM: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Always\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the same.\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn what_the_client_receives_is_byte_identical_with_shadow_on_and_off() {
    let primary = fixed_upstream().await;
    let candidate = cutover::mock::MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("shadow-bytes");
    let gateway = start_gateway(&unhurried_upstreams(&primary, &candidate.base_url(), ""), &dir).await;
    let url = format!("http://{}/v1/chat/completions", gateway.proxy_addr);
    let admin_url = format!("http://{}/admin/rollouts/default/shadow", gateway.admin_addr);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let bodies = [
        request_for("plain"),
        request_for("stream"),
        request_for("stream").replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
    ];
    let mut answers = Vec::new();
    for share in ["0.0", "1.0"] {
        let set = send(Method::POST, &admin_url, &[("authorization", &auth)], format!(r#"{{"share": {share}}}"#)).await;
        assert_eq!(set.status, StatusCode::OK);
        let mut round = Vec::new();
        for body in &bodies {
            let reply = send(Method::POST, &url, &[("x-user-id", "alice")], body.clone()).await;
            let kind = reply.headers.get("content-type").cloned();
            round.push((reply.status, kind, reply.body));
        }
        answers.push(round);
    }
    until("the mirrors arrive", async || (candidate.calls() == 3).then_some(())).await;
    assert_eq!(answers[0], answers[1], "shadow on changes nothing the client receives");
    assert!(String::from_utf8_lossy(&answers[1][1].2).contains("Always"));
    gateway.shutdown().await;
}
