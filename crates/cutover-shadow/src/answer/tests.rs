use super::*;

fn whole(json: &str) -> Answer {
    let mut captured = Captured::default();
    captured.push(json.as_bytes());
    Answer::read(&captured, false)
}

fn stream(events: &[&str]) -> Answer {
    let mut captured = Captured::default();
    for event in events {
        captured.push(format!("data: {event}\n\n").as_bytes());
    }
    captured.push(b"data: [DONE]\n\n");
    Answer::read(&captured, true)
}

#[test]
fn a_whole_chat_answer_gives_its_model_finish_text_and_tool_calls() {
    let answer = whole(
        r#"{"model":"gpt-4.1-2025","choices":[{"index":0,"finish_reason":"tool_calls","message":{"content":"hi",
            "tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
            "usage":{"prompt_tokens":3}}"#,
    );
    assert_eq!(answer.model.as_deref(), Some("gpt-4.1-2025"));
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(answer.content, "hi");
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(answer.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert!(answer.complete);
}

#[test]
fn a_streamed_answer_is_assembled_from_its_deltas_tool_calls_by_index() {
    let answer = stream(&[
        r#"{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
        r#"{"model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
        r#"{"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"a","arguments":"{\"x\""}}]}}]}"#,
        r#"{"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"name":"b","arguments":"{}"}}]}}]}"#,
        r#"{"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
        r#"{"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"{"model":"m","choices":[],"usage":{"prompt_tokens":5}}"#,
    ]);
    assert_eq!(answer.content, "Hello");
    let calls: Vec<(&str, &str)> =
        answer.tool_calls.iter().map(|call| (call.name.as_str(), call.arguments.as_str())).collect();
    assert_eq!(calls, [("a", r#"{"x":1}"#), ("b", "{}")]);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert!(answer.complete);
}

#[test]
fn a_legacy_completion_and_a_responses_answer_are_read_too() {
    let legacy = whole(r#"{"model":"m","choices":[{"index":0,"text":"once","finish_reason":"length"}]}"#);
    assert_eq!((legacy.content.as_str(), legacy.finish_reason.as_deref()), ("once", Some("length")));
    let responses = whole(
        r#"{"model":"m","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"yes"}]},
            {"type":"function_call","name":"f","arguments":"{}"}]}"#,
    );
    assert_eq!(responses.content, "yes");
    assert_eq!(responses.finish_reason.as_deref(), Some("completed"));
    assert_eq!(responses.tool_calls[0].name, "f");
    let streamed = stream(&[
        r#"{"type":"response.output_text.delta","delta":"y"}"#,
        r#"{"type":"response.completed","response":{"model":"m","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"yes"}]}]}}"#,
    ]);
    assert_eq!((streamed.content.as_str(), streamed.model.as_deref()), ("yes", Some("m")));
}

#[test]
fn a_stream_longer_than_the_capture_keeps_its_finish_but_is_not_complete() {
    let mut captured = Captured::default();
    let chunk = r#"data: {"model":"m","choices":[{"index":0,"delta":{"content":"word "}}]}"#;
    while captured.skipped == 0 {
        captured.push(format!("{chunk}\n\n").as_bytes());
    }
    captured.push(b"data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    let answer = Answer::read(&captured, true);
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert!(!answer.complete);
    assert!(answer.content.len() <= MAX_CONTENT_CHARS);
}

#[test]
fn an_answer_that_is_not_json_gives_nothing_to_compare() {
    assert_eq!(whole("<html>bad gateway</html>"), Answer::default());
}

#[test]
fn a_whole_messages_answer_gives_its_model_stop_reason_text_and_tool_uses() {
    let answer = whole(
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"tool_use",
            "content":[{"type":"text","text":"Let me check."},
                       {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
            "usage":{"input_tokens":3,"output_tokens":5}}"#,
    );
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(answer.content, "Let me check.");
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(answer.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert!(answer.complete);
}

#[test]
fn a_streamed_messages_answer_is_assembled_block_by_block() {
    let answer = stream(&[
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":3,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"now","input":{}}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(answer.content, "Let me check.");
    let calls: Vec<_> = answer.tool_calls.iter().map(|call| (call.name.as_str(), call.arguments.as_str())).collect();
    assert_eq!(calls, [("get_weather", r#"{"city":"Paris"}"#), ("now", "{}")], "a call without input streams none");
    assert!(answer.complete);
}
