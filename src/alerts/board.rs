//! What the evaluator publishes after each evaluation, for `GET /admin/alerts`, `cutover
//! alerts status` and `cutover_alert_state`: read without a lock (`ArcSwap`).

use std::fmt::Write as _;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::state::AlertState;

/// One rule instance as shown.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    pub alert: String,
    pub severity: String,
    pub metric: String,
    pub scope: String,
    pub op: String,
    pub threshold: f64,
    pub state: AlertState,
    /// The metric over the window; `None` with `no_data` saying why.
    pub value: Option<f64>,
    pub no_data: Option<String>,
    pub window: String,
    #[serde(rename = "for")]
    pub for_duration: String,
    pub active_since: Option<i64>,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Default)]
pub struct AlertBoard {
    statuses: ArcSwap<Vec<AlertStatus>>,
}

impl AlertBoard {
    pub fn publish(&self, statuses: Vec<AlertStatus>) {
        self.statuses.store(std::sync::Arc::new(statuses));
    }

    pub fn statuses(&self) -> std::sync::Arc<Vec<AlertStatus>> {
        self.statuses.load_full()
    }

    /// `cutover_alert_state{alert,severity}`: per rule, the highest state of its instances
    /// (0 ok, 1 pending, 2 firing); the admin API shows each instance.
    pub fn render(&self, out: &mut String) {
        let statuses = self.statuses.load();
        let _ = writeln!(
            out,
            "# HELP cutover_alert_state Alert rules: 0 ok (or no data), 1 pending, 2 firing.\n# TYPE cutover_alert_state gauge"
        );
        let mut seen: Vec<(&str, &str, u8)> = Vec::new();
        for status in statuses.iter() {
            match seen.iter_mut().find(|(alert, _, _)| *alert == status.alert) {
                Some(entry) => entry.2 = entry.2.max(status.state.gauge()),
                None => seen.push((&status.alert, &status.severity, status.state.gauge())),
            }
        }
        for (alert, severity, gauge) in seen {
            let _ = writeln!(out, "cutover_alert_state{{alert=\"{alert}\",severity=\"{severity}\"}} {gauge}");
        }
    }
}
