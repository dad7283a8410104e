//! The SSE framer's fuzz properties (`cutover_wire::sse::SseFramer`, through which every
//! stream is forwarded), for `fuzz/fuzz_targets/sse_framer.rs` and the suite's replay.
//!
//! Input: byte 0 tells how many chunk sizes follow (`(byte0 & 7) + 1`), those bytes are
//! the sizes (0..=255, used in turn, 0 pushing an empty chunk), and the rest is the
//! stream. The stream is fed in each usage mode (`UsageWatch::Ignore`, `Read`, `Strip`),
//! once cut into chunks of those sizes and once as one chunk, then `finish`ed.
//!
//! Properties checked:
//! - it never panics;
//! - chunking changes nothing: the chunked run ends as the one-chunk run does (both whole,
//!   or both refused with the same `StreamFault`), saw the same token/finish/done/error
//!   signals and the same usage, and when both succeed the bytes forwarded, pushes and
//!   `finish` concatenated, are equal. On a fault the forwarded bytes are not compared:
//!   by design the chunked run has already forwarded the whole events of the chunks
//!   before the bad one, the one-chunk run forwards nothing. The trailing incomplete
//!   event stays pending either way and comes out of `finish`, so it is no exception.
//!   Not checked by design: `StreamFault::Oversized` bounds what is *buffered*, so an
//!   event over 4 MiB that arrives whole in one chunk passes while the same event cut
//!   in two is refused; runs ending so are not compared (and inputs that large are
//!   beyond the fuzzer's lengths anyway);
//! - the usage mode changes only what `Strip` takes out: every mode ends alike and sees
//!   the same signals, `Read` forwards exactly what `Ignore` forwards, `Read` and
//!   `Strip` find the same usage, `Ignore` none;
//! - without stripping, the framer forwards only a prefix of the stream it was given
//!   (before `finish`), and `finish` gives out one event ended by a blank line;
//! - nothing broken reaches the client, in any mode: each event forwarded, read back as
//!   the framer reads events (lines ended by `\n`, a `\r` before it dropped, `data:`
//!   lines joined by `\n`), has data that is `[DONE]` or JSON to serde.
use crate::sse::{SseFramer, StreamFault, UsageWatch};
use crate::usage::Usage;
use bytes::Bytes;
use serde::de::IgnoredAny;

/// Checks every property above on `data`; panics when one fails.
pub fn sse_framer(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let count = usize::from(first & 7) + 1;
    let (sizes, stream) = rest.split_at(count.min(rest.len()));

    let mut whole_runs = Vec::new();
    for watch in [UsageWatch::Ignore, UsageWatch::Read, UsageWatch::Strip] {
        let whole = run(watch, stream, &[]);
        let chunked = run(watch, stream, sizes);
        check_forwarded_events(watch, &whole);
        check_forwarded_events(watch, &chunked);
        if watch != UsageWatch::Strip {
            for outcome in [&whole, &chunked] {
                assert!(stream.starts_with(&outcome.pushed), "{watch:?}: forwarded bytes it was not given");
            }
        }
        if whole.fault != Some(StreamFault::Oversized) && chunked.fault != Some(StreamFault::Oversized) {
            assert_eq!(chunked.fault, whole.fault, "{watch:?}: chunking changed the fault");
            assert_eq!(chunked.signals, whole.signals, "{watch:?}: chunking changed the signals");
            assert_eq!(chunked.usage, whole.usage, "{watch:?}: chunking changed the usage");
            if whole.fault.is_none() {
                assert_eq!(
                    String::from_utf8_lossy(&chunked.forwarded()),
                    String::from_utf8_lossy(&whole.forwarded()),
                    "{watch:?}: chunking changed the bytes forwarded"
                );
            }
        }
        whole_runs.push(whole);
    }

    let [ignore, read, strip] = &whole_runs[..] else { unreachable!() };
    assert_eq!(read.fault, ignore.fault, "watching usage changed the fault");
    assert_eq!(strip.fault, ignore.fault, "stripping usage changed the fault");
    assert_eq!(read.signals, ignore.signals);
    assert_eq!(strip.signals, ignore.signals);
    assert_eq!(read.forwarded(), ignore.forwarded(), "reading usage changed the bytes forwarded");
    assert_eq!(ignore.usage, None, "a framer not watching found usage");
    assert_eq!(strip.usage, read.usage, "stripping found another usage than reading");
}

/// What one framer did with one stream.
struct Outcome {
    /// What the pushes returned, concatenated.
    pushed: Vec<u8>,
    /// What `finish` returned.
    finished: Option<Bytes>,
    fault: Option<StreamFault>,
    /// token, finish, done, error.
    signals: [bool; 4],
    usage: Option<Usage>,
}

impl Outcome {
    fn forwarded(&self) -> Vec<u8> {
        [&self.pushed[..], self.finished.as_deref().unwrap_or_default()].concat()
    }
}

/// Feeds `stream` to a new framer in chunks of `sizes` (used in turn; none: one chunk),
/// then finishes it, stopping at the first fault.
fn run(watch: UsageWatch, stream: &[u8], sizes: &[u8]) -> Outcome {
    let mut framer = SseFramer::watching_usage(watch);
    let mut pushed = Vec::new();
    let mut fault = None;
    for chunk in chunks(stream, sizes) {
        match framer.push(Bytes::copy_from_slice(chunk)) {
            Ok(ready) => pushed.extend_from_slice(&ready),
            Err(error) => {
                fault = Some(error);
                break;
            }
        }
    }
    let mut finished = None;
    if fault.is_none() {
        match framer.finish() {
            Ok(last) => finished = last,
            Err(error) => fault = Some(error),
        }
    }
    let signals = [framer.saw_token(), framer.saw_finish(), framer.saw_done(), framer.saw_error()];
    Outcome { pushed, finished, fault, signals, usage: framer.usage() }
}

/// `stream` cut into pieces of the given sizes in turn (empty ones included); once a whole
/// round of sizes takes nothing, the rest goes as one piece.
fn chunks<'a>(mut stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() || sizes.iter().all(|size| *size == 0) {
        return vec![stream];
    }
    let mut pieces = Vec::new();
    for &size in sizes.iter().cycle() {
        if stream.is_empty() {
            break;
        }
        let (piece, rest) = stream.split_at(usize::from(size).min(stream.len()));
        pieces.push(piece);
        stream = rest;
    }
    pieces
}

/// Every event in what `outcome` forwarded carries data that is `[DONE]` or JSON, and
/// `finish`, when it gave anything, gave whole events.
fn check_forwarded_events(watch: UsageWatch, outcome: &Outcome) {
    let forwarded = outcome.forwarded();
    for data in events_data(&forwarded) {
        let valid = data == b"[DONE]" || serde_json::from_slice::<IgnoredAny>(&data).is_ok();
        assert!(valid, "{watch:?}: forwarded an event whose data is not JSON: {:?}", String::from_utf8_lossy(&data));
    }
    if let Some(last) = &outcome.finished {
        assert!(last.is_empty() || last.ends_with(b"\n\n"), "{watch:?}: finish gave out a partial event");
    }
}

/// The data of each whole event in `bytes`, read as the framer reads events: lines end at
/// `\n` (a `\r` before it dropped), a blank line ends an event, the values of its `data:`
/// lines (one space after the colon dropped) are joined by `\n`; events without data
/// lines are none.
fn events_data(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let mut lines = bytes.split(|byte| *byte == b'\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            // What follows the last newline is no whole line.
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(data.take());
        } else if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(joined) => {
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events
}
