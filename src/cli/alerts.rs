//! `cutover alerts status | test [--notifier N]`: asks a running gateway's admin API (the
//! address and token from the same configuration file) for its alerts, or to send a test
//! notification; `export` needs no gateway (`alerts::prometheus_rules`).

use std::fmt::Write as _;

use cutover_config::Config;
use http::Method;
use serde_json::Value;

use super::admin_call::{AdminCallError, call_json, query_value};

/// `GET /admin/alerts`.
pub async fn status(config: &Config) -> Result<Value, AdminCallError> {
    call_json(config, Method::GET, "/admin/alerts", String::new(), &[]).await
}

/// `POST /admin/alerts/test`, to `notifier` or to every notifier.
pub async fn test(config: &Config, notifier: Option<&str>) -> Result<Value, AdminCallError> {
    let path = match notifier {
        Some(name) => format!("/admin/alerts/test?notifier={}", query_value(name)),
        None => "/admin/alerts/test".to_owned(),
    };
    call_json(config, Method::POST, &path, String::new(), &[]).await
}

/// One line per rule instance, firing ones first.
pub fn render_status(json: &Value) -> String {
    let alerts = json["alerts"].as_array().map(Vec::as_slice).unwrap_or_default();
    if alerts.is_empty() {
        return "no alert rules evaluated yet".to_owned();
    }
    let rank = |alert: &&Value| match alert["state"].as_str() {
        Some("firing") => 0,
        Some("pending") => 1,
        Some("no_data") => 3,
        _ => 2,
    };
    let mut sorted: Vec<&Value> = alerts.iter().collect();
    sorted.sort_by_key(rank);
    let mut out = String::new();
    for alert in sorted {
        let text = |key: &str| alert[key].as_str().unwrap_or_default().to_owned();
        let value = match (&alert["value"], alert["no_data"].as_str()) {
            (Value::Number(value), _) => format!("{:.2}", value.as_f64().unwrap_or_default()),
            (_, Some(reason)) => format!("no data ({reason})"),
            _ => "no data".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<9} {:<8} {} ({}): {} = {value}, threshold {} {} over {} for {}",
            text("state"),
            text("severity"),
            text("alert"),
            text("scope"),
            text("metric"),
            text("op"),
            alert["threshold"],
            text("window"),
            text("for"),
        );
    }
    out.trim_end().to_owned()
}

/// One line per notifier tried; `true` when every receiver accepted.
pub fn render_test(json: &Value) -> (String, bool) {
    let results = json["results"].as_array().map(Vec::as_slice).unwrap_or_default();
    if results.is_empty() {
        return ("no notifiers configured ([[notify]])".to_owned(), false);
    }
    let mut out = String::new();
    let mut all_ok = true;
    for result in results {
        let name = result["notifier"].as_str().unwrap_or_default();
        if result["ok"] == true {
            let _ = writeln!(out, "{name}: delivered (HTTP {})", result["status"]);
        } else {
            all_ok = false;
            let _ = writeln!(out, "{name}: FAILED: {}", result["error"].as_str().unwrap_or_default());
        }
    }
    (out.trim_end().to_owned(), all_ok)
}

#[cfg(test)]
mod tests {
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
        let text = render_status(&json);
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
        let (text, ok) = render_test(&json);
        assert!(!ok);
        assert_eq!(text, "a: delivered (HTTP 200)\nb: FAILED: the receiver answered 500 Internal Server Error");
    }
}
