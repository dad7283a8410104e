//! The JSON scanner's fuzz properties (`cutover_wire::json`, the one-pass scanner every
//! streamed event goes through), for `fuzz/fuzz_targets/json_scanner.rs` and the suite's replay.
//!
//! Properties checked, for any bytes:
//! - `json::read(data)` accepts exactly what `serde_json::from_slice::<IgnoredAny>` accepts
//!   (the differential the scanner's doc promises);
//! - `json::read_after` gives the same answer as `read` for any sequence of texts: `data`
//!   is cut at every 0xFF byte into texts fed in order to one `Memo`, and each answer
//!   (`Option<Sightings>`, spans included) must equal `read` of that text alone;
//! - the light readers (`value_end`, `closes_top_level`, `object` with `key`,
//!   `whole_number`, `within`, `value_span`, `end`) and the usage readers built on them
//!   (`Usage::from_answer`, `from_answer_tail`, `from_object`, `strip_usage`) never panic,
//!   and the positions they return lie within the text;
//! - when `strip_usage` cuts a usage member out of a valid text, what remains is still
//!   JSON to serde.
use crate::json::{self, Memo, Object};
use crate::usage::{Stripped, Usage, strip_usage};
use serde::de::IgnoredAny;

/// Checks every property above on `data`; panics when one fails.
pub fn json_scanner(data: &[u8]) {
    check_text(data);
    // The texts of a stream, in order, through one memo.
    let mut memo = Memo::default();
    for text in data.split(|byte| *byte == 0xFF) {
        let alone = json::read(text);
        let resumed = json::read_after(text, &mut memo);
        assert_eq!(resumed, alone, "read_after differs from read on {:?}", String::from_utf8_lossy(text));
        if text.len() != data.len() {
            check_text(text);
        }
    }
}

/// The properties of one text on its own.
fn check_text(text: &[u8]) {
    let sightings = json::read(text);
    let serde_accepts = serde_json::from_slice::<IgnoredAny>(text).is_ok();
    assert_eq!(
        sightings.is_some(),
        serde_accepts,
        "read disagrees with serde_json on {:?}",
        String::from_utf8_lossy(text)
    );
    if let Some(sightings) = &sightings {
        for span in [&sightings.usage, &sightings.envelope_usage, &sightings.choices].into_iter().flatten() {
            assert!(span.start <= span.end && span.end <= text.len(), "span {span:?} out of the text");
        }
        if let Stripped::Cut(from, to) = strip_usage(text, sightings) {
            assert!(from <= to && to <= text.len());
            let rest = [&text[..from], &text[to..]].concat();
            assert!(
                serde_json::from_slice::<IgnoredAny>(&rest).is_ok(),
                "stripping usage left invalid JSON: {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
        let _ = Usage::sighted(text, sightings);
    }

    if let Some(end) = json::value_end(text) {
        assert!(end <= text.len(), "value_end {end} past the text's {}", text.len());
        let _ = json::closes_top_level(&text[end..]);
    }
    let _ = json::closes_top_level(text);
    if let Some(mut object) = json::object(text) {
        read_object(&mut object, 0);
        if let Some(end) = object.end() {
            assert!(end <= text.len());
        }
    }
    let _ = Usage::from_answer(text);
    let _ = Usage::from_answer_tail(text);
    let _ = Usage::from_object(text);
}

/// Every member of `object`, each value read one of the four ways (chosen by the key's
/// length) so that all of them meet every kind of value.
fn read_object(object: &mut Object<'_>, depth: usize) {
    while let Some(key) = object.key() {
        match key.len() % 4 {
            0 => {
                let _ = object.whole_number();
            }
            1 if depth < 64 => {
                let _ = object.within(|inner| read_object(inner, depth + 1));
            }
            2 => {
                if let Some(span) = object.value_span() {
                    assert!(span.start < span.end && span.end <= object.position(), "span {span:?}");
                }
            }
            _ => {}
        }
    }
}
