//! Frames a server-sent-event stream as it is forwarded: only whole events go out, each
//! checked on the way (its data must be JSON or `[DONE]`), so nothing broken reaches
//! the client. Reads along for the first content chunk (time to first token), the
//! `finish_reason`, `[DONE]` and error events. Bytes may be split anywhere by the
//! network; only the current incomplete event is buffered, within a fixed bound, and a
//! chunk made of whole events — the usual case — is forwarded without a copy.

use bytes::{Bytes, BytesMut};
use std::sync::LazyLock;

use memchr::memchr;
use memchr::memmem::Finder;

mod json;

/// Past this size, one event is taken for a runaway stream.
const MAX_EVENT_BYTES: usize = 4 << 20;

/// Why a stream cannot be forwarded any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamFault {
    #[error("the upstream sent an event that is not valid JSON")]
    Malformed,
    #[error("the upstream sent an event larger than {MAX_EVENT_BYTES} bytes")]
    Oversized,
}

#[derive(Debug, Default)]
pub struct SseFramer {
    /// The incomplete event carried over from earlier chunks.
    pending: BytesMut,
    saw_token: bool,
    saw_finish: bool,
    saw_done: bool,
    saw_error: bool,
}

impl SseFramer {
    pub fn new() -> SseFramer {
        SseFramer::default()
    }

    /// An event carried content: text, a tool call, reasoning.
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

    /// Takes the next chunk and returns the whole events now ready to forward (possibly
    /// none), keeping the incomplete rest for the next chunk.
    pub fn push(&mut self, chunk: Bytes) -> Result<Bytes, StreamFault> {
        if self.pending.is_empty() {
            let complete = self.scan(&chunk)?;
            if complete < chunk.len() {
                self.pending.extend_from_slice(&chunk[complete..]);
            }
            return Ok(chunk.slice(..complete));
        }
        self.pending.extend_from_slice(&chunk);
        let buffered = std::mem::take(&mut self.pending);
        let complete = self.scan(&buffered)?;
        let mut buffered = buffered;
        let ready = buffered.split_to(complete).freeze();
        self.pending = buffered;
        Ok(ready)
    }

    /// At the end of the stream: the last event, if the upstream left it unterminated,
    /// completed with its blank line.
    pub fn finish(&mut self) -> Result<Option<Bytes>, StreamFault> {
        if self.pending.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let mut last = std::mem::take(&mut self.pending);
        while last.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
            last.truncate(last.len() - 1);
        }
        last.extend_from_slice(b"\n\n");
        let complete = self.scan(&last)?;
        Ok(Some(last.split_to(complete).freeze()))
    }

    /// Examines every complete event in `buffer`; returns where the complete part ends.
    /// Each line is found once (`memchr`), and an event's `data:` lines are noted on the
    /// way, so the usual event (one `data:` line) is examined where it lies.
    fn scan(&mut self, buffer: &[u8]) -> Result<usize, StreamFault> {
        let mut event_start = 0;
        let mut line_start = 0;
        let mut data = DataLines::None;
        while let Some(newline) = memchr(b'\n', &buffer[line_start..]) {
            let line_end = line_start + newline;
            let line = &buffer[line_start..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                match std::mem::replace(&mut data, DataLines::None) {
                    DataLines::None => {}
                    DataLines::One { start, end } => self.examine(&buffer[start..end])?,
                    DataLines::Several => self.examine(&joined_data(&buffer[event_start..line_end]))?,
                }
                event_start = line_end + 1;
            } else if let Some(value) = line.strip_prefix(b"data:") {
                let value_start = line_start + 5 + usize::from(value.first() == Some(&b' '));
                data = match data {
                    DataLines::None => DataLines::One { start: value_start, end: line_start + line.len() },
                    DataLines::One { .. } | DataLines::Several => DataLines::Several,
                };
            }
            line_start = line_end + 1;
        }
        if buffer.len() - event_start > MAX_EVENT_BYTES {
            return Err(StreamFault::Oversized);
        }
        Ok(event_start)
    }

    /// Reads one event's data along: validity, tokens, finish, `[DONE]`, errors.
    fn examine(&mut self, data: &[u8]) -> Result<(), StreamFault> {
        if data == b"[DONE]" {
            self.saw_done = true;
            return Ok(());
        }
        if !json::is_json(data) {
            return Err(StreamFault::Malformed);
        }
        self.saw_token |= !self.saw_token && carries_token(data);
        self.saw_finish |= !self.saw_finish && carries_finish(data);
        self.saw_error |= is_error_event(data);
        Ok(())
    }
}

/// The `data:` lines of the event being scanned.
enum DataLines {
    None,
    /// Exactly one, at `start..end` of the buffer (after `data:` and one space).
    One {
        start: usize,
        end: usize,
    },
    /// More than one: rare, joined with newlines when the event is complete.
    Several,
}

/// An event's `data:` values joined with newlines, as the SSE specification reads them.
fn joined_data(event: &[u8]) -> Vec<u8> {
    event
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(|value| value.strip_prefix(b" ").unwrap_or(value))
        .collect::<Vec<_>>()
        .join(&b'\n')
}

/// `{"error": {...}}`: how OpenAI reports a failure inside a stream.
fn is_error_event(data: &[u8]) -> bool {
    trim_start(data).strip_prefix(b"{").is_some_and(|object| trim_start(object).starts_with(b"\"error\""))
}

/// Whether an event carries part of the answer: chat content, reasoning or tool calls,
/// legacy completion text, or a Responses API delta. Empty strings (the role chunk) do not.
fn carries_token(data: &[u8]) -> bool {
    static TEXT_KEYS: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
        [&b"\"content\""[..], b"\"text\"", b"\"delta\"", b"\"reasoning_content\"", b"\"reasoning\""].map(Finder::new)
    });
    static TOOL_CALLS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"tool_calls\""));
    TEXT_KEYS.iter().any(|key| has_string_value(data, key))
        || value_after(data, &TOOL_CALLS).is_some_and(|value| value.starts_with(b"["))
}

/// Whether an event carries a `finish_reason` (a string, not `null`).
fn carries_finish(data: &[u8]) -> bool {
    static FINISH_REASON: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"finish_reason\""));
    has_string_value(data, &FINISH_REASON)
}

/// Whether `key` is followed by a non-empty JSON string. An escaped occurrence inside a
/// string value (`\"content\"`) cannot match, since its closing quote is preceded by `\`.
fn has_string_value(data: &[u8], key: &Finder<'_>) -> bool {
    value_after(data, key).is_some_and(|value| value.len() > 1 && value[0] == b'"' && value[1] != b'"')
}

/// The bytes after the first `key:` (whitespace skipped), if any. The key's searcher is
/// built once per key, not per event.
fn value_after<'a>(data: &'a [u8], key: &Finder<'_>) -> Option<&'a [u8]> {
    let key_len = key.needle().len();
    let mut search_from = 0;
    while let Some(found) = key.find(&data[search_from..]) {
        let after = trim_start(&data[search_from + found + key_len..]);
        if let Some(value) = after.strip_prefix(b":") {
            return Some(trim_start(value));
        }
        search_from += found + key_len;
    }
    None
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|byte| byte.is_ascii_whitespace()).count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests;
