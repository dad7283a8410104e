//! `POST /v1/chat/completions`: plain, JSON-mode and tool-call answers, whole or streamed.

use std::borrow::Cow;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::reply;
use super::server::{Ctx, now};
use super::stream::{self, Pacing, StreamPlan};
use super::wire::{Envelope, StreamOptions, TextLen, Usage, quote, split_even, tokens_for_chars};
use crate::net::body::{BoxBody, BoxError};

/// Only what the mock looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
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
enum Output<'r> {
    Text { tokens: usize, finish: &'static str },
    Json,
    Tool { name: &'r str, arguments: String },
}

impl ChatRequest<'_> {
    fn output(&self, answer_tokens: usize) -> Output<'_> {
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

    fn prompt_tokens(&self) -> u64 {
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
                (None, Some("string")) if key.contains("location") || key.contains("city") => json!("Hanoi"),
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

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let request: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return Ok(reply::bad_request(&error)),
    };
    let streamed = request.stream.unwrap_or(false);
    let (fault, early) = ctx.before_answer(streamed).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let answer_tokens = ctx.runtime.answer.tokens();
    let output = request.output(answer_tokens);
    let completion_tokens = match output {
        Output::Text { tokens, .. } => tokens,
        Output::Json | Output::Tool { .. } => answer_tokens,
    };
    let usage = Usage::new(request.prompt_tokens(), completion_tokens as u64);
    if !streamed {
        return whole(ctx, &request.model, &output, usage);
    }
    let include_usage = request.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let plan = events(ctx, &request.model, &output, usage, include_usage);
    let pacing = Pacing {
        ttft: ctx.runtime.ttft,
        chunk_gap: ctx.runtime.chunk_gap,
        fault,
        stopping: ctx.state.stopping.subscribe(),
    };
    Ok(stream::response(plan, pacing))
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
    system_fingerprint: &'a str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

fn whole(ctx: &Ctx, model: &str, output: &Output<'_>, usage: Usage) -> Result<Response<BoxBody>, BoxError> {
    let answer = &ctx.runtime.answer;
    let call_id = format!("call_{}", ctx.id);
    let (content, tool_calls, finish_reason) = match *output {
        Output::Text { tokens, finish } => (Some(answer.text(tokens)), None, finish),
        Output::Json => (Some(answer.json.as_str()), None, "stop"),
        Output::Tool { name, ref arguments } => {
            let call = ToolCall { id: &call_id, kind: "function", function: FunctionCall { name, arguments } };
            (None, Some([call]), "tool_calls")
        }
    };
    let completion = Completion {
        id: &format!("chatcmpl-{}", ctx.id),
        object: "chat.completion",
        created: now(),
        model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage { role: "assistant", content, refusal: None, tool_calls },
            logprobs: None,
            finish_reason,
        }],
        usage,
        system_fingerprint: &ctx.runtime.fingerprint,
    };
    let mut body = Vec::with_capacity(512 + content.map_or(0, str::len));
    serde_json::to_writer(&mut body, &completion)?;
    Ok(crate::net::body::json(StatusCode::OK, body))
}

const ROLE: &str = r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#;
const ROLE_FOR_TOOLS: &str =
    r#"{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}"#;

fn content_choice(quoted: &str) -> String {
    format!(r#"{{"index":0,"delta":{{"content":{quoted}}},"logprobs":null,"finish_reason":null}}"#)
}

fn events(ctx: &Ctx, model: &str, output: &Output<'_>, usage: Usage, include_usage: bool) -> StreamPlan {
    let runtime = &ctx.runtime;
    let id = format!("chatcmpl-{}", ctx.id);
    let envelope = Envelope::new("chat.completion.chunk", &id, now(), model, &runtime.fingerprint, include_usage);
    let (role, body, finish) = match *output {
        Output::Text { tokens, finish } => {
            let words = runtime.answer.quoted_words(tokens);
            (ROLE, words.iter().map(|word| envelope.event(&content_choice(word))).collect(), finish)
        }
        Output::Json => {
            let pieces = split_even(&runtime.answer.json, runtime.answer.tokens());
            (ROLE, pieces.iter().map(|piece| envelope.event(&content_choice(&quote(piece)))).collect(), "stop")
        }
        Output::Tool { name, ref arguments } => {
            let call_id = quote(&format!("call_{}", ctx.id));
            let first = format!(
                r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"id":{call_id},"type":"function","function":{{"name":{},"arguments":""}}}}]}},"logprobs":null,"finish_reason":null}}"#,
                quote(name)
            );
            let fragments = split_even(arguments, 4).into_iter().map(|piece| {
                format!(
                    r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":{}}}}}]}},"logprobs":null,"finish_reason":null}}"#,
                    quote(piece)
                )
            });
            let body = std::iter::once(first).chain(fragments).map(|choice| envelope.event(&choice)).collect();
            (ROLE_FOR_TOOLS, body, "tool_calls")
        }
    };
    let finish = format!(r#"{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{finish}"}}"#);
    let mut tail = vec![envelope.event(&finish)];
    if include_usage {
        tail.push(envelope.usage_event(&usage));
    }
    StreamPlan { head: vec![envelope.event(role)], body, tail }
}
