//! Whether bytes are one JSON value, decided in one pass without building it, and where
//! a top-level member's value lies.
//!
//! Every event of every stream is checked before it is forwarded, and every whole answer
//! of a usage-carrying endpoint is searched for its `usage`, so this is on the hot path:
//! it accepts exactly what `serde_json::from_slice::<IgnoredAny>`
//! accepts (RFC 8259 syntax, strings without raw control characters and with valid
//! escapes, not checked as UTF-8), at a fraction of its cost: string bodies are skipped
//! with a table walk, or `memchr` when long, up to the next quote or backslash, and
//! nesting is kept in a bit stack rather than a vector, so a check allocates nothing.
//! Nesting deeper than the bit stack holds, which no real answer reaches, is handed to
//! `serde_json` itself.

use std::collections::BTreeMap;

use memchr::memchr2;
use serde_json::value::RawValue;

/// Nesting levels the bit stack holds (one bit per level: object or array).
const MAX_DEPTH: usize = 256;

/// Whether `data` is exactly one JSON value, with optional whitespace around it.
pub fn is_json(data: &[u8]) -> bool {
    let mut scanner = Scanner::new(data, None);
    match scanner.value_then_end() {
        Scan::Valid => true,
        Scan::Invalid => false,
        Scan::TooDeep => serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
    }
}

/// The value of `key` in the object `data` is, if `data` is valid JSON, an object, and
/// has that member at its top level (the last one, should it repeat). `key` is compared
/// with the key as written (no escapes decoded). Nested members of the same name are not
/// it: `{"a": {"usage": 1}}` has no top-level `usage`.
pub fn top_level_member<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut scanner = Scanner::new(data, Some(key));
    match scanner.value_then_end() {
        Scan::Valid => scanner.found.map(|(start, end)| &data[start..end]),
        Scan::Invalid => None,
        Scan::TooDeep => {
            let object: BTreeMap<String, &RawValue> = serde_json::from_slice(data).ok()?;
            object.get(std::str::from_utf8(key).ok()?).map(|value| value.get().as_bytes())
        }
    }
}

enum Scan {
    Valid,
    Invalid,
    TooDeep,
}

/// Which container each open level is: a bit per level, set for an object.
#[derive(Default)]
struct Nesting {
    bits: [u64; MAX_DEPTH / 64],
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

impl Nesting {
    /// Opens a level; false when the stack is full.
    fn push(&mut self, container: Container) -> bool {
        if self.depth == MAX_DEPTH {
            return false;
        }
        let (word, bit) = (self.depth / 64, self.depth % 64);
        if container == Container::Object {
            self.bits[word] |= 1 << bit;
        } else {
            self.bits[word] &= !(1 << bit);
        }
        self.depth += 1;
        true
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }

    fn innermost(&self) -> Option<Container> {
        let level = self.depth.checked_sub(1)?;
        let object = self.bits[level / 64] & (1 << (level % 64)) != 0;
        Some(if object { Container::Object } else { Container::Array })
    }
}

struct Scanner<'a> {
    data: &'a [u8],
    at: usize,
    nesting: Nesting,
    /// The top-level member looked for, if any.
    wanted: Option<&'a [u8]>,
    /// Where the wanted member's value began, while it is being scanned.
    member_start: Option<usize>,
    /// The wanted member's value, once scanned.
    found: Option<(usize, usize)>,
}

impl<'a> Scanner<'a> {
    fn new(data: &'a [u8], wanted: Option<&'a [u8]>) -> Scanner<'a> {
        Scanner { data, at: 0, nesting: Nesting::default(), wanted, member_start: None, found: None }
    }

    fn value_then_end(&mut self) -> Scan {
        'value: loop {
            self.skip_whitespace();
            let valid = match self.next() {
                Some(b'{') => {
                    if !self.nesting.push(Container::Object) {
                        return Scan::TooDeep;
                    }
                    self.skip_whitespace();
                    if self.peek() != Some(b'}') {
                        if !self.key() {
                            return Scan::Invalid;
                        }
                        continue 'value;
                    }
                    self.at += 1;
                    self.nesting.pop();
                    true
                }
                Some(b'[') => {
                    if !self.nesting.push(Container::Array) {
                        return Scan::TooDeep;
                    }
                    self.skip_whitespace();
                    if self.peek() != Some(b']') {
                        continue 'value;
                    }
                    self.at += 1;
                    self.nesting.pop();
                    true
                }
                Some(b'"') => self.string_rest(),
                Some(b't') => self.literal_rest(b"rue"),
                Some(b'f') => self.literal_rest(b"alse"),
                Some(b'n') => self.literal_rest(b"ull"),
                Some(first @ (b'-' | b'0'..=b'9')) => self.number_rest(first),
                _ => false,
            };
            if !valid {
                return Scan::Invalid;
            }
            // A value ended: close what it ends, or go on to the next element.
            loop {
                if let Some(start) = self.member_start
                    && self.nesting.depth == 1
                {
                    self.found = Some((start, self.at));
                    self.member_start = None;
                }
                self.skip_whitespace();
                match (self.nesting.innermost(), self.next()) {
                    (None, None) => return Scan::Valid,
                    (Some(Container::Array), Some(b',')) => continue 'value,
                    (Some(Container::Object), Some(b',')) => {
                        self.skip_whitespace();
                        if !self.key() {
                            return Scan::Invalid;
                        }
                        continue 'value;
                    }
                    (Some(Container::Array), Some(b']')) | (Some(Container::Object), Some(b'}')) => self.nesting.pop(),
                    _ => return Scan::Invalid,
                }
            }
        }
    }

    /// An object's key and its colon, the whitespace before the key already skipped.
    fn key(&mut self) -> bool {
        let start = self.at + 1;
        if self.next() != Some(b'"') || !self.string_rest() {
            return false;
        }
        let name = &self.data[start..self.at - 1];
        self.skip_whitespace();
        if self.next() != Some(b':') {
            return false;
        }
        if self.nesting.depth == 1 && self.wanted == Some(name) {
            self.skip_whitespace();
            self.member_start = Some(self.at);
        }
        true
    }

    fn next(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// After `t`, `f` or `n`: the rest of `true`, `false` or `null`.
    fn literal_rest(&mut self, rest: &[u8]) -> bool {
        let matches = self.data[self.at..].starts_with(rest);
        if matches {
            self.at += rest.len();
        }
        matches
    }

    /// After the opening quote: the string's body and its closing quote.
    fn string_rest(&mut self) -> bool {
        loop {
            let Some(stop) = string_stop(&self.data[self.at..]) else { return false };
            let stop_byte = self.data[self.at + stop];
            self.at += stop + 1;
            match stop_byte {
                b'"' => return true,
                b'\\' => {}
                _ => return false, // a raw control character
            }
            match self.next() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                Some(b'u') => {
                    let hex = self.data.get(self.at..self.at + 4);
                    if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                        return false;
                    }
                    self.at += 4;
                }
                _ => return false,
            }
        }
    }

    /// After the first character (`-` or a digit): the rest of a number.
    fn number_rest(&mut self, first: u8) -> bool {
        let leading = if first == b'-' {
            match self.next() {
                Some(digit @ b'0'..=b'9') => digit,
                _ => return false,
            }
        } else {
            first
        };
        if leading != b'0' {
            self.skip_digits();
        } else if self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            return false;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.skip_digits() == 0 {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.skip_digits() == 0 {
                return false;
            }
        }
        true
    }

    fn skip_digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }
}

/// Where a string's run of plain characters stops: at a quote, a backslash or a raw
/// control character. Keys and ids end within a few bytes, where a table walk beats
/// `memchr`'s set-up; a longer run (content) is left to `memchr2`, with the control
/// characters it does not look for checked by a fold that vectorises.
fn string_stop(rest: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    let head = &rest[..rest.len().min(SHORT)];
    if let Some(stop) = head.iter().position(|byte| STRING_STOPS[usize::from(*byte)]) {
        return Some(stop);
    }
    let tail = &rest[head.len()..];
    let found = memchr2(b'"', b'\\', tail);
    let run = &tail[..found.unwrap_or(tail.len())];
    if run.iter().fold(false, |seen, byte| seen | (*byte < 0x20)) {
        return run.iter().position(|byte| *byte < 0x20).map(|control| head.len() + control);
    }
    found.map(|stop| head.len() + stop)
}

/// The bytes that end a run of plain string characters.
static STRING_STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        stops[byte] = true;
        byte += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

#[cfg(test)]
mod tests;
