//! What the evaluator publishes after each evaluation, for `GET /admin/alerts`, `cutover
//! alerts status` and `cutover_alert_state`: read without a lock (`ArcSwap`).

use std::fmt::Write as _;

use arc_swap::ArcSwap;
use cutover_wire::prometheus::LabelValue;

pub use cutover_model::view::AlertStatus;

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

    /// `cutover_alert_state{alert,severity,route,upstream}`: per instance, so that a firing
    /// alert says which route or upstream (0 ok, 1 pending, 2 firing); `route` and
    /// `upstream` only where the instance has them. Instances with the same labels (the
    /// roles of one rule) show the highest state.
    pub fn render(&self, out: &mut String) {
        let statuses = self.statuses.load();
        let _ = writeln!(
            out,
            "# HELP cutover_alert_state Alert rule instances: 0 ok (or no data), 1 pending, 2 firing.\n# TYPE cutover_alert_state gauge"
        );
        let mut seen: Vec<(&AlertStatus, u8)> = Vec::new();
        for status in statuses.iter() {
            let same = |(known, _): &&mut (&AlertStatus, u8)| {
                known.alert == status.alert && known.route == status.route && known.upstream == status.upstream
            };
            match seen.iter_mut().find(same) {
                Some(entry) => entry.1 = entry.1.max(status.state.gauge()),
                None => seen.push((status, status.state.gauge())),
            }
        }
        for (status, gauge) in seen {
            let _ = write!(
                out,
                "cutover_alert_state{{alert=\"{}\",severity=\"{}\"",
                LabelValue(&status.alert),
                LabelValue(&status.severity)
            );
            if let Some(route) = &status.route {
                let _ = write!(out, ",route=\"{}\"", LabelValue(route));
            }
            if let Some(upstream) = &status.upstream {
                let _ = write!(out, ",upstream=\"{}\"", LabelValue(upstream));
            }
            let _ = writeln!(out, "}} {gauge}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_model::view::AlertState;

    fn status(alert: &str, route: Option<&str>, upstream: Option<&str>, state: AlertState) -> AlertStatus {
        AlertStatus {
            alert: alert.to_owned(),
            severity: "critical".into(),
            metric: "error_rate".into(),
            scope: "upstream".to_owned(),
            route: route.map(str::to_owned),
            upstream: upstream.map(str::to_owned),
            op: ">".into(),
            threshold: 5.0,
            state,
            value: None,
            no_data: None,
            window: "5m".to_owned(),
            for_duration: "0s".to_owned(),
            active_since: None,
            fired_at: None,
            resolved_at: None,
        }
    }

    #[test]
    fn alert_route_and_upstream_labels_are_escaped() {
        let board = AlertBoard::default();
        board.publish(vec![status("say \"hi\"", Some("a\\b"), Some("two\nlines"), AlertState::Firing)]);
        let mut page = String::new();
        board.render(&mut page);
        let line = page.lines().last().unwrap_or_default();
        assert_eq!(
            line,
            r#"cutover_alert_state{alert="say \"hi\"",severity="critical",route="a\\b",upstream="two\nlines"} 2"#
        );
    }
}
