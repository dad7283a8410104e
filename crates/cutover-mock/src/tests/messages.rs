//! The mock speaking Anthropic's Messages API (`--api anthropic`): whole and streamed
//! answers, forced tool calls, stop conditions, token count and model list. Refusals,
//! errors and faults are in `messages_errors`.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use super::*;
use crate::{Api, Quirk, UsagePlan};

pub(super) const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

pub(super) fn anthropic() -> MockConfig {
    MockConfig::default().with_api(Api::Anthropic)
}

pub(super) async fn messages(mock: &MockServer, body: Value) -> Reply {
    send(mock, "POST", "/v1/messages", &[VERSION], Some(body)).await.unwrap()
}

/// A request of 40 characters (10 prompt tokens).
pub(super) fn ask(stream: bool) -> Value {
    let messages = json!([{"role": "user", "content": "x".repeat(40)}]);
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream, "messages": messages})
}

/// The events of a stream as (name, data) pairs; data that is not JSON is a string.
pub(super) fn named(reply: &Reply) -> Vec<(String, Value)> {
    let events = reply.text.split("\n\n").filter(|event| !event.is_empty());
    events
        .map(|event| {
            let (name, data) = event.strip_prefix("event: ").unwrap().split_once("\ndata: ").unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        })
        .collect()
}

pub(super) fn names(reply: &Reply) -> Vec<String> {
    named(reply).into_iter().map(|(name, _)| name).collect()
}

/// The concatenated strings at `pointer` across the events' data.
fn joined(reply: &Reply, pointer: &str) -> String {
    named(reply).iter().filter_map(|(_, data)| data.pointer(pointer)?.as_str().map(str::to_owned)).collect()
}

/// `get_weather` takes a required city and an enum unit; `get_time` a zone.
fn tools() -> Value {
    json!([
        {"name": "get_weather", "description": "Weather in a city", "input_schema": weather_schema()},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}},
    ])
}

fn weather_schema() -> Value {
    json!({"type": "object", "required": ["city", "unit"], "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"}}})
}

fn with_tools(stream: bool, prompt: &str, choice: Value) -> Value {
    let mut request = ask(stream);
    request["messages"] = json!([{"role": "user", "content": prompt}]);
    request["tools"] = tools();
    request["tool_choice"] = choice;
    request
}

#[tokio::test]
async fn whole_message_has_anthropics_shape_and_reports_input_net_of_the_cache() {
    let usage = UsagePlan { prompt: Some(100), cached: 30, ..UsagePlan::default() };
    let config = anthropic().with_name("relay").with_answer_tokens(5).with_usage(usage).with_cache_write(20);
    let mock = mock(config).await;
    let reply = messages(&mock, ask(false)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let id = reply.at("/id");
    assert!(id.as_str().unwrap().starts_with("msg_"), "{id}");
    let expected = json!({"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Simulated answer from mock relay."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30,
                  "output_tokens": 5}});
    assert_eq!(reply.json(), expected);
    assert!(reply.header("request-id").starts_with("req_"));
    assert_eq!(reply.header("request-id"), reply.header("x-request-id"));
    assert_eq!(mock.calls_to("/v1/messages"), 1);
}

#[tokio::test]
async fn stream_sends_anthropics_events_in_order_and_its_deltas_make_the_whole_text() {
    let mock = mock(anthropic().with_answer_tokens(4)).await;
    let reply = messages(&mock, ask(true)).await;
    assert_eq!(reply.header("content-type"), "text/event-stream");
    assert_eq!(reply.body_error, None);
    let order = ["message_start", "content_block_start", "ping"].into_iter().chain(["content_block_delta"; 4]).chain([
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]);
    assert_eq!(names(&reply), order.collect::<Vec<_>>());
    assert!(!reply.text.contains("[DONE]"));
    let events = named(&reply);
    assert!(events.iter().all(|(name, data)| data["type"] == *name), "each data says its event's type");
    let start = &events[0].1["message"];
    assert_eq!((&start["content"], &start["stop_reason"]), (&json!([]), &Value::Null));
    assert_eq!(
        start["usage"],
        json!({"input_tokens": 10, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0, "output_tokens": 1})
    );
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}})
    );
    assert!(events[3..7].iter().all(|(_, data)| data["delta"]["type"] == "text_delta" && data["index"] == 0));
    assert_eq!(
        events[8].1,
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}})
    );

    let whole = messages(&mock, ask(false)).await;
    assert_eq!(joined(&reply, "/delta/text"), whole.at("/content/0/text").as_str().unwrap());
}

#[tokio::test]
async fn stream_head_comes_at_once_and_the_first_delta_after_ttft() {
    let ttft = Duration::from_millis(300);
    let mock = mock(anthropic().with_ttft(ttft)).await;
    let uri = format!("http://{}/v1/messages", mock.addr());
    let request = Request::post(uri).header(VERSION.0, VERSION.1).body(Full::new(Bytes::from(ask(true).to_string())));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let mut body = client.request(request.unwrap()).await.unwrap().into_body();
    let (mut text, mut ping_at) = (String::new(), None);
    while let Some(frame) = body.frame().await {
        text.push_str(&String::from_utf8_lossy(&frame.unwrap().into_data().unwrap()));
        if ping_at.is_none() && text.contains("event: ping") {
            ping_at = Some(started.elapsed());
        }
        if text.contains("event: content_block_delta") {
            break;
        }
    }
    let (ping_at, delta_at) = (ping_at.unwrap(), started.elapsed());
    assert!(delta_at >= ttft, "first delta after {delta_at:?}");
    assert!(delta_at - ping_at >= ttft / 2, "head at {ping_at:?}, first delta at {delta_at:?}");
}

#[tokio::test]
async fn forced_tool_use_has_a_schema_valid_input_whole_and_streamed() {
    let mock = mock(anthropic()).await;
    let forced = json!({"type": "tool", "name": "get_weather"});
    let whole = messages(&mock, with_tools(false, "Use get_time and get_weather", forced.clone())).await;
    let block = whole.at("/content/0");
    assert_eq!(whole.at("/content").as_array().unwrap().len(), 1);
    assert_eq!((&block["type"], &block["name"]), (&json!("tool_use"), &json!("get_weather")));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    let validator = jsonschema::validator_for(&weather_schema()).unwrap();
    assert!(validator.is_valid(&block["input"]), "{}", block["input"]);
    assert_eq!(block["input"], json!({"city": "simulated", "unit": "celsius"}), "required keys only");
    assert_eq!(whole.at("/stop_reason"), "tool_use");

    let streamed = messages(&mock, with_tools(true, "Use get_time and get_weather", forced)).await;
    let events = named(&streamed);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "tool_use", "id": events[1].1["content_block"]["id"],
        "name": "get_weather", "input": {}})
    );
    let deltas: Vec<&Value> = events.iter().filter(|(name, _)| name == "content_block_delta").map(|(_, d)| d).collect();
    assert_eq!(deltas[0]["delta"], json!({"type": "input_json_delta", "partial_json": ""}));
    assert!(deltas.len() >= 3, "the input comes in fragments");
    let input: Value = serde_json::from_str(&joined(&streamed, "/delta/partial_json")).unwrap();
    assert_eq!(input, block["input"]);
    assert_eq!(events[events.len() - 2].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(names(&streamed).last().unwrap(), "message_stop");
}

#[tokio::test]
async fn tool_choice_none_answers_text_and_any_calls_every_tool_the_prompt_names_as_blocks() {
    let mock = mock(anthropic()).await;
    let none = messages(&mock, with_tools(false, "get_weather?", json!({"type": "none"}))).await;
    assert_eq!((none.at("/content/0/type"), none.at("/stop_reason")), (json!("text"), json!("end_turn")));
    let any = json!({"type": "any"});
    let both = messages(&mock, with_tools(false, "Use get_time and get_weather", any.clone())).await;
    let called: Vec<Value> = both.at("/content").as_array().unwrap().iter().map(|b| b["name"].clone()).collect();
    assert_eq!(called, [json!("get_weather"), json!("get_time")], "in the order offered");
    let mut single = any.clone();
    single["disable_parallel_tool_use"] = json!(true);
    let one = messages(&mock, with_tools(false, "Use get_time and get_weather", single)).await;
    assert_eq!(one.at("/content").as_array().unwrap().len(), 1);

    let streamed = messages(&mock, with_tools(true, "Use get_time and get_weather", any)).await;
    let blocks: Vec<(String, Value)> = named(&streamed)
        .into_iter()
        .filter(|(name, _)| name.starts_with("content_block_") && name != "content_block_delta")
        .map(|(name, data)| (name, data["index"].clone()))
        .collect();
    let expected =
        [("content_block_start", 0), ("content_block_stop", 0), ("content_block_start", 1), ("content_block_stop", 1)];
    assert_eq!(blocks, expected.map(|(name, index)| (name.to_owned(), json!(index))));
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_end_the_text_and_say_why() {
    let mock = mock(anthropic()).await;
    let mut capped = ask(false);
    capped["max_tokens"] = json!(3);
    let reply = messages(&mock, capped).await;
    assert_eq!(reply.at("/content/0/text"), "Simulated answer from");
    assert_eq!((reply.at("/stop_reason"), reply.at("/usage/output_tokens")), (json!("max_tokens"), json!(3)));
    let mut stopped = ask(false);
    stopped["stop_sequences"] = json!(["nothing", "mock"]);
    let reply = messages(&mock, stopped).await;
    assert_eq!(reply.at("/content/0/text"), "Simulated answer from");
    assert_eq!((reply.at("/stop_reason"), reply.at("/stop_sequence")), (json!("stop_sequence"), json!("mock")));
}

#[tokio::test]
async fn count_tokens_answers_the_prompt_a_message_reports_in_all() {
    let usage = UsagePlan { cached: 4, ..UsagePlan::default() };
    let mock = mock(anthropic().with_usage(usage).with_cache_write(3)).await;
    let mut request = ask(false);
    request["system"] = json!([{"type": "text", "text": "y".repeat(80)}]);
    let whole = messages(&mock, request.clone()).await;
    let reported: u64 = ["input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
        .iter()
        .map(|key| whole.at(&format!("/usage/{key}")).as_u64().unwrap())
        .sum();
    request.as_object_mut().unwrap().remove("max_tokens");
    let counted = send(&mock, "POST", "/v1/messages/count_tokens", &[VERSION], Some(request)).await.unwrap();
    assert_eq!(counted.json(), json!({"input_tokens": 30}), "(40 + 80) characters / 4");
    assert_eq!(reported, 30);
    assert_eq!(whole.at("/usage/input_tokens"), 23);
}

#[tokio::test]
async fn models_are_listed_in_anthropics_shape() {
    let mock = mock(anthropic().with_models(["claude-a", "claude-b"])).await;
    let model = |id: &str| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"});
    let list = send(&mock, "GET", "/v1/models", &[VERSION], None).await.unwrap();
    let expected = json!({"data": [model("claude-a"), model("claude-b")], "has_more": false,
        "first_id": "claude-a", "last_id": "claude-b"});
    assert_eq!(list.json(), expected);
    let one = send(&mock, "GET", "/v1/models/claude-b", &[VERSION], None).await.unwrap();
    assert_eq!(one.json(), model("claude-b"));
    let missing = send(&mock, "GET", "/v1/models/gpt-4.1", &[VERSION], None).await.unwrap();
    assert_eq!((missing.status, missing.at("/error/type")), (StatusCode::NOT_FOUND, json!("not_found_error")));
    let defaults = send(&super::mock(anthropic()).await, "GET", "/v1/models", &[VERSION], None).await.unwrap();
    assert_eq!(defaults.at("/first_id"), "claude-sonnet-4-5");
}

#[tokio::test]
async fn echo_model_quirk_applies_to_messages_whole_and_streamed() {
    let mock = mock(anthropic().with_quirk(Quirk::parse("echo-model=claude-haiku-4-5").unwrap())).await;
    assert_eq!(messages(&mock, ask(false)).await.at("/model"), "claude-haiku-4-5");
    let streamed = messages(&mock, ask(true)).await;
    assert_eq!(named(&streamed)[0].1["message"]["model"], "claude-haiku-4-5");
}
