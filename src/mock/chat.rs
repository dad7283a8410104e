//! `POST /v1/chat/completions`: plain, JSON-mode and tool-call answers, whole or streamed.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;

use super::chat_request::{ChatRequest, Output};
use super::ctx::{Ctx, now};
use super::reply;
use super::stream::{self, Pacing, StreamPlan};
use super::wire::{Envelope, Usage, quote, split_even};
use crate::net::body::{BoxBody, BoxError};

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
    let usage = ctx.runtime.usage.usage(request.prompt_tokens(), completion_tokens as u64);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
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

fn whole(ctx: &Ctx, model: &str, output: &Output<'_>, usage: Option<Usage>) -> Result<Response<BoxBody>, BoxError> {
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

fn events(ctx: &Ctx, model: &str, output: &Output<'_>, usage: Option<Usage>, include_usage: bool) -> StreamPlan {
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
    let tail = envelope.tail(&finish, usage.as_ref(), include_usage, runtime.usage.on_last_chunk());
    StreamPlan { head: vec![envelope.event(role)], body, tail }
}
