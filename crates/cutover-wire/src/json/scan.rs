//! The scan itself: one pass over a JSON text that checks it as `serde_json` would and
//! notes the members `members::Key` names where it meets them. Strings are skipped eight
//! bytes at a time or with `memchr` when long; nesting is a bit stack, inline for 256
//! levels. It can stop at each value to leave a resumption point (`Mark`) and start again
//! from one (`memo`).

use memchr::memchr2;

use super::Sightings;
use super::members::Key;
use super::memo::{MARK_MAX_DEPTH, MEMO_MAX_MARKS, Mark};

/// A member whose value's span is wanted, from where its value starts until it ends at
/// the depth it started at.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watched {
    key: Key,
    depth: usize,
    start: usize,
}

/// Words of nesting bits kept inline: 256 levels.
const INLINE_WORDS: usize = 4;

/// Which container each open level is: a bit per level, set for an object. The first 256
/// levels live inline; deeper ones, which no real answer reaches, spill to the heap.
#[derive(Default)]
struct Nesting {
    inline: [u64; INLINE_WORDS],
    spilled: Vec<u64>,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

impl Nesting {
    fn push(&mut self, container: Container) {
        let (word, bit) = (self.depth / 64, self.depth % 64);
        if word >= self.inline.len() + self.spilled.len() {
            self.spilled.push(0);
        }
        let word = match self.inline.get_mut(word) {
            Some(word) => word,
            None => &mut self.spilled[word - INLINE_WORDS],
        };
        if container == Container::Object {
            *word |= 1 << bit;
        } else {
            *word &= !(1 << bit);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }

    fn innermost(&self) -> Option<Container> {
        let level = self.depth.checked_sub(1)?;
        let word = match self.inline.get(level / 64) {
            Some(word) => *word,
            None => self.spilled[level / 64 - INLINE_WORDS],
        };
        Some(if word & (1 << (level % 64)) != 0 { Container::Object } else { Container::Array })
    }
}

pub(super) struct Scanner<'a> {
    data: &'a [u8],
    pub(super) at: usize,
    nesting: Nesting,
    pub(super) sightings: Sightings,
    /// The key whose value comes next.
    pending: Key,
    watched: Option<Watched>,
    /// Inside the top-level `response` object.
    in_envelope: bool,
    /// Where the last content string (a `Key::Text` string value) seen so far starts.
    pub(super) text_string: Option<usize>,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(data: &'a [u8]) -> Scanner<'a> {
        Scanner {
            data,
            at: 0,
            nesting: Nesting::default(),
            sightings: Sightings::default(),
            pending: Key::Other,
            watched: None,
            in_envelope: false,
            text_string: None,
        }
    }

    pub(super) fn resume(data: &'a [u8], mark: Mark) -> Scanner<'a> {
        let Mark { at, nesting, depth, sightings, pending, watched, in_envelope, text_string } = mark;
        let mut inline = [0; INLINE_WORDS];
        inline[0] = nesting;
        let nesting = Nesting { inline, spilled: Vec::new(), depth };
        Scanner { data, at, nesting, sightings, pending, watched, in_envelope, text_string }
    }

    fn mark(&self) -> Mark {
        Mark {
            at: self.at,
            nesting: self.nesting.inline[0],
            depth: self.nesting.depth,
            sightings: self.sightings.clone(),
            pending: self.pending,
            watched: self.watched,
            in_envelope: self.in_envelope,
            text_string: self.text_string,
        }
    }

    /// The scan; with `marks`, the state at the start of each value not too deep is
    /// noted there (a scan resumed at a value begins with it).
    pub(super) fn value_then_end(&mut self, mut marks: Option<&mut Vec<Mark>>) -> bool {
        'value: loop {
            if let Some(marks) = marks.as_deref_mut()
                && self.nesting.depth <= MARK_MAX_DEPTH
                && marks.len() < MEMO_MAX_MARKS
            {
                marks.push(self.mark());
            }
            self.skip_whitespace();
            let key = std::mem::replace(&mut self.pending, Key::Other);
            if key != Key::Other {
                self.sight(key);
            }
            let valid = match self.next() {
                Some(b'{') => {
                    self.in_envelope |= key == Key::Envelope && self.nesting.depth == 1;
                    self.nesting.push(Container::Object);
                    self.skip_whitespace();
                    if self.peek() != Some(b'}') {
                        if !self.key(true) {
                            return false;
                        }
                        continue 'value;
                    }
                    self.at += 1;
                    self.close();
                    true
                }
                Some(b'[') => {
                    self.nesting.push(Container::Array);
                    self.skip_whitespace();
                    if self.peek() != Some(b']') {
                        continue 'value;
                    }
                    self.at += 1;
                    self.close();
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
                return false;
            }
            self.value_ended();
            // A value ended: close what it ends, or go on to the next element.
            loop {
                self.skip_whitespace();
                match (self.nesting.innermost(), self.next()) {
                    (None, None) => return true,
                    (Some(Container::Array), Some(b',')) => continue 'value,
                    (Some(Container::Object), Some(b',')) => {
                        self.skip_whitespace();
                        if !self.key(false) {
                            return false;
                        }
                        continue 'value;
                    }
                    (Some(Container::Array), Some(b']')) | (Some(Container::Object), Some(b'}')) => {
                        self.close();
                        self.value_ended();
                    }
                    _ => return false,
                }
            }
        }
    }

    /// The value of a noted key starts at `self.at`.
    fn sight(&mut self, key: Key) {
        let depth = self.nesting.depth;
        let value = &self.data[self.at..];
        match key {
            Key::Text => {
                if value.first() == Some(&b'"') {
                    self.text_string = Some(self.at);
                }
                self.sightings.token |= is_non_empty_string(value);
            }
            Key::ToolCalls => self.sightings.token |= value.first() == Some(&b'['),
            Key::FinishReason => self.sightings.finish |= is_non_empty_string(value),
            Key::Usage if depth == 1 || (depth == 2 && self.in_envelope) => {
                self.watched = Some(Watched { key, depth, start: self.at });
            }
            Key::Choices if depth == 1 => self.watched = Some(Watched { key, depth, start: self.at }),
            _ => {}
        }
    }

    /// A container closed.
    fn close(&mut self) {
        self.nesting.pop();
        if self.nesting.depth == 1 {
            self.in_envelope = false;
        }
    }

    /// A value ended at the current depth: the end of a watched member's value?
    fn value_ended(&mut self) {
        let Some(watched) = self.watched else { return };
        if watched.depth != self.nesting.depth {
            return;
        }
        self.watched = None;
        let span = Some(watched.start..self.at);
        let slot = match (watched.key, watched.depth) {
            (Key::Usage, 1) => &mut self.sightings.usage,
            (Key::Usage, _) => &mut self.sightings.envelope_usage,
            _ => &mut self.sightings.choices,
        };
        if slot.is_none() {
            *slot = span;
        }
    }

    /// An object's key and its colon, the whitespace before the key already skipped;
    /// `first` for an object's first member.
    fn key(&mut self, first: bool) -> bool {
        if self.next() != Some(b'"') {
            return false;
        }
        let start = self.at;
        if !self.string_rest() {
            return false;
        }
        let key = Key::of(&self.data[start..self.at - 1]);
        if key == Key::Error && first && self.nesting.depth == 1 {
            self.sightings.error = true;
        }
        self.pending = key;
        self.skip_whitespace();
        self.next() == Some(b':')
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
    pub(super) fn string_rest(&mut self) -> bool {
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

/// A value that starts as a string with at least one character (`""` does not).
fn is_non_empty_string(value: &[u8]) -> bool {
    value.len() > 1 && value[0] == b'"' && value[1] != b'"'
}

/// Where a string's run of plain characters stops: at a quote, a backslash or a raw
/// control character. Keys, ids and one token of content end within a few words, which
/// are tested eight bytes at a time; a longer run is left to `memchr2`, with the control
/// characters it does not look for checked by a fold that vectorises.
pub(super) fn string_stop(rest: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let head = &rest[..rest.len().min(SHORT)];
    let mut words = head.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let stops = stops_in(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        if stops != 0 {
            return Some(at + stops.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let remainder = words.remainder();
    if let Some(stop) = remainder.iter().position(|byte| *byte == b'"' || *byte == b'\\' || *byte < 0x20) {
        return Some(at + stop);
    }
    let tail = &rest[head.len()..];
    let found = memchr2(b'"', b'\\', tail);
    let run = &tail[..found.unwrap_or(tail.len())];
    if run.iter().fold(false, |seen, byte| seen | (*byte < 0x20)) {
        return run.iter().position(|byte| *byte < 0x20).map(|control| head.len() + control);
    }
    found.map(|stop| head.len() + stop)
}

/// The high bit of each byte of `word` (little-endian) that is a quote, a backslash or a
/// control character. Only the lowest marked byte is exact (a borrow may mark bytes above
/// a true one), which is the only one read.
fn stops_in(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |word: u64, bound: u8| word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGH;
    below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, 0x20)
}
