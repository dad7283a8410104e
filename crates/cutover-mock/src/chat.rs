//! `POST /v1/chat/completions`: plain, JSON-mode, structured-output and tool-call answers,
//! `n` choices of them, whole or streamed the way OpenAI streams them, with the quirks
//! of the configuration applied.

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError};
use http::{Response, StatusCode};
use serde::Serialize;

use super::chat_request::{Call, ChatRequest, Output};
use super::ctx::{Ctx, now};
use super::reply;
use super::stream::{self, StreamPlan};
use super::wire::{Envelope, Usage, quote, split_even};

/// Argument fragments per streamed tool call.
const ARGUMENT_FRAGMENTS: usize = 4;

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let request: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return Ok(reply::bad_request(&error)),
    };
    let runtime = &ctx.runtime;
    let quirks = &runtime.quirks;
    if !runtime.knows_model(&request.model) {
        return Ok(reply::model_not_found(&request.model));
    }
    if let Some(invalid) = request.refusal(quirks) {
        return Ok(reply::invalid_request(&invalid));
    }
    let streamed = request.stream.unwrap_or(false);
    let (fault, early) = ctx.before_answer(streamed).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let output = request.output(&runtime.answer, quirks);
    let choices = request.choices();
    let completion_tokens = match output {
        Output::Text { tokens, .. } => tokens,
        Output::Json(_) | Output::Tools(_) => runtime.answer.tokens(),
    } * choices;
    let prompt_tokens = request.prompt_tokens();
    let usage =
        runtime.usage.usage(prompt_tokens, completion_tokens as u64).map(|usage| match quirks.inflate_prompt_tokens {
            Some(factor) => usage.with_prompt_scaled(factor),
            None => usage,
        });
    let model = quirks.echo_model.as_deref().unwrap_or(&request.model);
    let answer = Answer { output: &output, choices, finish: finish_reason(&output, quirks.finish_reason.as_deref()) };
    if !streamed {
        return whole(ctx, model, &answer, usage);
    }
    let asked_usage = request.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let include_usage = asked_usage && !quirks.no_stream_usage;
    let plan = events(ctx, model, &answer, usage, include_usage);
    let pacing = ctx.pacing(fault, quirks.fake_stream);
    Ok(stream::response(plan, pacing))
}

/// What every choice of one answer says.
struct Answer<'a, 'r> {
    output: &'a Output<'r>,
    choices: usize,
    finish: &'a str,
}

fn finish_reason<'a>(output: &Output<'_>, reported: Option<&'a str>) -> &'a str {
    reported.unwrap_or(match output {
        Output::Text { finish, .. } => finish,
        Output::Json(_) => "stop",
        Output::Tools(_) => "tool_calls",
    })
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    system_fingerprint: &'a str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: usize,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// The id of the `k`-th call of an answer.
fn call_id(ctx: &Ctx, k: usize) -> String {
    if k == 0 { format!("call_{}", ctx.id) } else { format!("call_{}_{k}", ctx.id) }
}

fn whole(ctx: &Ctx, model: &str, answer: &Answer<'_, '_>, usage: Option<Usage>) -> Result<Response<BoxBody>, BoxError> {
    let text = &ctx.runtime.answer;
    let message = || match answer.output {
        Output::Text { tokens, .. } => (Some(text.text(*tokens)), None),
        Output::Json(content) => (Some(content.as_str()), None),
        Output::Tools(calls) => {
            let calls = calls.iter().enumerate().map(|(k, Call { name, arguments })| ToolCall {
                id: call_id(ctx, k),
                kind: "function",
                function: FunctionCall { name, arguments },
            });
            (None, Some(calls.collect()))
        }
    };
    let choices = (0..answer.choices)
        .map(|index| {
            let (content, tool_calls) = message();
            Choice {
                index,
                message: AssistantMessage { role: "assistant", content, refusal: None, tool_calls },
                logprobs: None,
                finish_reason: answer.finish,
            }
        })
        .collect();
    let completion = Completion {
        id: &format!("chatcmpl-{}", ctx.id),
        object: "chat.completion",
        created: now(),
        model,
        choices,
        usage,
        system_fingerprint: &ctx.runtime.fingerprint,
    };
    let mut body = Vec::with_capacity(512 * answer.choices);
    serde_json::to_writer(&mut body, &completion)?;
    Ok(cutover_net::body::json(StatusCode::OK, body))
}

fn role_choice(index: usize, tools: bool) -> String {
    let content = if tools { "null" } else { "\"\"" };
    format!(
        r#"{{"index":{index},"delta":{{"role":"assistant","content":{content}}},"logprobs":null,"finish_reason":null}}"#
    )
}

fn content_choice(index: usize, quoted: &str) -> String {
    format!(r#"{{"index":{index},"delta":{{"content":{quoted}}},"logprobs":null,"finish_reason":null}}"#)
}

fn finish_choice(index: usize, finish: &str) -> String {
    format!(r#"{{"index":{index},"delta":{{}},"logprobs":null,"finish_reason":{}}}"#, quote(finish))
}

/// The delta choices of one choice's stream, after its role chunk: content words, JSON
/// pieces, or per call a head (id, type, name, empty arguments) then argument fragments.
fn deltas(ctx: &Ctx, index: usize, output: &Output<'_>) -> Vec<String> {
    let answer = &ctx.runtime.answer;
    match output {
        Output::Text { tokens, .. } => {
            answer.quoted_words(*tokens).iter().map(|word| content_choice(index, word)).collect()
        }
        Output::Json(content) => {
            split_even(content, answer.tokens()).iter().map(|piece| content_choice(index, &quote(piece))).collect()
        }
        Output::Tools(calls) => calls
            .iter()
            .enumerate()
            .flat_map(|(k, call)| {
                let head = format!(
                    r#"{{"index":{index},"delta":{{"tool_calls":[{{"index":{k},"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}]}},"logprobs":null,"finish_reason":null}}"#,
                    quote(&call_id(ctx, k)),
                    quote(&call.name)
                );
                let fragments = split_even(&call.arguments, ARGUMENT_FRAGMENTS).into_iter().map(move |piece| {
                    format!(
                        r#"{{"index":{index},"delta":{{"tool_calls":[{{"index":{k},"function":{{"arguments":{}}}}}]}},"logprobs":null,"finish_reason":null}}"#,
                        quote(piece)
                    )
                });
                std::iter::once(head).chain(fragments)
            })
            .collect(),
    }
}

fn events(ctx: &Ctx, model: &str, answer: &Answer<'_, '_>, usage: Option<Usage>, include_usage: bool) -> StreamPlan {
    let runtime = &ctx.runtime;
    let id = format!("chatcmpl-{}", ctx.id);
    let envelope = Envelope::new("chat.completion.chunk", &id, now(), model, &runtime.fingerprint, include_usage);
    let tools = matches!(answer.output, Output::Tools(_));
    let head = (0..answer.choices).map(|index| envelope.event(&role_choice(index, tools))).collect();
    // With several choices, their deltas interleave step by step, as OpenAI's do.
    let per_choice: Vec<Vec<String>> = (0..answer.choices).map(|index| deltas(ctx, index, answer.output)).collect();
    let steps = per_choice.first().map_or(0, Vec::len);
    let body = (0..steps)
        .flat_map(|step| per_choice.iter().map(move |deltas| &deltas[step]))
        .map(|c| envelope.event(c))
        .collect();
    let mut tail: Vec<Bytes> = (0..answer.choices.saturating_sub(1))
        .map(|index| envelope.event(&finish_choice(index, answer.finish)))
        .collect();
    let last = finish_choice(answer.choices.saturating_sub(1), answer.finish);
    tail.extend(envelope.tail(&last, usage.as_ref(), include_usage, runtime.usage.on_last_chunk()));
    StreamPlan { head, body, tail }
}
