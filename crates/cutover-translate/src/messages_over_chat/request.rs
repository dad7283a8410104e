//! The client's Messages request as a chat completions request, member by member: the
//! members known and carried, the members refused (a list of every member known, so an
//! unknown one is refused too), and the stream flags.

use serde_json::{Value, json};

use super::{content, tools};
use crate::json::{self, Object, Rule, member, never, present};
use crate::{Request, Untranslatable};

/// Every top-level member of a Messages request this translation knows, carried or refused.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "metadata",
    "tools",
    "tool_choice",
    "stream",
    "thinking",
    "service_tier",
    // Dropped: prompt caching is a cost and latency matter, OpenAI caches by itself.
    "cache_control",
    // Refused by `REFUSED`.
    "top_k",
    "mcp_servers",
    "container",
];

const REFUSED: &[Rule] = &[
    Rule { member: "top_k", carried: never, reason: "OpenAI's chat completions have no top-k sampling" },
    Rule {
        member: "thinking",
        carried: |thinking| thinking.get("type").and_then(Value::as_str) == Some("disabled"),
        reason: "extended thinking has no chat completions equivalent",
    },
    Rule {
        member: "mcp_servers",
        carried: never,
        reason: "MCP servers are run by Anthropic's API, not by chat completions",
    },
    Rule { member: "container", carried: never, reason: "containers belong to Anthropic's code execution tool" },
    json::SERVICE_TIER,
];

/// The chat completions request for the client's Messages request `body`.
pub fn request(body: &[u8]) -> Result<Request, Untranslatable> {
    let client = json::body_object(body)?;
    json::only_known(&client, "", KNOWN)?;
    json::check_rules(&client, REFUSED)?;
    let mut chat = Object::new();
    if let Some(model) = present(&client, "model") {
        chat.insert("model".to_owned(), model.clone());
    }
    let mut messages = system(&client)?;
    let history = json::required(&client, "", "messages")?;
    messages.extend(content::messages(json::array(history, "messages")?)?);
    chat.insert("messages".to_owned(), Value::Array(messages));
    // `max_tokens` is deprecated in chat completions, and o-series and GPT-5 models
    // refuse it; `max_completion_tokens` means the same limit.
    if let Some(max_tokens) = present(&client, "max_tokens") {
        chat.insert("max_completion_tokens".to_owned(), max_tokens.clone());
    }
    for name in ["temperature", "top_p"] {
        if let Some(value) = present(&client, name) {
            chat.insert(name.to_owned(), value.clone());
        }
    }
    if let Some(stop) = present(&client, "stop_sequences") {
        chat.insert("stop".to_owned(), stop.clone());
    }
    if let Some(user) = user(&client)? {
        chat.insert("user".to_owned(), user);
    }
    tools::carry(&client, &mut chat)?;
    let stream = json::flag(&client, "", "stream")?.unwrap_or(false);
    if stream {
        chat.insert("stream".to_owned(), Value::Bool(true));
        chat.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    Ok(Request { body: json::bytes(&Value::Object(chat)), stream, include_usage: true })
}

/// The `system` member as the leading system message; none for an empty prompt (empty
/// texts say nothing, and no empty system message is invented).
fn system(client: &Object) -> Result<Vec<Value>, Untranslatable> {
    let Some(system) = present(client, "system") else { return Ok(Vec::new()) };
    let mut pieces = match system {
        Value::String(text) => vec![text.clone()],
        _ => content::text_blocks(json::array(system, "system")?, "system")?,
    };
    pieces.retain(|piece| !piece.is_empty());
    if pieces.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![json!({"role": "system", "content": json::text_content(pieces)})])
}

/// `metadata.user_id` as `user`; metadata holds nothing else.
fn user(client: &Object) -> Result<Option<Value>, Untranslatable> {
    let Some(metadata) = present(client, "metadata") else { return Ok(None) };
    let metadata = json::object(metadata, "metadata")?;
    json::only_known(metadata, "metadata", &["user_id"])?;
    match present(metadata, "user_id") {
        Some(user) => Ok(Some(Value::String(json::string(user, &member("metadata", "user_id"))?.to_owned()))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
