//! The request path, specified against in-process mocks: forwarding and rewriting,
//! the gateway's own errors, the sticky split, fallback, streaming and metrics.

use std::time::{Duration, Instant};

use cutover::mock::{FaultKind, FaultRule, MockConfig, MockServer};
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use crate::support::{
    GATEWAY_KEY, Setup, TempDir, UPSTREAM_KEY, client, in_process_config, metric, send, start_gateway, two_upstreams,
};

fn mock() -> MockConfig {
    MockConfig::default()
}

#[tokio::test]
async fn upstream_gets_its_own_key_its_model_alias_and_the_client_headers() {
    let primary = MockServer::start(mock().with_name("primary")).await.unwrap();
    let candidate = MockServer::start(mock().with_name("candidate").with_api_key(UPSTREAM_KEY)).await.unwrap();
    let config = in_process_config(&primary.base_url(), &candidate.base_url())
        .upstream_line("candidate", "api_key_env = \"UPSTREAM_KEY\"")
        .upstream_line("candidate", "models = { \"gpt-4.1\" = \"relay-gpt-4.1\" }")
        .gateway_key("app", "GATEWAY_KEY")
        .build();
    let dir = TempDir::new("alias");
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    setup.set_weight(100.0).await;
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4.1","temperature":0.5}"#;
    let auth = format!("Bearer {GATEWAY_KEY}");
    let headers = [("authorization", auth.as_str()), ("x-user-id", "u1"), ("x-stainless-lang", "python")];
    let reply = send(Method::POST, &setup.url("/v1/chat/completions?trace=1"), &headers, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-cutover-upstream"), Some("candidate"));
    assert_eq!(reply.header("x-cutover-route"), Some("default"));
    assert_eq!(reply.header("x-cutover-fallback"), None);
    let seen = setup.candidate.last_request().expect("candidate saw the request");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    assert_eq!(seen.header("x-stainless-lang"), Some("python"));
    assert_eq!(
        &seen.body[..],
        br#"{"messages":[{"role":"user","content":"hi"}],"model":"relay-gpt-4.1","temperature":0.5}"#
    );
    assert_eq!(setup.primary.calls(), 0);
}

#[tokio::test]
async fn gateway_keys_are_required_when_configured() {
    let primary = MockServer::start(mock()).await.unwrap();
    let config = in_process_config(&primary.base_url(), &primary.base_url().replace("127.0.0.1", "localhost"))
        .gateway_key("app", "GATEWAY_KEY")
        .build();
    let dir = TempDir::new("auth");
    let gateway = start_gateway(&config, &dir).await;
    let url = format!("http://{}/v1/chat/completions", gateway.proxy_addr);
    let body = r#"{"model":"gpt-4.1","messages":[]}"#;
    for headers in [vec![], vec![("authorization", "Bearer sk-wrong")], vec![("authorization", "sk-gateway-test")]] {
        let reply = send(Method::POST, &url, &headers, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.openai_error()["code"], "invalid_api_key");
    }
    assert_eq!(primary.calls(), 0, "refused requests never reach an upstream");
    let reply = send(Method::POST, &url, &[("authorization", "Bearer sk-gateway-test")], body).await;
    assert_eq!(reply.status, StatusCode::OK);
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_gateway_own_errors_use_the_openai_shape_and_status() {
    let setup = Setup::new(mock(), mock(), "models = [\"gpt-4.1\", \"gpt-4.1-*\"]").await;
    let chat = setup.url("/v1/chat/completions");
    let bad_json = send(Method::POST, &chat, &[], "{\"model\": \"gpt-4.1\",").await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    bad_json.openai_error();
    let oversized = send(Method::POST, &chat, &[], vec![b' '; 1024 * 1024 + 1]).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    oversized.openai_error();
    let unrouted = send(Method::POST, &chat, &[], r#"{"model":"claude-3","messages":[]}"#).await;
    assert_eq!(unrouted.status, StatusCode::NOT_FOUND);
    assert_eq!(unrouted.openai_error()["code"], "model_not_found");
    let outside = send(Method::GET, &setup.url("/v2/models"), &[], "").await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    outside.openai_error();
    let prefixed = send(Method::POST, &chat, &[], r#"{"model":"gpt-4.1-mini","messages":[]}"#).await;
    assert_eq!(prefixed.status, StatusCode::OK, "gpt-4.1-* matches gpt-4.1-mini");
    assert_eq!(setup.primary.calls() + setup.candidate.calls(), 1, "only the valid request was forwarded");
}

#[tokio::test]
async fn every_v1_path_and_method_is_forwarded() {
    let setup = Setup::new(mock(), mock(), "").await;
    let models = send(Method::GET, &setup.url("/v1/models"), &[], "").await;
    assert_eq!(models.status, StatusCode::OK);
    assert_eq!(models.json()["object"], "list");
    let embeddings =
        send(Method::POST, &setup.url("/v1/embeddings"), &[], r#"{"model":"text-embedding-3-small","input":"hi"}"#)
            .await;
    assert_eq!(embeddings.status, StatusCode::OK);
    let unknown = send(Method::DELETE, &setup.url("/v1/files/file-1"), &[], "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "the upstream's own 404 comes back");
    assert_eq!(unknown.header("x-cutover-upstream"), Some("primary"));
    assert_eq!(setup.primary.calls(), 3);
}

#[tokio::test]
async fn weight_zero_sends_everyone_to_the_primary_and_weight_100_to_the_candidate() {
    let setup = Setup::new(mock(), mock(), "").await;
    for user in 0..20 {
        assert_eq!(setup.chat(&format!("user-{user}"), false).await.header("x-cutover-upstream"), Some("primary"));
    }
    setup.set_weight(100.0).await;
    for user in 0..20 {
        assert_eq!(setup.chat(&format!("user-{user}"), false).await.header("x-cutover-upstream"), Some("candidate"));
    }
    assert_eq!((setup.primary.calls(), setup.candidate.calls()), (20, 20));
}

#[tokio::test]
async fn users_stay_on_their_arm_and_the_share_follows_the_weight() {
    let setup = Setup::new(mock(), mock(), "").await;
    setup.set_weight(30.0).await;
    let mut on_candidate = Vec::new();
    for user in 0..400 {
        let user = format!("user-{user}");
        let first = setup.chat(&user, false).await.header("x-cutover-upstream").map(str::to_owned);
        let again = setup.chat(&user, false).await.header("x-cutover-upstream").map(str::to_owned);
        assert_eq!(first, again, "{user} moved between arms at a constant weight");
        if first.as_deref() == Some("candidate") {
            on_candidate.push(user);
        }
    }
    let share = on_candidate.len() as f64 / 400.0;
    assert!((0.2..0.4).contains(&share), "share {share} at weight 30%");
    setup.set_weight(60.0).await;
    for user in &on_candidate {
        assert_eq!(
            setup.chat(user, false).await.header("x-cutover-upstream"),
            Some("candidate"),
            "{user} left the candidate"
        );
    }
}

#[tokio::test]
async fn sticky_key_can_come_from_the_body_user_field() {
    let setup = Setup::new(mock(), mock(), "sticky = \"body:user\"").await;
    setup.set_weight(50.0).await;
    for user in 0..30 {
        let body = format!(r#"{{"model":"gpt-4.1","user":"body-user-{user}","messages":[]}}"#);
        let url = setup.url("/v1/chat/completions");
        let first = send(Method::POST, &url, &[], body.clone()).await.header("x-cutover-upstream").map(str::to_owned);
        for _ in 0..3 {
            let again = send(Method::POST, &url, &[], body.clone()).await;
            assert_eq!(again.header("x-cutover-upstream").map(str::to_owned), first);
        }
    }
}

#[tokio::test]
async fn candidate_5xx_falls_back_to_primary_and_counts_as_the_candidate_error() {
    let setup = Setup::new(mock(), mock().with_fault(FaultRule::always(FaultKind::Status503)), "retries = 0").await;
    setup.set_weight(100.0).await;
    for stream in [false, true] {
        let reply = setup.chat("u1", stream).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-cutover-upstream"), Some("primary"));
        assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
        assert!(reply.text().contains("primary"));
    }
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (2, 2));
    let page = setup.metrics().await;
    let candidate_errors =
        r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="upstream_error"}"#;
    assert_eq!(metric(&page, candidate_errors), 2.0);
    assert_eq!(
        metric(&page, r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="ok"}"#),
        0.0
    );
    assert_eq!(
        metric(&page, r#"cutover_requests_total{route="default",upstream="primary",role="primary",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="5xx"}"#),
        2.0
    );
}

#[tokio::test]
async fn candidate_that_refuses_connections_falls_back_to_primary() {
    let primary = MockServer::start(mock().with_name("primary")).await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = TempDir::new("refused");
    let gateway = start_gateway(&two_upstreams(&primary.base_url(), &format!("http://{closed}/v1"), ""), &dir).await;
    let setup = Setup { candidate: MockServer::start(mock()).await.unwrap(), primary, gateway, _dir: dir };
    setup.set_weight(100.0).await;
    let reply = setup.chat("u1", false).await;
    assert_eq!((reply.status, reply.header("x-cutover-upstream")), (StatusCode::OK, Some("primary")));
    assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="connect"}"#),
        1.0
    );
}

#[tokio::test]
async fn silent_candidate_is_abandoned_at_the_first_byte_timeout() {
    let setup = Setup::new(mock(), mock().with_fault(FaultRule::always(FaultKind::NoAnswer)), "").await;
    setup.set_weight(100.0).await;
    let reply = setup.chat("u1", false).await;
    assert_eq!((reply.status, reply.header("x-cutover-upstream")), (StatusCode::OK, Some("primary")));
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="timeout"}"#),
        1.0
    );
}

#[tokio::test]
async fn client_errors_are_passed_through_without_fallback() {
    let setup = Setup::new(mock(), mock().with_fault(FaultRule::always(FaultKind::ContextLengthExceeded)), "").await;
    setup.set_weight(100.0).await;
    let reply = setup.chat("u1", false).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.openai_error()["code"], "context_length_exceeded");
    assert_eq!(reply.header("x-cutover-upstream"), Some("candidate"));
    assert_eq!(setup.primary.calls(), 0);
    let page = setup.metrics().await;
    assert_eq!(
        metric(
            &page,
            r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="client_error"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn without_fallback_the_candidate_error_reaches_the_client() {
    let setup =
        Setup::new(mock(), mock().with_fault(FaultRule::always(FaultKind::Status500)), "fallback = false").await;
    setup.set_weight(100.0).await;
    let reply = setup.chat("u1", false).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(setup.primary.calls(), 0);
}

#[tokio::test]
async fn fallback_both_ways_rescues_a_failing_primary() {
    let setup =
        Setup::new(mock().with_fault(FaultRule::always(FaultKind::Status500)), mock(), "fallback = \"both\"").await;
    let reply = setup.chat("u1", false).await;
    assert_eq!((reply.status, reply.header("x-cutover-upstream")), (StatusCode::OK, Some("candidate")));
    assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
}

#[tokio::test]
async fn when_every_upstream_fails_the_client_is_told_not_to_retry() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}/v1");
    let dir = TempDir::new("all-down");
    let gateway = start_gateway(&two_upstreams(&url, &url, "fallback = \"both\""), &dir).await;
    let reply =
        send(Method::POST, &format!("http://{}/v1/chat/completions", gateway.proxy_addr), &[], r#"{"model":"m"}"#)
            .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.openai_error()["type"], "server_error");
    assert_eq!(reply.header("x-should-retry"), Some("false"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn streams_are_forwarded_chunk_by_chunk_as_they_arrive() {
    let slow = mock().with_chunk_gap(Duration::from_millis(150)).with_answer_tokens(8);
    let setup = Setup::new(slow, mock(), "").await;
    let body = r#"{"model":"gpt-4.1","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = http::Request::post(setup.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let started = Instant::now();
    let mut response = client().request(request).await.unwrap().into_body();
    let mut first_content_at = None;
    let mut text = String::new();
    while let Some(frame) = response.frame().await {
        let frame = frame.unwrap();
        if let Some(data) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(data));
            if first_content_at.is_none() && text.contains("\"content\":\"Simulated") {
                first_content_at = Some(started.elapsed());
            }
        }
    }
    let total = started.elapsed();
    let first = first_content_at.expect("content arrived");
    // Eight chunks 150 ms apart: a buffering proxy would deliver the first with the last.
    assert!(total - first >= Duration::from_millis(700), "first content at {first:?}, end at {total:?}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    let page = setup.metrics().await;
    assert_eq!(metric(&page, r#"cutover_ttft_seconds_count{route="default",upstream="primary",role="primary"}"#), 1.0);
}

#[tokio::test]
async fn a_stream_cut_after_the_first_byte_ends_with_an_error_event_not_a_clean_end() {
    let setup = Setup::new(mock().with_fault(FaultRule::always(FaultKind::StreamCut)), mock(), "").await;
    let reply = setup.chat("u1", true).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    let last_event = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last_event.starts_with("data: {\"error\""), "last event: {last_event}");
    assert!(!text.contains("[DONE]"));
    let page = setup.metrics().await;
    assert_eq!(
        metric(
            &page,
            r#"cutover_requests_total{route="default",upstream="primary",role="primary",outcome="upstream_error"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_finished_stream_without_done_gets_its_done() {
    let setup = Setup::new(mock().with_fault(FaultRule::always(FaultKind::NoDone)), mock(), "").await;
    let reply = setup.chat("u1", true).await;
    let text = reply.text();
    assert!(text.contains("\"finish_reason\":\"stop\""));
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn a_stalled_stream_is_ended_with_an_error_event_after_the_idle_timeout() {
    let setup = Setup::new(mock().with_fault(FaultRule::always(FaultKind::StreamStall)), mock(), "").await;
    let reply = setup.chat("u1", true).await;
    let text = reply.text();
    assert!(text.trim_end().rsplit("\n\n").next().unwrap().contains("sent nothing for"), "{text}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn an_open_gateway_passes_the_client_key_to_a_keyless_upstream() {
    let setup = Setup::new(mock(), mock(), "").await;
    let url = setup.url("/v1/models");
    send(Method::GET, &url, &[("authorization", "Bearer sk-users-own")], "").await;
    assert_eq!(setup.primary.last_request().unwrap().header("authorization"), Some("Bearer sk-users-own"));
}
