use serde_json::{Value, json};

use super::*;

const CREATED: u64 = 1_732_600_000;

fn event(data: Value) -> String {
    format!("event: {}\ndata: {data}\n\n", data["type"].as_str().unwrap())
}

/// A streamed answer: text, then a tool call whose input comes in fragments.
fn exchange() -> Vec<String> {
    [
        json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 600, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 100, "output_tokens": 1}
        }}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"loc"}}),
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "input_json_delta", "partial_json": "ation\":\"Hanoi\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
        json!({"type": "message_stop"}),
    ]
    .into_iter()
    .map(event)
    .collect()
}

fn translate(include_usage: bool, events: &[String]) -> (Vec<u8>, EventTranslator) {
    let mut translator = EventTranslator::at(include_usage, CREATED);
    let mut out = Vec::new();
    for event in events {
        translator.push(event.as_bytes(), &mut out).unwrap();
    }
    (out, translator)
}

/// The client's events' data: JSON chunks, or `[DONE]` as a string.
fn read(out: &[u8]) -> Vec<Value> {
    let events = crate::sse::events(out).unwrap();
    let read = |event: &crate::sse::Event| {
        assert_eq!(event.name, None);
        if event.data == "[DONE]" { json!("[DONE]") } else { crate::sse::json(event).unwrap() }
    };
    events.iter().map(read).collect()
}

fn chunk(delta: Value, finish_reason: Value) -> Value {
    json!({"id": "msg_01", "object": "chat.completion.chunk", "created": CREATED, "model": "claude-sonnet-4-5",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], "usage": null})
}

fn fragment(arguments: &str) -> Value {
    chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}), Value::Null)
}

#[test]
fn a_streamed_exchange_becomes_chat_chunks_in_order() {
    let (out, translator) = translate(true, &exchange());
    let tool_call =
        json!({"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}});
    assert_eq!(
        read(&out),
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Let me "}), Value::Null),
            chunk(json!({"content": "check."}), Value::Null),
            chunk(json!({"tool_calls": [tool_call]}), Value::Null),
            fragment("{\"loc"),
            fragment("ation\":\"Hanoi\"}"),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "msg_01", "object": "chat.completion.chunk", "created": CREATED, "model": "claude-sonnet-4-5",
                   "choices": [], "usage": {"prompt_tokens": 1100, "completion_tokens": 42, "total_tokens": 1142,
                                            "prompt_tokens_details": {"cached_tokens": 400}}}),
            json!("[DONE]"),
        ]
    );
    assert!(translator.finished());
}

#[test]
fn without_include_usage_there_is_no_usage_chunk_nor_usage_member() {
    let (out, _) = translate(false, &exchange());
    let chunks = read(&out);
    assert_eq!(chunks.len(), 8);
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "tool_calls");
    assert!(chunks[..7].iter().all(|chunk| chunk.get("usage").is_none()));
    assert_eq!(chunks[7], "[DONE]");
}

#[test]
fn chunks_are_written_compactly_as_data_lines() {
    let (out, _) = translate(false, &exchange()[..1]);
    let first = "{\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0}],\
                 \"created\":1732600000,\"id\":\"msg_01\",\"model\":\"claude-sonnet-4-5\",\"object\":\"chat.completion.chunk\"}";
    assert_eq!(String::from_utf8(out).unwrap(), format!("data: {first}\n\n"));
    let (out, _) = translate(false, &exchange());
    assert!(out.ends_with(b"\n\ndata: [DONE]\n\n"));
}

#[test]
fn any_batching_of_whole_events_gives_the_same_output() {
    let events = exchange();
    let (one_by_one, _) = translate(true, &events);
    for batch in 1..=events.len() {
        let batches: Vec<String> = events.chunks(batch).map(|group| group.concat()).collect();
        assert_eq!(translate(true, &batches).0, one_by_one, "batches of {batch}");
    }
    let crlf: Vec<String> = events.iter().map(|event| format!(": hi\r\n{}", event.replace('\n', "\r\n"))).collect();
    assert_eq!(translate(true, &crlf).0, one_by_one);
}

#[test]
fn finished_only_after_message_stop() {
    let events = exchange();
    let mut translator = EventTranslator::at(false, CREATED);
    let mut out = Vec::new();
    for event in &events[..events.len() - 1] {
        translator.push(event.as_bytes(), &mut out).unwrap();
        assert!(!translator.finished());
    }
    translator.push(events[events.len() - 1].as_bytes(), &mut out).unwrap();
    assert!(translator.finished());
}

#[test]
fn a_message_delta_with_input_counts_updates_them() {
    let mut events = exchange();
    let last = events.len() - 2;
    events[last] = event(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                "usage": {"input_tokens": 700, "cache_read_input_tokens": 0, "output_tokens": 50}}));
    let (out, _) = translate(true, &events);
    let chunks = read(&out);
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        chunks[7]["usage"],
        json!({"prompt_tokens": 800, "completion_tokens": 50, "total_tokens": 850, "prompt_tokens_details": {"cached_tokens": 0}})
    );
}

#[test]
fn an_anthropic_error_event_becomes_openais_in_stream_error() {
    let error = event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    let (out, translator) = translate(true, &[exchange()[0].clone(), error]);
    assert_eq!(
        read(&out)[1],
        json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": null}})
    );
    assert!(!translator.finished());
}

#[test]
fn events_chat_cannot_tell_are_a_bad_stream() {
    let start = exchange()[0].clone();
    let thinking = event(
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    );
    let thinking_delta =
        event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}}));
    let unstarted =
        event(json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "x"}}));
    let cases = [
        vec![start.clone(), thinking],
        vec![start.clone(), exchange()[1].clone(), thinking_delta],
        vec![start.clone(), unstarted],
        vec![exchange()[3].clone()],
        vec![start, "event: message_delta\ndata: {oops\n\n".to_owned()],
    ];
    for events in cases {
        let mut translator = EventTranslator::at(false, CREATED);
        let mut out = Vec::new();
        let result: Result<(), BadStream> =
            events.iter().try_for_each(|event| translator.push(event.as_bytes(), &mut out));
        assert!(result.is_err(), "{events:?}");
    }
}

#[test]
fn an_answer_stopped_without_message_stop_is_ended_as_message_stop_would_end_it() {
    let events = exchange();
    let (mut cut, mut whole) = (translate(true, &events[..events.len() - 1]), translate(true, &events));
    cut.1.end(&mut cut.0);
    assert!(cut.1.finished(), "the stop reason came: the answer is complete");
    whole.1.end(&mut whole.0);
    assert_eq!(read(&cut.0), read(&whole.0));
}

#[test]
fn an_answer_cut_before_its_stop_reason_is_left_unended() {
    let events = exchange();
    let (mut out, mut translator) = translate(true, &events[..6]);
    let before = out.len();
    translator.end(&mut out);
    assert!(!translator.finished());
    assert_eq!(out.len(), before, "nothing is written for an answer that did not stop");
}
