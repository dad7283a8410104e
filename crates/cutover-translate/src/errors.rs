//! Error bodies in either API's shape: an upstream's error read (its message kept, or its
//! text when it is not its API's error JSON), written in the client's shape, the same for
//! in-stream errors, and the mapping between Anthropic's error types and OpenAI's.

use cutover_model::anthropic_error_type;
use serde_json::{Value, json};

use crate::Answer;
use crate::json::bytes;

/// An upstream body that is not its API's error JSON becomes the message, this long at most.
const MAX_MESSAGE_CHARS: usize = 1000;

/// The status of an answer the upstream gave with success but that cannot be translated.
const BAD_ANSWER_STATUS: u16 = 502;

/// The message of an in-stream error that does not say one.
const STREAM_FAILED: &str = "the upstream's stream failed";

fn bad_answer_message(why: &str) -> String {
    format!("the upstream's answer cannot be translated: {why}")
}

/// A 2xx answer that cannot be translated (`why`), as a 502 in Anthropic's shape.
pub(crate) fn anthropic_bad_answer(why: &str) -> Answer {
    let body = anthropic(anthropic_error_type(BAD_ANSWER_STATUS), &bad_answer_message(why));
    Answer { status: BAD_ANSWER_STATUS, body: bytes(&body) }
}

/// A 2xx answer that cannot be translated (`why`), as a 502 in OpenAI's shape.
pub(crate) fn openai_bad_answer(why: &str) -> Answer {
    let kind = openai_type(anthropic_error_type(BAD_ANSWER_STATUS), BAD_ANSWER_STATUS);
    Answer { status: BAD_ANSWER_STATUS, body: bytes(&openai(kind, &bad_answer_message(why))) }
}

/// `{"type":"error","error":{"type":…,"message":…}}`.
fn anthropic(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// `{"error":{"message":…,"type":…,"param":null,"code":null}}`.
fn openai(kind: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

/// An OpenAI upstream's error answer as an Anthropic error body: the type follows the
/// status, the message is the upstream's.
pub(crate) fn anthropic_from_openai(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|error| error.pointer("/error/message")).and_then(Value::as_str);
    let message = message.map_or_else(|| text_message(status, body), str::to_owned);
    bytes(&anthropic(anthropic_error_type(status), &message))
}

/// An Anthropic upstream's error answer as an OpenAI error body: the type follows the
/// upstream's `error.type` (or, without one, the status), the message is the upstream's.
pub(crate) fn openai_from_anthropic(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|error| error.get("error"));
    let kind = error.and_then(|error| error.get("type")).and_then(Value::as_str);
    let message = error.and_then(|error| error.get("message")).and_then(Value::as_str);
    let message = message.map_or_else(|| text_message(status, body), str::to_owned);
    let kind = openai_type(kind.unwrap_or(anthropic_error_type(status)), status);
    bytes(&openai(kind, &message))
}

/// OpenAI's in-stream error (the `error` of `{"error": {…}}`) as Anthropic's `error`
/// event: the type read from the error's `code`, then its `type`.
pub(crate) fn anthropic_from_openai_event(error: &Value) -> Value {
    let text = |name| error.get(name).and_then(Value::as_str);
    let message = error.as_str().or_else(|| text("message")).unwrap_or(STREAM_FAILED);
    anthropic(anthropic_type(text("type"), text("code")), message)
}

/// Anthropic's `error` event (`{"type":"error","error":{…}}`) as OpenAI's in-stream error.
pub(crate) fn openai_from_anthropic_event(event: &Value) -> Value {
    let error = event.get("error").unwrap_or(&Value::Null);
    let message = error.get("message").and_then(Value::as_str).unwrap_or(STREAM_FAILED);
    let kind = openai_type(error.get("type").and_then(Value::as_str).unwrap_or("api_error"), 500);
    openai(kind, message)
}

/// The upstream's body as a message, when it is not its API's error JSON.
fn text_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(message_bytes(body));
    let text = text.trim();
    if text.is_empty() {
        return format!("the upstream answered HTTP {status} with an empty body");
    }
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// The part of `body` a message is cut from: past leading ASCII whitespace, as many bytes
/// as `MAX_MESSAGE_CHARS` characters can take (4 each: a UTF-8 character, or an invalid
/// sequence read as U+FFFD, is at most 4 bytes), so a huge body is not copied whole.
fn message_bytes(body: &[u8]) -> &[u8] {
    let body = body.trim_ascii_start();
    &body[..body.len().min(MAX_MESSAGE_CHARS * 4)]
}

/// OpenAI's `error.type` for Anthropic's `error.type`. OpenAI's SDK tells errors apart by
/// HTTP status, not by type, so the types keep Anthropic's names where OpenAI's error
/// reference has the same word, and fall back by `status` for types it does not know.
fn openai_type(anthropic_type: &str, status: u16) -> &'static str {
    match anthropic_type {
        "invalid_request_error" | "request_too_large" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" => "rate_limit_error",
        "billing_error" => "insufficient_quota",
        "api_error" | "overloaded_error" | "timeout_error" => "server_error",
        _ if (500..=599).contains(&status) => "server_error",
        _ => "invalid_request_error",
    }
}

/// Anthropic's `error.type` for an OpenAI in-stream error, from its `type` or `code` when
/// one is recognisable; `api_error` otherwise.
fn anthropic_type(openai_type: Option<&str>, code: Option<&str>) -> &'static str {
    let known = |word: &str| match word {
        "invalid_request_error" | "context_length_exceeded" | "content_policy_violation" => {
            Some("invalid_request_error")
        }
        "authentication_error" | "invalid_api_key" => Some("authentication_error"),
        "permission_error" => Some("permission_error"),
        "not_found_error" | "model_not_found" => Some("not_found_error"),
        "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" => Some("rate_limit_error"),
        "insufficient_quota" => Some("billing_error"),
        "overloaded_error" | "overloaded" => Some("overloaded_error"),
        _ => None,
    };
    code.and_then(known).or_else(|| openai_type.and_then(known)).unwrap_or("api_error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_long_text_body_is_cut_to_a_thousand_characters() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
        let error = body(anthropic_from_openai(500, long.as_bytes()));
        let message = error["error"]["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn only_the_head_of_a_huge_body_is_read_for_the_message() {
        let huge = vec![b'x'; 32 << 20];
        assert_eq!(message_bytes(&huge).len(), MAX_MESSAGE_CHARS * 4);
        let head = "é".repeat(MAX_MESSAGE_CHARS * 2);
        let spaced = [&b"  \n"[..], head.as_bytes(), b"tail"].concat();
        assert_eq!(message_bytes(&spaced), head.as_bytes());
        assert_eq!(text_message(500, &huge).len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn in_stream_errors_keep_their_message_in_the_other_shape() {
        let anthropic_event = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(openai_from_anthropic_event(&anthropic_event), openai("server_error", "Overloaded"));
        let openai_error = json!({"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"});
        assert_eq!(anthropic_from_openai_event(&openai_error), anthropic("rate_limit_error", "slow down"));
        assert_eq!(anthropic_from_openai_event(&json!("boom")), anthropic("api_error", "boom"));
    }

    #[test]
    fn an_empty_body_is_told_as_such() {
        let error = body(openai_from_anthropic(503, b""));
        assert_eq!(error, openai("server_error", "the upstream answered HTTP 503 with an empty body"));
    }

    #[test]
    fn openai_types_follow_anthropics_and_fall_back_by_status() {
        let cases = [
            ("overloaded_error", 529, "server_error"),
            ("billing_error", 402, "insufficient_quota"),
            ("request_too_large", 413, "invalid_request_error"),
            ("something_new", 418, "invalid_request_error"),
            ("something_new", 500, "server_error"),
        ];
        for (anthropic_type, status, expected) in cases {
            assert_eq!(openai_type(anthropic_type, status), expected, "{anthropic_type}");
        }
    }

    #[test]
    fn anthropic_types_of_stream_errors_prefer_the_code() {
        assert_eq!(anthropic_type(Some("invalid_request_error"), Some("rate_limit_exceeded")), "rate_limit_error");
        assert_eq!(anthropic_type(Some("server_error"), None), "api_error");
        assert_eq!(anthropic_type(None, None), "api_error");
    }
}
