//! Injected faults as a client meets them, and the fault spec syntax.

use std::time::Duration;

use clap::{CommandFactory, Parser};
use http::StatusCode;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{FaultKind, MockArgs};

#[tokio::test]
async fn fault_500_with_limit_one_then_healthy() {
    let mock = faulty("500:1:once").await;
    let first = chat(&mock, hello(false)).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(first.at("/error/type"), "server_error");
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limited_fault_sets_retry_after_headers() {
    let reply = chat(&faulty("429-retry-after=1500ms").await, hello(false)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((reply.header("retry-after"), reply.header("retry-after-ms")), ("2", "1500"));
    assert_eq!(reply.at("/error/code"), "rate_limit_exceeded");
}

#[tokio::test]
async fn reset_fault_gives_a_client_error() {
    let mock = faulty("reset").await;
    assert!(send(&mock, "POST", "/v1/chat/completions", &[], Some(hello(false))).await.is_err());
    assert_eq!(mock.calls(), 1);
}

#[tokio::test]
async fn stream_cut_ends_in_an_error_without_done() {
    let reply = chat(&faulty("stream-cut").await, hello(true)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body_error.is_some(), "the body must fail, not end");
    assert!(reply.chunks().len() >= 2, "role and some content first");
    assert!(!reply.text.contains("[DONE]") && !reply.text.contains(r#""finish_reason":"stop""#));
}

#[tokio::test]
async fn no_done_stream_ends_cleanly_without_done() {
    let reply = chat(&faulty("no-done").await, hello(true)).await;
    assert_eq!(reply.body_error, None);
    assert!(reply.text.contains(r#""finish_reason":"stop""#) && !reply.text.contains("[DONE]"));
}

#[tokio::test]
async fn malformed_chunk_is_one_invalid_event_among_valid_ones() {
    let reply = chat(&faulty("malformed-chunk").await, hello(true)).await;
    let events = reply.events();
    let invalid = events.iter().filter(|e| serde_json::from_str::<Value>(e).is_err()).count();
    assert_eq!(invalid, 2, "the malformed event and [DONE]");
    assert_eq!(events.last(), Some(&"[DONE]"));
}

#[tokio::test]
async fn fault_529_answers_529_in_openais_error_shape() {
    let reply = chat(&faulty("529").await, hello(false)).await;
    assert_eq!(reply.status.as_u16(), 529);
    assert_eq!(reply.at("/error/type"), "server_error");
}

#[tokio::test]
async fn error_event_fault_sends_the_role_chunk_then_an_error_chunk_and_ends_cleanly() {
    let mock = faulty("error-event").await;
    let reply = chat(&mock, hello(true)).await;
    assert_eq!((reply.status, reply.body_error.as_deref()), (StatusCode::OK, None));
    let chunks = reply.chunks();
    assert_eq!(chunks.len(), 2, "{}", reply.text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let error = json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": null}});
    assert_eq!(chunks[1], error);
    assert!(!reply.text.contains("[DONE]"));
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK, "streams only");
}

#[tokio::test]
async fn stream_faults_skip_non_streamed_requests_without_using_their_limit() {
    let mock = faulty("stream-cut:1:once").await;
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
    assert!(chat(&mock, hello(true)).await.body_error.is_some());
    assert!(chat(&mock, hello(true)).await.body_error.is_none());
}

#[tokio::test]
async fn set_faults_switches_between_down_and_healthy() {
    let mock = mock(MockConfig::default()).await;
    mock.set_faults(vec![FaultRule::always(FaultKind::Status500)]);
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    mock.set_faults(Vec::new());
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn no_answer_hangs_until_the_server_shuts_down() {
    let mock = faulty("no-answer").await;
    let uri = format!("{}/chat/completions", mock.base_url());
    let request = Request::post(uri).body(Full::new(Bytes::from(hello(false).to_string()))).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let pending = tokio::spawn(client.request(request));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    tokio::time::timeout(Duration::from_secs(5), mock.shutdown()).await.unwrap();
    assert!(pending.await.unwrap().is_err());
}

#[test]
fn fault_rule_parse_rejects_garbage_with_a_clear_message() {
    let message = |spec: &str| FaultRule::parse(spec).unwrap_err().to_string();
    assert!(message("boom:0.1").starts_with(r#"invalid fault spec "boom:0.1": unknown fault "boom""#));
    assert!(message("500:2").contains(r#"bad share "2""#));
    assert!(message("500:1:0").contains(r#"bad limit "0""#));
    assert!(message("slow-first-token").contains("needs a duration"));
    assert!(message("slow-first-token=3").contains(r#"bad duration "3""#));
    assert!(message("reset=1s").contains("takes no value"));
    assert_eq!(rule("500:10%:3"), FaultRule::new(FaultKind::Status500, 0.1).with_limit(3));
    assert_eq!(rule("429-retry-after=2s").to_string(), "429-retry-after=2s:1");
}

fn any_kind() -> impl Strategy<Value = FaultKind> {
    use FaultKind::*;
    let plain = vec![
        Status500,
        Status503,
        Status529,
        RateLimited { retry_after: None },
        ResetBeforeHeaders,
        NoAnswer,
        StreamCut,
        StreamStall,
        MalformedChunk,
        NoDone,
        ErrorEvent,
        ContextLengthExceeded,
        ContentFilter,
    ];
    let millis = || (0u64..100_000).prop_map(Duration::from_millis);
    prop_oneof![
        proptest::sample::select(plain),
        millis().prop_map(|d| RateLimited { retry_after: Some(d) }),
        millis().prop_map(SlowFirstToken),
    ]
}

proptest! {
    #[test]
    fn fault_rule_display_parses_back_to_the_same_rule(
        kind in any_kind(), share in 0.0f64..=1.0, limit in proptest::option::of(1u64..1000),
    ) {
        let rule = FaultRule { kind, share, limit };
        prop_assert_eq!(FaultRule::parse(&rule.to_string()), Ok(rule));
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    mock: MockArgs,
}

#[test]
fn mock_args_build_a_config_and_name_bad_values() {
    Cli::command().debug_assert();
    let parse = |args: &[&str]| Cli::try_parse_from([&["cutover"], args].concat()).unwrap().mock.into_config();
    let args = ["--name", "relay", "--error-rate", "0.2", "--fault", "stream-cut:5%", "--tokens", "3"];
    let config = parse(&args).unwrap();
    assert_eq!((config.name.as_str(), config.answer_tokens), ("relay", 3));
    assert_eq!(config.faults, vec![rule("500:0.2"), rule("stream-cut:0.05")]);
    let error = parse(&["--error-rate", "2"]).unwrap_err().to_string();
    assert_eq!(error, "invalid --error-rate 2: expected a share between 0 and 1");
    let unset = parse(&["--api-key-env", "CUTOVER_MOCK_TEST_UNSET"]).unwrap_err().to_string();
    assert_eq!(unset, "--api-key-env CUTOVER_MOCK_TEST_UNSET: the variable is not set");
    assert!(Cli::try_parse_from(["cutover", "--fault", "nope"]).is_err());
}
