//! Shadow comparison: the primary's answer and the candidate's answer to the same
//! mirrored request, compared dimension by dimension (`compare`), aggregated per route and
//! step in bounded memory (`aggregate`), the disagreements optionally kept (`diffs`).
//! Nothing here runs on the client's path: the request path only samples (`sampled`),
//! checks the caps (`caps`), takes a slot (`slots`) and tees the answers (`pair`,
//! `capture`); reading the answers (`answer`, `request`) and judging them happen in the
//! mirror's detached task.

pub mod aggregate;
pub mod answer;
pub mod caps;
pub mod capture;
pub mod cells;
pub mod compare;
pub mod diffs;
pub mod pair;
pub mod request;
pub mod slots;

use xxhash_rust::xxh3::xxh3_64;

pub use aggregate::{Agreement, AgreementSnapshot, Timings};
pub use answer::Answer;
pub use caps::Caps;
pub use compare::{Judged, Settings, SideView};
pub use diffs::{Diff, DiffRing};
pub use pair::{Side, Tap};
pub use request::RequestFacts;
pub use slots::{MirrorSlots, PairSlot};

/// What a route keeps of its mirroring across reloads: its caps' state and its diffs.
#[derive(Debug, Default)]
pub struct RouteShadow {
    pub caps: Caps,
    pub diffs: DiffRing,
}

/// Mixed into a sticky key's hash so that the mirrored users are not the split's buckets.
const SAMPLE_SEED: u64 = 0x5348_4144_4f57_0001;
const PARTS: u64 = 1_000_000;

/// Whether to mirror a request at `share` (0–1): per sticky user when there is one (a
/// user's whole conversation is mirrored or none of it), per request otherwise.
pub fn sampled(share: f64, user: Option<u64>) -> bool {
    let threshold = (share.clamp(0.0, 1.0) * PARTS as f64).round() as u64;
    let draw = match user {
        Some(user) => xxh3_64(&(user ^ SAMPLE_SEED).to_le_bytes()) % PARTS,
        None => fastrand::u64(..PARTS),
    };
    draw < threshold
}

/// Reads both answers and judges the pair.
pub fn judge_pair(
    request: &[u8],
    primary: &Side,
    candidate: &Side,
    settings: Settings<'_>,
) -> (Judged, Answer, Answer) {
    let facts = RequestFacts::read(request);
    let p = Answer::read(&primary.captured, primary.streamed);
    let c = Answer::read(&candidate.captured, candidate.streamed);
    let view =
        |side: &Side, answer| SideView { ok: side.ok(), answer, prompt_tokens: side.usage.map(|usage| usage.input) };
    let judged = compare::judge(&facts, view(primary, &p), view(candidate, &c), settings);
    (judged, p, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_users_are_mirrored_whole_and_the_share_is_kept() {
        let mirrored = (0..100_000u64).filter(|user| sampled(0.1, Some(*user))).count();
        assert!((9_400..=10_600).contains(&mirrored), "{mirrored}");
        for user in 0..1000u64 {
            let first = sampled(0.3, Some(user));
            assert!((0..5).all(|_| sampled(0.3, Some(user)) == first));
            // A larger share keeps every user a smaller one mirrored.
            assert!(!first || sampled(0.6, Some(user)));
        }
        assert!(!sampled(0.0, None) && sampled(1.0, None));
    }
}
