//! Reading a stream's events from where each parts from the last: a stream's chunks
//! repeat their id, model and shape, so the scan resumes at the last value that began
//! before the first differing byte, or checks only a content string that changed.

use super::members::Key;
use super::scan::{Scanner, Watched};
use super::{Sightings, read, string_end};

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
pub(super) const MEMO_MAX_MARKS: usize = 32;
pub(super) const MARK_MAX_DEPTH: usize = 4;

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
        for span in [&mut sightings.usage, &mut sightings.envelope_usage, &mut sightings.choices].into_iter().flatten()
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
pub(super) fn shared_suffix(a: &[u8], b: &[u8]) -> usize {
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
pub(super) fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
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
pub(super) struct Mark {
    pub(super) at: usize,
    /// The nesting's first word: marks are taken at most `MARK_MAX_DEPTH` deep.
    pub(super) nesting: u64,
    pub(super) depth: usize,
    pub(super) sightings: Sightings,
    pub(super) pending: Key,
    pub(super) watched: Option<Watched>,
    pub(super) in_envelope: bool,
    pub(super) text_string: Option<usize>,
}
