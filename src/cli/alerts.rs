//! `cutover alerts status | test [--notifier N]`: asks a running gateway's admin API (the
//! address and token from the same configuration file) for its alerts, or to send a test
//! notification; `export` needs no gateway (`alerts::prometheus_rules`).

use std::fmt::Write as _;

use cutover_config::Config;
use cutover_model::view::{AlertState, AlertStatus, AlertsView, NotifierTests};
use http::Method;

use super::admin_call::{AdminCallError, call_as, query_value};
use super::rollout::json_number;

/// `GET /admin/alerts`.
pub async fn status(config: &Config) -> Result<AlertsView, AdminCallError> {
    call_as(config, Method::GET, "/admin/alerts", String::new(), &[]).await
}

/// `POST /admin/alerts/test`, to `notifier` or to every notifier.
pub async fn test(config: &Config, notifier: Option<&str>) -> Result<NotifierTests, AdminCallError> {
    let path = match notifier {
        Some(name) => format!("/admin/alerts/test?notifier={}", query_value(name)),
        None => "/admin/alerts/test".to_owned(),
    };
    call_as(config, Method::POST, &path, String::new(), &[]).await
}

/// One line per rule instance, firing ones first.
pub fn render_status(view: &AlertsView) -> String {
    if view.alerts.is_empty() {
        return "no alert rules evaluated yet".to_owned();
    }
    let rank = |alert: &&AlertStatus| match alert.state {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::NoData => 3,
        _ => 2,
    };
    let mut sorted: Vec<&AlertStatus> = view.alerts.iter().collect();
    sorted.sort_by_key(rank);
    let mut out = String::new();
    for alert in sorted {
        let value = match (alert.value, &alert.no_data) {
            (Some(value), _) => format!("{value:.2}"),
            (None, Some(reason)) => format!("no data ({reason})"),
            (None, None) => "no data".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<9} {:<8} {} ({}): {} = {value}, threshold {} {} over {} for {}",
            alert.state.as_str(),
            alert.severity,
            alert.alert,
            alert.scope,
            alert.metric,
            alert.op,
            json_number(alert.threshold),
            alert.window,
            alert.for_duration,
        );
    }
    out.trim_end().to_owned()
}

/// One line per notifier tried; `true` when every receiver accepted.
pub fn render_test(tests: &NotifierTests) -> (String, bool) {
    if tests.results.is_empty() {
        return ("no notifiers configured ([[notify]])".to_owned(), false);
    }
    let mut out = String::new();
    let mut all_ok = true;
    for result in &tests.results {
        let name = &result.notifier;
        match (result.ok, result.status) {
            (true, Some(status)) => {
                let _ = writeln!(out, "{name}: delivered (HTTP {status})");
            }
            (true, None) => {
                let _ = writeln!(out, "{name}: delivered");
            }
            (false, _) => {
                all_ok = false;
                let _ = writeln!(out, "{name}: FAILED: {}", result.error.as_deref().unwrap_or_default());
            }
        }
    }
    (out.trim_end().to_owned(), all_ok)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn status_lists_firing_first_and_says_why_there_is_no_data() {
        let json = json!({"alerts": [
            {"alert": "cost", "severity": "warning", "scope": "upstream=relay", "metric": "cost_per_hour", "op": ">",
             "threshold": 1000.0, "state": "no_data", "value": null, "no_data": "no cost source in this build yet",
             "window": "5m", "for": "15m"},
            {"alert": "errors", "severity": "critical", "scope": "upstream=relay", "metric": "error_rate", "op": ">",
             "threshold": 5.0, "state": "firing", "value": 23.456, "no_data": null, "window": "5m", "for": "5m"},
        ]});
        let text = render_status(&AlertsView::deserialize(&json).unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("firing    critical errors (upstream=relay): error_rate = 23.46"), "{text}");
        assert!(lines[1].contains("no data (no cost source in this build yet)"), "{text}");
    }

    #[test]
    fn a_failed_test_delivery_is_reported() {
        let json = json!({"results": [
            {"notifier": "a", "ok": true, "status": 200},
            {"notifier": "b", "ok": false, "error": "the receiver answered 500 Internal Server Error"},
        ]});
        let (text, ok) = render_test(&NotifierTests::deserialize(&json).unwrap());
        assert!(!ok);
        assert_eq!(text, "a: delivered (HTTP 200)\nb: FAILED: the receiver answered 500 Internal Server Error");
    }
}
