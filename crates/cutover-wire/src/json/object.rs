//! A light reader for a few members of an object (a usage object, the top level of a
//! request body), member by member in one pass: it looks only as far as it must to find
//! where each member ends.

use std::ops::Range;

use super::{is_scalar_byte, string_end, value_end};

/// The object at the start of `text` (whitespace before it allowed), to be read member by
/// member; `None` when `text` starts with anything else. For reading a few members out of
/// an object in one pass: it looks only as far as it must to find where each member ends
/// (strings skipped as the scan skips them, brackets counted), and checks nothing else:
/// what lies inside the values it skips is not judged.
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

    /// Where the value of the key just read lies in the text, as written (whitespace
    /// around it left out), moving past it; `None` when it does not end where a value
    /// may, and the object is then broken.
    pub fn value_span(&mut self) -> Option<Range<usize>> {
        if self.state != Cursor::BeforeValue {
            return None;
        }
        let start = self.at;
        let length = self.skip_value()?;
        (self.state != Cursor::Broken).then_some(start..start + length)
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

    /// Where reading has got to: past the object once it has ended, else where the member
    /// it could not read starts (for a message naming where a text breaks off).
    pub fn position(&self) -> usize {
        self.at
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

    /// Moves past the value at the cursor and what follows it; its length, `None` when
    /// it does not end.
    fn skip_value(&mut self) -> Option<usize> {
        let length = value_end(&self.text[self.at..]);
        match length {
            Some(length) => {
                self.at += length;
                self.after_value();
            }
            None => self.state = Cursor::Broken,
        }
        length
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
