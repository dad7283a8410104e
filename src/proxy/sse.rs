//! Watches a server-sent-event stream as it is forwarded, without holding it: finds the
//! first content chunk (for time to first token), the `finish_reason`, `[DONE]`, and
//! error events. Bytes may be split anywhere; only the current line and the current
//! event's data are buffered, each within a fixed bound.

use memchr::{memchr, memmem};

/// Past this many bytes in one line or one event, the observer stops looking (the stream
/// itself still passes through untouched).
const MAX_EVENT_BYTES: usize = 1 << 20;

/// What one fed chunk revealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// This chunk completed the first event that carries content (text, tool call, …).
    pub first_token: bool,
}

#[derive(Debug, Default)]
pub struct SseObserver {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    saw_token: bool,
    saw_finish: bool,
    saw_done: bool,
    saw_error: bool,
    overflowed: bool,
}

impl SseObserver {
    pub fn new() -> SseObserver {
        SseObserver::default()
    }

    pub fn saw_token(&self) -> bool {
        self.saw_token
    }

    /// An event carried a `finish_reason`: the answer is complete.
    pub fn saw_finish(&self) -> bool {
        self.saw_finish
    }

    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// The upstream itself sent an error event.
    pub fn saw_error(&self) -> bool {
        self.saw_error
    }

    pub fn feed(&mut self, mut chunk: &[u8]) -> Signals {
        let had_token = self.saw_token;
        while !self.overflowed && !chunk.is_empty() {
            match memchr(b'\n', chunk) {
                Some(end) => {
                    if self.line.is_empty() {
                        self.line_complete(&chunk[..end]);
                    } else {
                        self.line.extend_from_slice(&chunk[..end]);
                        let line = std::mem::take(&mut self.line);
                        self.line_complete(&line);
                        self.line = line;
                        self.line.clear();
                    }
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    self.check_bound(self.line.len());
                    break;
                }
            }
        }
        Signals { first_token: self.saw_token && !had_token }
    }

    fn check_bound(&mut self, size: usize) {
        if size > MAX_EVENT_BYTES {
            self.overflowed = true;
            self.line = Vec::new();
            self.data = Vec::new();
        }
    }

    fn line_complete(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let Some(value) = line.strip_prefix(b"data:") else { return };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if self.has_data {
            self.data.push(b'\n');
        }
        self.has_data = true;
        self.data.extend_from_slice(value);
        self.check_bound(self.data.len());
    }

    fn dispatch(&mut self) {
        if !self.has_data {
            return;
        }
        let data = &self.data[..];
        if data == b"[DONE]" {
            self.saw_done = true;
        } else {
            self.saw_token |= !self.saw_token && carries_token(data);
            self.saw_finish |= !self.saw_finish && has_string_value(data, b"\"finish_reason\"");
            self.saw_error |= data.starts_with(b"{\"error\"") || data.starts_with(b"{ \"error\"");
        }
        self.data.clear();
        self.has_data = false;
    }
}

/// Whether a chunk carries part of the answer: chat content or tool calls, legacy
/// completion text, or a Responses API text delta. Empty strings (the role chunk) do not.
fn carries_token(data: &[u8]) -> bool {
    has_string_value(data, b"\"content\"")
        || has_string_value(data, b"\"text\"")
        || has_string_value(data, b"\"delta\"")
        || value_after(data, b"\"tool_calls\"").is_some_and(|value| value.starts_with(b"["))
}

/// Whether `key` is followed by a non-empty JSON string. An escaped occurrence inside a
/// string value (`\"content\"`) cannot match, since its closing quote is preceded by `\`.
fn has_string_value(data: &[u8], key: &[u8]) -> bool {
    value_after(data, key).is_some_and(|value| value.len() > 1 && value[0] == b'"' && value[1] != b'"')
}

/// The bytes after the first `key:` (whitespace skipped), if any.
fn value_after<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut search_from = 0;
    while let Some(found) = memmem::find(&data[search_from..], key) {
        let after = &data[search_from + found + key.len()..];
        let after = trim_start(after);
        if let Some(value) = after.strip_prefix(b":") {
            return Some(trim_start(value));
        }
        search_from += found + key.len();
    }
    None
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|byte| byte.is_ascii_whitespace()).count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests;
