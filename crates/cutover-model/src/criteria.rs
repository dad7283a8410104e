//! The rollout success criteria in one table: each `Criterion` with its config key, the
//! direction and unit of its threshold (which set the range the validator accepts and the
//! words `cutover check` prints), its default and whether this version evaluates it.
//! The parser, the validator, the printed plan and the analysis all read this table, so a
//! new criterion is one row here plus its evaluation arm in `rollout::analysis`.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::dimension::Dimension;

/// Which side of the threshold passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `max_*`: the candidate's figure must stay at or below the threshold.
    AtMost,
    /// `min_*`: the candidate's figure must reach at least the threshold.
    AtLeast,
}

impl Direction {
    fn symbol(self) -> &'static str {
        match self {
            Direction::AtMost => "≤",
            Direction::AtLeast => "≥",
        }
    }
}

/// Which latency a criterion reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// The whole request, of every successful request.
    Total,
    /// Time to the first token, of successful streams.
    FirstToken,
}

/// What a threshold's number means: it fixes the largest value the validator accepts and
/// how the number reads in the printed plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A rate of the candidate's own requests, in percent.
    Percent,
    /// Percentage points above the control's rate.
    PointsOverPrimary,
    /// A multiple of the control's figure.
    TimesPrimary,
    /// Percent better than the control's figure.
    PercentBetter,
    /// A count of the candidate's failed requests beyond what the control's rate would
    /// have failed of them.
    ExcessFailures,
    /// A count of the candidate's requests slower than a latency criterion tolerates,
    /// beyond the control's share of requests that slow.
    ExcessSlowRequests,
}

impl Unit {
    /// The largest threshold the validator accepts (the smallest is 0). Ratios get room
    /// for an operator who only wants to catch a catastrophe.
    pub fn limit(self) -> f64 {
        match self {
            Unit::Percent | Unit::PointsOverPrimary | Unit::PercentBetter => 100.0,
            Unit::TimesPrimary => 1000.0,
            Unit::ExcessFailures | Unit::ExcessSlowRequests => 1e12,
        }
    }

    fn describe(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{value}%"),
            Unit::PointsOverPrimary => format!("primary + {value}pp"),
            Unit::TimesPrimary => format!("{value}× primary"),
            Unit::PercentBetter => format!("{value}% better"),
            Unit::ExcessFailures => format!("{value} requests beyond the primary's rate"),
            Unit::ExcessSlowRequests => format!("{value} requests beyond the primary's share"),
        }
    }
}

/// One row of the table.
struct Row {
    key: &'static str,
    /// What `cutover check` calls the measured figure.
    subject: &'static str,
    direction: Direction,
    unit: Unit,
    /// The threshold when neither the step nor the rollout sets one.
    default: Option<f64>,
    /// Parsed but not measured by this version: the validator refuses it rather than let
    /// an operator believe it guards the rollout.
    evaluated: bool,
}

/// Declares `Criterion` and its rows together, so that a variant cannot exist without its
/// row nor be missing from `Criterion::ALL`.
macro_rules! criteria_table {
    ($($(#[$doc:meta])* $variant:ident => $row:expr,)+) => {
        /// A rollout success criterion, named in the config by its key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Criterion {
            $($(#[$doc])* $variant,)+
        }

        impl Criterion {
            /// Every criterion, in the order the config lists, checks and prints them.
            pub const ALL: &[Criterion] = &[$(Criterion::$variant,)+];
            /// Their config keys, in the same order.
            pub const KEYS: &[&str] = &[$(Criterion::$variant.row().key,)+];

            const fn row(self) -> Row {
                use Direction::{AtLeast, AtMost};
                use Unit::{ExcessFailures, ExcessSlowRequests, PercentBetter, Percent, PointsOverPrimary, TimesPrimary};
                match self {
                    $(Criterion::$variant => $row,)+
                }
            }
        }
    };
}

criteria_table! {
    /// The candidate's upstream-error rate.
    MaxErrorRate => Row {
        key: "max_error_rate", subject: "errors", direction: AtMost, unit: Percent,
        default: None, evaluated: true,
    },
    /// The candidate's upstream-error rate over the control's.
    MaxErrorRateIncrease => Row {
        key: "max_error_rate_increase", subject: "errors", direction: AtMost, unit: PointsOverPrimary,
        default: None, evaluated: true,
    },
    /// The candidate's client-error (4xx) rate over the control's.
    MaxClientErrorRateIncrease => Row {
        key: "max_client_error_rate_increase", subject: "client errors", direction: AtMost,
        unit: PointsOverPrimary, default: None, evaluated: true,
    },
    /// The candidate's median latency against the control's.
    MaxLatencyP50Ratio => Row {
        key: "max_latency_p50_ratio", subject: "p50", direction: AtMost, unit: TimesPrimary,
        default: None, evaluated: true,
    },
    /// The candidate's p95 latency against the control's.
    MaxLatencyP95Ratio => Row {
        key: "max_latency_p95_ratio", subject: "p95", direction: AtMost, unit: TimesPrimary,
        default: None, evaluated: true,
    },
    /// How much faster (median) the candidate must be shown to be.
    MinLatencyImprovement => Row {
        key: "min_latency_improvement", subject: "latency", direction: AtLeast, unit: PercentBetter,
        default: None, evaluated: true,
    },
    /// The candidate's p95 time to first token against the control's.
    MaxTtftP95Ratio => Row {
        key: "max_ttft_p95_ratio", subject: "TTFT p95", direction: AtMost, unit: TimesPrimary,
        default: None, evaluated: true,
    },
    /// The candidate's cost per successful request against the control's.
    MaxCostRatio => Row {
        key: "max_cost_ratio", subject: "cost", direction: AtMost, unit: TimesPrimary,
        default: None, evaluated: true,
    },
    /// The harm budget: the candidate's failed requests beyond what the control's rate
    /// would have failed of them, by the always-valid upper bound, over the step. Without
    /// it a step with `max_error_rate_increase` and a `max_duration` gets a derived one
    /// (`rollout::analysis::harm`).
    MaxExcessFailures => Row {
        key: "max_excess_failures", subject: "excess failures", direction: AtMost, unit: ExcessFailures,
        default: None, evaluated: true,
    },
    /// The latency harm budget: the candidate's requests slower than a latency criterion
    /// tolerates (its ratio × the control's quantile) beyond the control's share of such
    /// requests, by the always-valid upper bound, over the step; one check per latency
    /// criterion. Without it a step with a latency criterion and a `max_duration` gets a
    /// derived one (`rollout::analysis::harm`).
    MaxExcessSlowRequests => Row {
        key: "max_excess_slow_requests", subject: "excess slow requests", direction: AtMost,
        unit: ExcessSlowRequests, default: None, evaluated: true,
    },
    /// How often the candidate's mirrored answers agree with the primary's.
    MinShadowAgreement => Row {
        key: "min_shadow_agreement", subject: "shadow agreement", direction: AtLeast, unit: Percent,
        default: None, evaluated: true,
    },
}

impl Criterion {
    pub const COUNT: usize = Criterion::ALL.len();

    /// The key that names it in `[routes.rollout]` and its steps, and in evaluations.
    pub const fn key(self) -> &'static str {
        self.row().key
    }

    pub fn from_key(key: &str) -> Option<Criterion> {
        Criterion::ALL.iter().copied().find(|criterion| criterion.key() == key)
    }

    /// What `cutover check` calls the measured figure: `p95`, `client errors`.
    pub const fn subject(self) -> &'static str {
        self.row().subject
    }

    pub const fn direction(self) -> Direction {
        self.row().direction
    }

    pub const fn unit(self) -> Unit {
        self.row().unit
    }

    pub const fn default_threshold(self) -> Option<f64> {
        self.row().default
    }

    /// Whether this version measures it; `validate_plan` refuses the others.
    pub const fn is_evaluated(self) -> bool {
        self.row().evaluated
    }

    /// Whether it judges the candidate against a control (every unit but the candidate's
    /// own rate): such a criterion cannot decide on a step with no control traffic.
    pub fn compares(self) -> bool {
        self.unit() != Unit::Percent
    }

    /// Whether it bounds harm rather than tests a hypothesis (`max_excess_failures`,
    /// `max_excess_slow_requests`): it spends no error probability.
    pub fn is_budget(self) -> bool {
        matches!(self.unit(), Unit::ExcessFailures | Unit::ExcessSlowRequests)
    }

    /// A latency criterion that bounds the candidate's slowness, as the quantile it reads
    /// and the histogram it reads it from: the ones a slow-request budget guards.
    /// (`min_latency_improvement` asks for a gain, and a candidate short of it harms no one.)
    pub fn latency_limit(self) -> Option<(f64, Latency)> {
        match self {
            Criterion::MaxLatencyP50Ratio => Some((0.5, Latency::Total)),
            Criterion::MaxLatencyP95Ratio => Some((0.95, Latency::Total)),
            Criterion::MaxTtftP95Ratio => Some((0.95, Latency::FirstToken)),
            _ => None,
        }
    }

    /// The threshold in words, as `cutover check` prints it: `p95 ≤ 1.5× primary`.
    pub fn summary(self, threshold: f64) -> String {
        format!("{} {} {}", self.subject(), self.direction().symbol(), self.unit().describe(threshold))
    }

    /// Its slot in `Criteria`: variants count from zero in the order of `ALL`.
    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// As its key, which is how evaluations and the admin API name it.
impl Serialize for Criterion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for Criterion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Criterion, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Criterion::from_key(&key).ok_or_else(|| serde::de::Error::custom(format!("unknown criterion {key:?}")))
    }
}

/// Thresholds a step must meet, one slot per criterion; `None` means not checked. Rates
/// in percent.
#[derive(Clone, Default, PartialEq)]
pub struct Criteria {
    thresholds: [Option<f64>; Criterion::COUNT],
    /// `min_shadow_agreement = { tool_calls = 98, … }`: the agreement each dimension of
    /// the shadow comparison must reach, in percent, beside (or instead of) the overall one.
    shadow_dimensions: [Option<f64>; Dimension::COUNT],
}

impl Criteria {
    pub fn get(&self, criterion: Criterion) -> Option<f64> {
        self.thresholds[criterion.index()]
    }

    pub fn set(&mut self, criterion: Criterion, threshold: Option<f64>) {
        self.thresholds[criterion.index()] = threshold;
    }

    /// These criteria with `criterion` checked at `threshold`.
    pub fn with(mut self, criterion: Criterion, threshold: f64) -> Criteria {
        self.set(criterion, Some(threshold));
        self
    }

    /// The criteria that are checked, with their thresholds, in the order of `ALL`.
    pub fn iter(&self) -> impl Iterator<Item = (Criterion, f64)> + '_ {
        Criterion::ALL.iter().filter_map(|&criterion| self.get(criterion).map(|threshold| (criterion, threshold)))
    }

    /// Its latency criteria that a slow-request budget guards, with their thresholds.
    pub fn latency_limits(&self) -> impl Iterator<Item = (Criterion, f64)> + '_ {
        self.iter().filter(|(criterion, _)| criterion.latency_limit().is_some())
    }

    pub fn shadow_dimension(&self, dimension: Dimension) -> Option<f64> {
        self.shadow_dimensions[dimension as usize]
    }

    pub fn set_shadow_dimension(&mut self, dimension: Dimension, threshold: Option<f64>) {
        self.shadow_dimensions[dimension as usize] = threshold;
    }

    /// The shadow dimensions with a threshold of their own, in the order of `Dimension::ALL`.
    pub fn shadow_dimensions(&self) -> impl Iterator<Item = (Dimension, f64)> + '_ {
        Dimension::ALL.into_iter().filter_map(|dimension| self.shadow_dimension(dimension).map(|at| (dimension, at)))
    }

    /// Whether the step is judged on the shadow comparison at all.
    pub fn judges_shadow(&self) -> bool {
        self.get(Criterion::MinShadowAgreement).is_some() || self.shadow_dimensions().next().is_some()
    }
}

/// Field by field under the criteria's keys, as when they were named fields, so that
/// debug output reads the same.
impl fmt::Debug for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Criteria");
        for &criterion in Criterion::ALL {
            out.field(criterion.key(), &self.get(criterion));
        }
        for (dimension, threshold) in self.shadow_dimensions() {
            out.field(dimension.as_str(), &Some(threshold));
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_variant_once_in_slot_order() {
        for (slot, criterion) in Criterion::ALL.iter().enumerate() {
            assert_eq!(criterion.index(), slot, "{criterion}");
            assert_eq!(Criterion::from_key(criterion.key()), Some(*criterion));
        }
        assert_eq!(Criterion::KEYS.len(), Criterion::COUNT);
    }

    #[test]
    fn key_prefixes_match_directions() {
        for &criterion in Criterion::ALL {
            let prefix = match criterion.direction() {
                Direction::AtMost => "max_",
                Direction::AtLeast => "min_",
            };
            assert!(criterion.key().starts_with(prefix), "{criterion} is {:?}", criterion.direction());
        }
    }

    #[test]
    fn summaries_read_as_before_the_table() {
        let printed: Vec<String> = Criterion::ALL.iter().map(|criterion| criterion.summary(1.5)).collect();
        assert_eq!(
            printed,
            [
                "errors ≤ 1.5%",
                "errors ≤ primary + 1.5pp",
                "client errors ≤ primary + 1.5pp",
                "p50 ≤ 1.5× primary",
                "p95 ≤ 1.5× primary",
                "latency ≥ 1.5% better",
                "TTFT p95 ≤ 1.5× primary",
                "cost ≤ 1.5× primary",
                "excess failures ≤ 1.5 requests beyond the primary's rate",
                "excess slow requests ≤ 1.5 requests beyond the primary's share",
                "shadow agreement ≥ 1.5%",
            ]
        );
    }

    #[test]
    fn criteria_iterate_only_what_is_checked() {
        let criteria = Criteria::default().with(Criterion::MaxTtftP95Ratio, 1.2).with(Criterion::MaxErrorRate, 5.0);
        let checked: Vec<_> = criteria.iter().collect();
        assert_eq!(checked, [(Criterion::MaxErrorRate, 5.0), (Criterion::MaxTtftP95Ratio, 1.2)]);
        assert_eq!(criteria.get(Criterion::MaxCostRatio), None);
    }
}
