//! `POST /v1/completions`, the legacy text endpoint: the same answer as chat, as `text`.

use std::borrow::Cow;

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError, json};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::ctx::{Ctx, now};
use super::reply;
use super::stream::{self, StreamPlan};
use super::wire::{Envelope, StreamOptions, TextLen, Usage, tokens_for_chars};

#[derive(Deserialize)]
struct CompletionRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    prompt: TextLen,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: [TextChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let request: CompletionRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return Ok(reply::bad_request(&error)),
    };
    let streamed = request.stream.unwrap_or(false);
    let (fault, early) = ctx.before_answer(streamed).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let runtime = &ctx.runtime;
    let answer_tokens = runtime.answer.tokens();
    let tokens = answer_tokens.min(request.max_tokens.map_or(usize::MAX, |n| n as usize));
    let finish_reason = if tokens < answer_tokens { "length" } else { "stop" };
    let usage = ctx.runtime.usage.usage(tokens_for_chars(request.prompt.0), tokens as u64);
    let id = format!("cmpl-{}", ctx.id);
    if !streamed {
        let completion = TextCompletion {
            id: &id,
            object: "text_completion",
            created: now(),
            model: &request.model,
            system_fingerprint: &runtime.fingerprint,
            choices: [TextChoice { text: runtime.answer.text(tokens), index: 0, logprobs: None, finish_reason }],
            usage,
        };
        return Ok(json(StatusCode::OK, serde_json::to_vec(&completion)?));
    }
    let include_usage = request.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let envelope = Envelope::new("text_completion", &id, now(), &request.model, &runtime.fingerprint, include_usage);
    let text_choice = |quoted: &str, finish: &str| {
        envelope.event(&format!(r#"{{"text":{quoted},"index":0,"logprobs":null,"finish_reason":{finish}}}"#))
    };
    let body = runtime.answer.quoted_words(tokens).iter().map(|word| text_choice(word, "null")).collect();
    let last = format!(r#"{{"text":"","index":0,"logprobs":null,"finish_reason":"{finish_reason}"}}"#);
    let tail = envelope.tail(&last, usage.as_ref(), include_usage, runtime.usage.on_last_chunk());
    let pacing = ctx.pacing(fault, false);
    Ok(stream::response(StreamPlan { head: Vec::new(), body, tail }, pacing))
}
