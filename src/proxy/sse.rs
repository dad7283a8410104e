//! Frames a server-sent-event stream as it is forwarded: only whole events go out, each
//! checked on the way (its data must be JSON or `[DONE]`), so nothing broken reaches
//! the client. Reads along for the first content chunk (time to first token), the
//! `finish_reason`, `[DONE]` and error events. Bytes may be split anywhere by the
//! network; only the current incomplete event is buffered, within a fixed bound, and a
//! chunk made of whole events — the usual case — is forwarded without a copy.
//!
//! A framer watching usage (`SseFramer::watching_usage`) also reads the usage event of
//! the stream (`cost`), tested first with a `memmem` for a `"usage"` object so that other
//! events cost no parse; asked to strip it (the gateway asked for usage on the client's
//! behalf), it takes it back out, and only then copies the events it changed.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memchr;
use memchr::memmem::Finder;

use crate::cost::{Stripped, USAGE_KEY, Usage, strip_usage};
use crate::json;

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
    usage: UsageWatch,
    found_usage: Option<Usage>,
    /// Bytes of the buffer being scanned to remove or replace; empty, and unallocated,
    /// unless usage is being stripped.
    edits: Vec<Edit>,
}

/// What a framer does about usage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum UsageWatch {
    #[default]
    Ignore,
    /// Read the usage event.
    Read,
    /// Read it, and take usage out of what is forwarded.
    Strip,
}

impl SseFramer {
    pub fn new() -> SseFramer {
        SseFramer::default()
    }

    /// A framer that reads the stream's usage, and strips it when `watch` says so.
    pub fn watching_usage(watch: UsageWatch) -> SseFramer {
        SseFramer { usage: watch, ..SseFramer::default() }
    }

    /// The usage the stream reported so far (the last one, should there be several).
    pub fn usage(&self) -> Option<Usage> {
        self.found_usage
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
            return Ok(self.edited(chunk.slice(..complete)));
        }
        self.pending.extend_from_slice(&chunk);
        let buffered = std::mem::take(&mut self.pending);
        let complete = self.scan(&buffered)?;
        let mut buffered = buffered;
        let ready = buffered.split_to(complete).freeze();
        self.pending = buffered;
        Ok(self.edited(ready))
    }

    /// `ready` (the scanned buffer's complete part) with the edits the scan found.
    fn edited(&mut self, ready: Bytes) -> Bytes {
        if self.edits.is_empty() {
            return ready;
        }
        let mut out = BytesMut::with_capacity(ready.len());
        let mut copied = 0;
        for (start, end, replacement) in self.edits.drain(..) {
            out.extend_from_slice(&ready[copied..start]);
            if let Some(replacement) = replacement {
                out.extend_from_slice(&replacement);
            }
            copied = end;
        }
        out.extend_from_slice(&ready[copied..]);
        out.freeze()
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
        let ready = last.split_to(complete).freeze();
        Ok(Some(self.edited(ready)))
    }

    /// Examines every complete event in `buffer`; returns where the complete part ends.
    fn scan(&mut self, buffer: &[u8]) -> Result<usize, StreamFault> {
        self.edits.clear();
        let mut event_start = 0;
        let mut line_start = 0;
        while let Some(newline) = memchr(b'\n', &buffer[line_start..]) {
            let line_end = line_start + newline;
            let line = &buffer[line_start..line_end];
            line_start = line_end + 1;
            if line.is_empty() || line == b"\r" {
                if let Some((start, end, replacement)) = self.examine(&buffer[event_start..line_end])? {
                    // An edit of the whole event takes its blank line with it.
                    let end = if end == line_end - event_start { line_start } else { event_start + end };
                    self.edits.push((event_start + start, end, replacement));
                }
                event_start = line_start;
            }
        }
        if buffer.len() - event_start > MAX_EVENT_BYTES {
            return Err(StreamFault::Oversized);
        }
        Ok(event_start)
    }

    /// Checks one event and reads along; `Some` when some of its bytes must be cut or
    /// replaced on their way out (usage being stripped).
    fn examine(&mut self, event: &[u8]) -> Result<Option<Edit>, StreamFault> {
        let mut data_lines = lines(event)
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter_map(|line| line.strip_prefix(b"data:"))
            .map(|value| value.strip_prefix(b" ").unwrap_or(value));
        let Some(first) = data_lines.next() else { return Ok(None) };
        let joined;
        let data = match data_lines.next() {
            None => first,
            Some(second) => {
                joined = [first, second].into_iter().chain(data_lines).collect::<Vec<_>>().join(&b'\n');
                &joined[..]
            }
        };
        if data == b"[DONE]" {
            self.saw_done = true;
            return Ok(None);
        }
        if !json::is_json(data) {
            return Err(StreamFault::Malformed);
        }
        self.saw_token |= !self.saw_token && carries_token(data);
        self.saw_finish |= !self.saw_finish && carries_finish(data);
        self.saw_error |= is_error_event(data);
        Ok(self.watch_usage(event, data))
    }

    /// Reads the usage of an event (`data`, within `event`), and strips it when asked:
    /// the edit to make, in `event`'s coordinates, if any.
    fn watch_usage(&mut self, event: &[u8], data: &[u8]) -> Option<Edit> {
        if self.usage == UsageWatch::Ignore || USAGE_KEY.find(data).is_none() {
            return None;
        }
        if Usage::may_carry(data)
            && let Some(usage) = Usage::from_json(data)
        {
            self.found_usage = Some(usage);
        }
        if self.usage != UsageWatch::Strip {
            return None;
        }
        let (from, to) = match strip_usage(data) {
            Stripped::Kept => return None,
            Stripped::Dropped => return Some((0, event.len(), None)),
            Stripped::Cut(from, to) => (from, to),
        };
        // Single-line data lies within the event: cut the bytes there, no copy made here.
        let offset = (data.as_ptr() as usize).wrapping_sub(event.as_ptr() as usize);
        if offset + data.len() <= event.len() {
            return Some((offset + from, offset + to, None));
        }
        // Data joined from several lines: the event is written again as one line.
        let mut rewritten = Vec::with_capacity(data.len() + 9);
        rewritten.extend_from_slice(b"data: ");
        rewritten.extend_from_slice(&data[..from]);
        rewritten.extend_from_slice(&data[to..]);
        rewritten.extend_from_slice(b"\n\n");
        Some((0, event.len(), Some(Bytes::from(rewritten))))
    }
}

/// The lines of an event, each found with `memchr` (the last one without its newline).
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(event);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr(b'\n', text) {
            Some(newline) => {
                rest = Some(&text[newline + 1..]);
                Some(&text[..newline])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// Bytes of a scanned buffer to remove (`start..end`), and what to put in their place.
type Edit = (usize, usize, Option<Bytes>);

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
