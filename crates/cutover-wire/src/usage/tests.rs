//! Usage as each endpoint's answers report it: whole, streamed, nested, partial, absurd.

use super::*;

#[test]
fn chat_usage_is_read_with_its_cached_and_reasoning_details() {
    let answer = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":6}}}"#;
    assert_eq!(
        Usage::from_json(answer),
        Some(Usage { input: 19, cached_input: 4, cache_write: 0, output: 10, reasoning: 6 })
    );
}

#[test]
fn embeddings_responses_and_the_streamed_completed_event_are_read() {
    let embeddings = br#"{"object":"list","data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    assert_eq!(Usage::from_json(embeddings), Some(Usage { input: 8, ..Usage::default() }));
    let responses = br#"{"object":"response","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":5}}}"#;
    let expected = Usage { input: 30, cached_input: 10, cache_write: 0, output: 20, reasoning: 5 };
    assert_eq!(Usage::from_json(responses), Some(expected));
    let completed = br#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":5}}}}"#;
    assert_eq!(Usage::from_json(completed), Some(expected));
}

#[test]
fn absent_null_or_partial_usage_is_lenient_never_a_guess() {
    assert_eq!(Usage::from_json(br#"{"choices":[],"usage":null}"#), None);
    assert_eq!(Usage::from_json(br#"{"usage":{}}"#), None);
    assert_eq!(Usage::from_json(br#"{"type":"response.created","response":{"usage":null}}"#), None);
    // Details a relay leaves out count as none; parts never exceed their whole.
    let odd = br#"{"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":9},"completion_tokens_details":null}}"#;
    assert_eq!(
        Usage::from_json(odd),
        Some(Usage { input: 5, cached_input: 5, cache_write: 0, output: 2, reasoning: 0 })
    );
}

#[test]
fn a_whole_answers_usage_is_its_top_level_one_wherever_it_stands() {
    let expected = Some(Usage { input: 3, output: 2, ..Usage::default() });
    let usage = r#"{"prompt_tokens":3,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":0}}"#;
    for answer in [
        // OpenAI's order: usage near the end, scalars after it.
        format!(
            r#"{{"id":"c","choices":[{{"message":{{"content":"}}{{\"usage\":1"}}}}],"usage":{usage},"service_tier":"default"}}"#
        ),
        format!(r#"{{"id":"c","usage" : {usage} }} "#),
        // Usage first, then members with keys of the same name deeper down.
        format!(r#"{{"usage":{usage},"choices":[{{"message":{{"usage":{{"prompt_tokens":99}}}}}}]}}"#),
        format!(r#"{{"usage":{usage},"metadata":{{"usage":null}}}}"#),
    ] {
        assert_eq!(Usage::from_answer(answer.as_bytes()), expected, "{answer}");
        assert_eq!(Usage::from_answer(answer.as_bytes()), Usage::from_json(answer.as_bytes()), "{answer}");
    }
    assert_eq!(Usage::from_answer(br#"{"choices":[],"usage":null}"#), None);
    assert_eq!(Usage::from_answer(br#"{"choices":[{"usage":{"prompt_tokens":1}}]}"#), None);
    // From a tail, the top-level usage is told by what closes after it.
    assert_eq!(Usage::from_answer_tail(format!(r#"0.5]}}],"usage":{usage}}}"#).as_bytes()), expected);
    assert_eq!(Usage::from_answer_tail(format!(r#"0.5]}}],"x":{{"usage":{usage}}}}}"#).as_bytes()), None);
}

#[test]
fn a_usage_field_that_is_no_whole_number_counts_as_absent() {
    assert_eq!(
        Usage::from_object(br#"{"prompt_tokens":"7","input_tokens":5}"#),
        Some(Usage { input: 5, ..Usage::default() })
    );
    assert_eq!(Usage::from_object(br#"{"prompt_tokens":7.5}"#), None);
    assert_eq!(Usage::from_object(br#"{"prompt_tokens":18446744073709551616}"#), None);
    let details = br#"{"prompt_tokens":9,"prompt_tokens_details":{"audio_tokens":1,"cached_tokens":4},"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":null}}"#;
    assert_eq!(
        Usage::from_object(details),
        Some(Usage { input: 9, cached_input: 4, cache_write: 0, output: 2, reasoning: 0 })
    );
}

#[test]
fn a_token_count_no_answer_could_hold_counts_as_absent_so_it_cannot_saturate_the_counters() {
    let max = u64::MAX;
    assert_eq!(Usage::from_object(format!(r#"{{"prompt_tokens":{max},"completion_tokens":3}}"#).as_bytes()), None);
    assert_eq!(
        Usage::from_object(format!(r#"{{"prompt_tokens":5,"completion_tokens":{max}}}"#).as_bytes()),
        Some(Usage { input: 5, ..Usage::default() })
    );
    let details = format!(
        r#"{{"prompt_tokens":5,"prompt_tokens_details":{{"cached_tokens":{max}}},"completion_tokens":3,"completion_tokens_details":{{"reasoning_tokens":{max}}}}}"#
    );
    assert_eq!(
        Usage::from_object(details.as_bytes()),
        Some(Usage { input: 5, cached_input: 0, cache_write: 0, output: 3, reasoning: 0 })
    );
    let largest = format!(r#"{{"prompt_tokens":{MAX_TOKENS},"completion_tokens":{MAX_TOKENS}}}"#);
    assert_eq!(
        Usage::from_object(largest.as_bytes()),
        Some(Usage { input: MAX_TOKENS, cached_input: 0, cache_write: 0, output: MAX_TOKENS, reasoning: 0 })
    );
}

#[test]
fn only_a_top_level_usage_object_counts() {
    assert_eq!(Usage::from_json(br#"{"choices":[{"delta":{"content":"say \"usage\": {"}}],"usage":null}"#), None);
    assert_eq!(Usage::from_json(br#"{"choices":[{"usage":{"prompt_tokens":1}}]}"#), None);
    // Not JSON: no usage, whatever it seems to hold.
    assert_eq!(Usage::from_json(br#"{"usage":{"prompt_tokens":1}"#), None);
}

#[test]
fn anthropics_input_excludes_its_cache_counts_and_ours_includes_them() {
    let answer = br#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":30,"cache_read_input_tokens":50,"output_tokens":7}}"#;
    let expected = Usage { input: 92, cached_input: 50, cache_write: 30, output: 7, reasoning: 0 };
    assert_eq!(Usage::from_answer(answer), Some(expected));
    assert_eq!(Usage::from_json(answer), Some(expected));
    let uncached = br#"{"type":"message","usage":{"input_tokens":12,"output_tokens":7}}"#;
    assert_eq!(Usage::from_answer(uncached), Some(Usage { input: 12, output: 7, ..Usage::default() }));
}

#[test]
fn a_count_of_output_alone_is_no_whole_usage() {
    assert_eq!(Usage::from_object(br#"{"output_tokens":15}"#), None);
    assert_eq!(Usage::from_answer(br#"{"type":"message_delta","usage":{"output_tokens":15}}"#), None);
}
