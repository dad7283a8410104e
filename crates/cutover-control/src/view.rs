//! The admin API's view of one route's rollout (`cutover_model::view::RolloutView`),
//! rendered from what the controller last published (state, evaluation, recent events)
//! and the live evidence, so reading it takes no lock and no SQLite query.

use cutover_config::{Config, RouteId};
use cutover_model::view::{
    ArmCost, ArmCounts, ArmView, Arms, CriterionView, FleetArms, RolloutView, ShadowCaps, StepView, Undecided,
};

use super::Validation;
use super::analysis::Evaluation;
use super::clock::StepClock;
use cutover_live::LiveRoute;
use cutover_live::stats::{Arm, ArmSnapshot};
use cutover_model::RouteState;
use cutover_state::Event;

/// How many of a route's latest events its view shows.
pub const RECENT_EVENTS: usize = 5;

/// What the controller publishes for the view after every change of a route's rollout.
#[derive(Debug, Clone)]
pub struct Published {
    pub state: RouteState,
    /// The step's running-time clock, for `active_seconds_in_step`.
    pub clock: StepClock,
    /// The last analysis of the current step, if it has had one.
    pub evaluation: Option<Evaluation>,
    /// The latest `RECENT_EVENTS` events, newest first, as the state file holds them.
    pub events: Vec<Event>,
    /// Transitions in effect that the state file has not taken yet (a full disk, a lock).
    pub unsaved: usize,
    /// The validation of the candidate (the `require_validation` gate).
    pub validation: Validation,
    /// In a fleet, the leader's: the step's evidence over every instance as last judged
    /// (per arm counts); `None` on SQLite and on the other instances.
    pub fleet_arms: Option<FleetArms>,
}

/// Per arm counts of `snapshot`, for `fleet_arms`.
pub fn arm_counts(snapshot: &cutover_live::stats::StepSnapshot) -> FleetArms {
    let arm = |arm: Arm| counts(&snapshot.arm(arm));
    FleetArms {
        candidate: arm(Arm::Candidate),
        control: arm(Arm::Control),
        primary: arm(Arm::Primary),
        shadow: arm(Arm::Shadow),
    }
}

fn counts(arm: &ArmSnapshot) -> ArmCounts {
    ArmCounts {
        requests: arm.requests(),
        ok: arm.ok,
        client_errors: arm.client_errors,
        upstream_errors: arm.upstream_errors,
        users: arm.users(),
    }
}

/// The view of route `id` at `now_ms`.
pub fn render(config: &Config, id: RouteId, live: &LiveRoute, published: &Published, now_ms: i64) -> RolloutView {
    let route = &config.routes[id];
    let state = &published.state;
    // Counts and cost cells only: a full snapshot copies two 2,102-bucket histograms per
    // arm, and a flood of views would take that CPU from the proxy.
    let arm = |arm: Arm| {
        let arm = live.stats().arm_counts(arm);
        let cost = arm.spend.estimate();
        ArmView {
            counts: counts(&arm),
            cost: ArmCost {
                priced_requests: cost.known,
                unknown_cost_requests: cost.unknown,
                usd_per_1000_requests: (cost.known > 0).then_some(cost.mean * 1000.0),
            },
        }
    };
    let plan = route.rollout.as_ref();
    RolloutView {
        route: route.name.clone(),
        primary: config.upstreams[route.primary].name.clone(),
        candidate: route.candidate.map(|candidate| config.upstreams[candidate].name.clone()),
        phase: state.phase,
        step: state.step,
        steps: plan.map_or(0, |plan| plan.steps.len()),
        weight: f64::from(state.weight_bp) / 100.0,
        shadow: live.shadow(),
        step_started_at: state.step_started_at,
        seconds_in_step: (now_ms - state.step_started_at).max(0) / 1000,
        active_seconds_in_step: published.clock.active_ms(state, std::time::Instant::now()) / 1000,
        step_backs: state.step_backs,
        consecutive_failures: state.consecutive_failures,
        failure_limit: plan.map(|plan| plan.failure_limit),
        dry_run: plan.is_some_and(|plan| plan.dry_run),
        on_undecided: plan.map(|plan| plan.on_undecided.as_str().to_owned()),
        undecided: undecided(live, published),
        arms: Arms {
            candidate: arm(Arm::Candidate),
            control: arm(Arm::Control),
            primary: arm(Arm::Primary),
            shadow: arm(Arm::Shadow),
            shadow_primary: arm(Arm::ShadowPrimary),
        },
        shadow_agreement: live.stats().snapshot_agreement().to_view(),
        shadow_caps: ShadowCaps {
            max_rps: route.shadow_settings.max_rps,
            max_usd_per_hour: route.shadow_settings.max_usd_per_hour,
            binding: live.mirroring.caps.binding(now_ms),
            dropped: live.mirroring.caps.dropped(),
        },
        evaluation: published.evaluation.clone(),
        events: published.events.clone(),
        unsaved_transitions: published.unsaved,
        validation: published.validation.to_view(plan, state),
        fleet_arms: published.fleet_arms,
        plan: plan.map(|plan| plan.steps.iter().map(step_view).collect()),
    }
}

/// While a step that ended undecided keeps the rollout paused: since when, and the
/// event's reason (what the evidence could not resolve).
fn undecided(live: &LiveRoute, published: &Published) -> Option<Undecided> {
    let since = live.undecided_since()?;
    let event = published.events.iter().find(|event| event.kind == cutover_model::EventKind::Undecided);
    Some(Undecided { since, reason: event.map(|event| event.reason.clone()) })
}

/// One step of the plan: its weight and shadow share, gates, and each criterion with its
/// threshold in words (`p95 ≤ 1.5× primary`), for the dashboard's row of steps.
fn step_view(step: &cutover_config::RolloutStep) -> StepView {
    let criteria = step
        .criteria
        .iter()
        .map(|(criterion, threshold)| CriterionView { criterion, threshold, summary: criterion.summary(threshold) })
        .collect();
    StepView {
        weight: f64::from(step.weight_bp) / 100.0,
        shadow: step.shadow,
        min_duration_seconds: step.min_duration.as_secs(),
        max_duration_seconds: step.max_duration.map(|max| max.as_secs()),
        min_requests: step.min_requests,
        min_users: step.min_users,
        criteria,
    }
}
