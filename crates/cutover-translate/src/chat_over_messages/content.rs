//! The chat messages as a Messages conversation: leading system and developer messages as
//! the `system` prompt, user parts as text and image blocks, the assistant's tool calls as
//! `tool_use` blocks, and consecutive `tool` messages as one user turn of `tool_result`
//! blocks; every other role or part refused.

use serde_json::{Value, json};

use crate::Untranslatable;
use crate::json::{self, Object, item, member, present, refuse};

/// A Messages conversation: the system prompt and the turns.
pub(super) struct Conversation {
    pub system: Option<String>,
    pub messages: Vec<Value>,
}

/// The conversation for the chat `messages` array, which must not end with the
/// assistant's (`json::no_prefill`).
pub(super) fn conversation(messages: &[Value]) -> Result<Conversation, Untranslatable> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Value> = Vec::with_capacity(messages.len());
    // Whether the last turn is tool results, which the next tool message joins.
    let mut in_tool_results = false;
    for (index, message) in messages.iter().enumerate() {
        let path = item("messages", index);
        let message = json::object(message, &path)?;
        if present(message, "name").is_some() {
            return Err(refuse(member(&path, "name"), "Anthropic's messages have no participant names"));
        }
        let role = json::string(json::required(message, &path, "role")?, &member(&path, "role"))?;
        match role {
            "system" | "developer" if turns.is_empty() => system.extend(system_text(message, &path)?),
            "system" | "developer" => {
                return Err(refuse(member(&path, "role"), "Anthropic's system prompt comes before the conversation"));
            }
            "user" => turns.push(user(message, &path)?),
            "assistant" => turns.push(assistant(message, &path)?),
            "tool" => {
                let result = tool_result(message, &path)?;
                match turns.last_mut().and_then(|turn| turn["content"].as_array_mut()) {
                    Some(results) if in_tool_results => results.push(result),
                    _ => turns.push(json!({"role": "user", "content": [result]})),
                }
            }
            _ => return Err(refuse(member(&path, "role"), "this role cannot be carried to Anthropic's API")),
        }
        in_tool_results = role == "tool";
    }
    json::no_prefill(messages)?;
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok(Conversation { system, messages: turns })
}

/// A system or developer message's text (its parts joined like messages are); none when
/// it is empty, so that no empty system prompt or separator is invented.
fn system_text(message: &Object, path: &str) -> Result<Option<String>, Untranslatable> {
    json::only_known(message, path, &["role", "content"])?;
    let mut pieces = texts(json::required(message, path, "content")?, &member(path, "content"))?;
    pieces.retain(|piece| !piece.is_empty());
    Ok((!pieces.is_empty()).then(|| pieces.join("\n\n")))
}

/// A `content` that holds only text: a string or text parts.
fn texts(content: &Value, path: &str) -> Result<Vec<String>, Untranslatable> {
    if let Value::String(text) = content {
        return Ok(vec![text.clone()]);
    }
    let parts = json::array(content, path)?;
    let mut pieces = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let path = item(path, index);
        let part = json::object(part, &path)?;
        if json::kind(part, &path)? != "text" {
            return Err(refuse(member(&path, "type"), "only text can be carried here to Anthropic's API"));
        }
        pieces.push(text(part, &path)?);
    }
    Ok(pieces)
}

fn text(part: &Object, path: &str) -> Result<String, Untranslatable> {
    json::only_known(part, path, &["type", "text"])?;
    Ok(json::string(json::required(part, path, "text")?, &member(path, "text"))?.to_owned())
}

fn user(message: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(message, path, &["role", "content"])?;
    let content_path = member(path, "content");
    let content = match json::required(message, path, "content")? {
        Value::String(text) => Value::String(text.clone()),
        parts => {
            let parts = json::array(parts, &content_path)?;
            if parts.is_empty() {
                return Err(refuse(content_path, "a user turn holds at least one content part"));
            }
            let blocks = parts.iter().enumerate().map(|(index, part)| user_part(part, &item(&content_path, index)));
            Value::Array(blocks.collect::<Result<_, _>>()?)
        }
    };
    Ok(json!({"role": "user", "content": content}))
}

fn user_part(part: &Value, path: &str) -> Result<Value, Untranslatable> {
    let part = json::object(part, path)?;
    match json::kind(part, path)? {
        "text" => Ok(json!({"type": "text", "text": text(part, path)?})),
        "image_url" => super::image::block(part, path),
        _ => Err(refuse(member(path, "type"), "this content part cannot be carried to Anthropic's API")),
    }
}

/// An assistant message: plain text stays a string; with tool calls, a text block (if
/// there is text) then a `tool_use` block per call. Empty texts say nothing and are
/// dropped; a message left with neither text nor tool calls is refused, as Anthropic's
/// API refuses a turn without content.
fn assistant(message: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(message, path, &["role", "content", "tool_calls", "refusal"])?;
    if present(message, "refusal").is_some() {
        return Err(refuse(member(path, "refusal"), "Anthropic's API cannot be told a past refusal"));
    }
    let content_path = member(path, "content");
    let mut said = match present(message, "content") {
        Some(content) => texts(content, &content_path)?,
        None => Vec::new(),
    };
    said.retain(|piece| !piece.is_empty());
    let calls = match present(message, "tool_calls") {
        Some(calls) => json::array(calls, &member(path, "tool_calls"))?,
        None => &[],
    };
    match (said.as_slice(), calls) {
        ([], []) => return Err(refuse(content_path, "an assistant turn holds text or tool calls")),
        ([text], []) => return Ok(json!({"role": "assistant", "content": text})),
        _ => {}
    }
    let mut blocks: Vec<Value> = said.into_iter().map(|text| json!({"type": "text", "text": text})).collect();
    for (index, call) in calls.iter().enumerate() {
        blocks.push(super::tools::tool_use(call, &item(&member(path, "tool_calls"), index))?);
    }
    Ok(json!({"role": "assistant", "content": blocks}))
}

/// A `tool` message as a `tool_result` block.
fn tool_result(message: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(message, path, &["role", "content", "tool_call_id"])?;
    let id = json::string(json::required(message, path, "tool_call_id")?, &member(path, "tool_call_id"))?;
    let content = texts(json::required(message, path, "content")?, &member(path, "content"))?;
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": json::text_content(content)}))
}
