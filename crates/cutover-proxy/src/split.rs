//! The sticky split: a stable 64-bit hash of the route's salt and the sticky key picks
//! one of 10,000 buckets; buckets below the weight (in basis points) go to the candidate.
//! Raising the weight only adds buckets, so a user on the candidate stays there.

use cutover_config::FallbackMode;
use cutover_model::Role;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Number of buckets: weights have 0.01% resolution.
pub const BUCKETS: u32 = 10_000;

/// A route's hash seed, derived once from its salt. xxh3 is stable across releases and
/// platforms, unlike `DefaultHasher`, so buckets survive upgrades.
pub fn seed_for(salt: &str) -> u64 {
    xxh3_64(salt.as_bytes())
}

/// The seed for a time window when `rehash_interval` reshuffles users every interval.
pub fn rehashed_seed(seed: u64, window: u64) -> u64 {
    xxh3_64_with_seed(&window.to_le_bytes(), seed)
}

/// The 64-bit hash of `key` under `seed`: its bucket, and the user's identity in the
/// rollout's distinct-user count.
pub fn hash(seed: u64, key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, seed)
}

/// The bucket of a hash, in `0..BUCKETS`.
pub fn bucket_of(hash: u64) -> u32 {
    (hash % u64::from(BUCKETS)) as u32
}

/// The bucket of `key` under `seed`, in `0..BUCKETS`.
pub fn bucket(seed: u64, key: &[u8]) -> u32 {
    bucket_of(hash(seed, key))
}

/// Whether a primary request belongs to the control slice: the users hashed just above
/// the candidate's range, as many as the candidate has. Above 50% there is no such slice.
pub fn is_control(bucket: u32, weight_bp: u32) -> bool {
    weight_bp > 0 && weight_bp <= BUCKETS / 2 && bucket >= weight_bp && bucket < 2 * weight_bp
}

/// A bucket drawn at random, for requests without a sticky key.
pub fn random_bucket() -> u32 {
    fastrand::u32(..BUCKETS)
}

/// Whether `bucket` goes to the candidate at `weight_bp` basis points.
pub fn is_candidate(bucket: u32, weight_bp: u32) -> bool {
    bucket < weight_bp
}

/// The arm a request goes to once the active probes are heard: a candidate that is down
/// sends its users to the primary; with `fallback = "both"`, a primary that is down sends
/// its users to the candidate, if that one is up. `up` is read once for the chosen arm,
/// and for the other only when the chosen one is down.
pub fn arm_for_health(role: Role, fallback: FallbackMode, up: impl Fn(Role) -> bool) -> Role {
    match role {
        Role::Candidate if !up(Role::Candidate) => Role::Primary,
        Role::Primary if fallback == FallbackMode::Both && !up(Role::Primary) && up(Role::Candidate) => Role::Candidate,
        _ => role,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn buckets_are_stable_across_builds() {
        // Pinned values: if these change, every user would move between arms on upgrade.
        let seed = seed_for("default");
        assert_eq!(bucket(seed, b"user-42"), bucket(seed_for("default"), b"user-42"));
        assert_eq!(bucket(seed_for("default"), b"user-42"), PINNED_USER_42);
    }
    const PINNED_USER_42: u32 = 1493;

    #[test]
    fn zero_weight_sends_nobody_and_full_weight_everybody() {
        for bucket in [0, 1, 5000, BUCKETS - 1] {
            assert!(!is_candidate(bucket, 0));
            assert!(is_candidate(bucket, BUCKETS));
        }
    }

    #[test]
    fn a_five_hundredths_percent_weight_takes_five_buckets() {
        let taken = (0..BUCKETS).filter(|bucket| is_candidate(*bucket, 5)).count();
        assert_eq!(taken, 5);
    }

    #[test]
    fn a_down_candidate_sends_its_users_to_the_primary() {
        let candidate_down = |role: Role| role != Role::Candidate;
        assert_eq!(arm_for_health(Role::Candidate, FallbackMode::Both, candidate_down), Role::Primary);
        assert_eq!(arm_for_health(Role::Primary, FallbackMode::Both, candidate_down), Role::Primary);
    }

    #[test]
    fn a_down_primary_sends_its_users_to_the_candidate_only_with_fallback_both() {
        let primary_down = |role: Role| role != Role::Primary;
        assert_eq!(arm_for_health(Role::Primary, FallbackMode::Both, primary_down), Role::Candidate);
        assert_eq!(arm_for_health(Role::Primary, FallbackMode::CandidateToPrimary, primary_down), Role::Primary);
        assert_eq!(arm_for_health(Role::Primary, FallbackMode::Off, primary_down), Role::Primary);
        let both_down = |_: Role| false;
        assert_eq!(arm_for_health(Role::Primary, FallbackMode::Both, both_down), Role::Primary);
    }

    proptest! {
        #[test]
        fn weight_increase_keeps_existing_candidate_users(
            key in proptest::collection::vec(any::<u8>(), 0..64),
            salt in "[a-z]{1,12}",
            low in 0u32..=BUCKETS,
            raise in 0u32..=BUCKETS,
        ) {
            let high = (low + raise).min(BUCKETS);
            let bucket = bucket(seed_for(&salt), &key);
            if is_candidate(bucket, low) {
                prop_assert!(is_candidate(bucket, high));
            }
        }

        #[test]
        fn share_of_100k_keys_is_within_one_point_of_the_weight(weight_bp in 0u32..=BUCKETS, salt in "[a-z]{1,12}") {
            let seed = seed_for(&salt);
            let on_candidate = (0..100_000u32)
                .filter(|user| is_candidate(bucket(seed, format!("user-{user}").as_bytes()), weight_bp))
                .count();
            let share = on_candidate as f64 / 100_000.0 * 100.0;
            let weight = f64::from(weight_bp) / 100.0;
            prop_assert!((share - weight).abs() <= 1.0, "share {share}% at weight {weight}%");
        }
    }
}
