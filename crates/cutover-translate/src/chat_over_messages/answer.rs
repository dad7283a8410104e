//! The upstream's whole Messages answer as a chat completion: its text and `tool_use`
//! blocks as one choice's message, its stop reason as a finish reason, its usage in
//! OpenAI's arithmetic; an error answer as an OpenAI error body.

use serde_json::{Value, json};

use super::now_seconds;
use crate::json::{bytes, str_or_empty};
use crate::usage::Usage;
use crate::{Answer, errors, tool_call};

/// The chat answer for the upstream's Messages answer (`status`, `body`).
pub fn answer(status: u16, body: &[u8]) -> Answer {
    answer_at(status, body, now_seconds())
}

/// `answer`, `created` at `created` (Unix seconds).
pub(super) fn answer_at(status: u16, body: &[u8], created: u64) -> Answer {
    if !(200..=299).contains(&status) {
        return Answer { status, body: errors::openai_from_anthropic(status, body) };
    }
    match completion(body, created) {
        Ok(completion) => Answer { status, body: bytes(&completion) },
        Err(why) => errors::openai_bad_answer(&why),
    }
}

/// The chat completion for a Messages answer, or why there is none.
fn completion(body: &[u8], created: u64) -> Result<Value, String> {
    let message: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let blocks = message.get("content").and_then(Value::as_array).ok_or("the message has no content")?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(str_or_empty(block, "text")),
            Some("tool_use") => calls.push(tool_call(block).map_err(|why| format!("content block {index}: {why}"))?),
            Some(other) => return Err(format!("a `{other}` content block has no place in a chat completion")),
            None => return Err(format!("content block {index} has no type")),
        }
    }
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) };
    let mut reply = json!({"role": "assistant", "content": content, "refusal": null});
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let stop = message.get("stop_reason").and_then(Value::as_str);
    Ok(json!({
        "id": str_or_empty(&message, "id"),
        "object": "chat.completion",
        "created": created,
        "model": str_or_empty(&message, "model"),
        "choices": [{"index": 0, "message": reply, "logprobs": null, "finish_reason": finish_reason(stop)}],
        "usage": Usage::from_anthropic(message.get("usage").unwrap_or(&Value::Null)).to_openai(),
    }))
}

/// A `tool_use` block as a tool call, its input as the arguments' compact JSON text.
fn tool_call(block: &Value) -> Result<Value, String> {
    let id = block.get("id").and_then(Value::as_str).ok_or("it has no id")?;
    let name = block.get("name").and_then(Value::as_str).ok_or("it has no name")?;
    Ok(tool_call::chat(id, name, block.get("input")))
}

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`. `pause_turn` (a server tool's
/// long turn paused) and reasons this table does not know are told as `stop`; a stream's
/// `null` (no reason yet) stays `null`.
pub(super) fn finish_reason(stop: Option<&str>) -> Value {
    let reason = match stop {
        None => return Value::Null,
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        Some(_) => "stop",
    };
    Value::String(reason.to_owned())
}

#[cfg(test)]
mod tests;
