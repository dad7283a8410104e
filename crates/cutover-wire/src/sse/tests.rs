//! The SSE framer: whole valid events out, however the network cuts them and whatever the
//! upstream sends.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

const STREAM: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
);

fn push(framer: &mut SseFramer, text: &str) -> String {
    String::from_utf8(framer.push(Bytes::copy_from_slice(text.as_bytes())).unwrap().to_vec()).unwrap()
}

#[test]
fn whole_events_pass_and_the_incomplete_rest_waits() {
    let mut framer = SseFramer::new();
    let (head, tail) = STREAM.split_at(STREAM.find("Hel").unwrap());
    let out = push(&mut framer, head);
    assert!(out.ends_with("\"content\":\"\"},\"finish_reason\":null}]}\n\n"), "{out}");
    assert!(!framer.saw_token());
    let rest = push(&mut framer, tail);
    assert_eq!(format!("{out}{rest}"), STREAM);
    assert!(framer.saw_token() && framer.saw_finish() && framer.saw_done());
}

#[test]
fn a_chunk_of_whole_events_is_forwarded_without_a_copy() {
    let mut framer = SseFramer::new();
    let chunk = Bytes::from_static(STREAM.as_bytes());
    let out = framer.push(chunk.clone()).unwrap();
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert_eq!(out.len(), chunk.len());
}

#[test]
fn tool_call_deltas_reasoning_and_legacy_text_count_as_tokens() {
    for event in [
        "data: {\"choices\":[{\"delta\":{\"tool_calls\": [{\"index\":0}]}}]}\n\n",
        "data: {\"choices\":[{\"text\":\"Hi\",\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"Let me think\"}}]}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
    ] {
        let mut framer = SseFramer::new();
        push(&mut framer, event);
        assert!(framer.saw_token(), "{event}");
    }
}

#[test]
fn escaped_keys_inside_content_are_not_mistaken_for_fields() {
    let mut framer = SseFramer::new();
    push(
        &mut framer,
        "data: {\"choices\":[{\"delta\":{\"content\":\"say \\\"finish_reason\\\": \\\"x\\\"\"},\"finish_reason\":null}]}\n\n",
    );
    assert!(framer.saw_token());
    assert!(!framer.saw_finish());
}

#[test]
fn a_malformed_event_is_refused_not_forwarded() {
    let mut framer = SseFramer::new();
    let result = framer.push(Bytes::from_static(b"data: {\"choices\": [tru\n\n"));
    assert_eq!(result, Err(StreamFault::Malformed));
}

#[test]
fn error_events_are_noticed() {
    let mut framer = SseFramer::new();
    push(&mut framer, "data: {\"error\": {\"message\": \"boom\"}}\n\n");
    assert!(framer.saw_error());
}

#[test]
fn an_unterminated_last_event_is_completed_at_the_end() {
    let mut framer = SseFramer::new();
    assert_eq!(push(&mut framer, "data: [DONE]"), "");
    assert_eq!(framer.finish().unwrap().as_deref(), Some(&b"data: [DONE]\n\n"[..]));
    assert!(framer.saw_done());
}

#[test]
fn an_endless_event_is_refused_within_the_bound() {
    let mut framer = SseFramer::new();
    let big = Bytes::from(vec![b'a'; 64 * 1024]);
    let mut result = Ok(Bytes::new());
    for _ in 0..(MAX_EVENT_BYTES / big.len() + 2) {
        result = framer.push(big.clone());
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(StreamFault::Oversized));
}

proptest! {
    #[test]
    fn any_split_of_a_stream_forwards_the_same_bytes_and_signals(cuts in proptest::collection::btree_set(1usize..STREAM.len(), 0..12)) {
        let bytes = STREAM.as_bytes();
        let mut framer = SseFramer::new();
        let mut forwarded = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            forwarded.extend_from_slice(&framer.push(Bytes::copy_from_slice(&bytes[start..cut])).unwrap());
            start = cut;
        }
        prop_assert_eq!(&forwarded[..], bytes);
        prop_assert!(framer.saw_token() && framer.saw_finish() && framer.saw_done());
    }
}

/// One event of a hostile stream: valid chunks, `[DONE]`, comments, and the kinds of
/// garbage an upstream can send (data that is not JSON, a field without `data`, CRLF).
fn arbitrary_event() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}".prop_map(|text| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")),
        Just("data: [DONE]\n\n".to_owned()),
        Just(": keep-alive\n\n".to_owned()),
        Just("event: ping\r\ndata: {}\r\n\r\n".to_owned()),
        "[^\n]{0,20}".prop_map(|junk| format!("data: {junk}\n\n")),
        "[^\n]{0,20}".prop_map(|junk| format!("{junk}\n\n")),
    ]
}

/// The data of each whole event in `bytes`, as a reference reader would see it.
fn reference_events(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let events = text.split("\n\n").filter(|event| !event.is_empty());
    let data_of = |event: &str| -> Option<Vec<u8>> {
        let lines: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|value| value.strip_prefix(' ').unwrap_or(value))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n").into_bytes())
    };
    events.filter_map(data_of).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Fuzzing the framer: whatever the upstream sends, cut wherever the network cuts it,
    /// the framer never panics, forwards only a prefix of what it was given made of whole
    /// events, and never lets through an event whose data is neither JSON nor `[DONE]`.
    #[test]
    fn a_hostile_stream_is_forwarded_only_as_whole_valid_events(
        events in proptest::collection::vec(arbitrary_event(), 0..12),
        cuts in proptest::collection::btree_set(0usize..400, 0..10),
    ) {
        let stream = events.concat().into_bytes();
        let mut framer = SseFramer::new();
        let mut pushed = Vec::new();
        let mut start = 0;
        let mut fault = None;
        for cut in cuts.into_iter().filter(|cut| *cut < stream.len()).chain([stream.len()]) {
            match framer.push(Bytes::copy_from_slice(&stream[start..cut])) {
                Ok(ready) => pushed.extend_from_slice(&ready),
                Err(error) => { fault = Some(error); break; }
            }
            start = cut;
        }
        prop_assert!(stream.starts_with(&pushed), "forwarded bytes it was not given");
        let mut forwarded = pushed.clone();
        if fault.is_none() {
            match framer.finish() {
                Ok(last) => forwarded.extend_from_slice(&last.unwrap_or_default()),
                Err(error) => fault = Some(error),
            }
        }
        if fault.is_none() {
            let whole = forwarded.ends_with(b"\n\n") || forwarded.ends_with(b"\n\r\n");
            prop_assert!(forwarded.is_empty() || whole, "a partial event went out");
        }
        for data in reference_events(&forwarded) {
            let valid = data == b"[DONE]" || serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok();
            prop_assert!(valid, "forwarded an invalid event: {:?}", String::from_utf8_lossy(&data));
        }
        let invalid_given = reference_events(&stream)
            .iter()
            .any(|data| data != b"[DONE]" && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err());
        prop_assert_eq!(invalid_given, fault.is_some(), "a malformed event must stop the stream, and only that");
    }
}

mod usage {
    //! The framer reading usage off a stream, and stripping it when asked.
    use super::*;
    use crate::usage::Usage;

    const ROLE: &str =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n";
    const LAST: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(watch: UsageWatch, stream: &str, split: usize) -> (String, Option<Usage>) {
        let mut framer = SseFramer::watching_usage(watch);
        let bytes = Bytes::copy_from_slice(stream.as_bytes());
        let split = split.min(bytes.len());
        let mut out = framer.push(bytes.slice(..split)).unwrap().to_vec();
        out.extend_from_slice(&framer.push(bytes.slice(split..)).unwrap());
        out.extend_from_slice(&framer.finish().unwrap().unwrap_or_default());
        (String::from_utf8(out).unwrap(), framer.usage())
    }

    #[test]
    fn usage_alone_is_read_and_passed_on_untouched_when_the_client_asked() {
        let stream = [ROLE, LAST, USAGE, DONE].concat();
        for split in [0, 10, ROLE.len() + 5, stream.len() - 3] {
            let (out, usage) = run(UsageWatch::Read, &stream, split);
            assert_eq!(out, stream);
            assert_eq!(usage, Some(Usage { input: 7, output: 3, ..Usage::default() }));
        }
    }

    #[test]
    fn stripping_drops_the_usage_chunk_and_the_null_usage_fields() {
        let stream = [ROLE, LAST, USAGE, DONE].concat();
        for split in [0, 10, ROLE.len() + LAST.len() + 20, stream.len()] {
            let (out, usage) = run(UsageWatch::Strip, &stream, split);
            assert!(!out.contains("usage"), "{out}");
            assert_eq!(out.matches("data: ").count(), 3);
            assert!(out.ends_with(DONE));
            assert_eq!(usage, Some(Usage { input: 7, output: 3, ..Usage::default() }));
        }
    }

    #[test]
    fn usage_riding_on_the_last_chunk_is_read_and_stripped_from_it() {
        let riding = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n";
        let stream = [ROLE, riding, DONE].concat();
        let (out, usage) = run(UsageWatch::Strip, &stream, 7);
        let expected = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                        data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        assert_eq!(out, expected);
        assert_eq!(usage, Some(Usage { input: 5, output: 2, reasoning: 1, ..Usage::default() }));
        let (out, _) = run(UsageWatch::Read, &stream, 7);
        assert_eq!(out, stream);
    }

    #[test]
    fn a_usage_on_several_data_lines_is_stripped_from_the_event_written_again() {
        let split_lines = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\ndata: \"usage\":{\"prompt_tokens\":2}}\n\n";
        let stream = [ROLE, split_lines, DONE].concat();
        let (out, usage) = run(UsageWatch::Strip, &stream, 4);
        let last = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        assert!(out.ends_with(last), "{out}");
        assert_eq!(usage.map(|usage| usage.input), Some(2));
    }

    #[test]
    fn an_event_written_again_keeps_its_other_lines_where_they_were() {
        let event = "id: 7\nevent: completion\ndata: {\"choices\":[{\"index\":0,\"delta\":{}}],\n: a comment\n\
                     data: \"usage\":{\"prompt_tokens\":2},\"x\":1}\nretry: 10\n\n";
        let (out, usage) = run(UsageWatch::Strip, event, 5);
        let kept = "id: 7\nevent: completion\ndata: {\"choices\":[{\"index\":0,\"delta\":{}}],\"x\":1}\n\
                    : a comment\nretry: 10\n\n";
        assert_eq!(out, kept);
        assert_eq!(usage.map(|usage| usage.input), Some(2));
    }

    #[test]
    fn an_event_whose_lines_outlive_the_cut_keeps_each_line_a_data_line() {
        // Found by `fuzz/fuzz_targets/sse_framer.rs`: the line feed between two data lines
        // was written inside one `data:` line, so a client read `{` as the event's data.
        let (out, _) = run(UsageWatch::Strip, "data: {\ndata: \"usage\":null}\n\n", 3);
        assert_eq!(out, "data: {\ndata: }\n\n");
        let joined = out.lines().filter_map(|line| line.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
        assert!(crate::json::read(joined.as_bytes()).is_some(), "{joined:?}");
    }

    #[test]
    fn a_framer_not_watching_reads_nothing() {
        let stream = [ROLE, USAGE, DONE].concat();
        assert_eq!(run(UsageWatch::Ignore, &stream, 3), (stream.clone(), None));
    }
}

/// Anthropic's Messages stream, as its API reference shows it.
const MESSAGES_STREAM: [&str; 8] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":400,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    "",
];

#[test]
fn a_messages_stream_has_its_first_token_at_the_first_content_delta_and_ends_at_message_stop() {
    let mut framer = SseFramer::watching_usage(UsageWatch::Read);
    for (index, event) in MESSAGES_STREAM.iter().enumerate() {
        assert_eq!(push(&mut framer, event), *event);
        // message_start, the empty text block and the ping carry no content.
        assert_eq!(framer.saw_token(), index >= 3, "after event {index}");
        assert_eq!(framer.saw_finish(), index >= 5, "after event {index}");
        assert_eq!(framer.saw_done(), index >= 6, "after event {index}");
    }
    assert!(!framer.saw_error());
}

#[test]
fn a_messages_streams_usage_is_message_starts_input_with_the_last_deltas_output_counted_as_openai_does() {
    let mut framer = SseFramer::watching_usage(UsageWatch::Read);
    push(&mut framer, MESSAGES_STREAM[0]);
    // input_tokens 25 excludes the 400 read from the cache and the 100 written to it.
    let started = Usage { input: 525, cached_input: 400, cache_write: 100, output: 1, reasoning: 0 };
    assert_eq!(framer.usage(), Some(started));
    for event in &MESSAGES_STREAM[1..] {
        push(&mut framer, event);
    }
    assert_eq!(framer.usage(), Some(Usage { output: 15, ..started }));
}

#[test]
fn an_output_count_alone_is_no_usage_without_the_message_start_before_it() {
    let mut framer = SseFramer::watching_usage(UsageWatch::Read);
    push(&mut framer, MESSAGES_STREAM[5]);
    assert_eq!(framer.usage(), None);
}

#[test]
fn a_streamed_tool_inputs_json_deltas_are_content() {
    let mut framer = SseFramer::new();
    push(
        &mut framer,
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    );
    push(
        &mut framer,
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    );
    assert!(!framer.saw_token());
    push(
        &mut framer,
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
    );
    assert!(framer.saw_token());
}

#[test]
fn an_anthropic_error_event_is_the_upstreams_failure_however_the_bytes_are_cut() {
    let event = "event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n";
    for cut in 1..event.len() {
        let mut framer = SseFramer::new();
        let mut out = push(&mut framer, &event[..cut]);
        assert!(!framer.saw_error(), "an incomplete event says nothing yet (cut at {cut})");
        out.push_str(&push(&mut framer, &event[cut..]));
        assert_eq!(out, event);
        assert!(framer.saw_error() && !framer.saw_done(), "cut at {cut}");
    }
}
