//! The members of OpenAI's answers and stream events that the scan notes as it meets
//! them: every key is compared once with this list, and what a key is decides what the
//! scan records of its value (`Sightings`). The one place the scanner knows OpenAI's
//! key names.

/// The keys the scan notes; every other key is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Other,
    Text,
    ToolCalls,
    FinishReason,
    Usage,
    Response,
    Choices,
    Error,
}

impl Key {
    pub(super) fn of(name: &[u8]) -> Key {
        match name {
            b"content" | b"text" | b"delta" | b"reasoning_content" | b"reasoning" => Key::Text,
            b"tool_calls" => Key::ToolCalls,
            b"finish_reason" => Key::FinishReason,
            b"usage" => Key::Usage,
            b"response" => Key::Response,
            b"choices" => Key::Choices,
            b"error" => Key::Error,
            _ => Key::Other,
        }
    }
}
