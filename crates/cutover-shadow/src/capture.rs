//! A bounded copy of one answer's bytes, taken on its way to whoever reads it (the client
//! for the primary, the mirror's own drain for the candidate): its beginning up to
//! `HEAD_BYTES` and, past that, its last `TAIL_BYTES` — where a stream's `finish_reason`
//! and usage come. Copied rather than kept as `Bytes` clones, so that it never pins the
//! connection's read buffers; at most 272 KiB per side, whatever the answer's length.

use bytes::{Buf, BytesMut};

/// The beginning of an answer kept whole…
pub const HEAD_BYTES: usize = 256 << 10;
/// …and, past it, this much of its end.
pub const TAIL_BYTES: usize = 16 << 10;

#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub head: BytesMut,
    /// Empty unless the answer outgrew the head.
    pub tail: BytesMut,
    /// Bytes neither in the head nor in the tail: the middle is unknown.
    pub skipped: u64,
}

impl Captured {
    pub fn push(&mut self, mut data: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = data.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if data.is_empty() {
            return;
        }
        if data.len() >= TAIL_BYTES {
            self.skipped += (self.tail.len() + data.len() - TAIL_BYTES) as u64;
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - TAIL_BYTES..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(TAIL_BYTES);
        if overflow > 0 {
            self.tail.advance(overflow);
            self.skipped += overflow as u64;
        }
        self.tail.extend_from_slice(data);
    }

    /// Whether every byte of the answer is here (head and tail are contiguous).
    pub fn is_whole(&self) -> bool {
        self.skipped == 0
    }

    /// The whole answer, if nothing was skipped.
    pub fn whole(&self) -> Option<Vec<u8>> {
        self.is_whole().then(|| [&self.head[..], &self.tail[..]].concat())
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(bytes: &[u8], frame: usize) -> Captured {
        let mut captured = Captured::default();
        bytes.chunks(frame).for_each(|chunk| captured.push(chunk));
        captured
    }

    #[test]
    fn a_short_answer_is_kept_whole_in_any_framing() {
        let body = b"{\"choices\":[]}";
        for frame in [1, 3, body.len()] {
            assert_eq!(captured(body, frame).whole().as_deref(), Some(&body[..]));
        }
    }

    #[test]
    fn a_long_answer_keeps_its_head_and_its_tail_and_counts_the_middle() {
        let body: Vec<u8> = (0..HEAD_BYTES + TAIL_BYTES * 3).map(|at| (at % 251) as u8).collect();
        for frame in [1000, 4096, TAIL_BYTES + 7, body.len()] {
            let kept = captured(&body, frame);
            assert_eq!(&kept.head[..], &body[..HEAD_BYTES], "{frame}");
            assert_eq!(&kept.tail[..], &body[body.len() - TAIL_BYTES..], "{frame}");
            assert_eq!(kept.skipped, (TAIL_BYTES * 2) as u64, "{frame}");
            assert!(kept.whole().is_none());
        }
    }

    #[test]
    fn an_answer_just_past_the_head_is_still_whole() {
        let body: Vec<u8> = (0..HEAD_BYTES + 10).map(|at| (at % 7) as u8).collect();
        assert_eq!(captured(&body, 333).whole(), Some(body));
    }
}
