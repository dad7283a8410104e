//! The path check: a `/v1` path with a `.` or `..` segment is refused, never forwarded.
//! An upstream (or a proxy in front of it) that resolves dot-segments would otherwise
//! serve `/v1/../../internal/secret` from outside its API, with the gateway's key.
//!
//! Segments are read as an upstream might decode them: `%2e` is a dot and `%2f`, `%5c`
//! and `\` separate segments, in any case. The check reads the path once, in place.

/// Whether `path` has a segment that is `.` or `..` once decoded.
pub fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Within the current segment: its dots, and whether anything else was seen.
    let (mut dots, mut other) = (0u8, false);
    let mut index = 0;
    while index <= bytes.len() {
        let (unit, width) = match bytes.get(index) {
            None => (Unit::Separator, 1),
            Some(b'/' | b'\\') => (Unit::Separator, 1),
            Some(b'.') => (Unit::Dot, 1),
            Some(b'%') => match bytes.get(index + 1..index + 3) {
                Some([b'2', b'e' | b'E']) => (Unit::Dot, 3),
                Some([b'2', b'f' | b'F'] | [b'5', b'c' | b'C']) => (Unit::Separator, 3),
                _ => (Unit::Other, 1),
            },
            Some(_) => (Unit::Other, 1),
        };
        match unit {
            Unit::Separator if !other && (dots == 1 || dots == 2) => return true,
            Unit::Separator => (dots, other) = (0, false),
            Unit::Dot => dots = dots.saturating_add(1),
            Unit::Other => other = true,
        }
        index += width;
    }
    false
}

/// One decoded character of a path, as far as segments are concerned.
enum Unit {
    Separator,
    Dot,
    Other,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dot_segments_raw_or_encoded_in_any_case_are_found() {
        for path in [
            "/v1/../../internal/secret",
            "/v1/./x",
            "/v1/..",
            "/v1/.",
            "/v1/%2e%2e/x",
            "/v1/%2E%2e/x",
            "/v1/.%2E/x",
            "/v1/%2e/x",
            "/v1/a/..%2fsecret",
            "/v1/a%2F..%2Fsecret",
            "/v1/a\\..\\secret",
            "/v1/a%5c..%5Csecret",
            "/v1/chat/completions/..",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
    }

    #[test]
    fn dots_inside_names_are_not_segments() {
        for path in [
            "/v1/chat/completions",
            "/v1/models/gpt-4.1",
            "/v1/files/file.abc/content",
            "/v1/...",
            "/v1/..a",
            "/v1/a..",
            "/v1/.well-known",
            "/v1/%2e%2e%2e",
            "/v1/%2",
            "/v1/%",
            "/v1//x",
            "/v1/",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }

    /// The check, written the obvious way: decode, split, compare.
    fn reference(path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".").replace("%2f", "/").replace("%5c", "/").replace('\\', "/");
        decoded.split('/').any(|segment| segment == "." || segment == "..")
    }

    proptest! {
        #[test]
        fn agrees_with_decoding_then_splitting(path in "(/|\\\\|\\.|%2[eEfF]|%5[cC]|%|a|2|e)*") {
            prop_assert_eq!(has_dot_segment(&path), reference(&path), "{}", path);
        }

        #[test]
        fn a_dot_segment_anywhere_is_refused(
            before in proptest::collection::vec("[a-z0-9._-]{1,8}", 0..4),
            after in proptest::collection::vec("[a-z0-9._-]{1,8}", 0..4),
            dot in prop_oneof![Just("."), Just(".."), Just("%2e"), Just("%2E%2e"), Just(".%2E")],
        ) {
            let path = format!("/v1/{}", before.iter().map(String::as_str).chain([dot]).chain(after.iter().map(String::as_str)).collect::<Vec<_>>().join("/"));
            prop_assert!(has_dot_segment(&path), "{}", path);
        }
    }
}
