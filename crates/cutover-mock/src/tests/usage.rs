//! The usage a mock reports: configured counts with their details, on its own chunk or
//! the last one with choices, or none at all; and the Responses API's shape.

use serde_json::json;

use super::*;
use crate::{UsagePlacement, UsagePlan};

fn fixed(placement: UsagePlacement) -> MockConfig {
    let plan = UsagePlan { prompt: Some(100), completion: Some(40), cached: 30, reasoning: 10, placement };
    MockConfig::default().with_usage(plan)
}

fn asking(mut body: Value) -> Value {
    body["stream_options"] = json!({"include_usage": true});
    body
}

#[tokio::test]
async fn configured_usage_is_reported_with_its_cached_and_reasoning_details() {
    let mock = mock(fixed(UsagePlacement::Alone)).await;
    let whole = chat(&mock, hello(false)).await;
    assert_eq!(whole.at("/usage/prompt_tokens"), 100);
    assert_eq!(whole.at("/usage/completion_tokens"), 40);
    assert_eq!(whole.at("/usage/prompt_tokens_details/cached_tokens"), 30);
    assert_eq!(whole.at("/usage/completion_tokens_details/reasoning_tokens"), 10);
    let chunks = chat(&mock, asking(hello(true))).await.chunks();
    let last = chunks.last().unwrap();
    assert_eq!((last["choices"].clone(), last["usage"]["prompt_tokens"].clone()), (json!([]), json!(100)));
}

#[tokio::test]
async fn usage_can_ride_on_the_last_chunk_with_choices() {
    let mock = mock(fixed(UsagePlacement::OnLastChunk)).await;
    let chunks = chat(&mock, asking(hello(true))).await.chunks();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 40);
    assert!(chunks[..chunks.len() - 1].iter().all(|chunk| chunk["usage"].is_null()));
}

#[tokio::test]
async fn usage_can_be_omitted_from_whole_answers_and_streams() {
    let mock = mock(fixed(UsagePlacement::Omitted)).await;
    assert_eq!(chat(&mock, hello(false)).await.json().get("usage"), None);
    let streamed = chat(&mock, asking(hello(true))).await;
    assert!(streamed.chunks().iter().all(|chunk| chunk["usage"].is_null()), "{}", streamed.text);
    let embeddings = post(&mock, "/v1/embeddings", json!({"model": "m", "input": "hi"})).await;
    assert_eq!(embeddings.json().get("usage"), None);
}

#[tokio::test]
async fn responses_report_usage_whole_and_in_the_completed_event() {
    let mock = mock(fixed(UsagePlacement::Alone)).await;
    let whole = post(&mock, "/v1/responses", json!({"model": "gpt-4.1", "input": "hi"})).await;
    assert_eq!(whole.at("/usage/input_tokens"), 100);
    assert_eq!(whole.at("/usage/output_tokens_details/reasoning_tokens"), 10);
    assert_eq!(whole.at("/output/0/content/0/type"), "output_text");
    let streamed = post(&mock, "/v1/responses", json!({"model": "gpt-4.1", "input": "hi", "stream": true})).await;
    assert!(streamed.text.starts_with("event: response.created\n"), "{}", streamed.text);
    assert!(!streamed.text.contains("[DONE]"));
    let completed = streamed.text.split("\n\n").find(|event| event.starts_with("event: response.completed")).unwrap();
    let data: Value = serde_json::from_str(completed.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["response"]["usage"]["input_tokens_details"]["cached_tokens"], 30);
}
