//! The model listing, a whole chat completion's shape, and a stream's shape with and
//! without its usage chunk.

use serde_json::{Value, json};

use super::{ask, content, finish_reason};
use crate::assemble::assemble;
use crate::check::{Finding, Latency};
use crate::exchange::Target;

const HELLO: &str = "Say hello in five words.";

/// `GET /models` lists the model under test (as the upstream is sent it).
pub async fn models(target: &Target) -> Finding {
    let answer = match target.get("/models").await {
        Ok(answer) => answer,
        Err(error) => return Finding::broken(&error),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return Finding::refused(answer.status, &answer.body, latency);
    }
    let Some(listed) = answer.json().and_then(|list| list["data"].as_array().cloned()) else {
        return Finding::fail("the answer has no `data` list", latency);
    };
    let ids: Vec<&str> = listed.iter().filter_map(|model| model["id"].as_str()).collect();
    if ids.contains(&target.sent_model.as_str()) {
        Finding::pass(format!("{} listed among {}", target.sent_model, ids.len()), latency)
    } else {
        Finding::fail(format!("{} not among the {} listed models", target.sent_model, ids.len()), latency)
    }
}

/// A whole completion has OpenAI's shape; answers the finding and the reported model.
pub async fn chat(target: &Target) -> (Finding, Option<String>) {
    let answer = match target.chat(&ask(target, HELLO, json!({"max_tokens": 64}))).await {
        Ok(answer) => answer,
        Err(error) => return (Finding::broken(&error), None),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return (Finding::refused(answer.status, &answer.body, latency), None);
    }
    let Some(completion) = answer.json() else {
        return (Finding::fail("the body is not JSON", latency), None);
    };
    let model = completion["model"].as_str().map(str::to_owned);
    (
        Finding::unless(
            shape_problem(&completion),
            "id, object, created, model, choices, usage as documented",
            latency,
        ),
        model,
    )
}

fn shape_problem(completion: &Value) -> Option<String> {
    let is_int = |pointer: &str| completion.pointer(pointer).is_some_and(Value::is_u64);
    let missing = [
        ("id", completion["id"].is_string()),
        ("object = chat.completion", completion["object"] == "chat.completion"),
        ("created", is_int("/created")),
        ("model", completion["model"].is_string()),
        (
            "choices[0].message.role = assistant",
            completion.pointer("/choices/0/message/role") == Some(&json!("assistant")),
        ),
        ("choices[0].message.content", content(completion).is_some_and(|c| !c.is_empty())),
        ("usage.prompt_tokens", is_int("/usage/prompt_tokens")),
        ("usage.completion_tokens", is_int("/usage/completion_tokens")),
        ("usage.total_tokens", is_int("/usage/total_tokens")),
    ];
    if let Some((what, _)) = missing.iter().find(|(_, ok)| !ok) {
        return Some(format!("no {what}"));
    }
    match finish_reason(completion) {
        Some("stop") => None,
        other => Some(format!("finish_reason {other:?} for a short complete answer, expected \"stop\"")),
    }
}

/// One stream with `include_usage`: its shape (the first finding) and its usage chunk
/// (the second); and the model it reports.
pub async fn streaming(target: &Target) -> (Finding, Finding, Option<String>) {
    let body = ask(target, HELLO, json!({"max_tokens": 64, "stream": true, "stream_options": {"include_usage": true}}));
    let streamed = match target.stream(&body).await {
        Ok(streamed) => streamed,
        Err(error) => return (Finding::broken(&error), Finding::broken(&error), None),
    };
    if !streamed.status.is_success() {
        let refused = Finding::refused(streamed.status, &streamed.error_body, Latency::default());
        return (refused.clone(), refused, None);
    }
    let assembled = assemble(&streamed);
    let latency = Latency::streamed(&streamed, assembled.ttft());
    let problem = if !streamed.content_type.starts_with("text/event-stream") {
        Some(format!("content-type {:?}, expected text/event-stream", streamed.content_type))
    } else if let Some(problem) = assembled.first_problem() {
        Some(problem)
    } else if assembled.content.is_empty() {
        Some("no content deltas".to_owned())
    } else if assembled.finish.is_none() {
        Some("no finish_reason".to_owned())
    } else {
        None
    };
    let chunks = assembled.content_times.len();
    let shape =
        Finding::unless(problem, format!("role first, {chunks} content deltas, finish_reason, [DONE]"), latency);
    let usage = match &assembled.usage {
        Some(_) if assembled.usage_with_choices => {
            Finding::fail("the usage rides on a chunk with choices, not on a chunk of its own", latency)
        }
        Some(usage) if usage["prompt_tokens"].is_u64() && usage["completion_tokens"].is_u64() => Finding::pass(
            format!("usage chunk: {} + {} tokens", usage["prompt_tokens"], usage["completion_tokens"]),
            latency,
        ),
        Some(_) => Finding::fail("the usage chunk lacks prompt_tokens or completion_tokens", latency),
        None => Finding::fail("include_usage asked, no usage chunk", latency),
    };
    (shape, usage, assembled.model)
}
