//! Operator commands as specifications: what each does in the phases that allow it, and
//! the 409 text of the phases that refuse it.

use super::*;

fn run(config: &Config, state: &RouteState, command: Command, now_ms: i64) -> Result<Transition, ControlError> {
    let empty = StepSnapshot::default();
    super::super::command(route(config), state, on(&empty), command, "alice", now_ms)
}

fn refusal(result: Result<Transition, ControlError>) -> String {
    match result {
        Err(ControlError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn pause_stops_a_running_step_and_is_refused_otherwise() {
    let config = config("");
    let paused = run(&config, &state(Phase::Progressing, 1, 5000), Command::Pause, T0).unwrap();
    assert_eq!(
        (paused.kind, paused.actor.as_str(), paused.reason.as_str()),
        (EventKind::Pause, "alice", "pause by alice")
    );
    assert_eq!(paused.next, state(Phase::Paused, 1, 5000));
    let refused = refusal(run(&config, &state(Phase::Promoted, 2, 10_000), Command::Pause, T0));
    assert_eq!(refused, "cannot pause route \"default\": its rollout is promoted");
}

#[test]
fn resume_continues_the_paused_step_with_its_clock_at_the_planned_weight() {
    let config = config("");
    let by_hand = state(Phase::Paused, 1, 1234);
    let resumed = run(&config, &by_hand, Command::Resume, T0 + MINUTE).unwrap();
    assert_eq!(resumed.kind, EventKind::Resume);
    assert_eq!(resumed.next, state(Phase::Progressing, 1, 5000), "same clock, planned weight");
    let pending = run(&config, &state(Phase::Pending, 0, 0), Command::Resume, T0 + MINUTE).unwrap();
    assert_eq!((pending.next.weight_bp, pending.next.step_started_at), (500, T0 + MINUTE));
}

#[test]
fn resuming_a_promoted_rollout_is_a_conflict() {
    let config = config("");
    let refused = refusal(run(&config, &state(Phase::Promoted, 2, 10_000), Command::Resume, T0));
    assert_eq!(refused, "cannot resume route \"default\": its rollout is promoted");
}

#[test]
fn promote_starts_a_pending_rollout_advances_a_running_one_and_promotes_past_the_last_step() {
    let config = config("");
    let started = run(&config, &state(Phase::Pending, 0, 0), Command::Promote, T0).unwrap();
    assert_eq!((started.kind, started.next.step, started.next.weight_bp), (EventKind::Promote, 0, 500));
    let advanced = run(&config, &state(Phase::Paused, 0, 500), Command::Promote, T0).unwrap();
    assert_eq!((advanced.kind, advanced.next.step, advanced.next.phase), (EventKind::Promote, 1, Phase::Progressing));
    assert_eq!(advanced.reason, "promote by alice");
    let last = run(&config, &state(Phase::Progressing, 2, 10_000), Command::Promote, T0).unwrap();
    assert_eq!((last.kind, last.next.phase), (EventKind::Promoted, Phase::Promoted));
    let refused = refusal(run(&config, &state(Phase::RolledBack, 0, 0), Command::Promote, T0));
    assert_eq!(refused, "cannot promote route \"default\": its rollout is rolled_back");
}

#[test]
fn promote_full_goes_to_the_last_step_unless_already_promoted() {
    let config = config("");
    let full = run(&config, &state(Phase::Progressing, 0, 500), Command::PromoteFull, T0).unwrap();
    assert_eq!(
        (full.kind, full.next.phase, full.next.step, full.next.weight_bp),
        (EventKind::PromoteFull, Phase::Promoted, 2, 10_000)
    );
    let refused = refusal(run(&config, &full.next, Command::PromoteFull, T0));
    assert_eq!(refused, "cannot promote route \"default\": its rollout is promoted");
}

#[test]
fn abort_rolls_back_unless_already_rolled_back() {
    let config = config("");
    let aborted = run(&config, &state(Phase::Promoted, 2, 10_000), Command::Abort, T0 + 7).unwrap();
    assert_eq!((aborted.kind, aborted.next.phase, aborted.next.weight_bp), (EventKind::Abort, Phase::RolledBack, 0));
    assert_eq!(aborted.next.step_started_at, T0 + 7, "the cool-down counts from the rollback");
    let refused = refusal(run(&config, &aborted.next, Command::Abort, T0));
    assert_eq!(refused, "cannot abort route \"default\": its rollout is rolled_back");
}

#[test]
fn retry_is_refused_during_the_cool_down_and_restarts_the_plan_after_it() {
    let config = config("");
    let rolled_back = state(Phase::RolledBack, 1, 0);
    let early = refusal(run(&config, &rolled_back, Command::Retry, T0 + 4 * MINUTE));
    assert_eq!(early, "route \"default\" rolled back 240s ago; retry is possible in 360s");
    let retried = run(&config, &rolled_back, Command::Retry, T0 + 10 * MINUTE).unwrap();
    assert_eq!((retried.kind, retried.next.step, retried.next.weight_bp), (EventKind::Retry, 0, 500));
    let refused = refusal(run(&config, &state(Phase::Progressing, 0, 500), Command::Retry, T0));
    assert_eq!(refused, "cannot retry route \"default\": its rollout is progressing");
}

#[test]
fn set_weight_pauses_at_the_weight_and_refuses_what_is_not_a_weight() {
    let config = config("");
    let failing = RouteState { consecutive_failures: 2, ..state(Phase::Progressing, 1, 5000) };
    let set = run(&config, &failing, Command::SetWeight(12.5), T0).unwrap();
    assert_eq!((set.kind, set.reason.as_str()), (EventKind::SetWeight, "weight set by hand from 50% to 12.5%"));
    assert_eq!(set.next, state(Phase::Paused, 1, 1250));
    for bad in [150.0, -1.0, 0.001] {
        assert!(matches!(run(&config, &failing, Command::SetWeight(bad), T0), Err(ControlError::InvalidWeight(_))));
    }
}

#[test]
fn a_manual_weight_is_normalised_in_the_event_and_minus_zero_is_zero() {
    let config = config("");
    let zero = run(&config, &state(Phase::Progressing, 1, 5000), Command::SetWeight(-0.0), T0).unwrap();
    assert_eq!(zero.next.weight_bp, 0);
    assert_eq!(zero.reason, "weight set by hand from 50% to 0%");
    let noisy = run(&config, &state(Phase::Paused, 1, 0), Command::SetWeight(12.500_000_000_1), T0).unwrap();
    assert_eq!((noisy.next.weight_bp, noisy.reason.as_str()), (1250, "weight set by hand from 0% to 12.5%"));
    assert!(matches!(
        run(&config, &state(Phase::Paused, 1, 0), Command::SetWeight(-0.5), T0),
        Err(ControlError::InvalidWeight(_))
    ));
}
