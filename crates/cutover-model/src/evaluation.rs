//! What one look at a rollout step found, as the controller decides on it and the admin
//! API shows it: each criterion's result (`Check`), each other requirement (`Gate`), the
//! verdict, the traffic it was compared with (`ControlKind`) and what the steps ahead
//! will be able to resolve (`Ahead`). Serialized for the rollout view, read back by the
//! CLI.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::Criterion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    /// Its name in the view.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Which traffic the candidate is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// Primary users hashed just above the candidate's range: same size, same time.
    EqualSlice,
    /// Above 50% there is no equal slice left: all primary traffic.
    AllPrimary,
    /// At 100% the primary serves no one: its figures from the previous step.
    PreviousStep,
    /// A shadow step: the primary's answers against the candidate's mirrored ones.
    ShadowPair,
}

impl ControlKind {
    /// Its name in the view.
    pub const fn as_str(self) -> &'static str {
        match self {
            ControlKind::EqualSlice => "equal_slice",
            ControlKind::AllPrimary => "all_primary",
            ControlKind::PreviousStep => "previous_step",
            ControlKind::ShadowPair => "shadow_pair",
        }
    }
}

/// One criterion's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Serialized as its config key.
    pub criterion: Criterion,
    pub threshold: f64,
    pub candidate: Option<f64>,
    pub control: Option<f64>,
    pub verdict: Verdict,
    pub candidate_samples: u64,
    pub control_samples: u64,
    /// The interval or test behind the verdict, in words.
    pub evidence: String,
    /// `min_shadow_agreement` of one dimension, or the subject of a harm budget (absent:
    /// the criterion as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Cow<'static, str>>,
    /// Error criteria: the smallest breach (in the criterion's unit) that the samples so far
    /// would reveal with 80% power at the fail boundary — what this step can and cannot
    /// see with its traffic.
    pub detectable: Option<f64>,
    /// The always-valid bounds of the compared figure, in the criterion's unit: the lower
    /// at the fail level, the upper at the pass level (quantile ratios: worst-case ratios
    /// of the two arms' bounds).
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// The error probabilities this criterion spends at every look, however many.
    pub alpha_pass: f64,
    pub alpha_fail: f64,
}

/// A requirement of the step other than the criteria.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// Its name (`min_requests`, `duration_seconds`, …).
    pub gate: Cow<'static, str>,
    pub have: f64,
    pub need: f64,
    pub met: bool,
    /// At the current rate, how long until it is met.
    pub eta_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub control: ControlKind,
    pub checks: Vec<Check>,
    pub gates: Vec<Gate>,
    /// Why an inconclusive look holds the step and since when, for the status
    /// (`"held: no control traffic since …"`); set by the controller, which knows the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// What the steps after this one will be able to resolve at this step's traffic; set
    /// by the controller, which knows the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ahead: Vec<Ahead>,
}

/// One later step's projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ahead {
    /// 1-based, as the status numbers steps.
    pub step: usize,
    pub weight: f64,
    /// Requests per arm expected by `horizon_seconds` at the current traffic.
    pub requests_per_arm: u64,
    pub horizon_seconds: u64,
    pub margin: f64,
    /// Percentage points, as the checks' `detectable`.
    pub detectable: f64,
    /// Whether `detectable` is within `RESOLVING_MARGINS` × the margin.
    pub resolves: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_the_status_prints_are_the_names_the_view_serializes() {
        for verdict in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
            assert_eq!(serde_json::to_value(verdict).unwrap(), verdict.as_str());
        }
        let kinds =
            [ControlKind::EqualSlice, ControlKind::AllPrimary, ControlKind::PreviousStep, ControlKind::ShadowPair];
        for kind in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
