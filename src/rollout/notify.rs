//! Posts rollout events to the `[[notify]]` webhooks: a JSON body, or Slack's `{"text"}`,
//! to each notifier whose `min_severity` the event's kind reaches (`EventKind::severity`).
//! Best effort, off the control path: a failed post is logged, never retried into a backlog.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Event, Severity};
use crate::config::Notifier;

fn body(notifier: &Notifier, event: &Event) -> String {
    let severity = event.kind.severity().as_str();
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
    // Parsed once: the configuration keeps the names, the ranking is `Severity`'s order.
    let notifiers: Vec<(Notifier, Severity)> = notifiers
        .into_iter()
        .map(|notifier| {
            let min_severity = Severity::parse_lenient(&notifier.min_severity);
            (notifier, min_severity)
        })
        .collect();
    while let Some(event) = events.recv().await {
        let severity = event.kind.severity();
        let due = notifiers.iter().filter(|(_, min_severity)| severity >= *min_severity);
        for (notifier, _) in due {
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
