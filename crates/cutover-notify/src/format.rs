//! What a notification says, and its two wire formats: the generic JSON webhook (the
//! message's own JSON) and Slack's incoming-webhook shape (a readable line with a colour
//! by severity).

use cutover_model::{NotifierFormat, Severity};
use serde_json::{Value, json};

/// One notification, whatever produced it.
#[derive(Debug, Clone)]
pub struct Message {
    pub severity: Severity,
    /// One readable line, e.g. `[critical] FIRING error_rate_high (upstream relay): …`.
    pub text: String,
    /// The generic webhook's body.
    pub json: Value,
}

/// The body posted to a notifier of `format`.
pub fn render(format: NotifierFormat, message: &Message) -> String {
    if format == NotifierFormat::Slack {
        let color = match message.severity {
            Severity::Critical => "#d62728",
            Severity::Warning => "#ff9f1c",
            Severity::Info => "#439fe0",
        };
        json!({
            "text": message.text,
            "attachments": [{ "color": color, "text": message.text, "fallback": message.text }],
        })
        .to_string()
    } else {
        message.json.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_renders_a_readable_line_coloured_by_severity() {
        let message = Message {
            severity: Severity::Critical,
            text: "[critical] FIRING error_rate_high".to_owned(),
            json: json!({"alert": "error_rate_high"}),
        };
        let slack: Value = serde_json::from_str(&render(NotifierFormat::Slack, &message)).unwrap();
        assert_eq!(slack["text"], "[critical] FIRING error_rate_high");
        assert_eq!(slack["attachments"][0]["color"], "#d62728");
        let generic: Value = serde_json::from_str(&render(NotifierFormat::Json, &message)).unwrap();
        assert_eq!(generic, json!({"alert": "error_rate_high"}));
    }
}
