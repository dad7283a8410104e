//! The client's chat completions request as a Messages request, member by member: the
//! members known and carried, the members refused (a list of every member known, so an
//! unknown one is refused too), `max_tokens` (which Anthropic requires) and the stream flags.

use serde_json::{Map, Value, json};

use super::{content, tools};
use crate::json::{self, Object, Rule, never, present, refuse};
use crate::{Request, Untranslatable};

/// `max_tokens` when the client gives neither `max_completion_tokens` nor `max_tokens`:
/// Anthropic requires one, OpenAI lets the model run to its context's end.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Every top-level member of a chat request this translation knows, carried or refused.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
    // Dropped: a prompt-cache routing hint, which cannot change the answer.
    "prompt_cache_key",
    // Carried only at their defaults (`REFUSED`).
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "response_format",
    "audio",
    "modalities",
    "prediction",
    "functions",
    "function_call",
    "reasoning_effort",
    "verbosity",
    "web_search_options",
    "metadata",
    "store",
    "service_tier",
];

const REFUSED: &[Rule] = &[
    Rule { member: "n", carried: |n| n == 1, reason: "Anthropic's API answers with one choice" },
    Rule {
        member: "logprobs",
        carried: |logprobs| logprobs == false,
        reason: "Anthropic's API gives no log probabilities",
    },
    Rule { member: "top_logprobs", carried: never, reason: "Anthropic's API gives no log probabilities" },
    Rule { member: "logit_bias", carried: empty_object, reason: "Anthropic's API has no logit bias" },
    Rule { member: "frequency_penalty", carried: zero, reason: "Anthropic's API has no frequency penalty" },
    Rule { member: "presence_penalty", carried: zero, reason: "Anthropic's API has no presence penalty" },
    Rule { member: "seed", carried: never, reason: "Anthropic's API has no seeded sampling" },
    Rule {
        member: "response_format",
        carried: |format| format.get("type").and_then(Value::as_str) == Some("text"),
        reason: "Anthropic's API has no JSON mode or response schema",
    },
    Rule { member: "audio", carried: never, reason: "Anthropic's API answers in text only" },
    Rule {
        member: "modalities",
        carried: |modalities| *modalities == json!(["text"]),
        reason: "Anthropic's API answers in text only",
    },
    Rule { member: "prediction", carried: never, reason: "Anthropic's API has no predicted outputs" },
    Rule { member: "functions", carried: never, reason: "legacy functions are not translated; use `tools`" },
    Rule { member: "function_call", carried: never, reason: "legacy functions are not translated; use `tool_choice`" },
    Rule { member: "reasoning_effort", carried: never, reason: "reasoning effort has no Messages equivalent" },
    Rule { member: "verbosity", carried: never, reason: "verbosity has no Messages equivalent" },
    Rule { member: "web_search_options", carried: never, reason: "web search is a server tool of OpenAI's" },
    Rule { member: "metadata", carried: empty_object, reason: "stored-completion metadata is OpenAI's own" },
    Rule { member: "store", carried: |store| store == false, reason: "stored completions are OpenAI's own" },
    json::SERVICE_TIER,
    Rule {
        member: "temperature",
        carried: |temperature| temperature.as_f64().is_some_and(|temperature| temperature <= 1.0),
        reason: "Anthropic's temperature ranges from 0 to 1",
    },
];

fn empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty)
}

fn zero(value: &Value) -> bool {
    value.as_f64() == Some(0.0)
}

/// The Messages request for the client's chat request `body`.
pub fn request(body: &[u8]) -> Result<Request, Untranslatable> {
    let client = json::body_object(body)?;
    json::only_known(&client, "", KNOWN)?;
    json::check_rules(&client, REFUSED)?;
    let mut upstream = Object::new();
    if let Some(model) = present(&client, "model") {
        upstream.insert("model".to_owned(), model.clone());
    }
    let history = json::required(&client, "", "messages")?;
    let conversation = content::conversation(json::array(history, "messages")?)?;
    if let Some(system) = conversation.system {
        upstream.insert("system".to_owned(), Value::String(system));
    }
    upstream.insert("messages".to_owned(), Value::Array(conversation.messages));
    let max_tokens = present(&client, "max_completion_tokens").or_else(|| present(&client, "max_tokens"));
    upstream.insert("max_tokens".to_owned(), max_tokens.cloned().unwrap_or(json!(DEFAULT_MAX_TOKENS)));
    for name in ["temperature", "top_p"] {
        if let Some(value) = present(&client, name) {
            upstream.insert(name.to_owned(), value.clone());
        }
    }
    if let Some(stop) = present(&client, "stop") {
        let stop = if stop.is_string() { json!([stop]) } else { stop.clone() };
        upstream.insert("stop_sequences".to_owned(), stop);
    }
    if let Some(user) = user(&client)? {
        upstream.insert("metadata".to_owned(), json!({"user_id": user}));
    }
    tools::carry(&client, &mut upstream)?;
    let stream = json::flag(&client, "", "stream")?.unwrap_or(false);
    if stream {
        upstream.insert("stream".to_owned(), Value::Bool(true));
    }
    let include_usage = include_usage(&client)?;
    Ok(Request { body: json::bytes(&Value::Object(upstream)), stream, include_usage })
}

/// `stream_options.include_usage`, which is not sent (Anthropic's streams always carry
/// usage) but says whether the client's stream gets OpenAI's usage chunk.
/// `include_obfuscation` only pads OpenAI's chunks against a network side channel, which
/// cannot change the answer, so it is read and not carried; any other option is refused.
fn include_usage(client: &Object) -> Result<bool, Untranslatable> {
    let Some(options) = present(client, "stream_options") else { return Ok(false) };
    let options = json::object(options, "stream_options")?;
    json::only_known(options, "stream_options", &["include_usage", "include_obfuscation"])?;
    json::flag(options, "stream_options", "include_obfuscation")?;
    Ok(json::flag(options, "stream_options", "include_usage")?.unwrap_or(false))
}

/// `user`, or its successor `safety_identifier`, as `metadata.user_id`; both, differing,
/// cannot be told in one.
fn user(client: &Object) -> Result<Option<&str>, Untranslatable> {
    let user = present(client, "user").map(|user| json::string(user, "user")).transpose()?;
    let identifier = present(client, "safety_identifier");
    let identifier = identifier.map(|identifier| json::string(identifier, "safety_identifier")).transpose()?;
    match (user, identifier) {
        (Some(user), Some(identifier)) if user != identifier => {
            Err(refuse("safety_identifier", "Anthropic's `metadata.user_id` holds one identifier, and `user` differs"))
        }
        (user, identifier) => Ok(user.or(identifier)),
    }
}

#[cfg(test)]
mod tests;
