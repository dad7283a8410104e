//! A step that its evidence cannot decide ends at its `max_duration` (4 × `min_duration`
//! unless it says otherwise) by the plan's `on_undecided`, with an `undecided` event that
//! names what was missing; before that, and in a dry run, it holds as before.

use super::*;

const MAX_DURATION_MS: u64 = 4 * 60_000;

/// A running first step (5%) after `active_ms` of step time.
fn running_for(active_ms: u64) -> RouteState {
    RouteState { active_ms, ..state(Phase::Progressing, 0, 500) }
}

/// Candidate and control slice with `requests` each, failing `candidate_errors` and
/// `control_errors` of them.
fn compared(requests: u64, candidate_errors: u64, control_errors: u64) -> StepSnapshot {
    let mut arms = vec![ArmSnapshot::default(); 4];
    let arm = |errors: u64| ArmSnapshot { ok: requests - errors, upstream_errors: errors, ..Default::default() };
    arms[Arm::Candidate as usize] = arm(candidate_errors);
    arms[Arm::Control as usize] = arm(control_errors);
    StepSnapshot { format: cutover_live::stats::SNAPSHOT_FORMAT, arms, ..StepSnapshot::default() }
}

fn look(config: &Config, state: &RouteState, snapshot: &StepSnapshot) -> Option<Transition> {
    tick(state, plan(config), on(snapshot), true, T0 + 10 * MINUTE).transition
}

#[test]
fn the_default_max_duration_is_four_times_the_min_duration() {
    let config = config("");
    assert_eq!(plan(&config).steps[0].max_duration, Some(Duration::from_millis(MAX_DURATION_MS)));
    assert_eq!(plan(&config).on_undecided, OnUndecided::Pause);
}

#[test]
fn an_undecided_step_holds_until_its_max_duration() {
    let config = config("");
    let too_few = compared(5, 0, 0);
    assert_eq!(look(&config, &running_for(MAX_DURATION_MS - 1), &too_few), None, "held, as before");
}

#[test]
fn at_its_max_duration_an_undecided_step_pauses_and_says_what_was_missing() {
    let config = config("");
    let running = running_for(MAX_DURATION_MS);
    let paused = look(&config, &running, &compared(5, 0, 0)).unwrap();
    assert_eq!(paused.kind, EventKind::Undecided);
    assert_eq!(paused.next, RouteState { phase: Phase::Paused, ..running }, "the weight stays for an operator");
    assert_eq!(
        paused.reason,
        "undecided after 4m of step time (max_duration 4m): candidate_requests 5 of 10; control_requests 5 of 10; \
         on_undecided = \"pause\": paused until an operator acts"
    );
}

#[test]
fn an_undecided_criterion_is_named_with_the_smallest_increase_the_evidence_resolves() {
    // A budget this large never binds: the undecided path alone (the next test has the
    // derived one).
    let config = config("max_error_rate_increase = 0.5\nmax_excess_failures = 1000000");
    let doubled = compared(400, 8, 4);
    let paused = look(&config, &running_for(MAX_DURATION_MS), &doubled).unwrap();
    assert_eq!(paused.kind, EventKind::Undecided);
    let (before, after) = paused
        .reason
        .split_once("max_error_rate_increase: 400 requests cannot resolve 0.5 pp: detectable increase ")
        .unwrap_or_else(|| panic!("{}", paused.reason));
    assert!(before.starts_with("undecided after 4m of step time (max_duration 4m): "), "{before}");
    let detectable: f64 = after.split(' ').next().unwrap().parse().unwrap();
    assert!(detectable > 0.5, "{detectable} pp: more than the margin, or it would have decided");
}

#[test]
fn on_undecided_rollback_ends_the_step_as_a_failure_would() {
    let config = config("on_undecided = \"rollback\"");
    let rolled_back = look(&config, &running_for(MAX_DURATION_MS), &compared(5, 0, 0)).unwrap();
    assert_eq!(rolled_back.kind, EventKind::Undecided);
    assert_eq!((rolled_back.next.phase, rolled_back.next.weight_bp), (Phase::RolledBack, 0));
    assert!(rolled_back.reason.ends_with("on_undecided = \"rollback\""), "{}", rolled_back.reason);
}

#[test]
fn on_undecided_advance_ends_the_step_as_a_pass_would() {
    let config = config("on_undecided = \"advance\"");
    let advanced = look(&config, &running_for(MAX_DURATION_MS), &compared(5, 0, 0)).unwrap();
    assert_eq!(advanced.kind, EventKind::Undecided);
    assert_eq!((advanced.next.phase, advanced.next.step, advanced.next.weight_bp), (Phase::Progressing, 1, 5000));
    assert_eq!(advanced.baseline, BaselineChange::Advanced(None));
}

#[test]
fn a_decided_step_is_not_undecided_however_long_it_ran() {
    let config = config("");
    let advanced = look(&config, &running_for(10 * MAX_DURATION_MS), &compared(50, 0, 0)).unwrap();
    assert_eq!(advanced.kind, EventKind::Advance);
}

#[test]
fn a_dry_run_never_ends_a_step_undecided() {
    let config = config("mode = \"dry-run\"");
    assert_eq!(look(&config, &running_for(10 * MAX_DURATION_MS), &compared(5, 0, 0)), None);
}

#[test]
fn a_step_without_min_duration_or_max_duration_holds_until_decided() {
    let plan = r#"[routes.rollout]
steps = [{ weight = 5, min_requests = 10 }]"#;
    let config = testing::load(&testing::two_upstreams_toml("", plan), Path::new("."), |_| None);
    assert_eq!(route(&config).rollout.as_ref().unwrap().steps[0].max_duration, None);
    assert_eq!(look(&config, &running_for(1000 * MAX_DURATION_MS), &compared(5, 0, 0)), None);
}

#[test]
fn the_derived_harm_budget_fails_a_step_its_traffic_cannot_clear_before_it_ends_undecided() {
    // The same doubled candidate with the budget the step derives: 2 × 0.5 pp of its 400
    // requests is 4 excess failures, and 400 requests cannot bound the excess below that.
    let config = config("max_error_rate_increase = 0.5");
    let failed = look(&config, &running_for(MAX_DURATION_MS), &compared(400, 8, 4)).unwrap();
    assert_eq!(failed.kind, EventKind::CheckFailed, "{}", failed.reason);
    assert!(failed.reason.contains("max_excess_failures"), "{}", failed.reason);
    // Early in the step the projected budget is far above what 400 requests can show.
    assert_eq!(look(&config, &running_for(MAX_DURATION_MS / 40), &compared(400, 8, 4)), None);
}
