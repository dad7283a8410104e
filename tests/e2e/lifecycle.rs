//! `cutover serve` across its life: graceful restarts and `kill -9` keep the weight, the
//! split, the step and its evidence (the state file); SIGTERM drains in-flight streams
//! before exiting 0, and cuts one that outlives the drain timeout; SIGHUP reloads the configuration without cutting a stream, and
//! refuses a broken file or one that takes a restart; a taken port is a clear startup
//! failure.

use std::os::unix::process::ExitStatusExt;

use serde_json::{Value, json};

use crate::binary::{Gateway, Process, Scratch, Streaming, get, post_json, sse_data};
use crate::configs::GatewayToml;
use crate::served::{
    GATEWAY_ENV, STATE_FILE, admin_auth, candidate_users, rollout, serve_config, set_weight, slow_plan, two_mocks,
    upstream_for,
};
use crate::state_file::saved_candidate_requests;
use crate::wait::{EVENTUALLY, until};

/// The requests an admin view counts for `arm` in the current step.
fn requests(view: &Value, arm: &str) -> u64 {
    view["arms"][arm]["requests"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn weight_and_sticky_split_survive_a_graceful_restart() {
    let scratch = Scratch::new("restart");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    assert!(scratch.path().join(STATE_FILE).exists(), "the state file is not beside the config");
    assert!(candidate_users(&gateway, 20).await.is_empty(), "a fresh route sends users to the candidate");

    let set = set_weight(&gateway, 30.0).await;
    assert_eq!(set["weight"], 30.0, "{set}");
    let before = candidate_users(&gateway, 100).await;
    assert!((15..=45).contains(&before.len()), "{} of 100 users on the candidate at 30%", before.len());

    gateway.process.signal("TERM");
    let status = gateway.process.wait_exit(EVENTUALLY).await;
    assert_eq!(status.code(), Some(0), "SIGTERM exit: {status}\n{}", gateway.process.log());
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let view = rollout(&gateway).await;
    assert_eq!(view["weight"], 30.0, "{view}");
    assert_eq!(view["phase"], set["phase"], "{view}");
    assert_eq!(view["step_started_at"], set["step_started_at"], "the step's start time moved: {view}");
    let after = candidate_users(&gateway, 100).await;
    assert_eq!(after, before, "users moved between arms across a restart at the same weight");
}

#[tokio::test]
async fn weight_set_through_admin_survives_sigkill_right_after_the_post() {
    let scratch = Scratch::new("sigkill");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    assert_eq!(upstream_for(&gateway, "user-1").await, "primary");

    let set = set_weight(&gateway, 100.0).await;
    gateway.process.signal("KILL");
    let status = gateway.process.wait_exit(EVENTUALLY).await;
    assert_eq!(status.signal(), Some(9), "the gateway was not killed by SIGKILL: {status}");
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let view = rollout(&gateway).await;
    assert_eq!(view["weight"], 100.0, "{view}");
    assert_eq!(view["phase"], set["phase"], "{view}");
    assert_eq!(view["step_started_at"], set["step_started_at"], "the step's start time moved: {view}");
    for user in ["user-1", "user-2", "user-3"] {
        assert_eq!(upstream_for(&gateway, user).await, "candidate", "{user} at weight 100");
    }
    let metrics = get(&gateway.admin_url("/metrics"), &[]).await.text();
    assert!(
        metrics.lines().any(|line| line == "cutover_rollout_weight_percent{route=\"default\"} 100"),
        "the weight gauge does not say 100:\n{metrics}"
    );
    let events = get(&gateway.admin_url("/admin/events"), &[("authorization", &admin_auth())]).await.json();
    let recorded = events.as_array().is_some_and(|events| events.iter().any(|event| event["weight_percent"] == 100.0));
    assert!(recorded, "no event records the change to 100%: {events}");
}

#[tokio::test]
async fn sigterm_turns_readyz_503_keeps_the_admin_port_answering_lets_an_inflight_stream_finish_then_exits_0() {
    let scratch = Scratch::new("sigterm");
    let (primary, candidate) = two_mocks(&scratch, &["--chunk-gap", "100", "--tokens", "20"]).await;
    let mut gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate).build(), &GATEWAY_ENV).await;
    let body =
        json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Tell me a story"}]});
    let mut stream = Streaming::open(&gateway.url("/v1/chat/completions"), &[("x-user-id", "reader")], &body).await;
    assert_eq!(stream.status, 200);
    let content_type = stream.headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "content-type {content_type:?}");
    let mut received = stream.next().await.expect("a first chunk").to_vec();
    let ready = get(&gateway.admin_url("/readyz"), &[]).await;
    assert_eq!((ready.status.as_u16(), ready.json()["status"].clone()), (200, json!("ready")), "{}", ready.text());

    gateway.process.signal("TERM");
    // Once the proxy refuses, is the gateway still there, serving the stream (draining)?
    let refused_while_draining = until("the proxy to refuse connections after SIGTERM", async || {
        let refused = tokio::net::TcpStream::connect(gateway.proxy).await.is_err();
        refused.then(|| gateway.process.exited().is_none())
    })
    .await;
    // While the stream drains, probes and scrapes are still answered: not ready, alive.
    let draining = get(&gateway.admin_url("/readyz"), &[]).await;
    assert_eq!(draining.status, 503, "{}", draining.text());
    assert!(
        draining.json()["reasons"][0].as_str().is_some_and(|reason| reason.starts_with("draining")),
        "{}",
        draining.text()
    );
    assert_eq!(get(&gateway.admin_url("/healthz"), &[]).await.status, 200);
    assert_eq!(get(&gateway.admin_url("/metrics"), &[]).await.status, 200);
    received.extend(stream.rest().await);

    let text = String::from_utf8_lossy(&received);
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "the stream did not end with [DONE]:\n{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| panic!("not JSON: {data}")))
        .collect();
    assert!(chunks.iter().all(|chunk| chunk.get("error").is_none()), "an error event:\n{text}");
    let content: String = chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(content.starts_with("Simulated answer from mock primary."), "{content:?}");
    assert_eq!(content.split_whitespace().count(), 20, "not all 20 tokens arrived: {content:?}");
    assert!(chunks.iter().any(|chunk| chunk["choices"][0]["finish_reason"] == "stop"), "no finish chunk:\n{text}");

    let status = gateway.process.wait_exit(EVENTUALLY).await;
    assert_eq!(status.code(), Some(0), "exit after draining: {status}\n{}", gateway.process.log());
    assert!(refused_while_draining, "the proxy accepted connections until the gateway exited");
}

#[tokio::test]
async fn sigterm_cuts_a_stream_that_outlives_the_drain_timeout_says_how_many_it_closed_and_exits_0() {
    let scratch = Scratch::new("drain-timeout");
    // A minute of stream (600 chunks, 100 ms apart) against a drain of one second.
    let (primary, candidate) = two_mocks(&scratch, &["--chunk-gap", "100", "--tokens", "600"]).await;
    let config =
        serve_config(&primary, &candidate).build().replace(r#"drain_timeout = "120s""#, r#"drain_timeout = "1s""#);
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let body = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Go on"}]});
    let mut stream = Streaming::open(&gateway.url("/v1/chat/completions"), &[("x-user-id", "reader")], &body).await;
    assert_eq!(stream.status, 200);
    stream.next().await.expect("a first chunk");

    gateway.process.signal("TERM");
    let (rest, whole) = stream.rest_or_cut().await;
    let text = String::from_utf8_lossy(&rest);
    assert!(!whole && !text.contains("[DONE]"), "the stream was not cut at the drain timeout:\n{text}");
    let status = gateway.process.wait_exit(EVENTUALLY).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gateway.process.log());
    let log = gateway.process.log();
    let said = log.lines().find(|line| line.contains("drain timed out")).unwrap_or_default();
    assert!(said.contains("closed the connections still open") && said.contains("closed=1"), "{log}");
}

/// A gateway key for the configuration a SIGHUP reloads.
const BATCH_KEY: (&str, &str) = ("CUTOVER_KEY_BATCH", "sk-batch-e2e");

/// The number of lines of the gateway's log that contain `text`.
fn logged(gateway: &Gateway, text: &str) -> usize {
    gateway.process.log().lines().filter(|line| line.contains(text)).count()
}

/// The status of a plain chat completion with `headers`.
async fn chat_status(gateway: &Gateway, headers: &[(&str, &str)]) -> u16 {
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello"}]});
    post_json(&gateway.url("/v1/chat/completions"), headers, &body).await.status.as_u16()
}

async fn reloads(gateway: &Gateway, result: &str) -> String {
    let metrics = get(&gateway.admin_url("/metrics"), &[]).await.text();
    let series = format!("cutover_config_reloads_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|line| line.strip_prefix(&series)).unwrap_or("absent").to_owned()
}

#[tokio::test]
async fn sighup_reloads_a_valid_file_under_ten_streams_without_cutting_one_and_refuses_a_broken_or_restart_only_one() {
    let scratch = Scratch::new("sighup");
    let (primary, candidate) = two_mocks(&scratch, &["--chunk-gap", "100", "--tokens", "30"]).await;
    let env = [GATEWAY_ENV[0], BATCH_KEY];
    let mut gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate).build(), &env).await;
    assert_eq!(chat_status(&gateway, &[]).await, 200, "the gateway starts open");
    let body = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let mut streams = Vec::new();
    for reader in 0..10 {
        let user = format!("reader-{reader}");
        let mut stream = Streaming::open(&gateway.url("/v1/chat/completions"), &[("x-user-id", &user)], &body).await;
        assert_eq!(stream.status, 200);
        let first = stream.next().await.expect("a first chunk").to_vec();
        streams.push((stream, first));
    }

    // The same listeners (the harness chose them), now closed to anyone without a key.
    let running = std::fs::read_to_string(scratch.path().join("cutover.toml")).expect("the config file");
    let with_key = format!("{running}\n[auth]\nkeys = [{{ name = \"batch\", key_env = \"{}\" }}]\n", BATCH_KEY.0);
    scratch.write("cutover.toml", &with_key);
    gateway.process.signal("HUP");
    until("the reload in the log", async || (logged(&gateway, "configuration reloaded") == 1).then_some(())).await;
    let reloaded = gateway.process.log();
    assert!(reloaded.contains("gateway keys: 0 → 1 (changed)"), "the reload does not say what changed:\n{reloaded}");

    for (mut stream, mut received) in streams {
        received.extend(stream.rest().await);
        let text = String::from_utf8_lossy(&received);
        let events = sse_data(&text);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "a stream was cut by the reload:\n{text}");
        assert!(!text.contains("\"error\""), "an error event after SIGHUP:\n{text}");
        let content: String = events[..events.len() - 1]
            .iter()
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(content.split_whitespace().count(), 30, "not all 30 tokens arrived: {content:?}");
    }
    let batch = format!("Bearer {}", BATCH_KEY.1);
    assert_eq!(chat_status(&gateway, &[]).await, 401, "the new gateway key does not apply to new requests");
    assert_eq!(chat_status(&gateway, &[("authorization", &batch)]).await, 200);
    assert_eq!(reloads(&gateway, "applied").await, "1");

    scratch.write("cutover.toml", "[upstreams.broken\n");
    gateway.process.signal("HUP");
    until("the refusal of the broken file", async || (logged(&gateway, "reload refused") == 1).then_some(())).await;
    assert!(
        gateway.process.log().contains("the configuration file is not valid"),
        "the refusal does not say why:\n{}",
        gateway.process.log()
    );
    let added_route =
        format!("{with_key}\n[[routes]]\nname = \"beta\"\nmodels = [\"beta-*\"]\nprimary = \"primary\"\n");
    scratch.write("cutover.toml", &added_route);
    gateway.process.signal("HUP");
    until("the refusal of a new route", async || (logged(&gateway, "reload refused") == 2).then_some(())).await;
    assert!(
        gateway.process.log().contains("routes changed ([default] → [default, beta]): restart to apply"),
        "the refusal does not say why:\n{}",
        gateway.process.log()
    );

    assert!(gateway.process.exited().is_none(), "the gateway exited on SIGHUP:\n{}", gateway.process.log());
    assert_eq!(chat_status(&gateway, &[]).await, 401, "the refused files replaced the running configuration");
    assert_eq!(chat_status(&gateway, &[("authorization", &batch)]).await, 200, "the gateway stopped serving");
    assert_eq!(reloads(&gateway, "refused").await, "2");
    assert_eq!(reloads(&gateway, "applied").await, "1");
}

#[tokio::test]
async fn serve_exits_nonzero_naming_the_address_when_its_port_is_taken() {
    let scratch = Scratch::new("port-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let config = GatewayToml::new()
        .server(&format!("listen = \"{address}\""))
        .server("admin_listen = \"127.0.0.1:0\"")
        .upstream("primary", "http://127.0.0.1:9/v1")
        .route("default", "primary", None)
        .build();
    let config = scratch.write("cutover.toml", &config);
    let config = config.display().to_string();
    let mut gateway = Process::start(&scratch, "gateway", &["serve", "-c", &config], &[]);
    let status = gateway.wait_exit(EVENTUALLY).await;
    assert!(!status.success(), "serve on a taken port exited with {status}");
    assert!(gateway.log().contains(&address), "the error does not name {address}:\n{}", gateway.log());
}

#[tokio::test]
async fn sigterm_saves_each_steps_evidence_so_a_restart_loses_none_of_it() {
    let scratch = Scratch::new("sigterm-evidence");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    // An interval far beyond the test: only the shutdown can save what the step collected.
    let config = serve_config(&primary, &candidate).section(&slow_plan("1h")).build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let promote = gateway.admin_url("/admin/rollouts/default/promote");
    let started = post_json(&promote, &[("authorization", &admin_auth())], &json!({})).await;
    assert_eq!(started.status, 200, "start the first step: {}", started.text());
    for user in 0..200 {
        upstream_for(&gateway, &format!("user-{user}")).await;
    }
    let before = rollout(&gateway).await;
    assert!(requests(&before, "candidate") > 0 && requests(&before, "primary") > 0, "{before}");
    gateway.process.signal("TERM");
    let status = gateway.process.wait_exit(EVENTUALLY).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.process.log());
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let after = rollout(&gateway).await;
    assert_eq!(after["step_started_at"], before["step_started_at"], "the step's clock restarted: {after}");
    for arm in ["candidate", "primary", "control"] {
        assert_eq!(requests(&after, arm), requests(&before, arm), "{arm} evidence lost at SIGTERM: {after}");
    }
}

#[tokio::test]
async fn a_rollout_killed_mid_step_resumes_the_same_step_with_its_start_time_and_evidence() {
    let scratch = Scratch::new("sigkill-step");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).section(&slow_plan("300ms")).build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    until("the rollout to start", async || (rollout(&gateway).await["phase"] == "progressing").then_some(())).await;
    for user in 0..300 {
        upstream_for(&gateway, &format!("user-{user}")).await;
    }
    // No more traffic: an analysis interval saves the evidence as it stands.
    let state_file = scratch.path().join(STATE_FILE);
    let before = until("the live evidence to be saved in the state file", async || {
        let live = rollout(&gateway).await;
        let saved = saved_candidate_requests(&state_file, &live["step"], &live["step_started_at"]);
        (saved == Some(requests(&live, "candidate"))).then_some(live)
    })
    .await;
    assert_eq!((before["phase"].as_str(), before["weight"].as_f64()), (Some("progressing"), Some(10.0)), "{before}");
    gateway.process.signal("KILL");
    gateway.process.wait_exit(EVENTUALLY).await;
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let after = rollout(&gateway).await;
    assert_eq!(after["phase"], "progressing", "{after}");
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["step_started_at"], before["step_started_at"], "the step's clock restarted: {after}");
    assert!(requests(&after, "candidate") > 0, "the candidate's evidence was lost: {after}");
    assert_eq!(
        requests(&after, "candidate"),
        requests(&before, "candidate"),
        "evidence persisted by the last interval"
    );
}
