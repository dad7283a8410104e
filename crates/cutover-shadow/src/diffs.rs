//! The opt-in ring of disagreeing pairs of one route (`shadow_keep_diffs = N`, off by
//! default: prompts may be sensitive). Each entry keeps the request's and both answers'
//! bodies truncated to `MAX_BODY_CHARS`, the dimensions that disagreed and what differed;
//! never a header, so no key or token can be stored. At most N entries (and never more
//! than `MAX_KEPT_DIFFS`), the oldest dropped first; in memory only.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use cutover_model::{Dimension, dimension::MAX_KEPT_DIFFS};

/// Each body is cut to this many characters.
pub const MAX_BODY_CHARS: usize = 2048;

/// A kept disagreement, as the admin API shows it.
pub use cutover_model::view::ShadowDiff as Diff;

/// `bytes` as text, cut to `MAX_BODY_CHARS` with the rest counted.
pub fn truncated(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_BODY_CHARS) {
        None => text.into_owned(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

#[derive(Debug, Default)]
pub struct DiffRing {
    kept: Mutex<VecDeque<Diff>>,
}

impl DiffRing {
    /// Keeps `diff` within `capacity` entries; 0 keeps nothing (and drops what was kept,
    /// should a reload have turned keeping off).
    pub fn push(&self, diff: Diff, capacity: usize) {
        let capacity = capacity.min(MAX_KEPT_DIFFS);
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        while kept.len() >= capacity.max(1) {
            kept.pop_front();
        }
        if capacity > 0 {
            kept.push_back(diff);
        }
    }

    /// The kept diffs, newest first, those disagreeing on `dimension` only if given.
    pub fn list(&self, dimension: Option<Dimension>) -> Vec<Diff> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .rev()
            .filter(|diff| dimension.is_none_or(|dimension| diff.disagrees_on(dimension)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(at: i64, dimension: Dimension) -> Diff {
        Diff {
            at,
            dimensions: vec![dimension],
            notes: Vec::new(),
            request: String::new(),
            primary: String::new(),
            candidate: String::new(),
        }
    }

    #[test]
    fn nothing_is_kept_at_capacity_zero_and_the_oldest_go_first() {
        let ring = DiffRing::default();
        ring.push(diff(1, Dimension::Model), 0);
        assert!(ring.list(None).is_empty());
        for at in 1..=5 {
            ring.push(diff(at, if at % 2 == 0 { Dimension::Model } else { Dimension::Content }), 3);
        }
        let kept: Vec<i64> = ring.list(None).iter().map(|diff| diff.at).collect();
        assert_eq!(kept, [5, 4, 3]);
        let models: Vec<i64> = ring.list(Some(Dimension::Model)).iter().map(|diff| diff.at).collect();
        assert_eq!(models, [4]);
    }

    #[test]
    fn bodies_are_cut_with_the_rest_counted() {
        assert_eq!(truncated(b"short"), "short");
        let long = "é".repeat(MAX_BODY_CHARS + 10);
        let cut = truncated(long.as_bytes());
        assert!(cut.starts_with(&"é".repeat(MAX_BODY_CHARS)));
        assert!(cut.ends_with("… (20 more bytes)"), "{cut}");
    }
}
