//! The Messages conversation as chat messages: each message's content blocks — text,
//! images, the assistant's `tool_use` as `tool_calls`, the user's `tool_result` as `tool`
//! messages ahead of the rest of that user turn — and every other block refused.

use serde_json::{Value, json};

use crate::json::{self, Object, item, member, present, refuse};
use crate::{Untranslatable, tool_call};

/// The chat messages for the Messages `messages` array, which must not end with the
/// assistant's (`json::no_prefill`).
pub(super) fn messages(messages: &[Value]) -> Result<Vec<Value>, Untranslatable> {
    let mut chat = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let path = item("messages", index);
        let message = json::object(message, &path)?;
        json::only_known(message, &path, &["role", "content"])?;
        let role = json::string(json::required(message, &path, "role")?, &member(&path, "role"))?;
        let content = json::required(message, &path, "content")?;
        let content_path = member(&path, "content");
        match (role, content) {
            ("assistant", Value::String(text)) if text.is_empty() => return Err(empty_assistant(&content_path)),
            ("user" | "assistant", Value::String(text)) => chat.push(json!({"role": role, "content": text})),
            ("user", blocks) => user(json::array(blocks, &content_path)?, &content_path, &mut chat)?,
            ("assistant", blocks) => chat.push(assistant(json::array(blocks, &content_path)?, &content_path)?),
            _ => return Err(refuse(member(&path, "role"), "a message's role is `user` or `assistant`")),
        }
    }
    json::no_prefill(messages)?;
    Ok(chat)
}

/// A user turn: its tool results as `tool` messages, in order, then the rest as one user
/// message (none if nothing is left). A turn of no blocks at all says nothing to answer.
fn user(blocks: &[Value], path: &str, chat: &mut Vec<Value>) -> Result<(), Untranslatable> {
    if blocks.is_empty() {
        return Err(refuse(path, "a user turn holds at least one content block"));
    }
    let mut parts = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let path = item(path, index);
        let block = json::object(block, &path)?;
        match json::kind(block, &path)? {
            "text" => parts.push(json!({"type": "text", "text": text(block, &path)?})),
            "image" => parts.push(image(block, &path)?),
            "tool_result" => chat.push(tool_result(block, &path)?),
            other => return Err(unknown_block(other, &path)),
        }
    }
    if !parts.is_empty() {
        chat.push(json!({"role": "user", "content": parts_content(parts)}));
    }
    Ok(())
}

/// An assistant turn: its text as `content`, its `tool_use` blocks as `tool_calls`. An
/// empty text says nothing and is dropped; a turn left with neither text nor tool calls
/// is refused, as chat completions refuse an assistant message of neither.
fn assistant(blocks: &[Value], path: &str) -> Result<Value, Untranslatable> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let path = item(path, index);
        let block = json::object(block, &path)?;
        match json::kind(block, &path)? {
            "text" => texts.push(text(block, &path)?.to_owned()),
            "tool_use" => calls.push(tool_use(block, &path)?),
            other => return Err(unknown_block(other, &path)),
        }
    }
    texts.retain(|piece| !piece.is_empty());
    if texts.is_empty() && calls.is_empty() {
        return Err(empty_assistant(path));
    }
    let content = if texts.is_empty() { Value::Null } else { json::text_content(texts) };
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(message)
}

/// User content parts as OpenAI takes them: one text part as a plain string.
fn parts_content(mut parts: Vec<Value>) -> Value {
    match parts.as_slice() {
        [part] if part["type"] == "text" => parts.swap_remove(0)["text"].take(),
        _ => Value::Array(parts),
    }
}

/// A text block's text. Its `cache_control` is dropped (OpenAI caches by itself); its
/// `citations` cannot be carried.
fn text<'a>(block: &'a Object, path: &str) -> Result<&'a str, Untranslatable> {
    json::only_known(block, path, &["type", "text", "cache_control", "citations"])?;
    let cited = present(block, "citations").is_some_and(|citations| citations.as_array().is_none_or(|c| !c.is_empty()));
    if cited {
        return Err(refuse(member(path, "citations"), "OpenAI's chat completions have no citations"));
    }
    json::string(json::required(block, path, "text")?, &member(path, "text"))
}

/// The text blocks of `system` or of a tool result, as their texts.
pub(super) fn text_blocks(blocks: &[Value], path: &str) -> Result<Vec<String>, Untranslatable> {
    let mut texts = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let path = item(path, index);
        let block = json::object(block, &path)?;
        match json::kind(block, &path)? {
            "text" => texts.push(text(block, &path)?.to_owned()),
            _ => return Err(refuse(member(&path, "type"), "only text can be carried here in chat completions")),
        }
    }
    Ok(texts)
}

/// An image block as an `image_url` part: a base64 source as a data URL.
fn image(block: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(block, path, &["type", "source", "cache_control"])?;
    let source_path = member(path, "source");
    let source = json::object(json::required(block, path, "source")?, &source_path)?;
    let field = |name| -> Result<&str, Untranslatable> {
        json::string(json::required(source, &source_path, name)?, &member(&source_path, name))
    };
    let url = match json::kind(source, &source_path)? {
        "base64" => format!("data:{};base64,{}", field("media_type")?, field("data")?),
        "url" => field("url")?.to_owned(),
        _ => return Err(refuse(member(&source_path, "type"), "only base64 and URL images can be carried")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A `tool_use` block as a tool call, its input as the arguments' JSON text.
fn tool_use(block: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(block, path, &["type", "id", "name", "input", "cache_control"])?;
    let id = json::string(json::required(block, path, "id")?, &member(path, "id"))?;
    let name = json::string(json::required(block, path, "name")?, &member(path, "name"))?;
    Ok(tool_call::chat(id, name, present(block, "input")))
}

/// A `tool_result` block as a `tool` message. Chat completions have no error flag for a
/// tool's result, so a failed one is refused rather than told as a success.
fn tool_result(block: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(block, path, &["type", "tool_use_id", "content", "is_error", "cache_control"])?;
    if present(block, "is_error").and_then(Value::as_bool) == Some(true) {
        return Err(refuse(member(path, "is_error"), "OpenAI's tool messages cannot say that a tool failed"));
    }
    let id = json::string(json::required(block, path, "tool_use_id")?, &member(path, "tool_use_id"))?;
    let content_path = member(path, "content");
    let content = match present(block, "content") {
        None => Value::String(String::new()),
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(blocks) => match text_blocks(json::array(blocks, &content_path)?, &content_path)? {
            texts if texts.is_empty() => Value::String(String::new()),
            texts => json::text_content(texts),
        },
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

fn empty_assistant(path: &str) -> Untranslatable {
    refuse(path, "an assistant turn holds text or tool calls")
}

fn unknown_block(kind: &str, path: &str) -> Untranslatable {
    let reason = match kind {
        "thinking" | "redacted_thinking" => {
            "thinking blocks are Anthropic's own; chat completions cannot take them back"
        }
        "document" | "search_result" => "chat completions have no such content block",
        "server_tool_use" | "web_search_tool_result" => "server tools run at Anthropic, not behind chat completions",
        _ => "this content block cannot be carried in chat completions",
    };
    refuse(member(path, "type"), reason)
}
