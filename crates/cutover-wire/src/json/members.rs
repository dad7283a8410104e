//! The members of OpenAI's and Anthropic's answers and stream events that the scan notes
//! as it meets them: every key is compared once with this list, and what a key is
//! decides what the scan records of its value (`Sightings`). The one place the scanner
//! knows the APIs' key names.

/// The keys the scan notes; every other key is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Other,
    Text,
    ToolCalls,
    FinishReason,
    Usage,
    /// The top-level member that wraps a whole answer inside a stream event: `response`
    /// in the Responses API's events, `message` in Anthropic's `message_start`.
    Envelope,
    Choices,
    Error,
}

impl Key {
    pub(super) fn of(name: &[u8]) -> Key {
        match name {
            // OpenAI's content, text and reasoning; Anthropic's text, thinking and streamed
            // tool input (`partial_json`).
            b"content" | b"text" | b"delta" | b"reasoning_content" | b"reasoning" | b"thinking" | b"partial_json" => {
                Key::Text
            }
            b"tool_calls" => Key::ToolCalls,
            b"finish_reason" | b"stop_reason" => Key::FinishReason,
            b"usage" => Key::Usage,
            b"response" | b"message" => Key::Envelope,
            b"choices" => Key::Choices,
            b"error" => Key::Error,
            _ => Key::Other,
        }
    }
}
