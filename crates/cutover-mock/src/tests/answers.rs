//! Healthy answers: shapes, streams, tools, JSON mode, other endpoints, bookkeeping.

use http::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn non_streamed_chat_has_openai_shape_and_usage() {
    let mock = mock(MockConfig::default().with_name("primary").with_answer_tokens(5)).await;
    let reply = chat(&mock, hello(false)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-mock-name"), "primary");
    assert!(reply.header("x-request-id").starts_with("req_"));
    assert!(reply.at("/id").as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(reply.at("/object"), "chat.completion");
    assert_eq!(reply.at("/model"), "gpt-4.1");
    assert_eq!(reply.at("/system_fingerprint"), "fp_primary");
    let message = json!({"role": "assistant", "content": "Simulated answer from mock primary.", "refusal": null});
    let choice = json!({"index": 0, "message": message, "logprobs": null, "finish_reason": "stop"});
    assert_eq!(reply.at("/choices"), json!([choice]));
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
    assert_eq!(reply.at("/usage"), usage);
}

#[tokio::test]
async fn stream_sends_role_contents_finish_and_done_in_order() {
    let mock = mock(MockConfig::default().with_answer_tokens(4)).await;
    let reply = chat(&mock, hello(true)).await;
    assert_eq!(reply.header("content-type"), "text/event-stream");
    assert_eq!(reply.events().last(), Some(&"[DONE]"));
    let chunks = reply.chunks();
    assert_eq!(chunks.len(), 1 + 4 + 1);
    for chunk in &chunks {
        assert_eq!((&chunk["id"], &chunk["object"]), (&chunks[0]["id"], &json!("chat.completion.chunk")));
        assert!(chunk.get("usage").is_none(), "usage only with include_usage");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(reply.joined("/choices/0/delta/content"), "Simulated answer from mock");
    assert!(chunks[1..5].iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_a_usage_chunk() {
    let mock = mock(MockConfig::default().with_answer_tokens(3)).await;
    let mut request = hello(true);
    request["stream_options"] = json!({"include_usage": true});
    let reply = chat(&mock, request).await;
    assert_eq!(reply.events().last(), Some(&"[DONE]"));
    let chunks = reply.chunks();
    let (last, earlier) = chunks.split_last().unwrap();
    assert!(earlier.iter().all(|c| c.get("usage") == Some(&json!(null))));
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn streamed_tool_call_arguments_concatenate_to_valid_json() {
    let mock = mock(MockConfig::default()).await;
    let mut request = hello(true);
    let location = json!({"type": "object", "properties": {"location": {"type": "string"}}});
    request["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": location}}]);
    let reply = chat(&mock, request.clone()).await;
    let chunks = reply.chunks();
    let calls: Vec<_> = chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0")).collect();
    assert!(calls.len() >= 3, "a head and several fragments");
    assert_eq!(calls[0]["function"], json!({"name": "get_weather", "arguments": ""}));
    assert_eq!(calls[0]["type"], "function");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    let arguments = reply.joined("/choices/0/delta/tool_calls/0/function/arguments");
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"location": "simulated"}));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    request["stream"] = json!(false);
    let reply = chat(&mock, request).await;
    assert_eq!(reply.at("/choices/0/message/content"), Value::Null);
    assert_eq!(reply.at("/choices/0/message/tool_calls/0/function/arguments"), r#"{"location":"simulated"}"#);
    assert_eq!(reply.at("/choices/0/finish_reason"), "tool_calls");
}

#[tokio::test]
async fn json_object_response_format_yields_parseable_content() {
    let mock = mock(MockConfig::default().with_name("relay")).await;
    let mut request = hello(false);
    request["response_format"] = json!({"type": "json_object"});
    let content = chat(&mock, request.clone()).await.at("/choices/0/message/content");
    let parsed: Value = serde_json::from_str(content.as_str().unwrap()).unwrap();
    assert_eq!(parsed["source"], "relay");
    request["stream"] = json!(true);
    let streamed = chat(&mock, request).await.joined("/choices/0/delta/content");
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), parsed);
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let mock = mock(MockConfig::default()).await;
    let mut request = hello(false);
    request["max_tokens"] = json!(2);
    let reply = chat(&mock, request).await;
    assert_eq!(reply.at("/choices/0/message/content"), "Simulated answer");
    assert_eq!(reply.at("/choices/0/finish_reason"), "length");
}

#[tokio::test]
async fn wrong_or_missing_api_key_gets_401_invalid_api_key() {
    let mock = mock(MockConfig::default().with_api_key("sk-right")).await;
    let path = "/v1/chat/completions";
    for headers in [&[][..], &[("authorization", "Bearer sk-wrong")][..]] {
        let reply = send(&mock, "POST", path, headers, Some(hello(false))).await.unwrap();
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.at("/error/code"), "invalid_api_key");
        assert_eq!(reply.header("x-mock-name"), "mock");
    }
    let headers = [("authorization", "Bearer sk-right")];
    let reply = send(&mock, "POST", path, &headers, Some(hello(false))).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_bad_json_get_openai_errors() {
    let mock = mock(MockConfig::default()).await;
    let unknown = post(&mock, "/v1/audio/speech", json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.at("/error/message").as_str().unwrap().contains("POST /v1/audio/speech"));
    let bad = send(&mock, "POST", "/v1/chat/completions", &[], None).await.unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.at("/error/type"), "invalid_request_error");
    assert!(!bad.header("x-request-id").is_empty());
}

#[tokio::test]
async fn calls_are_counted_per_path_including_faulted_and_unknown_ones() {
    let mock = faulty("503:1:once").await;
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(chat(&mock, hello(false)).await.status, StatusCode::OK);
    get(&mock, "/v1/models").await;
    post(&mock, "/v1/audio/speech", json!({})).await;
    post(&mock, "/v1/embeddings", json!({"input": "a"})).await;
    assert_eq!(mock.calls(), 5);
    assert_eq!(mock.calls_to("/v1/chat/completions"), 2);
    assert_eq!(mock.calls_to("/v1/models"), 1);
    assert_eq!(mock.calls_to("/v1/embeddings"), 1);
    assert_eq!(mock.calls_to("/v1/audio/speech"), 1, "unserved paths share one counter");
}

#[tokio::test]
async fn last_request_records_headers_and_body() {
    let mock = mock(MockConfig::default()).await;
    let headers = [("authorization", "Bearer sk-upstream"), ("x-stainless-lang", "python")];
    send(&mock, "POST", "/v1/chat/completions", &headers, Some(hello(false))).await.unwrap();
    let last = mock.last_request().unwrap();
    assert_eq!((last.method.as_str(), last.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(last.header("Authorization"), Some("Bearer sk-upstream"));
    assert_eq!(last.json().unwrap()["model"], "gpt-4.1");
}

#[tokio::test]
async fn embeddings_return_one_deterministic_vector_per_input() {
    let mock = mock(MockConfig::default()).await;
    let reply = post(&mock, "/v1/embeddings", json!({"model": "e", "input": ["a", "b", "a"]})).await;
    assert_eq!(reply.at("/data").as_array().unwrap().len(), 3);
    assert_eq!(reply.at("/data/0/embedding"), reply.at("/data/2/embedding"));
    assert_eq!(reply.at("/data/1/embedding").as_array().unwrap().len(), 8);
    assert_eq!(reply.at("/usage"), json!({"prompt_tokens": 3, "total_tokens": 3}));
    let base64 = json!({"model": "e", "input": "a", "encoding_format": "base64"});
    let reply = post(&mock, "/v1/embeddings", base64).await;
    assert_eq!(reply.at("/data/0/embedding").as_str().unwrap().len(), 44, "8 f32 in base64");
}

#[tokio::test]
async fn models_are_listed_and_found_by_id() {
    let mock = mock(MockConfig::default().with_models(["m1", "m2"])).await;
    let list = get(&mock, "/v1/models").await;
    assert_eq!((list.at("/object"), list.at("/data/1/id")), (json!("list"), json!("m2")));
    assert_eq!(get(&mock, "/v1/models/m1").await.at("/object"), "model");
    assert_eq!(get(&mock, "/v1/models/zz").await.at("/error/code"), "model_not_found");
}

#[tokio::test]
async fn legacy_completions_answer_text_whole_and_streamed() {
    let mock = mock(MockConfig::default().with_answer_tokens(3)).await;
    let request = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"});
    let reply = post(&mock, "/v1/completions", request.clone()).await;
    assert_eq!(reply.at("/object"), "text_completion");
    assert_eq!(reply.at("/choices/0/text"), "Simulated answer from");
    let mut request = request;
    request["stream"] = json!(true);
    let reply = post(&mock, "/v1/completions", request).await;
    assert_eq!(reply.joined("/choices/0/text"), "Simulated answer from");
    assert_eq!(reply.events().last(), Some(&"[DONE]"));
}
