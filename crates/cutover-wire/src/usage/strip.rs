//! Taking usage back out of a streamed chunk when the gateway asked for it on the
//! client's behalf: a usage-only chunk (`"choices": []`) goes whole; a `usage` riding on
//! a chunk with choices, or the `"usage": null` every earlier chunk then carries, is cut
//! out of the JSON with its comma, the rest kept byte for byte. The members are those the
//! chunk's one-pass check found (`crate::json`): nothing is searched for or parsed again.

use crate::json::Sightings;

/// What becomes of a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Stripped {
    /// Nothing to remove.
    Kept,
    /// The chunk was there only for the usage.
    Dropped,
    /// The chunk's JSON without these bytes (its `usage` member and a comma).
    Cut(usize, usize),
}

/// What to remove of `json` (one chunk's data, already read in one pass: `sightings`) to
/// take its top-level usage out.
pub fn strip_usage(json: &[u8], sightings: &Sightings) -> Stripped {
    let Some(usage) = sightings.usage.clone() else { return Stripped::Kept };
    let empty_choices = sightings.choices.clone().is_none_or(|choices| {
        let inner = json[choices].trim_ascii();
        inner
            .strip_prefix(b"[")
            .and_then(|rest| rest.strip_suffix(b"]"))
            .is_some_and(|rest| rest.trim_ascii().is_empty())
    });
    if json[usage.clone()] != *b"null" && empty_choices {
        return Stripped::Dropped;
    }
    member_span(json, usage.start, usage.end).map_or(Stripped::Kept, |(from, to)| Stripped::Cut(from, to))
}

/// The bytes to remove for the member whose value spans `start..end`: its key, the
/// colon, the value and one comma (the one before it, else the one after it).
fn member_span(json: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    let before_value = json[..start].trim_ascii_end();
    let before_colon = before_value.strip_suffix(b":")?.trim_ascii_end();
    let key_start = before_colon.strip_suffix(b"\"usage\"")?.len();
    let before_key = json[..key_start].trim_ascii_end();
    if let Some(rest) = before_key.strip_suffix(b",") {
        return Some((rest.len(), end));
    }
    let after = &json[end..];
    let skipped = after.len() - after.trim_ascii_start().len();
    match after.trim_ascii_start().first() {
        Some(b',') => {
            let rest = &after[skipped + 1..];
            Some((key_start, end + skipped + 1 + (rest.len() - rest.trim_ascii_start().len())))
        }
        _ => Some((key_start, end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(json: &[u8]) -> Stripped {
        strip_usage(json, &crate::json::read(json).expect("a chunk is JSON"))
    }

    fn spliced(json: &str) -> String {
        match strip(json.as_bytes()) {
            Stripped::Cut(from, to) => format!("{}{}", &json[..from], &json[to..]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_usage_only_chunk_is_dropped_whole() {
        let chunk = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        assert_eq!(strip(chunk.as_bytes()), Stripped::Dropped);
        assert_eq!(strip(br#"{"choices":[ ],"usage":{"prompt_tokens":1}}"#), Stripped::Dropped);
    }

    #[test]
    fn usage_riding_on_a_chunk_with_choices_is_spliced_out_with_its_comma() {
        let chunk =
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}}"#;
        assert_eq!(spliced(chunk), r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#);
        let first = r#"{ "usage" : {"prompt_tokens":3} , "choices":[{"index":0}]}"#;
        assert_eq!(spliced(first), r#"{ "choices":[{"index":0}]}"#);
        assert_eq!(spliced(r#"{"usage":null}"#), "{}");
        // No choices at all: the chunk was there for the usage only.
        assert_eq!(strip(br#"{"usage":{"prompt_tokens":3}}"#), Stripped::Dropped);
    }

    #[test]
    fn a_null_usage_is_spliced_out_and_a_chunk_without_usage_kept() {
        assert_eq!(
            spliced(r#"{"id":"c","choices":[{"index":0}],"usage":null}"#),
            r#"{"id":"c","choices":[{"index":0}]}"#
        );
        assert_eq!(strip(br#"{"id":"c","choices":[{"delta":{"content":"\"usage\": 1"}}]}"#), Stripped::Kept);
    }

    #[test]
    fn what_remains_is_the_same_json_without_usage() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":{"prompt_tokens":3},"system_fingerprint":"fp"}"#;
        let mut expected: serde_json::Value = serde_json::from_str(chunk).unwrap();
        expected.as_object_mut().unwrap().remove("usage");
        let stripped: serde_json::Value = serde_json::from_str(&spliced(chunk)).unwrap();
        assert_eq!(stripped, expected);
    }
}
