//! Posts rollout events to the `[[notify]]` webhooks: a JSON body, or Slack's `{"text"}`,
//! to each notifier whose `min_severity` the event reaches. Best effort, off the control
//! path: a failed post is logged, never retried into a backlog.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::json;
use tokio::sync::mpsc;

use super::Event;
use crate::config::Notifier;

/// `info` < `warning` < `critical`.
fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

pub fn severity(event: &Event) -> &'static str {
    match event.kind.as_str() {
        "rollback" | "step_back" => "critical",
        "check_failed" | "abort" | "plan_changed" | "pause" | "set_weight" => "warning",
        _ => "info",
    }
}

fn body(notifier: &Notifier, event: &Event) -> String {
    let severity = severity(event);
    if notifier.format == "slack" {
        let text = format!(
            "[{severity}] cutover route `{}`: {} → {} at {}% ({}): {}",
            event.route, event.from_phase, event.to_phase, event.weight_percent, event.kind, event.reason
        );
        json!({ "text": text }).to_string()
    } else {
        json!({ "source": "cutover", "severity": severity, "event": event }).to_string()
    }
}

pub async fn run(notifiers: Vec<Notifier>, mut events: mpsc::Receiver<Event>) {
    let client = crate::net::client::build(Duration::from_secs(5));
    while let Some(event) = events.recv().await {
        for notifier in notifiers.iter().filter(|notifier| rank(severity(&event)) >= rank(&notifier.min_severity)) {
            let request = Request::builder()
                .method(Method::POST)
                .uri(notifier.url.expose())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body(notifier, &event))));
            let Ok(request) = request else {
                tracing::warn!(notifier = %notifier.name, "webhook URL is not usable");
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
                Ok(Ok(response)) if response.status().is_success() => {}
                Ok(Ok(response)) => {
                    tracing::warn!(notifier = %notifier.name, status = %response.status(), "webhook refused the event")
                }
                Ok(Err(error)) => tracing::warn!(notifier = %notifier.name, %error, "webhook post failed"),
                Err(_) => tracing::warn!(notifier = %notifier.name, "webhook post timed out"),
            }
        }
    }
}
