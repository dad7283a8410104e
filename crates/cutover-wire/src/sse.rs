//! Frames a server-sent-event stream as it is forwarded: only whole events go out, each
//! checked on the way (its data must be JSON or `[DONE]`), so nothing broken reaches
//! the client. Reads along for the first content chunk (time to first token), the
//! `finish_reason` (Anthropic: `stop_reason`), the end marker (`[DONE]`, or Anthropic's
//! `event: message_stop`) and error events (OpenAI's `{"error": …}` data, Anthropic's
//! `event: error`). Bytes may be split anywhere by the
//! network; only the current incomplete event is buffered, within a fixed bound, and a
//! chunk made of whole events — the usual case — is forwarded without a copy.
//!
//! Each event's data is checked and read in one pass (`crate::json`): the members read
//! along are noted where the check meets them, so no event is searched or parsed twice,
//! and the pass starts where the event parts from the one before (`json::Memo`): the
//! events of a stream repeat their id, model and shape.
//! A framer watching usage (`SseFramer::watching_usage`) also reads the usage event of
//! the stream (`usage`), parsing only its usage object; asked to strip it (the gateway
//! asked for usage on the client's behalf), it takes it back out, and only then copies
//! the events it changed.

use bytes::{Bytes, BytesMut};
use memchr::memchr;

use crate::json::{self, Sightings};
use crate::usage::{Stripped, Usage, strip_usage};

/// The edited events' buffer is allocated this large at least, so that a stream's many
/// small edited frames share one allocation.
const EDITED_BUFFER_BYTES: usize = 8 * 1024;

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
    /// The last event, for the next one to be read from where it differs.
    memo: json::Memo,
    /// Where edited events are written: one allocation whose free part each edit reuses
    /// (`BytesMut::split`), reclaimed once the frames written before are gone.
    out: BytesMut,
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

    /// An event carried a `finish_reason` (Anthropic: `stop_reason`): the answer is complete.
    pub fn saw_finish(&self) -> bool {
        self.saw_finish
    }

    /// The stream's end marker passed: `data: [DONE]`, or Anthropic's `message_stop` event.
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
        let out = &mut self.out;
        if out.capacity() - out.len() < ready.len() {
            out.reserve(ready.len().max(EDITED_BUFFER_BYTES));
        }
        let mut copied = 0;
        for (start, end, replacement) in self.edits.drain(..) {
            out.extend_from_slice(&ready[copied..start]);
            if let Some(replacement) = replacement {
                out.extend_from_slice(&replacement);
            }
            copied = end;
        }
        out.extend_from_slice(&ready[copied..]);
        out.split().freeze()
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
        // The event's data lines met so far, and the first one's value: an event of one
        // data line, the usual kind, is read from it without walking its lines again.
        let (mut data_lines, mut first_data) = (0usize, (0, 0));
        // The event's `event:` name, applied once the event is complete.
        let mut name: Option<EventName> = None;
        while let Some(newline) = memchr(b'\n', &buffer[line_start..]) {
            let line_end = line_start + newline;
            let line = &buffer[line_start..line_end];
            if line.is_empty() || line == b"\r" {
                let event = &buffer[event_start..line_end];
                let examined = match data_lines {
                    0 => None,
                    1 => self.examine_data(event, &buffer[first_data.0..first_data.1])?,
                    _ => self.examine(event)?,
                };
                if let Some((start, end, replacement)) = examined {
                    // An edit of the whole event takes its blank line with it.
                    let end = if end == line_end - event_start { line_end + 1 } else { event_start + end };
                    self.edits.push((event_start + start, end, replacement));
                }
                match name.take() {
                    Some(EventName::Error) => self.saw_error = true,
                    Some(EventName::MessageStop) => self.saw_done = true,
                    None => {}
                }
                event_start = line_end + 1;
                data_lines = 0;
            } else if line.starts_with(b"event:") {
                name = event_name(line);
            } else if let Some(value) = data_value(line) {
                if data_lines == 0 {
                    let start = line_start + (value.as_ptr() as usize - line.as_ptr() as usize);
                    first_data = (start, start + value.len());
                }
                data_lines += 1;
            }
            line_start = line_end + 1;
        }
        if buffer.len() - event_start > MAX_EVENT_BYTES {
            return Err(StreamFault::Oversized);
        }
        Ok(event_start)
    }

    /// Checks one event of several data lines, joined as the SSE format joins them.
    fn examine(&mut self, event: &[u8]) -> Result<Option<Edit>, StreamFault> {
        let joined = lines(event).filter_map(data_value).collect::<Vec<_>>().join(&b'\n');
        self.examine_data(event, &joined)
    }

    /// Checks one event's data and reads along; `Some` when some of the event's bytes must
    /// be cut or replaced on their way out (usage being stripped).
    fn examine_data(&mut self, event: &[u8], data: &[u8]) -> Result<Option<Edit>, StreamFault> {
        if data == b"[DONE]" {
            self.saw_done = true;
            return Ok(None);
        }
        let Some(sightings) = json::read_after(data, &mut self.memo) else { return Err(StreamFault::Malformed) };
        self.saw_token |= sightings.token;
        self.saw_finish |= sightings.finish;
        self.saw_error |= sightings.error;
        Ok(self.watch_usage(event, data, &sightings))
    }

    /// Reads the usage of an event (`data`, within `event`), and strips it when asked:
    /// the edit to make, in `event`'s coordinates, if any.
    fn watch_usage(&mut self, event: &[u8], data: &[u8], sightings: &Sightings) -> Option<Edit> {
        if self.usage == UsageWatch::Ignore || (sightings.usage.is_none() && sightings.envelope_usage.is_none()) {
            return None;
        }
        self.found_usage = Usage::after_event(self.found_usage, data, sightings);
        if self.usage != UsageWatch::Strip {
            return None;
        }
        let (from, to) = match strip_usage(data, sightings) {
            Stripped::Kept => return None,
            Stripped::Dropped => return Some((0, event.len(), None)),
            Stripped::Cut(from, to) => (from, to),
        };
        // Single-line data lies within the event: cut the bytes there, no copy made here.
        let offset = (data.as_ptr() as usize).wrapping_sub(event.as_ptr() as usize);
        if offset + data.len() <= event.len() {
            return Some((offset + from, offset + to, None));
        }
        // Data joined from several lines: the event is written again, its other lines
        // (`event:`, `id:`, `retry:`, comments) kept where they were and what remains of
        // the data, line by line, where its first `data:` line was (the joined data keeps
        // the line feeds between them, and a line feed inside one `data:` line would end it
        // for the client).
        let remaining = [&data[..from], &data[to..]].concat();
        let mut rewritten = Vec::with_capacity(event.len() + 16);
        let mut data_written = false;
        for line in lines(event).filter(|line| !line.is_empty()) {
            if data_value(line).is_none() {
                rewritten.extend_from_slice(line);
                rewritten.push(b'\n');
            } else if !data_written {
                data_written = true;
                for data_line in remaining.split(|byte| *byte == b'\n') {
                    rewritten.extend_from_slice(b"data: ");
                    rewritten.extend_from_slice(data_line);
                    rewritten.push(b'\n');
                }
            }
        }
        rewritten.push(b'\n');
        Some((0, event.len(), Some(Bytes::from(rewritten))))
    }
}

/// The event names that say something about the stream (Anthropic's): the upstream
/// failed, or the answer is complete.
#[derive(Clone, Copy)]
enum EventName {
    Error,
    MessageStop,
}

/// The name of an `event:` line, if it is one the framer reads.
fn event_name(line: &[u8]) -> Option<EventName> {
    match field_value(line, b"event:")? {
        b"error" => Some(EventName::Error),
        b"message_stop" => Some(EventName::MessageStop),
        _ => None,
    }
}

/// The lines of an event, each found with `memchr` (the last one without its newline).
/// The value of a `data:` line (its `\r` and the one space after the colon dropped).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    field_value(line, b"data:")
}

/// The value of a line of the field `name` (with its colon): the line's `\r` and the one
/// space after the colon dropped, as the SSE format reads it.
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let value = line.strip_suffix(b"\r").unwrap_or(line).strip_prefix(name)?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

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

#[cfg(test)]
mod tests;
