//! What the mock reads from a chat completion request, parsed without building a DOM,
//! and the kind of answer it calls for.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{StreamOptions, TextLen, tokens_for_chars};

/// Only what the mock looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
pub(super) struct ChatRequest<'a> {
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(borrow, default)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(borrow, default)]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: TextLen,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    parameters: Option<Value>,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// What the answer says.
pub(super) enum Output<'r> {
    Text { tokens: usize, finish: &'static str },
    Json,
    Tool { name: &'r str, arguments: String },
}

impl ChatRequest<'_> {
    pub(super) fn output(&self, answer_tokens: usize) -> Output<'_> {
        if let Some((name, arguments)) = self.tool_call() {
            return Output::Tool { name, arguments };
        }
        if let Some(format) = &self.response_format
            && matches!(&*format.kind, "json_object" | "json_schema")
        {
            return Output::Json;
        }
        let cap = self.max_completion_tokens.or(self.max_tokens).map_or(usize::MAX, |n| n as usize);
        let tokens = answer_tokens.min(cap);
        Output::Text { tokens, finish: if tokens < answer_tokens { "length" } else { "stop" } }
    }

    /// The function to call: the one `tool_choice` names, else the first; none when
    /// there are no tools or `tool_choice` is `"none"`.
    fn tool_call(&self) -> Option<(&str, String)> {
        let forced = match &self.tool_choice {
            Some(Value::String(choice)) if choice == "none" => return None,
            Some(choice) => choice.pointer("/function/name").and_then(Value::as_str),
            None => None,
        };
        let function = self
            .tools
            .iter()
            .flatten()
            .filter_map(|tool| tool.function.as_ref())
            .find(|function| forced.is_none_or(|name| function.name == name))?;
        Some((&function.name, arguments(function.parameters.as_ref())))
    }

    pub(super) fn prompt_tokens(&self) -> u64 {
        tokens_for_chars(self.messages.iter().map(|m| m.content.0).sum())
    }
}

/// Plausible arguments for a function's JSON schema: one value per property, by type.
fn arguments(parameters: Option<&Value>) -> String {
    let mut args = serde_json::Map::new();
    if let Some(Value::Object(properties)) = parameters.and_then(|p| p.get("properties")) {
        for (key, schema) in properties {
            let value = match (schema.pointer("/enum/0"), schema.get("type").and_then(Value::as_str)) {
                (Some(first), _) => first.clone(),
                (None, Some("string")) if key.contains("location") || key.contains("city") => {
                    json!("Hanoi")
                }
                (None, Some("string")) => json!("simulated"),
                (None, Some("integer" | "number")) => json!(1),
                (None, Some("boolean")) => json!(true),
                (None, Some("array")) => json!([]),
                (None, Some("object")) => json!({}),
                _ => Value::Null,
            };
            args.insert(key.clone(), value);
        }
    }
    Value::Object(args).to_string()
}
