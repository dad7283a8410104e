//! `POST /v1/responses`, a minimal Responses API: one text message, whole or streamed as
//! named events (`response.created`, `response.output_text.delta` per word,
//! `response.completed` carrying the usage), without `[DONE]`, as OpenAI streams it.

use std::borrow::Cow;

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError, json as json_response};
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ctx::{Ctx, now};
use super::reply;
use super::stream::{self, StreamPlan};
use super::wire::{TextLen, Usage, tokens_for_chars};

#[derive(Deserialize)]
struct ResponsesRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    input: TextLen,
    #[serde(default)]
    stream: Option<bool>,
}

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let request: ResponsesRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return Ok(reply::bad_request(&error)),
    };
    let streamed = request.stream.unwrap_or(false);
    let (fault, early) = ctx.before_answer(streamed).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let runtime = &ctx.runtime;
    let tokens = runtime.answer.tokens();
    let usage = runtime.usage.usage(tokens_for_chars(request.input.0), tokens as u64);
    let id = format!("resp_{}", ctx.id);
    let text = runtime.answer.text(tokens);
    let completed = response_object(&id, &request.model, "completed", text, usage.as_ref());
    if !streamed {
        return Ok(json_response(StatusCode::OK, serde_json::to_vec(&completed)?));
    }
    let created = response_object(&id, &request.model, "in_progress", "", None);
    let event = |kind: &str, data: Value| Bytes::from(format!("event: {kind}\ndata: {data}\n\n"));
    let head = vec![event("response.created", json!({"type": "response.created", "response": created}))];
    let item_id = format!("msg_{}", ctx.id);
    let body = runtime
        .answer
        .quoted_words(tokens)
        .iter()
        .map(|word| {
            let delta: Value = serde_json::from_str(word).unwrap_or(Value::Null);
            let data = json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
                              "content_index": 0, "delta": delta});
            event("response.output_text.delta", data)
        })
        .collect();
    let tail = vec![event("response.completed", json!({"type": "response.completed", "response": completed}))];
    let pacing = ctx.pacing(fault, false);
    Ok(stream::response_without_done(StreamPlan { head, body, tail }, pacing))
}

fn response_object(id: &str, model: &str, status: &str, text: &str, usage: Option<&Usage>) -> Value {
    let output = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "message", "id": format!("msg_{}", &id[5..]), "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}])
    };
    json!({"id": id, "object": "response", "created_at": now(), "status": status, "model": model,
           "output": output, "usage": usage.map(Usage::responses_json)})
}
