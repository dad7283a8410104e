use serde_json::{Value, json};

use super::*;

fn chunk(choices: Value) -> String {
    let chunk = json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                       "choices": choices, "usage": null});
    format!("data: {chunk}\n\n")
}

fn delta(delta: Value) -> String {
    chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]))
}

fn finish(reason: &str) -> String {
    chunk(json!([{"index": 0, "delta": {}, "finish_reason": reason}]))
}

fn usage_chunk(usage: Value) -> String {
    let chunk = json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                       "choices": [], "usage": usage});
    format!("data: {chunk}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

/// A streamed answer: text, then a tool call whose arguments come in fragments.
fn exchange() -> Vec<String> {
    vec![
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "Let me "})),
        delta(json!({"content": "check."})),
        delta(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"loc"}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ation\":\"Hanoi\"}"}}]})),
        finish("tool_calls"),
        usage_chunk(json!({"prompt_tokens": 1000, "completion_tokens": 42, "total_tokens": 1042,
                           "prompt_tokens_details": {"cached_tokens": 400}})),
        DONE.to_owned(),
    ]
}

fn translate(events: &[String]) -> (Vec<u8>, EventTranslator) {
    let mut translator = EventTranslator::new(false);
    let mut out = Vec::new();
    for event in events {
        translator.push(event.as_bytes(), &mut out).unwrap();
    }
    (out, translator)
}

/// The client's events, each as its name and its data, after checking that the name
/// repeats the data's type.
fn read(out: &[u8]) -> Vec<Value> {
    let events = crate::sse::events(out).unwrap();
    let data: Vec<Value> = events.iter().map(|event| crate::sse::json(event).unwrap()).collect();
    for (event, data) in events.iter().zip(&data) {
        assert_eq!(event.name.as_deref(), data["type"].as_str());
    }
    data
}

fn text_delta(index: u64, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
}

fn json_delta(index: u64, partial: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": partial}})
}

#[test]
fn a_streamed_exchange_becomes_messages_events_in_order() {
    let (out, translator) = translate(&exchange());
    assert_eq!(
        read(&out),
        vec![
            json!({"type": "message_start", "message": {
                "id": "chatcmpl-9", "type": "message", "role": "assistant", "content": [], "model": "gpt-4.1",
                "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}
            }}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            text_delta(0, "Let me "),
            text_delta(0, "check."),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1,
                   "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}),
            json_delta(1, "{\"loc"),
            json_delta(1, "ation\":\"Hanoi\"}"),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"input_tokens": 600, "output_tokens": 42,
                             "cache_read_input_tokens": 400, "cache_creation_input_tokens": 0}}),
            json!({"type": "message_stop"}),
        ]
    );
    assert!(translator.finished());
}

#[test]
fn events_are_written_compactly_with_their_name() {
    let (out, _) = translate(&[delta(json!({"role": "assistant"})), DONE.to_owned()]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("event: message_start\ndata: {"), "{text}");
    assert!(text.ends_with("\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{text}");
}

#[test]
fn any_batching_of_whole_events_gives_the_same_output() {
    let events = exchange();
    let (one_by_one, _) = translate(&events);
    for batch in 1..=events.len() {
        let batches: Vec<String> = events.chunks(batch).map(|group| group.concat()).collect();
        assert_eq!(translate(&batches).0, one_by_one, "batches of {batch}");
    }
    let crlf: Vec<String> =
        events.iter().map(|event| format!(": keep-alive\r\n\r\n{}", event.replace('\n', "\r\n"))).collect();
    assert_eq!(translate(&crlf).0, one_by_one);
}

#[test]
fn finished_only_after_the_end_marker() {
    let events = exchange();
    let mut translator = EventTranslator::new(true);
    let mut out = Vec::new();
    for event in &events[..events.len() - 1] {
        translator.push(event.as_bytes(), &mut out).unwrap();
        assert!(!translator.finished());
    }
    translator.push(DONE.as_bytes(), &mut out).unwrap();
    assert!(translator.finished());
}

#[test]
fn role_only_and_empty_deltas_write_nothing_past_message_start() {
    let (out, _) = translate(&[
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({})),
        delta(json!({"content": null})),
    ]);
    let events = read(&out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "message_start");
}

#[test]
fn parallel_tool_calls_become_successive_blocks() {
    let start = |index: u64, id: &str| {
        delta(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
        )
    };
    let (out, _) = translate(&[start(0, "a"), start(1, "b"), finish("tool_calls"), DONE.to_owned()]);
    let kinds: Vec<(String, Value)> =
        read(&out).iter().map(|event| (event["type"].as_str().unwrap().to_owned(), event["index"].clone())).collect();
    let expected = [
        ("message_start", Value::Null),
        ("content_block_start", json!(0)),
        ("content_block_delta", json!(0)),
        ("content_block_stop", json!(0)),
        ("content_block_start", json!(1)),
        ("content_block_delta", json!(1)),
        ("content_block_stop", json!(1)),
        ("message_delta", Value::Null),
        ("message_stop", Value::Null),
    ];
    assert_eq!(kinds, expected.map(|(kind, index)| (kind.to_owned(), index)));
}

#[test]
fn an_openai_error_event_becomes_an_anthropic_error_event() {
    let error =
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":null}}\n\n";
    let (out, translator) = translate(&[delta(json!({"content": "Hi"})), error.to_owned()]);
    assert_eq!(
        read(&out).last().unwrap(),
        &json!({"type": "error", "error": {"type": "api_error", "message": "The server had an error"}})
    );
    assert!(!translator.finished());

    let limited =
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let (out, _) = translate(&[limited.to_owned()]);
    assert_eq!(
        read(&out),
        vec![json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})]
    );
}

#[test]
fn data_that_is_not_what_openai_sends_is_a_bad_stream() {
    let cases = [
        "data: {not json\n\n".to_owned(),
        DONE.to_owned(),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]})),
    ];
    for event in cases {
        let mut out = Vec::new();
        assert!(EventTranslator::new(false).push(event.as_bytes(), &mut out).is_err(), "{event}");
    }
}

#[test]
fn a_finished_answer_without_done_is_ended_as_done_would_end_it() {
    let events = exchange();
    let (mut cut, mut lenient) = (translate(&events[..events.len() - 1]), translate(&events));
    cut.1.end(&mut cut.0);
    assert!(cut.1.finished(), "the finish_reason came: the answer is complete");
    lenient.1.end(&mut lenient.0);
    assert_eq!(read(&cut.0), read(&lenient.0));
}

#[test]
fn an_answer_cut_before_its_finish_is_left_unended() {
    let events = exchange();
    let (mut out, mut translator) = translate(&events[..5]);
    let before = out.len();
    translator.end(&mut out);
    assert!(!translator.finished());
    assert_eq!(out.len(), before, "nothing is written for an answer that did not finish");
}

#[test]
fn a_forced_function_call_finishing_with_stop_ends_as_tool_use() {
    let call = json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    let (out, _) = translate(&[delta(json!({"tool_calls": [call]})), finish("stop"), DONE.to_owned()]);
    let events = read(&out);
    let message_delta = events.iter().find(|event| event["type"] == "message_delta").unwrap();
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
}

#[test]
fn arguments_for_a_tool_call_whose_block_was_stopped_are_a_bad_stream() {
    let start = |index: u64, id: &str| {
        delta(json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": "f"}}]}))
    };
    let late = delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}));
    for between in [start(1, "b"), delta(json!({"content": "and"}))] {
        let mut translator = EventTranslator::new(false);
        let mut out = Vec::new();
        for event in [start(0, "a"), between.clone()] {
            translator.push(event.as_bytes(), &mut out).unwrap();
        }
        let error = translator.push(late.as_bytes(), &mut out).unwrap_err();
        assert!(error.0.contains("tool call 0"), "{error}");
    }
}
