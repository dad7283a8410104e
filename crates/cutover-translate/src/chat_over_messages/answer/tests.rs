use serde_json::{Value, json};

use super::*;

const CREATED: u64 = 1_732_600_000;

fn translated(status: u16, body: &Value) -> (u16, Value) {
    let Answer { status, body } = answer_at(status, body.to_string().as_bytes(), CREATED);
    (status, serde_json::from_slice(&body).unwrap())
}

fn message(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 30}
    })
}

#[test]
fn text_and_tool_use_blocks_become_one_choice() {
    let content = json!([
        {"type": "text", "text": "Checking "},
        {"type": "text", "text": "both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Hanoi"}}
    ]);
    assert_eq!(
        translated(200, &message(content, "tool_use")),
        (
            200,
            json!({
                "id": "msg_01", "object": "chat.completion", "created": CREATED, "model": "claude-sonnet-4-5",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Checking both.", "refusal": null,
                    "tool_calls": [{"id": "toolu_1", "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Hanoi\"}"}}]
                }}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
                          "prompt_tokens_details": {"cached_tokens": 0}}
            })
        )
    );
}

#[test]
fn content_is_null_only_beside_tool_calls() {
    let tools_only = json!([{"type": "tool_use", "id": "t", "name": "now", "input": {}}]);
    let (_, completion) = translated(200, &message(tools_only, "tool_use"));
    assert_eq!(completion["choices"][0]["message"]["content"], Value::Null);
    let (_, completion) = translated(200, &message(json!([]), "end_turn"));
    assert_eq!(completion["choices"][0]["message"]["content"], "");
    assert!(completion["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn stop_reasons_become_finish_reasons() {
    let cases = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ];
    for (stop, finish) in cases {
        let (_, completion) = translated(200, &message(json!([{"type": "text", "text": "x"}]), stop));
        assert_eq!(completion["choices"][0]["finish_reason"], finish, "{stop}");
    }
}

#[test]
fn cache_reads_and_writes_count_as_prompt_tokens() {
    let mut body = message(json!([{"type": "text", "text": "x"}]), "end_turn");
    body["usage"] = json!({"input_tokens": 600, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 100,
                           "output_tokens": 20});
    let (_, completion) = translated(200, &body);
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 1100, "completion_tokens": 20, "total_tokens": 1120,
               "prompt_tokens_details": {"cached_tokens": 400}})
    );
}

#[test]
fn a_block_chat_cannot_hold_makes_a_502_naming_it() {
    let thinking = json!([{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "x"}]);
    let (status, error) = translated(200, &message(thinking, "end_turn"));
    assert_eq!((status, &error["error"]["type"], &error["error"]["code"]), (502, &json!("server_error"), &Value::Null));
    assert!(error["error"]["message"].as_str().unwrap().contains("`thinking`"), "{error}");
    for body in [json!({"type": "message"}), json!([1, 2])] {
        assert_eq!(translated(200, &body).0, 502, "{body}");
    }
}

#[test]
fn an_anthropic_error_keeps_its_status_and_message_in_openais_shape() {
    let cases = [
        (529, "overloaded_error", "server_error"),
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "server_error"),
    ];
    for (status, anthropic, openai) in cases {
        let error = json!({"type": "error", "error": {"type": anthropic, "message": "Overloaded"}});
        assert_eq!(
            translated(status, &error),
            (status, json!({"error": {"message": "Overloaded", "type": openai, "param": null, "code": null}})),
            "{anthropic}"
        );
    }
}

#[test]
fn an_error_body_that_is_not_json_becomes_the_message() {
    let Answer { status, body } = answer(504, b"upstream request timeout");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, error),
        (
            504,
            json!({"error": {"message": "upstream request timeout", "type": "server_error", "param": null, "code": null}})
        )
    );
}

#[test]
fn a_whole_answer_is_created_now() {
    let Answer { body, .. } = answer(200, message(json!([]), "end_turn").to_string().as_bytes());
    let completion: Value = serde_json::from_slice(&body).unwrap();
    assert!(completion["created"].as_u64().unwrap() > CREATED);
}
