//! The one-pass check accepts exactly what `serde_json` accepts: the same verdict on
//! hand-picked edge cases, on generated JSON (valid, then damaged one byte at a time) and
//! on arbitrary bytes; and a top-level member is found where `serde_json` finds it.

use proptest::prelude::*;
use serde_json::Value;

use super::{is_json, top_level_member};

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
fn nesting_deeper_than_the_bit_stack_is_still_judged_right() {
    for depth in [255, 256, 257, 1_000] {
        let valid = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(is_json(valid.as_bytes()), "depth {depth}");
        let objects = format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth));
        assert!(is_json(objects.as_bytes()), "objects, depth {depth}");
        let unclosed = "[".repeat(depth);
        assert!(!is_json(unclosed.as_bytes()), "unclosed, depth {depth}");
    }
}

#[test]
fn a_top_level_member_is_found_and_a_nested_one_is_not() {
    let answer =
        br#"{"id":"c1","choices":[{"usage":{"prompt_tokens":9}}],"usage" : {"prompt_tokens":3} ,"x":{"usage":1}}"#;
    assert_eq!(top_level_member(answer, b"usage"), Some(&br#"{"prompt_tokens":3}"#[..]));
    assert_eq!(top_level_member(br#"{"a":{"usage":1}}"#, b"usage"), None);
    assert_eq!(top_level_member(br#"[{"usage":1}]"#, b"usage"), None, "not an object at the top");
    assert_eq!(top_level_member(br#"{"usage":1,"usage":[2]}"#, b"usage"), Some(&b"[2]"[..]), "the last one");
    assert_eq!(top_level_member(br#"{"usage":null}"#, b"usage"), Some(&b"null"[..]));
    assert_eq!(top_level_member(br#"{"usage":{"a":1}"#, b"usage"), None, "invalid JSON has no members");
    let deep = format!("{{\"usage\":7,\"deep\":{}{}}}", "[".repeat(300), "]".repeat(300));
    assert_eq!(top_level_member(deep.as_bytes(), b"usage"), Some(&b"7"[..]), "past the bit stack too");
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
    fn top_level_members_are_serdes(value in json_value()) {
        let text = serde_json::to_vec(&value).unwrap();
        if let Value::Object(members) = &value {
            for (key, expected) in members {
                // Keys with escapes are compared as written, so only plain ones must match.
                if !serde_json::to_string(key).unwrap().contains('\\') {
                    let expected = serde_json::to_vec(expected).unwrap();
                    prop_assert_eq!(top_level_member(&text, key.as_bytes()), Some(&expected[..]), "{}", key);
                }
            }
        }
        prop_assert_eq!(top_level_member(&text, b"\x00absent"), None);
    }

    #[test]
    fn arbitrary_bytes_get_serdes_verdict(bytes in prop::collection::vec(prop::sample::select(DAMAGE), 0..40)) {
        prop_assert_eq!(is_json(&bytes), serde_says(&bytes), "{}", String::from_utf8_lossy(&bytes));
    }
}
