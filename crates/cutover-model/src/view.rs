//! The admin API's answers that a CLI verb reads back, typed: one route's rollout
//! (`GET /admin/rollouts[/ROUTE]`, `RolloutView`), a route's kept shadow diffs
//! (`ShadowDiffs`), the alert instances (`AlertsView`) and a test notification's results
//! (`NotifierTests`). The gateway renders them from these types and `cutover rollout
//! status`, `shadow diff` and `alerts status|test` read them back into them, so the two
//! sides cannot disagree on a name or a shape. The e2e rollout tests hold every view they
//! read to `RolloutView` (it reads into the type and writes back as the same JSON), and
//! a unit test of the dashboard holds the page's `view.…` reads to it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluation::Evaluation;
use crate::event::Event;
use crate::{Criterion, Dimension, Phase};

/// One route's rollout as the controller last published it, with the live evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    pub route: String,
    pub primary: String,
    pub candidate: Option<String>,
    pub phase: Phase,
    /// 0-based; `steps` is how many the plan has (0: no plan).
    pub step: u32,
    pub steps: usize,
    /// The candidate's share, in percent.
    pub weight: f64,
    /// The share of the primary's requests mirrored to the candidate, 0–1.
    pub shadow: f64,
    /// Unix milliseconds.
    pub step_started_at: i64,
    /// By the wall clock, since `step_started_at`.
    pub seconds_in_step: i64,
    /// The step's running time (paused time not counted), which its gates count.
    pub active_seconds_in_step: u64,
    pub step_backs: u32,
    pub consecutive_failures: u32,
    pub failure_limit: Option<u32>,
    pub dry_run: bool,
    /// `pause`, `rollback` or `advance`; `None` without a plan.
    pub on_undecided: Option<String>,
    /// While a step that ended undecided keeps the rollout paused.
    pub undecided: Option<Undecided>,
    pub arms: Arms,
    pub shadow_agreement: Agreement,
    pub shadow_caps: ShadowCaps,
    /// The last analysis of the current step, if it has had one.
    pub evaluation: Option<Evaluation>,
    /// The latest events, newest first.
    pub events: Vec<Event>,
    /// Transitions in effect that the state store has not taken yet.
    pub unsaved_transitions: usize,
    pub validation: ValidationView,
    /// In a fleet, the leader's: the step's evidence over every instance as last judged.
    pub fleet_arms: Option<FleetArms>,
    pub plan: Option<Vec<StepView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undecided {
    /// Unix milliseconds.
    pub since: i64,
    /// What the evidence could not resolve (the event's reason).
    pub reason: Option<String>,
}

/// The step's evidence per arm, as this instance has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arms {
    pub candidate: ArmView,
    pub control: ArmView,
    pub primary: ArmView,
    pub shadow: ArmView,
    pub shadow_primary: ArmView,
}

impl Arms {
    /// Each arm by the name the view gives it.
    pub fn named(&self) -> [(&'static str, &ArmView); 5] {
        [
            ("candidate", &self.candidate),
            ("control", &self.control),
            ("primary", &self.primary),
            ("shadow", &self.shadow),
            ("shadow_primary", &self.shadow_primary),
        ]
    }
}

/// One arm's counts and what its requests cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmView {
    #[serde(flatten)]
    pub counts: ArmCounts,
    pub cost: ArmCost,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmCounts {
    pub requests: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub upstream_errors: u64,
    /// Distinct users (estimated).
    pub users: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmCost {
    pub priced_requests: u64,
    pub unknown_cost_requests: u64,
    pub usd_per_1000_requests: Option<f64>,
}

/// A fleet's evidence per arm, summed over its instances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FleetArms {
    pub candidate: ArmCounts,
    pub control: ArmCounts,
    pub primary: ArmCounts,
    pub shadow: ArmCounts,
}

/// The shadow comparison of the step so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub pairs: u64,
    pub agreeing: u64,
    /// The share of pairs that agreed on every dimension judged.
    pub overall: Option<f64>,
    /// By dimension's name.
    pub dimensions: BTreeMap<String, DimensionAgreement>,
    /// Pairs by how the comparison ended (`compared`, `dropped_…`).
    pub outcomes: BTreeMap<String, u64>,
    pub dropped_slow_candidate: u64,
    pub tool_f1: Option<f64>,
    /// Histograms, by bucket label (`<=0.5`, `>4`).
    pub similarity: BTreeMap<String, u64>,
    pub length_ratio: BTreeMap<String, u64>,
    pub latency_diff_ms: BTreeMap<String, u64>,
    pub ttft_diff_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DimensionAgreement {
    pub agreed: u64,
    pub judged: u64,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowCaps {
    pub max_rps: Option<f64>,
    pub max_usd_per_hour: Option<f64>,
    /// Whether a cap is dropping mirrors now.
    pub binding: bool,
    pub dropped: u64,
}

/// The validation of the candidate (the `require_validation` gate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationView {
    pub required: bool,
    pub state: ValidationState,
    /// Unix milliseconds: when the running validation started…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// …or when the last one ended, and what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What holds the rollout for it, if anything does.
    pub held: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationState {
    NotRun,
    Running,
    Passed,
    Failed,
}

impl ValidationState {
    /// Its name in the view.
    pub const fn as_str(self) -> &'static str {
        match self {
            ValidationState::NotRun => "not_run",
            ValidationState::Running => "running",
            ValidationState::Passed => "passed",
            ValidationState::Failed => "failed",
        }
    }
}

/// One step of the plan, for the dashboard's row of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// The candidate's share, in percent.
    pub weight: f64,
    pub shadow: f64,
    pub min_duration_seconds: u64,
    pub max_duration_seconds: Option<u64>,
    pub min_requests: u64,
    pub min_users: u64,
    pub criteria: Vec<CriterionView>,
}

/// A criterion of a step with its threshold, also in words (`p95 ≤ 1.5× primary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionView {
    pub criterion: Criterion,
    pub threshold: f64,
    pub summary: String,
}

/// The kept disagreements of one route (`GET /admin/shadow/{route}/diffs`), newest first,
/// as `cutover shadow diff` reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowDiffs {
    pub route: String,
    /// How many the route keeps (`shadow_keep_diffs`; 0: none).
    pub keep_diffs: usize,
    pub diffs: Vec<ShadowDiff>,
}

/// One kept disagreement of a mirrored pair: bodies only (never a header), each truncated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowDiff {
    /// Unix milliseconds.
    pub at: i64,
    /// The dimensions the two answers disagreed on.
    pub dimensions: Vec<Dimension>,
    /// What differed, in words.
    pub notes: Vec<String>,
    pub request: String,
    pub primary: String,
    pub candidate: String,
}

impl ShadowDiff {
    pub fn disagrees_on(&self, dimension: Dimension) -> bool {
        self.dimensions.contains(&dimension)
    }
}

/// The alert rules' instances as last evaluated (`GET /admin/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    pub alerts: Vec<AlertStatus>,
}

/// One rule instance as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    pub alert: String,
    /// `info`, `warning` or `critical`.
    pub severity: Cow<'static, str>,
    /// The metric's configuration name (`error_rate`).
    pub metric: Cow<'static, str>,
    pub scope: String,
    /// The route and upstream the instance watches, where its rule names them (or, for
    /// a rule naming neither, the upstream of each instance): labels of `cutover_alert_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The comparison (`>`).
    pub op: Cow<'static, str>,
    pub threshold: f64,
    pub state: AlertState,
    /// The metric over the window; `None` with `no_data` saying why.
    pub value: Option<f64>,
    pub no_data: Option<String>,
    pub window: String,
    #[serde(rename = "for")]
    pub for_duration: String,
    /// Unix milliseconds.
    pub active_since: Option<i64>,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// Where one alert instance stands (its state machine is `cutover_alerts::Tracker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    NoData,
    Ok,
    Pending,
    Firing,
    /// Ok again after firing (until the condition next holds).
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::NoData => "no_data",
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// `cutover_alert_state`: 0 ok (and no data, resolved), 1 pending, 2 firing.
    pub fn gauge(self) -> u8 {
        match self {
            AlertState::Pending => 1,
            AlertState::Firing => 2,
            _ => 0,
        }
    }
}

/// How each notifier took a test message (`POST /admin/alerts/test`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierTests {
    pub results: Vec<NotifierTest>,
}

/// One notifier's answer: its HTTP status when it took the message, else why not (never
/// its URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierTest {
    pub notifier: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_states_printed_name_is_its_serialized_one() {
        let states =
            [AlertState::NoData, AlertState::Ok, AlertState::Pending, AlertState::Firing, AlertState::Resolved];
        for state in states {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn a_validation_states_printed_name_is_its_serialized_one() {
        let states =
            [ValidationState::NotRun, ValidationState::Running, ValidationState::Passed, ValidationState::Failed];
        for state in states {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }
}
