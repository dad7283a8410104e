//! The one-pass check accepts exactly what `serde_json` accepts: the same verdict on
//! hand-picked edge cases, on generated JSON (valid, then damaged one byte at a time) and
//! on arbitrary bytes.

use proptest::prelude::*;
use serde_json::Value;

use super::{Memo, Sightings, is_json, read, read_after};

fn serde_says(data: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
}

#[test]
fn answers_like_serde_on_the_edge_cases() {
    let cases: &[&str] = &[
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        " \t\r\n{ \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\\u00e9\\n\" ] } \n",
        "0",
        "-0",
        "-0.0e-0",
        "\"\"",
        "[]",
        "{}",
        "[[[]]]",
        "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
        "\"caf\u{e9} \u{1F600}\"",
        "",
        " ",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "tru",
        "truex",
        "nul",
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "[,1]",
        "{\"a\"}",
        "{\"a\" 1}",
        "{1:2}",
        "[1 2]",
        "{} {}",
        "\"unterminated",
        "\"bad \\x escape\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"raw \u{1} control\"",
        "\"raw\ttab\"",
        "[}",
        "{]",
        "]",
        "[1]]",
    ];
    for case in cases {
        assert_eq!(is_json(case.as_bytes()), serde_says(case.as_bytes()), "{case:?}");
    }
}

#[test]
fn long_strings_are_judged_past_the_short_walk() {
    let plain = "x".repeat(100);
    for (case, valid) in [
        (format!("\"{plain}\""), true),
        (format!("\"{plain}\\n{plain}\\u00e9{plain}\""), true),
        (format!("\"{}\u{1}{}\"", &plain[..30], &plain[..30]), false),
        (format!("\"{}\u{1f}\"", &plain[..60]), false),
        (format!("\"{}\\q{}\"", &plain[..40], &plain[..5]), false),
        (format!("\"{plain}"), false),
        (format!("[\"{plain}\",\"{plain}\"]"), true),
    ] {
        assert_eq!(is_json(case.as_bytes()), valid, "{case:?}");
        assert_eq!(is_json(case.as_bytes()), serde_says(case.as_bytes()), "{case:?}");
    }
}

#[test]
fn bytes_that_are_not_utf8_are_judged_as_serde_judges_them() {
    for case in [&b"\"\xff\xfe\""[..], b"[\"\xc3\x28\"]", b"\xff", b"{\"\xe9\":1}"] {
        assert_eq!(is_json(case), serde_says(case), "{case:?}");
    }
}

#[test]
fn nesting_deeper_than_the_inline_bit_stack_is_still_judged_right() {
    for depth in [255, 256, 257, 1_000] {
        let valid = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(is_json(valid.as_bytes()), "depth {depth}");
        let objects = format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth));
        assert!(is_json(objects.as_bytes()), "objects, depth {depth}");
        let unclosed = "[".repeat(depth);
        assert!(!is_json(unclosed.as_bytes()), "unclosed, depth {depth}");
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        ".{20,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// What a content token is made of here: letters, and the bytes that end, escape or break
/// a string.
const TOKEN_BYTES: &[u8] = b"ab \"\\nu0\x01\xff}";

/// Bytes a damaged JSON text is likely to gain: its own syntax and the characters that
/// break it.
const DAMAGE: &[u8] = b"{}[]:,\"\\ 0123456789-+.eEtrufalsn\x01\t\n\xff";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn generated_json_is_accepted_compact_and_pretty(value in json_value()) {
        let compact = serde_json::to_vec(&value).unwrap();
        prop_assert!(is_json(&compact), "{}", String::from_utf8_lossy(&compact));
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        prop_assert!(is_json(&pretty), "{}", String::from_utf8_lossy(&pretty));
    }

    #[test]
    fn damaged_json_gets_serdes_verdict(
        value in json_value(),
        at in any::<prop::sample::Index>(),
        damage in prop::sample::select(DAMAGE),
        how in 0..3u8,
    ) {
        let mut text = serde_json::to_vec(&value).unwrap();
        let at = at.index(text.len() + 1);
        match how {
            0 => text.insert(at, damage),
            1 if at < text.len() => { text.remove(at); }
            1 => text.truncate(at.saturating_sub(1)),
            _ if at < text.len() => text[at] = damage,
            _ => text.push(damage),
        }
        prop_assert_eq!(is_json(&text), serde_says(&text), "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn sightings_do_not_depend_on_whitespace(value in json_value()) {
        let compact = serde_json::to_vec(&value).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        let (compact, pretty) = (read(&compact).unwrap(), read(&pretty).unwrap());
        prop_assert_eq!((compact.token, compact.finish, compact.error), (pretty.token, pretty.finish, pretty.error));
        prop_assert_eq!(compact.usage.is_some(), pretty.usage.is_some());
    }

    #[test]
    fn a_read_resumed_from_the_last_event_answers_as_a_read_from_scratch(
        events in prop::collection::vec((json_value(), any::<prop::sample::Index>(), prop::sample::select(DAMAGE), 0..4u8), 1..12),
    ) {
        let mut memo = Memo::default();
        let mut last: Vec<u8> = Vec::new();
        for (value, at, damage, how) in events {
            // Half the time the event is the last one with a few bytes changed, as a
            // stream's next chunk is; else a new value; sometimes damaged.
            let mut text = if how < 2 && !last.is_empty() {
                let mut text = last.clone();
                let at = at.index(text.len());
                text[at] = damage;
                if how == 1 { text.insert(at, damage) }
                text
            } else {
                serde_json::to_vec(&value).unwrap()
            };
            if how == 3 {
                let at = at.index(text.len() + 1);
                text.insert(at, damage);
            }
            prop_assert_eq!(read_after(&text, &mut memo), read(&text), "{}", String::from_utf8_lossy(&text));
            last = text;
        }
    }

    #[test]
    fn an_objects_cursor_lists_its_keys_and_ends_where_it_does(value in json_value(), pretty: bool) {
        let Value::Object(members) = &value else { return Ok(()) };
        let text = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) }.unwrap();
        let mut object = super::object(&text).unwrap();
        let mut keys = Vec::new();
        while let Some(key) = object.key() {
            keys.push(serde_json::from_slice::<String>(&[b"\"", key, b"\""].concat()).unwrap());
        }
        prop_assert_eq!(keys, members.keys().cloned().collect::<Vec<_>>());
        prop_assert_eq!(object.end(), Some(text.len()), "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn a_streams_content_tokens_read_from_the_last_event_answer_as_a_read_from_scratch(
        tokens in prop::collection::vec(prop::collection::vec(prop::sample::select(TOKEN_BYTES), 0..10), 1..16),
        usage_after in any::<bool>(),
    ) {
        let mut memo = Memo::default();
        for token in tokens {
            // A chunk of a stream with its content token, raw: some tokens are no JSON
            // string, or end one early.
            let mut event = br#"{"id":"c1","choices":[{"index":0,"delta":{"content":""#.to_vec();
            event.extend_from_slice(&token);
            event.extend_from_slice(br#""},"finish_reason":null}]"#);
            if usage_after {
                event.extend_from_slice(br#","usage":{"prompt_tokens":1}"#);
            }
            event.push(b'}');
            prop_assert_eq!(read_after(&event, &mut memo), read(&event), "{}", String::from_utf8_lossy(&event));
        }
    }

    #[test]
    fn shared_ends_are_counted_as_a_byte_by_byte_walk_counts_them(
        a in prop::collection::vec(0..3u8, 0..40),
        b in prop::collection::vec(0..3u8, 0..40),
    ) {
        let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
        prop_assert_eq!(super::memo::shared_prefix(&a, &b), prefix);
        prop_assert_eq!(super::memo::shared_suffix(&a, &b), suffix);
    }

    #[test]
    fn arbitrary_bytes_get_serdes_verdict(bytes in prop::collection::vec(prop::sample::select(DAMAGE), 0..40)) {
        prop_assert_eq!(is_json(&bytes), serde_says(&bytes), "{}", String::from_utf8_lossy(&bytes));
    }
}

fn seen(text: &str) -> Sightings {
    read(text.as_bytes()).unwrap_or_else(|| panic!("not JSON: {text}"))
}

fn at(text: &str, span: Option<std::ops::Range<usize>>) -> Option<&str> {
    span.map(|span| &text[span])
}

#[test]
fn a_chunks_content_tool_calls_and_finish_reason_are_sighted() {
    let role = r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    assert_eq!(seen(role), Sightings { choices: seen(role).choices, ..Sightings::default() });
    let token = r#"{"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}"#;
    assert!(seen(token).token && !seen(token).finish);
    let tool = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]}}]}"#;
    assert!(seen(tool).token);
    let last = r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
    assert!(!seen(last).token && seen(last).finish);
    for text in [r#"{"choices":[{"text":"x"}]}"#, r#"{"type":"response.output_text.delta","delta":"x"}"#] {
        assert!(seen(text).token, "{text}");
    }
    // A later choice's content counts even when the first one's is empty.
    assert!(seen(r#"{"choices":[{"delta":{"content":""}},{"delta":{"content":"x"}}]}"#).token);
}

#[test]
fn keys_inside_strings_and_escaped_keys_are_not_sighted() {
    let quoted = r#"{"choices":[{"delta":{"content":"say \"usage\": {\"finish_reason\": \"stop\"}"}}]}"#;
    let sightings = seen(quoted);
    assert!(sightings.token && !sightings.finish && sightings.usage.is_none());
    assert!(!seen(r#"{"choices":[{"delta":{"cont\u0065nt":"x"}}]}"#).token);
}

#[test]
fn only_a_top_level_error_first_is_an_error_event() {
    assert!(seen(r#" { "error" : {"message":"overloaded"}}"#).error);
    assert!(!seen(r#"{"id":"c","error":null}"#).error);
    assert!(!seen(r#"{"choices":[{"error":"x"}]}"#).error);
    assert!(!seen(r#"[{"error":"x"}]"#).error);
}

#[test]
fn usage_and_choices_spans_are_the_top_level_members_values() {
    let text = r#"{"choices" : [ ] , "usage" : {"prompt_tokens":3,"x":{"usage":1}} }"#;
    let sightings = seen(text);
    assert_eq!(at(text, sightings.choices), Some("[ ]"));
    assert_eq!(at(text, sightings.usage), Some(r#"{"prompt_tokens":3,"x":{"usage":1}}"#));
    let null = r#"{"id":"c","usage":null}"#;
    assert_eq!(at(null, seen(null).usage), Some("null"));
    let nested = r#"{"choices":[{"usage":{"prompt_tokens":1}}],"data":{"usage":2}}"#;
    assert_eq!(seen(nested).usage, None);
    let first = r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#;
    assert_eq!(at(first, seen(first).usage), Some(r#"{"prompt_tokens":1}"#));
}

#[test]
fn a_responses_events_usage_is_the_response_objects() {
    let completed =
        r#"{"type":"response.completed","response":{"id":"r","output":[{"usage":0}],"usage":{"input_tokens":9}}}"#;
    let sightings = seen(completed);
    assert_eq!(sightings.usage, None);
    assert_eq!(at(completed, sightings.envelope_usage), Some(r#"{"input_tokens":9}"#));
    let elsewhere = r#"{"response":1,"other":{"usage":{"input_tokens":9}}}"#;
    assert_eq!(seen(elsewhere).envelope_usage, None);
}

#[test]
fn a_member_ending_the_text_has_its_span() {
    for (text, value) in [(r#"{"usage":12}"#, "12"), (r#"{"usage":-1.5e3}"#, "-1.5e3"), (r#"{"usage":"x"}"#, r#""x""#)]
    {
        assert_eq!(at(text, seen(text).usage), Some(value), "{text}");
    }
}

#[test]
fn a_member_found_from_the_end_is_top_level_when_the_rest_closes_the_document() {
    use super::{closes_top_level, value_end};
    let end = |text: &[u8]| value_end(text).filter(|&end| closes_top_level(&text[end..]));
    assert_eq!(end(br#"{"a":[1,"}"]},"b":2} "#), Some(13));
    assert_eq!(end(br#"null}"#), Some(4));
    assert_eq!(end(br#"12,"x":"\"}"}"#), Some(2));
    assert_eq!(end(br#""s\"}" }"#), Some(6));
    // Still nested, or more after the closing brace, or never closed.
    assert_eq!(end(br#"{"a":1}},"b":2}"#), None);
    assert_eq!(end(br#"{"a":1}}]"#), None);
    assert_eq!(end(br#"{"a":1}} x"#), None);
    assert_eq!(end(br#"{"a":1}"#), None);
    assert_eq!(end(br#"{"a":"unterminated}"#), None);
    assert_eq!(value_end(b",1}"), None, "no value at all");
}

#[test]
fn a_string_passed_over_ends_at_the_first_quote_after_an_even_run_of_backslashes() {
    use super::value_end;
    for (text, end) in [
        (&br#""plain" x"#[..], 7),
        (br#""a\\" x"#, 5),
        (br#""a\\\\" x"#, 7),
        (br#""say \"hi\"\n" x"#, 14),
        (br#""a\\\"b" x"#, 8),
        (br#"["\"]", "]"] x"#, 12),
    ] {
        assert_eq!(value_end(text), Some(end), "{}", String::from_utf8_lossy(text));
    }
    assert_eq!(value_end(br#""never closed\""#), None);
}

#[test]
fn a_streams_chunks_are_read_from_where_they_part_with_the_same_answer() {
    let chunks = [
        r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}} x"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
    ];
    let mut memo = Memo::default();
    for chunk in chunks {
        assert_eq!(read_after(chunk.as_bytes(), &mut memo), read(chunk.as_bytes()), "{chunk}");
    }
}

/// Every member of `text`'s object as the cursor sees it: numbers read as whole numbers,
/// objects entered and their members listed, anything else skipped; then where it ended.
fn listed(text: &[u8]) -> (Vec<String>, Option<usize>) {
    fn list(object: &mut super::Object<'_>, into: &mut Vec<String>) {
        while let Some(key) = object.key() {
            let key = String::from_utf8_lossy(key).into_owned();
            if key.starts_with('n') {
                into.push(format!("{key}={:?}", object.whole_number()));
            } else if key.starts_with('o') {
                let mut inner = Vec::new();
                let entered = object.within(|nested| list(nested, &mut inner));
                into.push(format!("{key}{{{}}}{}", inner.join(","), if entered.is_some() { "" } else { "?" }));
            } else {
                into.push(key);
            }
        }
    }
    let Some(mut object) = super::object(text) else { return (Vec::new(), None) };
    let mut members = Vec::new();
    list(&mut object, &mut members);
    (members, object.end())
}

#[test]
fn an_objects_members_are_read_in_one_pass_to_its_end() {
    let text = br#" { "a" : 1 , "o":{"c":[1,"}"],"n":7},"d\"e":"x,y", "f":null,"n1":-2,"n2":2.5e3,"n3":12 } x"#;
    let (members, end) = listed(text);
    let expected = ["a", "o{c,n=Some(7)}", r#"d\"e"#, "f", "n1=None", "n2=None", "n3=Some(12)"];
    assert_eq!(members, expected);
    assert_eq!(end, Some(text.len() - 2), "just past the closing brace");
    assert_eq!(listed(b"{}"), (vec![], Some(2)));
    assert_eq!(listed(b"null"), (vec![], None));
    // A value read as what it is not is skipped all the same.
    assert_eq!(listed(br#"{"n":{"a":1},"o":[1],"z":0}"#), (vec!["n=None".into(), "o{}?".into(), "z".into()], Some(27)));
    assert_eq!(listed(br#"{"n":18446744073709551616}"#).0, ["n=None"], "beyond u64");
    assert_eq!(listed(br#"{"n":18446744073709551615}"#).0, ["n=Some(18446744073709551615)"]);
}

#[test]
fn a_broken_object_is_read_up_to_the_break_and_has_no_end() {
    for (text, read) in [
        (&br#"{"a":1,"b" 2,"c":3}"#[..], &["a"][..]),
        (br#"{"a":"unterminated}"#, &["a"]),
        (br#"{"a":1,}"#, &["a"]),
        (br#"{"a":1"#, &["a"]),
        (br#"{"o":{"a":1,"b"}}"#, &["o{a}?"]),
        (br#"{,}"#, &[]),
    ] {
        let (members, end) = listed(text);
        assert_eq!(members, read, "{}", String::from_utf8_lossy(text));
        assert_eq!(end, None, "{}", String::from_utf8_lossy(text));
    }
}
