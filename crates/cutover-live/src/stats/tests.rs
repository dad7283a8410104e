//! A step's evidence: what is counted where, per user cell, in buckets 1% wide, and how
//! it survives a restart.

use std::time::Duration;

use super::*;

fn sample(outcome: Outcome, millis: u64, user: u64) -> Sample {
    Sample { outcome, duration: Duration::from_millis(millis), ttft: None, user: Some(user) }
}

#[test]
fn outcomes_latency_and_users_are_counted_per_arm() {
    let stats = StepStats::default();
    for user in 0..1000 {
        stats.record(Arm::Candidate, sample(Outcome::Ok, 100, user));
    }
    stats.record(Arm::Candidate, sample(Outcome::UpstreamError, 100, 1));
    stats.record(Arm::Control, sample(Outcome::Ok, 5, 2));
    let snapshot = stats.snapshot();
    let candidate = snapshot.arm(Arm::Candidate);
    assert_eq!((candidate.requests(), candidate.upstream_errors), (1001, 1));
    let users = candidate.users() as f64;
    assert!((800.0..1200.0).contains(&users), "{users} estimated for 1000 users");
    assert_eq!(snapshot.arm(Arm::Control).requests(), 1);
    let bucket = candidate.latency.bucket_at_rank(1).unwrap();
    assert!(lower_edge_ms(bucket) <= 100.0 && upper_edge_ms(bucket) > 100.0 && upper_edge_ms(bucket) <= 101.0);
    assert_eq!(candidate.cells.requests.iter().sum::<u64>(), 1001, "every keyed request is in a cell");
    assert_eq!(snapshot.arm(Arm::Candidate), stats.arm_snapshot(Arm::Candidate));
    let counts = stats.arm_counts(Arm::Candidate);
    assert_eq!((counts.ok, counts.client_errors, counts.upstream_errors), (1000, 0, 1));
    assert_eq!(counts.users(), candidate.users(), "the view's counts are the snapshot's");
}

#[test]
fn errors_and_breaker_skips_are_not_latency() {
    let stats = StepStats::default();
    stats.record(Arm::Candidate, sample(Outcome::Ok, 900, 1));
    stats.record(Arm::Candidate, sample(Outcome::UpstreamError, 0, 2));
    stats.record(Arm::Candidate, sample(Outcome::ClientError, 20, 3));
    let candidate = stats.arm_snapshot(Arm::Candidate);
    assert_eq!(candidate.requests(), 3);
    assert_eq!(candidate.latency.samples(), 1, "only the answer is timed");
}

#[test]
fn one_users_errors_count_once_as_a_unit_not_as_independent_requests() {
    let stats = StepStats::default();
    for request in 0..2000u64 {
        let user = request % 100;
        let outcome = if user == 0 { Outcome::UpstreamError } else { Outcome::Ok };
        stats.record(Arm::Candidate, sample(outcome, 100, user));
    }
    let estimate = stats.arm_snapshot(Arm::Candidate).rate(Failure::Upstream);
    assert_eq!((estimate.failures, estimate.requests), (20, 2000), "user 0 sent 20 requests");
    assert!(estimate.design_effect > 5.0, "all errors from one user: {estimate:?}");
}

#[test]
fn a_restored_snapshot_adds_to_fresh_stats() {
    let stats = StepStats::default();
    stats.record(Arm::Candidate, sample(Outcome::ClientError, 10, 7));
    stats.record(Arm::Candidate, sample(Outcome::Ok, 10, 7));
    let restored = StepStats::default();
    restored.restore(&stats.snapshot());
    restored.record(Arm::Candidate, sample(Outcome::Ok, 10, 8));
    let candidate = restored.snapshot().arm(Arm::Candidate);
    assert_eq!((candidate.requests(), candidate.client_errors, candidate.latency.samples()), (3, 1, 2));
    assert_eq!(candidate.cells.requests.iter().sum::<u64>(), 3);
    let json = serde_json::to_string(&restored.snapshot()).unwrap();
    assert_eq!(serde_json::from_str::<StepSnapshot>(&json).unwrap(), restored.snapshot());
}

#[test]
fn a_snapshot_saved_by_the_previous_version_is_discarded_not_misread() {
    // Format 1: 10% buckets stored dense, no cells, no format field.
    let old = r#"{"arms":[{"ok":5,"client_errors":0,"upstream_errors":1,"latency":[0,3,2],"ttft":[],"users":[0,1]}]}"#;
    assert!(serde_json::from_str::<StepSnapshot>(old).is_err());
    let old_baseline = r#"{"ok":5,"client_errors":0,"upstream_errors":1,"latency":[0,3,2],"ttft":[],"users":[]}"#;
    assert!(serde_json::from_str::<ArmSnapshot>(old_baseline).is_err());
    let stats = StepStats::default();
    stats.restore(&StepSnapshot {
        format: 1,
        arms: vec![ArmSnapshot { ok: 5, ..ArmSnapshot::default() }],
        ..StepSnapshot::default()
    });
    assert_eq!(stats.arm_snapshot(Arm::Primary).requests(), 0, "another format is never added");
}

#[test]
fn a_saved_step_is_a_few_kilobytes_not_the_dense_arrays() {
    let stats = StepStats::default();
    for request in 0..10_000u64 {
        stats.record(Arm::Candidate, sample(Outcome::Ok, 200 + request % 700, request % 300));
    }
    let json = serde_json::to_string(&stats.snapshot()).unwrap();
    assert!(json.len() < 40_000, "{} bytes", json.len());
}

#[test]
fn cost_is_summed_per_arm_with_unknown_cost_counted_apart_and_survives_a_restart() {
    let stats = StepStats::default();
    for user in 0..100 {
        stats.record_cost(Arm::Candidate, Some(1_500), Some(user));
        stats.record_cost(Arm::Control, Some(3_000), None);
    }
    stats.record_cost(Arm::Candidate, None, Some(7));
    let snapshot = stats.snapshot();
    let (candidate, control) = (snapshot.arm(Arm::Candidate).spend.estimate(), snapshot.arm(Arm::Control).spend);
    assert_eq!((candidate.known, candidate.unknown), (100, 1));
    assert!((candidate.mean - 1.5e-6).abs() < 1e-18, "{candidate:?}");
    assert_eq!(control.nanos.iter().sum::<u64>(), 300_000);
    assert_eq!(
        control.requests.iter().filter(|requests| **requests > 0).count(),
        100,
        "unkeyed: one cell each in turn"
    );
    let restored = StepStats::default();
    restored.restore(&serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap());
    assert_eq!(restored.snapshot(), snapshot);
}

#[test]
fn a_snapshot_saved_before_cost_was_evidence_keeps_its_evidence_and_starts_cost_afresh() {
    let stats = StepStats::default();
    stats.record(Arm::Candidate, sample(Outcome::Ok, 100, 1));
    let mut json: serde_json::Value = serde_json::to_value(stats.snapshot()).unwrap();
    for arm in json["arms"].as_array_mut().unwrap() {
        arm.as_object_mut().unwrap().remove("spend");
    }
    let old: StepSnapshot = serde_json::from_value(json).unwrap();
    let restored = StepStats::default();
    restored.restore(&old);
    let candidate = restored.arm_snapshot(Arm::Candidate);
    assert_eq!(candidate.ok, 1);
    assert_eq!(candidate.spend.estimate().known, 0);
}
