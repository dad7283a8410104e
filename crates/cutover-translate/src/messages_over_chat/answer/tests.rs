use serde_json::{Value, json};

use super::*;

fn translated(status: u16, body: &Value) -> (u16, Value) {
    let Answer { status, body } = answer(status, body.to_string().as_bytes());
    (status, serde_json::from_slice(&body).unwrap())
}

fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1732600000, "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
    })
}

#[test]
fn text_and_tool_calls_become_content_blocks() {
    let message = json!({"role": "assistant", "content": "Checking.", "refusal": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Hanoi\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}
    ]});
    assert_eq!(
        translated(200, &completion(message, "tool_calls")),
        (
            200,
            json!({
                "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4.1-2025-04-14",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Hanoi"}},
                    {"type": "tool_use", "id": "call_2", "name": "now", "input": {}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 19, "output_tokens": 10, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
            })
        )
    );
}

#[test]
fn finish_reasons_become_stop_reasons() {
    let cases = [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("something_new", "end_turn"),
    ];
    for (finish, stop) in cases {
        let (_, message) = translated(200, &completion(json!({"role": "assistant", "content": "x"}), finish));
        assert_eq!(message["stop_reason"], stop, "{finish}");
    }
}

#[test]
fn cached_prompt_tokens_are_cache_reads_not_input_tokens() {
    let mut body = completion(json!({"role": "assistant", "content": "x"}), "stop");
    body["usage"] = json!({"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                           "prompt_tokens_details": {"cached_tokens": 400}});
    let (_, message) = translated(200, &body);
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 600, "output_tokens": 50, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 0})
    );
}

#[test]
fn a_refusal_is_told_as_text_and_as_the_stop_reason() {
    let message = json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
    let (_, message) = translated(200, &completion(message, "stop"));
    assert_eq!(message["content"], json!([{"type": "text", "text": "I can't help with that."}]));
    assert_eq!(message["stop_reason"], "refusal");
}

#[test]
fn an_answer_that_cannot_be_read_is_a_502_in_anthropics_shape() {
    let bad_arguments = completion(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":"}}
        ]}),
        "tool_calls",
    );
    for body in [bad_arguments, json!({"object": "list"}), json!("hello")] {
        let (status, error) = translated(200, &body);
        assert_eq!(
            (status, &error["type"], &error["error"]["type"]),
            (502, &json!("error"), &json!("api_error")),
            "{body}"
        );
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("the upstream's answer cannot be translated"), "{message}");
    }
    let (status, _) = translated(
        200,
        &completion(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
            ]}),
            "tool_calls",
        ),
    );
    assert_eq!(status, 502);
}

#[test]
fn an_openai_error_keeps_its_status_and_message_in_anthropics_shape() {
    let error = json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
    assert_eq!(
        translated(429, &error),
        (429, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}))
    );
}

#[test]
fn an_error_body_that_is_not_json_becomes_the_message() {
    let Answer { status, body } = answer(502, b"<html>Bad Gateway</html>\n");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, error),
        (502, json!({"type": "error", "error": {"type": "api_error", "message": "<html>Bad Gateway</html>"}}))
    );
}

#[test]
fn a_forced_function_call_finishing_with_stop_is_tool_use() {
    let message = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ]});
    let (_, answer) = translated(200, &completion(message.clone(), "stop"));
    assert_eq!(answer["stop_reason"], "tool_use");
    let mut unfinished = completion(message, "stop");
    unfinished["choices"][0]["finish_reason"] = Value::Null;
    assert_eq!(translated(200, &unfinished).1["stop_reason"], "tool_use");
}
