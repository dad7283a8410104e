//! Anthropic mode refusing and failing: the headers every request needs, errors in
//! Anthropic's shape (unknown paths, invalid requests, unknown models), the faults as an
//! Anthropic client meets them, and the `--api` flag.

use clap::Parser;
use http::StatusCode;
use serde_json::json;

use super::messages::{VERSION, anthropic, ask, messages, named, names};
use super::*;
use crate::{Api, MockArgs};

fn error_of(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[tokio::test]
async fn every_request_needs_an_anthropic_version_header() {
    let mock = mock(anthropic()).await;
    for (method, path, body) in [("POST", "/v1/messages", Some(ask(false))), ("GET", "/v1/models", None)] {
        let reply = send(&mock, method, path, &[], body).await.unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_eq!(reply.json(), error_of("invalid_request_error", "anthropic-version: header is required"));
    }
}

#[tokio::test]
async fn the_api_key_is_taken_from_x_api_key_not_authorization() {
    let mock = mock(anthropic().with_api_key("sk-ant-mock")).await;
    let body = || Some(ask(false));
    let bearer = [VERSION, ("authorization", "Bearer sk-ant-mock")];
    for headers in [&bearer[..], &[VERSION, ("x-api-key", "sk-ant-other")], &[VERSION]] {
        let reply = send(&mock, "POST", "/v1/messages", headers, body()).await.unwrap();
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(reply.json(), error_of("authentication_error", "invalid x-api-key"));
    }
    let good = send(&mock, "POST", "/v1/messages", &[VERSION, ("x-api-key", "sk-ant-mock")], body()).await.unwrap();
    assert_eq!(good.status, StatusCode::OK);
}

#[tokio::test]
async fn openai_paths_are_not_found_in_anthropics_error_shape() {
    let mock = mock(anthropic()).await;
    let reply = send(&mock, "POST", "/v1/chat/completions", &[VERSION], Some(hello(false))).await.unwrap();
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.at("/type"), "error");
    assert_eq!(reply.at("/error/type"), "not_found_error");
    assert!(reply.at("/error/message").as_str().unwrap().contains("/v1/chat/completions"));
    assert!(reply.header("request-id").starts_with("req_"));
}

#[tokio::test]
async fn invalid_requests_and_unknown_models_are_refused_by_field() {
    let mock = mock(anthropic()).await;
    let refusal = |mut request: Value, key: &str, value: Value| {
        if value.is_null() {
            request.as_object_mut().unwrap().remove(key);
        } else {
            request[key] = value;
        }
        request
    };
    let cases = [
        (refusal(ask(false), "max_tokens", Value::Null), 400, "max_tokens: Field required"),
        (refusal(ask(false), "max_tokens", json!("many")), 400, "max_tokens: Input should be a valid integer"),
        (refusal(ask(false), "messages", Value::Null), 400, "messages: Field required"),
        (
            refusal(ask(false), "messages", json!([{"role": "system", "content": "hi"}])),
            400,
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (refusal(ask(false), "model", json!("no-such-model")), 404, "model: no-such-model"),
    ];
    for (request, status, message) in cases {
        let reply = messages(&mock, request).await;
        assert_eq!(reply.status.as_u16(), status, "{message}");
        let kind = if status == 404 { "not_found_error" } else { "invalid_request_error" };
        assert_eq!(reply.json(), error_of(kind, message));
    }
}

async fn anthropic_faulty(spec: &str) -> MockServer {
    mock(anthropic().with_fault(rule(spec))).await
}

#[tokio::test]
async fn status_faults_answer_with_anthropics_error_kinds() {
    let cases = [
        ("500", 500, "api_error"),
        ("503", 503, "overloaded_error"),
        ("529", 529, "overloaded_error"),
        ("429-retry-after=2s", 429, "rate_limit_error"),
        ("context-length", 400, "invalid_request_error"),
    ];
    for (spec, status, kind) in cases {
        let reply = messages(&anthropic_faulty(spec).await, ask(false)).await;
        assert_eq!((reply.status.as_u16(), reply.at("/error/type")), (status, json!(kind)), "{spec}");
        assert_eq!(reply.at("/type"), "error");
    }
    let overloaded = messages(&anthropic_faulty("529").await, ask(true)).await;
    assert_eq!(overloaded.json(), error_of("overloaded_error", "Overloaded"));
    let too_long = messages(&anthropic_faulty("context-length").await, ask(false)).await;
    assert!(too_long.at("/error/message").as_str().unwrap().starts_with("prompt is too long: "));
    assert_eq!(messages(&anthropic_faulty("429-retry-after=2s").await, ask(false)).await.header("retry-after"), "2");
}

#[tokio::test]
async fn content_filter_fault_is_a_whole_answer_with_a_refusal_stop_reason() {
    let mock = anthropic_faulty("content-filter").await;
    let reply = messages(&mock, ask(false)).await;
    assert_eq!((reply.status, reply.at("/stop_reason")), (StatusCode::OK, json!("refusal")));
    let streamed = messages(&mock, ask(true)).await;
    assert_eq!(named(&streamed).iter().rev().nth(1).unwrap().1["delta"]["stop_reason"], "refusal");
}

#[tokio::test]
async fn error_event_fault_sends_message_start_then_an_overloaded_error_and_ends_cleanly() {
    let reply = messages(&anthropic_faulty("error-event").await, ask(true)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body_error, None);
    assert_eq!(names(&reply), ["message_start", "error"]);
    assert_eq!(named(&reply)[1].1, error_of("overloaded_error", "Overloaded"));
}

#[tokio::test]
async fn stream_cut_fault_aborts_after_some_deltas_without_message_stop() {
    let reply = messages(&anthropic_faulty("stream-cut").await, ask(true)).await;
    assert!(reply.body_error.is_some(), "the body must fail, not end");
    let names = names(&reply);
    assert!(names.iter().any(|name| name == "content_block_delta"), "{names:?}");
    assert!(!names.iter().any(|name| name == "message_delta" || name == "message_stop"), "{names:?}");
}

#[tokio::test]
async fn no_done_fault_ends_cleanly_after_message_delta_without_message_stop() {
    let reply = messages(&anthropic_faulty("no-done").await, ask(true)).await;
    assert_eq!(reply.body_error, None);
    let names = names(&reply);
    assert_eq!(names.last().map(String::as_str), Some("message_delta"), "{names:?}");
    assert!(!names.iter().any(|name| name == "message_stop"));
}

#[tokio::test]
async fn malformed_chunk_fault_is_one_event_of_invalid_json_in_a_complete_stream() {
    let reply = messages(&anthropic_faulty("malformed-chunk").await, ask(true)).await;
    let events = named(&reply);
    assert_eq!(events.iter().filter(|(_, data)| data.is_string()).count(), 1);
    assert_eq!(events.last().unwrap().0, "message_stop");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    mock: MockArgs,
}

#[test]
fn api_flag_selects_anthropic_and_rejects_unknown_apis() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["cutover"], args].concat()).map(|cli| cli.mock.into_config());
    let config = parse(&["--api", "anthropic", "--usage-cache-write", "7"]).unwrap().unwrap();
    assert_eq!((config.api, config.cache_write), (Api::Anthropic, 7));
    assert_eq!(config.models[0], "claude-sonnet-4-5");
    assert_eq!(parse(&[]).unwrap().unwrap().api, Api::OpenAi);
    assert!(parse(&["--api", "gemini"]).is_err(), "a clap error");
    let openai = parse(&["--usage-cache-write", "7"]).unwrap().unwrap_err().to_string();
    assert_eq!(openai, "--usage-cache-write only applies with --api anthropic");
}
