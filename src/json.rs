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
//! Two lighter readers serve whole answers, whose usage sits at their end:
//! [`closes_top_level`] tells a member found from the end of a document to be a
//! top-level one without reading the start, and [`object`] reads a few fields out of an
//! object in one pass.

use std::ops::Range;

use memchr::memchr2;

/// What one pass saw in a valid JSON text, beyond its validity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sightings {
    /// Some member carries part of an answer: `content`, `text`, `delta`,
    /// `reasoning_content` or `reasoning` with a non-empty string, or `tool_calls` with an
    /// array.
    pub token: bool,
    /// Some `finish_reason` is a non-empty string.
    pub finish: bool,
    /// The top-level object's first member is `error`: how OpenAI reports a failure
    /// inside a stream.
    pub error: bool,
    /// The value of the top-level `usage` member (the first, should there be several).
    pub usage: Option<Range<usize>>,
    /// The value of `response.usage` (streamed Responses API events).
    pub response_usage: Option<Range<usize>>,
    /// The value of the top-level `choices` member.
    pub choices: Option<Range<usize>>,
}

/// What `text` holds when it is exactly one JSON value (optional whitespace around it);
/// `None` when it is not.
pub fn read(text: &[u8]) -> Option<Sightings> {
    let mut scanner = Scanner::new(text);
    scanner.value_then_end(None).then_some(scanner.sightings)
}

/// What a stream's reader keeps of its last event. The events of a stream share most of
/// their bytes (the same id, model and shape; one token of content differs), so the next
/// event is read from where it parts from the last one. When all that differs lies
/// inside the last event's content string, only the new string is checked and the rest
/// is known (`read_string_edit`); otherwise the scan resumes at the last value that began
/// before the first differing byte, in the state it had there, which depends on no byte
/// past that one. Bounded: events up to `MEMO_MAX_EVENT` bytes are kept, with at most
/// `MEMO_MAX_MARKS` resumption points each.
#[derive(Debug, Default)]
pub struct Memo {
    last: Vec<u8>,
    marks: Vec<Mark>,
    /// What the last event holds.
    sightings: Sightings,
    /// Where the last event's last content string (a `Key::Text` string value) starts.
    text_string: Option<usize>,
}

/// Larger events are read whole and not kept.
const MEMO_MAX_EVENT: usize = 4096;
/// Resumption points kept per event: values at most `MARK_MAX_DEPTH` deep, in order.
const MEMO_MAX_MARKS: usize = 32;
const MARK_MAX_DEPTH: usize = 4;

/// `read(text)`, resumed where `text` parts from the event `memo` kept, which then keeps
/// `text`: the same answer as `read`, for less work when events repeat themselves.
pub fn read_after(text: &[u8], memo: &mut Memo) -> Option<Sightings> {
    if text.len() > MEMO_MAX_EVENT {
        memo.last.clear();
        memo.marks.clear();
        return read(text);
    }
    if memo.marks.capacity() == 0 {
        // Sized once per stream rather than grown event by event.
        memo.marks.reserve_exact(MEMO_MAX_MARKS);
        memo.last.reserve(text.len().max(512));
    }
    let shared = shared_prefix(&memo.last, text);
    if let Some(sightings) = memo.read_string_edit(text, shared) {
        return Some(sightings);
    }
    // A mark's state was reached having looked at the bytes up to its own position.
    let usable = memo.marks.partition_point(|mark| mark.at < shared);
    let mut scanner = match usable.checked_sub(1) {
        Some(last) => {
            memo.marks.truncate(last + 1);
            match memo.marks.pop() {
                Some(mark) => Scanner::resume(text, mark),
                None => Scanner::new(text),
            }
        }
        None => {
            memo.marks.clear();
            Scanner::new(text)
        }
    };
    let valid = scanner.value_then_end(Some(&mut memo.marks));
    memo.last.clear();
    if valid {
        memo.last.extend_from_slice(text);
        memo.sightings.clone_from(&scanner.sightings);
        memo.text_string = scanner.text_string;
    } else {
        memo.marks.clear();
    }
    valid.then_some(scanner.sightings)
}

impl Memo {
    /// `read(text)` when `text` differs from the last event only inside its last content
    /// string, and the new string is a valid, non-empty one: the event is then as valid
    /// as the last, and what it holds is the same (a token either way), its spans moved
    /// by the change in length. `shared`: the bytes the two events begin with.
    fn read_string_edit(&mut self, text: &[u8], shared: usize) -> Option<Sightings> {
        let start = self.text_string?;
        let old = &self.last[..];
        // Just past the old string's closing quote, and where the two events' common end
        // begins in the old one: what differs must lie between the quotes.
        let old_end = string_end(old, start + 1)?;
        let common_end = old.len() - shared_suffix(&old[shared..], &text[shared.min(text.len())..]);
        if shared <= start || common_end >= old_end || !self.sightings.token {
            return None;
        }
        // The new string, checked as the scan checks one, must end at the old one's
        // closing quote and hold something.
        let new_end = old_end + text.len() - old.len();
        let mut string = Scanner::new(text);
        string.at = start + 1;
        if !string.string_rest() || string.at != new_end || new_end - start == 2 {
            return None;
        }
        // Spans that end after the string move by the change in length; a span holding
        // the string (`choices`) grows or shrinks with it.
        let moved = |at: usize| if at >= old_end { at + text.len() - old.len() } else { at };
        let mut sightings = self.sightings.clone();
        for span in [&mut sightings.usage, &mut sightings.response_usage, &mut sightings.choices].into_iter().flatten()
        {
            *span = moved(span.start)..moved(span.end);
        }
        // Marks past the string would hold old positions: the next resumed scan starts
        // at the last one before it.
        let kept = self.marks.partition_point(|mark| mark.at <= start);
        self.marks.truncate(kept);
        self.last.clear();
        self.last.extend_from_slice(text);
        self.sightings.clone_from(&sightings);
        Some(sightings)
    }
}
/// How many trailing bytes `a` and `b` share, compared eight at a time.
fn shared_suffix(a: &[u8], b: &[u8]) -> usize {
    let length = a.len().min(b.len());
    let (a, b) = (&a[a.len() - length..], &b[b.len() - length..]);
    let mut matched = 0;
    for (x, y) in a.rchunks_exact(8).zip(b.rchunks_exact(8)) {
        let differ =
            u64::from_be_bytes(x.try_into().unwrap_or_default()) ^ u64::from_be_bytes(y.try_into().unwrap_or_default());
        if differ != 0 {
            return matched + differ.trailing_zeros() as usize / 8;
        }
        matched += 8;
    }
    let (a, b) = (&a[..length - matched], &b[..length - matched]);
    matched + a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count()
}

/// How many leading bytes `a` and `b` share, compared eight at a time.
fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
    let length = a.len().min(b.len());
    let (a, b) = (&a[..length], &b[..length]);
    let mut at = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let differ =
            u64::from_le_bytes(x.try_into().unwrap_or_default()) ^ u64::from_le_bytes(y.try_into().unwrap_or_default());
        if differ != 0 {
            return at + differ.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + a[at..].iter().zip(&b[at..]).take_while(|(x, y)| x == y).count()
}

/// The scanner's whole state at the start of a value, for `read_after` to resume from.
#[derive(Debug, Clone)]
struct Mark {
    at: usize,
    /// The nesting's first word: marks are taken at most `MARK_MAX_DEPTH` deep.
    nesting: u64,
    depth: usize,
    sightings: Sightings,
    pending: Key,
    watched: Option<Watched>,
    in_response: bool,
    text_string: Option<usize>,
}

/// Whether `text` is exactly one JSON value: `read`'s verdict alone, which the tests
/// hold against serde's.
#[cfg(test)]
fn is_json(text: &[u8]) -> bool {
    read(text).is_some()
}

/// Where the value at the start of `text` ends: past its closing bracket or quote, or
/// its last scalar byte. Strings are skipped as the scan proper skips them and brackets
/// are counted; nothing else is checked. `None` when the value does not end in `text`.
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

/// From `at`, just inside a string: the index just past its closing quote.
fn string_end(text: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += string_stop(text.get(at..)?)?;
        match text[at] {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => return None,
        }
    }
}

/// The object at the start of `text` (whitespace before it allowed), to be read member by
/// member; `None` when `text` starts with anything else. For reading a few fields out of a
/// small object (a usage object) in one pass: it looks only as far as it must to find
/// where each member ends, and checks nothing else.
pub fn object(text: &[u8]) -> Option<Object<'_>> {
    let at = text.iter().position(|byte| !byte.is_ascii_whitespace())?;
    (text[at] == b'{').then_some(Object { text, at: at + 1, state: Cursor::Opened })
}

/// A reader of one object's members, in order: [`Object::key`] gives each key, and the
/// value after it is read with [`Object::whole_number`] or [`Object::within`], or skipped
/// by the next call to `key`. Reading stops at the object's end or at the first thing that
/// is not a member.
#[derive(Debug)]
pub struct Object<'a> {
    text: &'a [u8],
    at: usize,
    state: Cursor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Just past the opening brace: a key or the closing brace is next.
    Opened,
    /// Past a comma: a key is next.
    BeforeKey,
    /// Just past a key's colon: its value is next.
    BeforeValue,
    /// Past the closing brace, at `at`.
    Closed,
    /// Something that is not a member: nothing more is read.
    Broken,
}

impl<'a> Object<'a> {
    /// The next member's key (its bytes between the quotes, escapes as written), the value
    /// of the last one skipped if it was not read; `None` at the object's end or at the
    /// first thing that is not a member.
    pub fn key(&mut self) -> Option<&'a [u8]> {
        if self.state == Cursor::BeforeValue {
            self.skip_value();
        }
        if !matches!(self.state, Cursor::Opened | Cursor::BeforeKey) {
            return None;
        }
        self.skip_whitespace();
        if self.state == Cursor::Opened && self.text.get(self.at) == Some(&b'}') {
            self.at += 1;
            self.state = Cursor::Closed;
            return None;
        }
        let key = self.read_key();
        self.state = if key.is_some() { Cursor::BeforeValue } else { Cursor::Broken };
        key
    }

    /// The value of the key just read, when it is a whole number within `u64`; any other
    /// value is skipped and `None`.
    pub fn whole_number(&mut self) -> Option<u64> {
        if self.state != Cursor::BeforeValue {
            return None;
        }
        let (mut at, mut number) = (self.at, Some(0u64));
        while let Some(digit) = self.text.get(at).filter(|byte| byte.is_ascii_digit()) {
            number = number.and_then(|number| number.checked_mul(10)?.checked_add(u64::from(digit - b'0')));
            at += 1;
        }
        if at == self.at || self.text.get(at).is_some_and(|byte| is_scalar_byte(*byte)) {
            // Not a whole number: a string, an object, `-1`, `2.5`, `null`...
            self.skip_value();
            return None;
        }
        self.at = at;
        self.after_value();
        number
    }

    /// Reads the value of the key just read with `read` when it is an object, and moves
    /// past it (the members `read` left unread skipped); any other value is skipped and
    /// `None`.
    pub fn within<T>(&mut self, read: impl FnOnce(&mut Object<'a>) -> T) -> Option<T> {
        if self.state != Cursor::BeforeValue {
            return None;
        }
        if self.text.get(self.at) != Some(&b'{') {
            self.skip_value();
            return None;
        }
        let mut inner = Object { text: self.text, at: self.at + 1, state: Cursor::Opened };
        let value = read(&mut inner);
        while inner.key().is_some() {}
        if inner.state != Cursor::Closed {
            self.state = Cursor::Broken;
            return None;
        }
        self.at = inner.at;
        self.after_value();
        Some(value)
    }

    /// Where the object ended (just past its closing brace), once [`Object::key`] has
    /// returned `None` there; `None` before, or when it is broken.
    pub fn end(&self) -> Option<usize> {
        (self.state == Cursor::Closed).then_some(self.at)
    }

    fn skip_whitespace(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// A quoted key and its colon, leaving the cursor at its value.
    fn read_key(&mut self) -> Option<&'a [u8]> {
        if self.text.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        self.at = string_end(self.text, start)?;
        let key = &self.text[start..self.at - 1];
        self.skip_whitespace();
        if self.text.get(self.at) != Some(&b':') {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        Some(key)
    }

    fn skip_value(&mut self) {
        match value_end(&self.text[self.at..]) {
            Some(length) => {
                self.at += length;
                self.after_value();
            }
            None => self.state = Cursor::Broken,
        }
    }

    /// After a value: a comma and the next key, or the closing brace.
    fn after_value(&mut self) {
        self.skip_whitespace();
        self.state = match self.text.get(self.at) {
            Some(b',') => {
                self.at += 1;
                Cursor::BeforeKey
            }
            Some(b'}') => {
                self.at += 1;
                Cursor::Closed
            }
            _ => Cursor::Broken,
        };
    }
}

/// A byte that continues a number or a literal (`true`, `false`, `null`).
fn is_scalar_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.')
}

/// The keys the scan notes; every other key is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Other,
    Text,
    ToolCalls,
    FinishReason,
    Usage,
    Response,
    Choices,
    Error,
}

impl Key {
    fn of(name: &[u8]) -> Key {
        match name {
            b"content" | b"text" | b"delta" | b"reasoning_content" | b"reasoning" => Key::Text,
            b"tool_calls" => Key::ToolCalls,
            b"finish_reason" => Key::FinishReason,
            b"usage" => Key::Usage,
            b"response" => Key::Response,
            b"choices" => Key::Choices,
            b"error" => Key::Error,
            _ => Key::Other,
        }
    }
}

/// A member whose value's span is wanted, from where its value starts until it ends at
/// the depth it started at.
#[derive(Debug, Clone, Copy)]
struct Watched {
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

struct Scanner<'a> {
    data: &'a [u8],
    at: usize,
    nesting: Nesting,
    sightings: Sightings,
    /// The key whose value comes next.
    pending: Key,
    watched: Option<Watched>,
    /// Inside the top-level `response` object.
    in_response: bool,
    /// Where the last content string (a `Key::Text` string value) seen so far starts.
    text_string: Option<usize>,
}

impl<'a> Scanner<'a> {
    fn new(data: &'a [u8]) -> Scanner<'a> {
        Scanner {
            data,
            at: 0,
            nesting: Nesting::default(),
            sightings: Sightings::default(),
            pending: Key::Other,
            watched: None,
            in_response: false,
            text_string: None,
        }
    }

    fn resume(data: &'a [u8], mark: Mark) -> Scanner<'a> {
        let Mark { at, nesting, depth, sightings, pending, watched, in_response, text_string } = mark;
        let mut inline = [0; INLINE_WORDS];
        inline[0] = nesting;
        let nesting = Nesting { inline, spilled: Vec::new(), depth };
        Scanner { data, at, nesting, sightings, pending, watched, in_response, text_string }
    }

    fn mark(&self) -> Mark {
        Mark {
            at: self.at,
            nesting: self.nesting.inline[0],
            depth: self.nesting.depth,
            sightings: self.sightings.clone(),
            pending: self.pending,
            watched: self.watched,
            in_response: self.in_response,
            text_string: self.text_string,
        }
    }

    /// The scan; with `marks`, the state at the start of each value not too deep is
    /// noted there (a scan resumed at a value begins with it).
    fn value_then_end(&mut self, mut marks: Option<&mut Vec<Mark>>) -> bool {
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
                    self.in_response |= key == Key::Response && self.nesting.depth == 1;
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
            Key::Usage if depth == 1 || (depth == 2 && self.in_response) => {
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
            self.in_response = false;
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
            (Key::Usage, _) => &mut self.sightings.response_usage,
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

/// A value that starts as a string with at least one character (`""` does not).
fn is_non_empty_string(value: &[u8]) -> bool {
    value.len() > 1 && value[0] == b'"' && value[1] != b'"'
}

/// Where a string's run of plain characters stops: at a quote, a backslash or a raw
/// control character. Keys, ids and one token of content end within a few words, which
/// are tested eight bytes at a time; a longer run is left to `memchr2`, with the control
/// characters it does not look for checked by a fold that vectorises.
fn string_stop(rest: &[u8]) -> Option<usize> {
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

#[cfg(test)]
mod tests;
