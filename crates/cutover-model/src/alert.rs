//! The words of an alert rule and a notifier, read from the configuration once, at load:
//! what a rule measures (`AlertMetric`), how it compares (`Comparison`), and the format
//! a notifier posts in (`NotifierFormat`). Each has its configuration name (`as_str`,
//! `from_name`), which is also how the admin API, the webhooks and the exported
//! Prometheus rules show it.

use std::fmt;

/// What an alert rule measures over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertMetric {
    ErrorRate,
    SuccessRate,
    LatencyP95Ms,
    TtftP95Ms,
    UpstreamUp,
    CostPerHour,
    FallbackRate,
    ShadowAgreement,
    /// 1 while a route in scope is paused by a step that ended undecided, else 0.
    RolloutUndecided,
}

impl AlertMetric {
    pub const ALL: [AlertMetric; 9] = [
        AlertMetric::ErrorRate,
        AlertMetric::SuccessRate,
        AlertMetric::LatencyP95Ms,
        AlertMetric::TtftP95Ms,
        AlertMetric::UpstreamUp,
        AlertMetric::CostPerHour,
        AlertMetric::FallbackRate,
        AlertMetric::ShadowAgreement,
        AlertMetric::RolloutUndecided,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertMetric::ErrorRate => "error_rate",
            AlertMetric::SuccessRate => "success_rate",
            AlertMetric::LatencyP95Ms => "latency_p95_ms",
            AlertMetric::TtftP95Ms => "ttft_p95_ms",
            AlertMetric::UpstreamUp => "upstream_up",
            AlertMetric::CostPerHour => "cost_per_hour",
            AlertMetric::FallbackRate => "fallback_rate",
            AlertMetric::ShadowAgreement => "shadow_agreement",
            AlertMetric::RolloutUndecided => "rollout_undecided",
        }
    }

    pub fn from_name(name: &str) -> Option<AlertMetric> {
        AlertMetric::ALL.into_iter().find(|metric| metric.as_str() == name)
    }

    /// Whether the metric is a state read now (up or not, paused or not) rather than a
    /// rate over the window.
    pub fn is_instant(self) -> bool {
        matches!(self, AlertMetric::UpstreamUp | AlertMetric::RolloutUndecided)
    }
}

impl fmt::Display for AlertMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an alert rule compares its metric with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Comparison {
    pub const ALL: [Comparison; 6] =
        [Comparison::Lt, Comparison::Le, Comparison::Gt, Comparison::Ge, Comparison::Eq, Comparison::Ne];

    pub const fn as_str(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
        }
    }

    pub fn from_name(text: &str) -> Option<Comparison> {
        Comparison::ALL.into_iter().find(|comparison| comparison.as_str() == text)
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Eq => value == threshold,
            Comparison::Ne => value != threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a notifier posts: cutover's JSON, or a Slack incoming-webhook message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifierFormat {
    Json,
    Slack,
}

impl NotifierFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotifierFormat::Json => "json",
            NotifierFormat::Slack => "slack",
        }
    }

    pub fn from_name(name: &str) -> Option<NotifierFormat> {
        [NotifierFormat::Json, NotifierFormat::Slack].into_iter().find(|format| format.as_str() == name)
    }
}

impl fmt::Display for NotifierFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_from_its_name_and_nothing_else_does() {
        for metric in AlertMetric::ALL {
            assert_eq!(AlertMetric::from_name(metric.as_str()), Some(metric));
        }
        for comparison in Comparison::ALL {
            assert_eq!(Comparison::from_name(comparison.as_str()), Some(comparison));
        }
        assert_eq!(NotifierFormat::from_name("slack"), Some(NotifierFormat::Slack));
        assert_eq!(AlertMetric::from_name("error-rate"), None);
        assert_eq!(Comparison::from_name("=<"), None);
        assert_eq!(NotifierFormat::from_name("JSON"), None);
    }
}
