//! The upstream's whole chat completion as a Messages answer: its choice as content blocks,
//! its finish reason as a stop reason, its usage in Anthropic's arithmetic; an error answer
//! as an Anthropic error body.

use serde_json::{Value, json};

use crate::json::{bytes, str_or_empty};
use crate::usage::Usage;
use crate::{Answer, errors, tool_call};

/// The Messages answer for the upstream's chat answer (`status`, `body`).
pub fn answer(status: u16, body: &[u8]) -> Answer {
    if !(200..=299).contains(&status) {
        return Answer { status, body: errors::anthropic_from_openai(status, body) };
    }
    match message(body) {
        Ok(message) => Answer { status, body: bytes(&message) },
        Err(why) => errors::anthropic_bad_answer(&why),
    }
}

/// The message for a chat completion, or why there is none.
fn message(body: &[u8]) -> Result<Value, String> {
    let completion: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let choice = completion.pointer("/choices/0").ok_or("the answer has no choice")?;
    let message = choice.get("message").filter(|message| message.is_object()).ok_or("the choice has no message")?;
    let mut content = Vec::new();
    let text = text(message.get("content"));
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    // A refusal is told as the text it is, and as the stop reason.
    let refusal = message.get("refusal").and_then(Value::as_str).filter(|refusal| !refusal.is_empty());
    if let Some(refusal) = refusal {
        content.push(json!({"type": "text", "text": refusal}));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (index, call) in calls.iter().enumerate() {
        content.push(tool_use(call).map_err(|why| format!("tool call {index}: {why}"))?);
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let held = Held { refused: refusal.is_some(), tool_called: !calls.is_empty() };
    Ok(json!({
        "id": str_or_empty(&completion, "id"),
        "type": "message",
        "role": "assistant",
        "model": str_or_empty(&completion, "model"),
        "content": content,
        "stop_reason": stop_reason(finish, held),
        "stop_sequence": null,
        "usage": Usage::from_openai(completion.get("usage").unwrap_or(&Value::Null)).to_anthropic(),
    }))
}

/// A message's `content`: a string, `null`, or (from some relays) text parts.
fn text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// A tool call as a `tool_use` block, its arguments parsed back into the input object.
fn tool_use(call: &Value) -> Result<Value, String> {
    let id = call.get("id").and_then(Value::as_str).ok_or("it has no id")?;
    let function = call.get("function").ok_or("it has no function")?;
    let name = function.get("name").and_then(Value::as_str).ok_or("it has no name")?;
    tool_call::tool_use(id, name, str_or_empty(function, "arguments"))
        .map_err(|_| "its arguments are not a JSON object".to_owned())
}

/// What an answer held, beside its finish reason, that decides its stop reason.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Held {
    /// The model refused (chat's `refusal`), which is a stop reason in Messages.
    pub refused: bool,
    /// The answer holds a tool call.
    pub tool_called: bool,
}

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`. A forced function call
/// (`tool_choice` naming a function) finishes with `stop`, or with no reason from some
/// relays, beside its tool calls: Messages tells that as `tool_use`, which is what its
/// clients wait for before running the tool. A finish reason this table does not know is
/// told as `end_turn`, the reason the model stopped of its own accord.
pub(super) fn stop_reason(finish: Option<&str>, held: Held) -> Value {
    let reason = match finish {
        None | Some("stop") if held.tool_called && !held.refused => "tool_use",
        None => return Value::Null,
        Some(_) if held.refused => "refusal",
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        Some(_) => "end_turn",
    };
    Value::String(reason.to_owned())
}

#[cfg(test)]
mod tests;
