//! Rollout events as notifications: each event the controller announces becomes a
//! `notify::Message` (its kind's severity, a readable line, the event as JSON) and goes
//! to the same `[[notify]]` webhooks as the alerts, through their queues.

use cutover_notify::{Message, Notifications};
use serde_json::json;
use tokio::sync::mpsc;

use cutover_state::Event;

/// The notification of one rollout event.
pub fn message(event: &Event) -> Message {
    let severity = event.kind.severity();
    let text = format!(
        "[{}] cutover route `{}`: {} → {} at {}% ({}): {}",
        severity.as_str(),
        event.route,
        event.from_phase,
        event.to_phase,
        event.weight_percent,
        event.kind,
        event.reason
    );
    let json = json!({ "source": "cutover", "type": "rollout", "severity": severity.as_str(), "event": event });
    Message { severity, text, json }
}

/// Passes the controller's events on to the notifiers until the controller is gone.
pub async fn forward(mut events: mpsc::Receiver<Event>, notifications: Notifications) {
    while let Some(event) = events.recv().await {
        notifications.send(message(&event));
    }
}
