//! One pass over a JSON text on the request path: whether it is one JSON value, and the
//! few members the gateway reads along, found while checking it rather than searched for
//! afterwards.
//!
//! Every event of every stream is checked before it is forwarded. The check accepts
//! exactly what `serde_json::from_slice::<IgnoredAny>` accepts (RFC 8259 syntax, strings
//! without raw control characters and with valid escapes, not checked as UTF-8), at about
//! serde's cost per byte: strings are skipped eight bytes at a time, or with `memchr` when
//! long; nesting is kept in a bit stack, so nothing is allocated below 256 levels; each
//! key is compared once with the handful the gateway reads ([`Sightings`]). What makes it
//! cheaper than a parse and then searches is that it is the only pass, and that a stream's
//! events, which repeat each other, are read from where each parts from the last
//! ([`read_after`], [`Memo`]).
//!
//! Two lighter readers check only structure (strings closed, brackets counted):
//! [`closes_top_level`] tells a member found from the end of a whole answer to be a
//! top-level one without reading the start, and [`object`] reads a few members out of an
//! object in one pass (an answer's usage; a request body's routing fields, its message
//! contents passed over at about `memchr`'s cost).
//!
//! The parts: `scan` (the pass and its resumption points), `members` (the APIs' keys it
//! notes, the only key names it knows), `memo` (resuming a stream's next event) and
//! `object` (the light reader); this module holds what they share.

use std::ops::Range;

mod members;
mod memo;
mod object;
mod scan;

pub use memo::{Memo, read_after};
pub use object::{Object, object};

use scan::Scanner;

/// What one pass saw in a valid JSON text, beyond its validity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sightings {
    /// Some member carries part of an answer: `content`, `text`, `delta`,
    /// `reasoning_content`, `reasoning`, `thinking` or `partial_json` with a non-empty
    /// string, or `tool_calls` with an array.
    pub token: bool,
    /// Some `finish_reason` (Anthropic: `stop_reason`) is a non-empty string.
    pub finish: bool,
    /// The top-level object's first member is `error`: how OpenAI reports a failure
    /// inside a stream.
    pub error: bool,
    /// The value of the top-level `usage` member (the first, should there be several).
    pub usage: Option<Range<usize>>,
    /// The value of `response.usage` (streamed Responses API events) or `message.usage`
    /// (Anthropic's `message_start`).
    pub envelope_usage: Option<Range<usize>>,
    /// The value of the top-level `choices` member.
    pub choices: Option<Range<usize>>,
}

/// What `text` holds when it is exactly one JSON value (optional whitespace around it);
/// `None` when it is not.
pub fn read(text: &[u8]) -> Option<Sightings> {
    let mut scanner = Scanner::new(text);
    scanner.value_then_end(None).then_some(scanner.sightings)
}

/// Whether `text` is exactly one JSON value: `read`'s verdict alone, which the tests
/// hold against serde's.
#[cfg(test)]
fn is_json(text: &[u8]) -> bool {
    read(text).is_some()
}

/// Where the value at the start of `text` ends: past its closing bracket or quote, or
/// its last scalar byte. Strings are skipped to their closing quote and brackets are
/// counted; nothing else is checked (not even raw control characters in strings). `None` when the value does not end in `text`.
pub fn value_end(text: &[u8]) -> Option<usize> {
    match text.first()? {
        b'{' | b'[' => Some(closing(text, 1)? + 1),
        b'"' => string_end(text, 1),
        _ => {
            let run = text.iter().position(|byte| !is_scalar_byte(*byte)).unwrap_or(text.len());
            (run > 0).then_some(run)
        }
    }
}

/// Whether `rest`, what follows a member's value, closes the object that member is in as
/// the top-level one: maybe more members, then its closing brace and only whitespace.
/// The bytes before are not looked at: this tells a member found from the end of a
/// document to be a top-level one without reading the whole of it.
pub fn closes_top_level(rest: &[u8]) -> bool {
    closing(rest, 0).is_some_and(|close| rest[close] == b'}' && rest[close + 1..].iter().all(u8::is_ascii_whitespace))
}

/// From `at`, the index of the bracket that closes the level `at` is in, strings skipped.
fn closing(text: &[u8], mut at: usize) -> Option<usize> {
    let mut open = 0usize;
    while let Some(byte) = text.get(at) {
        match byte {
            b'"' => {
                at = string_end(text, at + 1)?;
                continue;
            }
            b'{' | b'[' => open += 1,
            b'}' | b']' if open == 0 => return Some(at),
            b'}' | b']' => open -= 1,
            _ => {}
        }
        at += 1;
    }
    None
}

/// From `at`, just inside a string: the index just past its closing quote; `None` when
/// it does not close. Only quotes are looked for (`memchr`), and a quote is the closing
/// one when an even number of backslashes runs before it (each pair is one escaped
/// backslash; the run cannot reach back past the string's opening quote). So a long
/// string met whole (a request's message content, an answer's member passed over) costs
/// about what finding its quotes costs: its `\n`s and other escapes are not stops, and
/// what lies between the quotes is not checked.
fn string_end(text: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let quote = at + memchr::memchr(b'"', text.get(at..)?)?;
        let backslashes = text[..quote].iter().rev().take_while(|byte| **byte == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(quote + 1);
        }
        at = quote + 1;
    }
}

/// A byte that continues a number or a literal (`true`, `false`, `null`).
fn is_scalar_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.')
}

#[cfg(test)]
mod tests;
