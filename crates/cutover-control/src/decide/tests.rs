//! The controller's rules as specifications: a state, a plan, evidence and an input in,
//! the transition (or refusal) out. No state file, no clock, no lock.

use std::path::Path;

use cutover_config::{Config, testing};

use super::*;
use crate::analysis::Evaluation;

const T0: i64 = 1_000_000;
const MINUTE: i64 = 60_000;

/// A route `default` with a three-step plan (5% → 50% → 100%); `extra` adds keys to
/// `[routes.rollout]`.
fn config(extra: &str) -> Config {
    let plan = format!(
        r#"[routes.rollout]
interval = "1m"
failure_limit = 3
cooldown = "10m"
{extra}
steps = [
  {{ weight = 5,   min_duration = "1m", min_requests = 10 }},
  {{ weight = 50,  min_duration = "1m", min_requests = 10 }},
  {{ weight = 100, min_duration = "1m", min_requests = 10 }},
]"#
    );
    testing::load(&testing::two_upstreams_toml("", &plan), Path::new("."), |_| None)
}

fn route(config: &Config) -> &Route {
    config.route("default").unwrap()
}

fn plan(config: &Config) -> &RolloutPlan {
    route(config).rollout.as_ref().unwrap()
}

fn state(phase: Phase, step: u32, weight_bp: u32) -> RouteState {
    RouteState {
        route: "default".to_owned(),
        phase,
        step,
        weight_bp,
        step_started_at: T0,
        consecutive_failures: 0,
        active_ms: 0,
        step_backs: 0,
    }
}

fn verdict(verdict: Verdict) -> Evaluation {
    Evaluation {
        verdict,
        control: ControlKind::EqualSlice,
        checks: Vec::new(),
        gates: Vec::new(),
        held: None,
        ahead: Vec::new(),
    }
}

/// Evidence in which the candidate failed `errors` of `requests` and the primary served 40.
fn evidence(requests: u64, errors: u64) -> StepSnapshot {
    let mut arms = vec![ArmSnapshot::default(); 4];
    arms[Arm::Primary as usize].ok = 40;
    arms[Arm::Candidate as usize] =
        ArmSnapshot { ok: requests - errors, upstream_errors: errors, ..Default::default() };
    StepSnapshot { format: cutover_live::stats::SNAPSHOT_FORMAT, arms, ..StepSnapshot::default() }
}

fn on(snapshot: &StepSnapshot) -> Evidence<'_> {
    Evidence { snapshot, baseline: None }
}

fn after_verdict(config: &Config, state: &RouteState, outcome: Verdict) -> Option<Transition> {
    on_verdict(state, plan(config), on(&StepSnapshot::default()), &verdict(outcome), T0 + MINUTE)
}

#[test]
fn a_pending_rollout_starts_at_the_first_step_on_the_first_analysis() {
    let config = config("");
    let empty = StepSnapshot::default();
    let pending = state(Phase::Pending, 0, 0);
    assert!(tick(&pending, plan(&config), on(&empty), false, T0).transition.is_none(), "a guard tick only guards");
    let start = tick(&pending, plan(&config), on(&empty), true, T0 + 5).transition.unwrap();
    assert_eq!(
        (start.kind, start.actor.as_str(), start.reason.as_str()),
        (EventKind::Start, CONTROLLER, "rollout started")
    );
    assert_eq!(
        start.next,
        RouteState { phase: Phase::Progressing, weight_bp: 500, step_started_at: T0 + 5, ..pending }
    );
}

#[test]
fn a_pass_advances_to_the_next_step_with_a_fresh_clock() {
    let config = config("");
    let running = RouteState { consecutive_failures: 1, ..state(Phase::Progressing, 0, 500) };
    let advance = after_verdict(&config, &running, Verdict::Pass).unwrap();
    assert_eq!((advance.kind, advance.reason.as_str()), (EventKind::Advance, "pass"));
    assert_eq!((advance.next.step, advance.next.weight_bp, advance.next.phase), (1, 5000, Phase::Progressing));
    assert_eq!((advance.next.step_started_at, advance.next.consecutive_failures), (T0 + MINUTE, 0));
    assert_eq!(advance.baseline, BaselineChange::Advanced(None), "the primary still has traffic at 50%");
}

#[test]
fn entering_the_full_weight_step_keeps_the_primarys_figures_as_baseline() {
    let config = config("");
    let snapshot = evidence(30, 0);
    let running = state(Phase::Progressing, 1, 5000);
    let advance = on_verdict(&running, plan(&config), on(&snapshot), &verdict(Verdict::Pass), T0).unwrap();
    assert_eq!(advance.next.weight_bp, 10_000);
    assert_eq!(advance.baseline, BaselineChange::Advanced(Some(Box::new(snapshot.arm(Arm::Primary)))));
}

#[test]
fn the_last_steps_pass_promotes() {
    let config = config("");
    let promoted = after_verdict(&config, &state(Phase::Progressing, 2, 10_000), Verdict::Pass).unwrap();
    assert_eq!(promoted.kind, EventKind::Promoted);
    assert_eq!((promoted.next.phase, promoted.next.step, promoted.next.weight_bp), (Phase::Promoted, 2, 10_000));
}

#[test]
fn failures_below_the_limit_are_counted_and_the_limit_rolls_back() {
    let config = config("");
    let running = RouteState { consecutive_failures: 1, ..state(Phase::Progressing, 1, 5000) };
    let counted = after_verdict(&config, &running, Verdict::Fail).unwrap();
    assert_eq!((counted.kind, counted.next.consecutive_failures), (EventKind::CheckFailed, 2));
    assert_eq!(counted.next.weight_bp, 5000, "a failed check alone does not move the weight");
    let rollback = after_verdict(&config, &counted.next, Verdict::Fail).unwrap();
    assert_eq!(rollback.kind, EventKind::Rollback);
    assert_eq!(
        (rollback.next.phase, rollback.next.weight_bp, rollback.next.consecutive_failures),
        (Phase::RolledBack, 0, 0)
    );
    assert_eq!(rollback.reason, "3 consecutive failed checks; last: fail");
}

#[test]
fn with_on_failure_previous_the_limit_steps_back_and_at_the_first_step_rolls_back() {
    let config = config("on_failure = \"previous\"");
    let failing = RouteState { consecutive_failures: 2, ..state(Phase::Progressing, 1, 5000) };
    let back = after_verdict(&config, &failing, Verdict::Fail).unwrap();
    assert_eq!(back.kind, EventKind::StepBack);
    assert_eq!((back.next.step, back.next.weight_bp, back.next.phase), (0, 500, Phase::Progressing));
    let first = RouteState { consecutive_failures: 2, ..state(Phase::Progressing, 0, 500) };
    assert_eq!(after_verdict(&config, &first, Verdict::Fail).unwrap().kind, EventKind::Rollback);
}

#[test]
fn an_inconclusive_interval_ends_a_run_of_failures_and_otherwise_changes_nothing() {
    let config = config("");
    let failing = RouteState { consecutive_failures: 2, ..state(Phase::Progressing, 1, 5000) };
    let reset = after_verdict(&config, &failing, Verdict::Inconclusive).unwrap();
    assert_eq!(reset.kind, EventKind::CheckInconclusive);
    assert_eq!(reset.next, RouteState { consecutive_failures: 0, ..failing });
    assert!(after_verdict(&config, &state(Phase::Progressing, 1, 5000), Verdict::Inconclusive).is_none());
}

#[test]
fn the_hard_ceiling_rolls_back_at_once_even_between_analyses() {
    let config = config("");
    let snapshot = evidence(30, 20);
    let running = state(Phase::Progressing, 0, 500);
    let decision = tick(&running, plan(&config), on(&snapshot), false, T0 + 1000);
    let rollback = decision.transition.unwrap();
    assert_eq!(
        (rollback.kind, rollback.next.phase, rollback.next.weight_bp),
        (EventKind::Rollback, Phase::RolledBack, 0)
    );
    assert!(rollback.reason.contains("hard ceiling"), "{}", rollback.reason);
    assert!(decision.evaluation.is_none(), "no analysis is needed to see a catastrophe");
    let healthy = evidence(30, 1);
    assert!(tick(&running, plan(&config), on(&healthy), false, T0 + 1000).transition.is_none());
}

#[test]
fn an_analysis_is_kept_for_the_view_even_when_nothing_moves() {
    let config = config("");
    let healthy = evidence(3, 0);
    let decision = tick(&state(Phase::Progressing, 0, 500), plan(&config), on(&healthy), true, T0 + 1000);
    assert_eq!(decision.evaluation.map(|evaluation| evaluation.verdict), Some(Verdict::Inconclusive));
    assert!(decision.transition.is_none(), "too little data is never a pass");
}

#[test]
fn a_dry_run_records_verdicts_without_moving_and_ignores_the_hard_ceiling() {
    let config = config("mode = \"dry-run\"");
    let running = state(Phase::Progressing, 0, 500);
    for outcome in [Verdict::Pass, Verdict::Fail] {
        let recorded = after_verdict(&config, &running, outcome).unwrap();
        assert_eq!((recorded.kind, &recorded.next), (EventKind::DryRunVerdict, &running));
    }
    assert!(after_verdict(&config, &running, Verdict::Inconclusive).is_none());
    let catastrophe = evidence(30, 30);
    assert!(tick(&running, plan(&config), on(&catastrophe), false, T0).transition.is_none());
}

/// A plan judged on error rates (for the fail-side and time specifications).
fn judged(extra: &str) -> Config {
    config(&format!("max_error_rate_increase = 0.5\n{extra}"))
}

/// Evidence per arm, each `(ok, upstream errors)`, without sticky users.
fn arms(candidate: (u64, u64), control: (u64, u64), primary: (u64, u64)) -> StepSnapshot {
    let arm = |(ok, upstream_errors): (u64, u64)| ArmSnapshot { ok, upstream_errors, ..Default::default() };
    let mut arms = vec![ArmSnapshot::default(); 4];
    arms[Arm::Primary as usize] = arm(primary);
    arms[Arm::Control as usize] = arm(control);
    arms[Arm::Candidate as usize] = arm(candidate);
    StepSnapshot { format: cutover_live::stats::SNAPSHOT_FORMAT, arms, ..StepSnapshot::default() }
}

/// A candidate at 20% errors against 1%: well short of the hard ceiling, a clear fail.
fn failing() -> StepSnapshot {
    arms((1600, 400), (1980, 20), (39_600, 400))
}

fn healthy() -> StepSnapshot {
    arms((49_500, 500), (49_500, 500), (990_000, 10_000))
}

/// The rollouts whose candidate carries users while no plan step runs, each with the
/// baseline a 100% weight compares with.
fn watched() -> Vec<(&'static str, RouteState)> {
    vec![
        ("paused by hand", state(Phase::Paused, 1, 5000)),
        ("paused by a plan edit, beyond the plan", state(Phase::Paused, 7, 2500)),
        ("a manual weight", state(Phase::Paused, 0, 100)),
        ("promoted at 100%", state(Phase::Promoted, 2, 10_000)),
    ]
}

#[test]
fn the_fail_side_keeps_watching_every_phase_in_which_the_candidate_has_users() {
    let config = judged("");
    let snapshot = failing();
    let baseline = snapshot.arm(Arm::Primary);
    let evidence = Evidence { snapshot: &snapshot, baseline: Some(&baseline) };
    for (what, watched) in watched() {
        let decision = tick(&watched, plan(&config), evidence, true, T0 + MINUTE);
        assert_eq!(decision.evaluation.map(|evaluation| evaluation.verdict), Some(Verdict::Fail), "{what}");
        let counted = decision.transition.unwrap_or_else(|| panic!("{what}: the failed check is not counted"));
        assert_eq!((counted.kind, counted.next.consecutive_failures), (EventKind::CheckFailed, 1), "{what}");
        assert_eq!((counted.next.phase, counted.next.weight_bp), (watched.phase, watched.weight_bp), "{what}");
        let at_limit = RouteState { consecutive_failures: 2, ..watched.clone() };
        let rollback = tick(&at_limit, plan(&config), evidence, true, T0 + MINUTE).transition.unwrap();
        assert_eq!(
            (rollback.kind, rollback.next.phase, rollback.next.weight_bp),
            (EventKind::Rollback, Phase::RolledBack, 0),
            "{what}"
        );
        let phase = watched.phase;
        assert!(rollback.reason.starts_with(&format!("3 consecutive failed checks while {phase}")), "{what}");
    }
}

#[test]
fn outside_a_running_step_a_pass_moves_nothing_and_only_ends_a_run_of_failures() {
    let config = judged("");
    let snapshot = healthy();
    let baseline = snapshot.arm(Arm::Primary);
    let evidence = Evidence { snapshot: &snapshot, baseline: Some(&baseline) };
    for (what, watched) in watched() {
        let decision = tick(&watched, plan(&config), evidence, true, T0 + MINUTE);
        assert!(decision.evaluation.is_some(), "{what}: the view shows the watch");
        assert!(decision.transition.is_none(), "{what}: never advanced by the controller");
        let failing = RouteState { consecutive_failures: 2, ..watched.clone() };
        let reset = tick(&failing, plan(&config), evidence, true, T0 + MINUTE).transition.unwrap();
        assert_eq!((reset.kind, reset.next), (EventKind::CheckInconclusive, watched), "{what}");
    }
}

#[test]
fn a_dry_run_watch_records_failures_without_moving() {
    let config = judged("mode = \"dry-run\"");
    let snapshot = failing();
    let recorded = tick(&state(Phase::Paused, 1, 5000), plan(&config), on(&snapshot), true, T0).transition.unwrap();
    assert_eq!((recorded.kind, recorded.next), (EventKind::DryRunVerdict, state(Phase::Paused, 1, 5000)));
}

#[test]
fn rollouts_without_candidate_users_are_not_analysed() {
    let config = judged("");
    let snapshot = failing();
    for (phase, weight_bp) in [(Phase::Paused, 0), (Phase::RolledBack, 0)] {
        let decision = tick(&state(phase, 1, weight_bp), plan(&config), on(&snapshot), true, T0);
        assert!(decision.transition.is_none() && decision.evaluation.is_none(), "{phase}");
    }
}

#[test]
fn min_duration_is_judged_by_the_steps_running_time_not_by_the_wall_clock() {
    let config = judged("");
    let snapshot = healthy();
    // Started two hours ago by the wall clock (a jump, or a long pause), 30 s of running.
    let short = RouteState { active_ms: 30_000, ..state(Phase::Progressing, 0, 500) };
    let decision = tick(&short, plan(&config), on(&snapshot), true, T0 + 120 * MINUTE);
    let evaluation = decision.evaluation.unwrap();
    let duration = evaluation.gates.iter().find(|gate| gate.gate == "duration_seconds").unwrap();
    assert_eq!((duration.have, duration.met), (30.0, false));
    assert!(decision.transition.is_none());
    // A minute of running passes, whatever the wall clock says (here: it went back).
    let long = RouteState { active_ms: MINUTE as u64, ..short };
    let advance = tick(&long, plan(&config), on(&snapshot), true, T0 - 120 * MINUTE).transition.unwrap();
    assert_eq!(advance.kind, EventKind::Advance);
    assert_eq!(advance.next.active_ms, 0, "a new step starts its running time at zero");
}

#[test]
fn pausing_freezes_the_running_time_and_resuming_goes_on_from_it() {
    let config = judged("");
    let running = RouteState { active_ms: 42_000, ..state(Phase::Progressing, 1, 5000) };
    let empty = StepSnapshot::default();
    let command = |state: &RouteState, command, at| {
        super::command(route(&config), state, on(&empty), command, "alice", at).unwrap()
    };
    let paused = command(&running, Command::Pause, T0 + MINUTE);
    assert_eq!((paused.next.phase, paused.next.active_ms), (Phase::Paused, 42_000));
    let resumed = command(&paused.next, Command::Resume, T0 + 90 * MINUTE);
    assert_eq!(
        (resumed.next.phase, resumed.next.active_ms, resumed.next.step_started_at),
        (Phase::Progressing, 42_000, T0),
        "the 89 paused minutes are not running time"
    );
}

#[test]
fn stepping_back_is_limited_per_rollout_then_the_limit_rolls_back_and_says_why() {
    let config = config("on_failure = \"previous\"");
    let failing =
        RouteState { consecutive_failures: 2, step_backs: MAX_STEP_BACKS - 1, ..state(Phase::Progressing, 1, 5000) };
    let back = after_verdict(&config, &failing, Verdict::Fail).unwrap();
    assert_eq!((back.kind, back.next.step, back.next.step_backs), (EventKind::StepBack, 0, MAX_STEP_BACKS));
    // The count survives the steps in between: a pass forward keeps it.
    let forward = after_verdict(&config, &back.next, Verdict::Pass).unwrap();
    assert_eq!((forward.next.step, forward.next.step_backs), (1, MAX_STEP_BACKS));
    let again = RouteState { consecutive_failures: 2, ..forward.next };
    let rollback = after_verdict(&config, &again, Verdict::Fail).unwrap();
    assert_eq!(
        (rollback.kind, rollback.next.phase, rollback.next.weight_bp),
        (EventKind::Rollback, Phase::RolledBack, 0)
    );
    assert!(
        rollback.reason.contains("already stepped back 3 times in this rollout (the limit)"),
        "{}",
        rollback.reason
    );
    // A retry is a new rollout, with its own step-backs.
    let retried = super::command(
        route(&config),
        &rollback.next,
        on(&StepSnapshot::default()),
        Command::Retry,
        "alice",
        T0 + 60 * MINUTE,
    )
    .unwrap();
    assert_eq!((retried.next.step, retried.next.step_backs), (0, 0));
}

#[test]
fn a_step_without_control_traffic_says_it_is_held_and_since_when() {
    let config = judged("");
    let no_control = arms((1980, 20), (0, 0), (0, 0));
    let running = RouteState { active_ms: 5 * MINUTE as u64, ..state(Phase::Progressing, 0, 500) };
    let evaluation = tick(&running, plan(&config), on(&no_control), true, T0 + 5 * MINUTE).evaluation.unwrap();
    assert_eq!(evaluation.verdict, Verdict::Inconclusive);
    assert_eq!(
        evaluation.held.as_deref(),
        Some("held: no control traffic since 1970-01-01 00:16:40 UTC (5 min of step time)")
    );
    let at_full = RouteState { active_ms: 5 * MINUTE as u64, ..state(Phase::Progressing, 2, 10_000) };
    let evaluation = tick(&at_full, plan(&config), on(&no_control), true, T0).evaluation.unwrap();
    assert!(evaluation.held.unwrap().starts_with("held: no baseline: no earlier step measured the primary"));
}

#[test]
fn above_half_the_candidate_is_compared_with_all_primary_traffic_not_the_empty_slice() {
    let plan_toml = r#"[routes.rollout]
interval = "1m"
max_error_rate_increase = 0.5
steps = [
  { weight = 5,  min_requests = 1000 },
  { weight = 75, min_requests = 1000 },
]"#;
    let config = testing::load(&testing::two_upstreams_toml("", plan_toml), Path::new("."), |_| None);
    // Above 50% no slice of the primary's users equals the candidate's: the slice arm is
    // empty and the whole primary (a third of the candidate's size) is the control.
    let snapshot = arms((29_700, 300), (0, 0), (9_900, 100));
    let running = state(Phase::Progressing, 1, 7500);
    let evaluation = tick(&running, plan(&config), on(&snapshot), true, T0).evaluation.unwrap();
    assert_eq!((evaluation.control, evaluation.verdict), (ControlKind::AllPrimary, Verdict::Pass));
    let gate = evaluation.gates.iter().find(|gate| gate.gate == "control_requests").unwrap();
    assert_eq!(gate.need, 333.0, "the control's gate scales with its share: 1000 × 25/75");
    // The same evidence at 5% has no control at all, and is held.
    let at_five = state(Phase::Progressing, 0, 500);
    let evaluation = tick(&at_five, plan(&config), on(&snapshot), true, T0).evaluation.unwrap();
    assert_eq!((evaluation.control, evaluation.verdict), (ControlKind::EqualSlice, Verdict::Inconclusive));
}

#[test]
fn the_hard_ceiling_guards_every_phase_in_which_the_candidate_has_users() {
    let config = config("");
    let catastrophe = evidence(30, 30);
    let guarded = [
        ("progressing", state(Phase::Progressing, 0, 500)),
        ("paused by hand", state(Phase::Paused, 1, 5000)),
        ("paused by a plan edit, beyond the plan", state(Phase::Paused, 7, 2500)),
        ("a manual weight", state(Phase::Paused, 0, 1)),
        ("promoted at 100%", state(Phase::Promoted, 2, 10_000)),
    ];
    for (what, guarded) in guarded {
        let rollback = tick(&guarded, plan(&config), on(&catastrophe), false, T0 + 1000).transition;
        let rollback = rollback.unwrap_or_else(|| panic!("{what}: not rolled back"));
        assert_eq!(
            (rollback.kind, rollback.next.phase, rollback.next.weight_bp),
            (EventKind::Rollback, Phase::RolledBack, 0),
            "{what}"
        );
        assert_eq!(rollback.next.step_started_at, T0 + 1000, "{what}");
        assert!(rollback.reason.contains("hard ceiling"), "{what}: {}", rollback.reason);
    }
}

#[test]
fn a_rollout_without_candidate_traffic_has_nothing_to_guard() {
    let config = config("");
    let catastrophe = evidence(30, 30);
    for unguarded in [state(Phase::Pending, 0, 0), state(Phase::RolledBack, 0, 0), state(Phase::Paused, 0, 0)] {
        assert!(guard(&unguarded, false, on(&catastrophe), T0).is_none(), "{:?}", unguarded.phase);
    }
    assert!(tick(&state(Phase::Pending, 0, 0), plan(&config), on(&catastrophe), false, T0).transition.is_none());
}

#[test]
fn a_manual_weight_set_over_a_plan_is_guarded_too() {
    let catastrophe = evidence(30, 30);
    let manual = state(Phase::Paused, 0, 2500);
    let rollback = guard(&manual, false, on(&catastrophe), T0).unwrap();
    assert_eq!((rollback.next.phase, rollback.next.weight_bp), (Phase::RolledBack, 0));
    assert!(guard(&manual, true, on(&catastrophe), T0).is_none(), "a dry run never rolls back");
}

#[test]
fn a_running_step_whose_plan_changed_is_paused() {
    let config = config("");
    let edited = state(Phase::Progressing, 1, 2500);
    let paused = reconcile(route(&config), &edited).unwrap();
    assert_eq!((paused.kind, paused.next.phase, paused.next.weight_bp), (EventKind::PlanChanged, Phase::Paused, 2500));
    assert!(reconcile(route(&config), &state(Phase::Progressing, 1, 5000)).is_none());
    assert!(reconcile(route(&config), &state(Phase::Paused, 1, 2500)).is_none(), "only running steps are checked");
}

mod commands;
mod undecided;
