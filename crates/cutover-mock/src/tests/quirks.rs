//! Each quirk breaks exactly its capability: the broken answer next to a healthy one
//! from the same mock, and the `--quirk` syntax.

use std::time::Duration;

use clap::Parser;
use http::StatusCode;
use serde_json::json;

use super::*;
use crate::{MockArgs, Quirk};

fn quirky(spec: &str) -> MockConfig {
    MockConfig::default().with_quirk(Quirk::parse(spec).unwrap())
}

fn with_tools(prompt: &str) -> Value {
    let city = json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}});
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": city}},
                       {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]);
    json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": prompt}], "tools": tools})
}

fn json_mode() -> Value {
    let mut request = hello(false);
    request["response_format"] = json!({"type": "json_object"});
    request
}

#[tokio::test]
async fn wrong_tool_calls_another_offered_function() {
    let mock = mock(quirky("wrong-tool")).await;
    let mut request = with_tools("weather?");
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let reply = chat(&mock, request).await;
    assert_eq!(reply.at("/choices/0/message/tool_calls/0/function/name"), "get_time");
    assert_eq!(reply.at("/choices/0/finish_reason"), "tool_calls", "still a tool call");
}

#[tokio::test]
async fn strip_tool_calls_answers_in_text() {
    let mock = mock(quirky("strip-tool-calls")).await;
    let reply = chat(&mock, with_tools("weather?")).await;
    assert_eq!(reply.at("/choices/0/message/tool_calls"), Value::Null);
    assert_eq!(reply.at("/choices/0/finish_reason"), "stop");
    assert!(reply.at("/choices/0/message/content").is_string());
}

#[tokio::test]
async fn no_tools_refuses_requests_with_tools_only() {
    let mock = mock(quirky("no-tools")).await;
    let refused = chat(&mock, with_tools("weather?")).await;
    assert_eq!((refused.status, refused.at("/error/param")), (StatusCode::BAD_REQUEST, json!("tools")));
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_json_breaks_json_mode_content_and_nothing_else() {
    let mock = mock(quirky("invalid-json")).await;
    let content = chat(&mock, json_mode()).await.at("/choices/0/message/content");
    assert!(serde_json::from_str::<Value>(content.as_str().unwrap()).is_err());
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ignore_json_mode_answers_prose() {
    let mock = mock(quirky("ignore-json-mode")).await;
    let content = chat(&mock, json_mode()).await.at("/choices/0/message/content");
    assert!(content.as_str().unwrap().starts_with("Simulated answer"));
}

#[tokio::test]
async fn echo_model_reports_another_model_whole_and_streamed() {
    let mock = mock(quirky("echo-model=gpt-4o-mini")).await;
    assert_eq!(chat(&mock, hello(false)).await.at("/model"), "gpt-4o-mini");
    assert!(chat(&mock, hello(true)).await.chunks().iter().all(|c| c["model"] == "gpt-4o-mini"));
}

#[tokio::test]
async fn inflate_prompt_tokens_multiplies_the_prompt_count_only() {
    let mock = mock(quirky("inflate-prompt-tokens=1.5")).await;
    let usage = chat(&mock, hello(false)).await.at("/usage");
    assert_eq!((usage["prompt_tokens"].clone(), usage["completion_tokens"].clone()), (json!(15), json!(16)));
    assert_eq!(usage["total_tokens"], 31);
}

#[tokio::test]
async fn finish_reason_is_reported_instead_of_the_real_one() {
    let mock = mock(quirky("finish-reason=content_filter")).await;
    assert_eq!(chat(&mock, hello(false)).await.at("/choices/0/finish_reason"), "content_filter");
    let streamed = chat(&mock, hello(true)).await;
    let finishes: Vec<Value> = streamed.chunks().iter().map(|c| c["choices"][0]["finish_reason"].clone()).collect();
    assert_eq!(finishes.last(), Some(&json!("content_filter")));
}

#[tokio::test]
async fn no_stream_usage_ignores_include_usage_but_whole_answers_keep_theirs() {
    let mock = mock(quirky("no-stream-usage")).await;
    let mut request = hello(true);
    request["stream_options"] = json!({"include_usage": true});
    let reply = chat(&mock, request).await;
    assert!(reply.chunks().iter().all(|c| c.get("usage").is_none()));
    assert_eq!(reply.events().last(), Some(&"[DONE]"));
    assert!(chat(&mock, hello(false)).await.at("/usage/prompt_tokens").is_u64());
}

#[tokio::test]
async fn reject_images_refuses_image_parts_only() {
    let mock = mock(quirky("reject-images")).await;
    let parts = json!([{"type": "text", "text": "colour?"},
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA"}}]);
    let request = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]});
    let reply = chat(&mock, request).await;
    assert_eq!((reply.status, reply.at("/error/param")), (StatusCode::BAD_REQUEST, json!("messages")));
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn plain_errors_answer_text_with_the_same_status() {
    let mock = mock(quirky("plain-errors")).await;
    let mut request = hello(false);
    request["temperature"] = json!(9);
    let reply = chat(&mock, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.header("content-type").starts_with("text/plain"));
    assert!(serde_json::from_str::<Value>(&reply.text).is_err());
    assert!(reply.text.contains("temperature"), "{}", reply.text);
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn fake_stream_sends_every_chunk_at_once_after_the_whole_generation_time() {
    let gap = Duration::from_millis(30);
    let config = quirky("fake-stream").with_chunk_gap(gap).with_answer_tokens(6);
    let mock = mock(config).await;
    let uri = format!("http://{}/v1/chat/completions", mock.addr());
    let body = Full::new(Bytes::from(hello(true).to_string()));
    let request = Request::post(uri).body(body).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let started = tokio::time::Instant::now();
    let mut body = client.request(request).await.unwrap().into_body();
    let mut arrivals = Vec::new();
    while let Some(frame) = body.frame().await {
        if frame.unwrap().is_data() {
            arrivals.push(started.elapsed());
        }
    }
    // The role chunk itself waited for the whole answer (5 gaps), then nothing waited.
    assert!(arrivals[0] >= gap * 5, "first event after {:?}", arrivals[0]);
    assert!(arrivals.len() >= 8);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    mock: MockArgs,
}

#[test]
fn quirk_flags_parse_and_name_the_bad_ones() {
    let argv = ["cutover", "--quirk", "no-tools", "--quirk", "echo-model=gpt-4o-mini"];
    let config = Cli::try_parse_from(argv).unwrap().mock.into_config().unwrap();
    assert_eq!(config.quirks, [Quirk::NoTools, Quirk::EchoModel("gpt-4o-mini".into())]);
    for (spec, says) in [
        ("nope", "unknown quirk"),
        ("no-tools=1", "takes no value"),
        ("echo-model", "needs a value"),
        ("inflate-prompt-tokens=-2", "positive number"),
    ] {
        assert!(Cli::try_parse_from(["cutover", "--quirk", spec]).is_err());
        let error = Quirk::parse(spec).unwrap_err().to_string();
        assert!(error.contains(says), "{spec}: {error}");
    }
    for spec in crate::QUIRK_NAMES.split(", ") {
        let spec = spec.replace("=<name>", "=m").replace("=<factor>", "=2").replace("=<reason>", "=length");
        assert_eq!(Quirk::parse(&spec).unwrap().to_string(), spec, "round trip");
    }
}
