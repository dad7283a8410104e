//! Parameters (`max_tokens`, `stop`, `temperature`/`seed`/`n`) and errors: an invalid
//! request gets a 4xx in OpenAI's shape, an unknown model a 404 or 400.

use serde_json::{Value, json};

use super::{ask, content, finish_reason};
use crate::check::{Finding, Latency, one_line};
use crate::exchange::{Answer, Target};

/// The model name the unknown-model check asks for.
pub const UNKNOWN_MODEL: &str = "no-such-model-cutover-validate";

async fn completion(target: &Target, body: &Value) -> Result<(Value, Latency), Finding> {
    let answer = target.chat(body).await.map_err(|error| Finding::broken(&error))?;
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return Err(Finding::refused(answer.status, &answer.body, latency));
    }
    let completion = answer.json().ok_or_else(|| Finding::fail("the body is not JSON", latency))?;
    Ok((completion, latency))
}

/// `max_tokens: 5` on a long answer ends with `finish_reason: "length"` within 5 tokens.
pub async fn max_tokens(target: &Target) -> Finding {
    let body = ask(target, "Write a long story about a lighthouse keeper.", json!({"max_tokens": 5}));
    let (completion, latency) = match completion(target, &body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    let used = completion.pointer("/usage/completion_tokens").and_then(Value::as_u64);
    let problem = match (finish_reason(&completion), used) {
        (Some("length"), Some(used)) if used > 5 => Some(format!("{used} completion tokens for max_tokens 5")),
        (Some("length"), _) => None,
        (other, _) => Some(format!("finish_reason {other:?}, expected \"length\"")),
    };
    Finding::unless(problem, "cut at 5 tokens, finish_reason length", latency)
}

/// `stop: ["7"]` on counting to 20: no "7" in the answer, `finish_reason: "stop"`.
pub async fn stop(target: &Target) -> Finding {
    let prompt = "Count from 1 to 20, separated by spaces, nothing else.";
    let body = ask(target, prompt, json!({"stop": ["7"], "max_tokens": 60}));
    let (completion, latency) = match completion(target, &body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    let text = content(&completion).unwrap_or("");
    let problem = match finish_reason(&completion) {
        _ if text.contains('7') => Some(format!("the stop sequence is in the answer: {}", one_line(text, 60))),
        Some("stop") => None,
        other => Some(format!("finish_reason {other:?}, expected \"stop\"")),
    };
    Finding::unless(problem, "stopped before \"7\"", latency)
}

/// `temperature`, `seed` and `n: 2` are accepted, and `n` answers two choices.
pub async fn sampling(target: &Target) -> Finding {
    let body = ask(target, "Name a colour.", json!({"temperature": 0.2, "seed": 42, "n": 2, "max_tokens": 8}));
    let (completion, latency) = match completion(target, &body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    match completion["choices"].as_array().map(Vec::len) {
        Some(2) => Finding::pass("accepted; n = 2 gave two choices", latency),
        other => Finding::fail(format!("n = 2 gave {} choices", other.unwrap_or(0)), latency),
    }
}

/// Why `answer` is not an error in OpenAI's shape, if it is not.
fn error_shape_problem(answer: &Answer) -> Option<String> {
    let Some(body) = answer.json() else {
        let kind =
            if answer.content_type.is_empty() { "no content-type".to_owned() } else { answer.content_type.clone() };
        return Some(format!(
            "the error body is not JSON ({kind}): {}",
            one_line(&String::from_utf8_lossy(&answer.body), 50)
        ));
    };
    let error = &body["error"];
    if !error["message"].is_string() {
        return Some("no error.message in the error body".to_owned());
    }
    if !error["type"].is_string() && !error["code"].is_string() {
        return Some("neither error.type nor error.code in the error body".to_owned());
    }
    None
}

/// `messages` as a string: a 4xx whose body the SDKs can parse. To a Messages upstream
/// (which the translation would not even reach with that) `max_tokens: 0`, which it refuses.
pub async fn invalid_request(target: &Target) -> Finding {
    let body = if target.speaks_messages() {
        json!({"model": target.sent_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0})
    } else {
        json!({"model": target.sent_model, "messages": "this should be a list of messages", "max_tokens": 5})
    };
    let answer = match target.chat(&body).await {
        Ok(answer) => answer,
        Err(error) => return Finding::broken(&error),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_client_error() {
        return Finding::fail(format!("HTTP {} for an invalid request, expected 4xx", answer.status.as_u16()), latency);
    }
    let passed = format!("HTTP {} in OpenAI's error shape", answer.status.as_u16());
    Finding::unless(error_shape_problem(&answer), passed, latency)
}

/// A model that does not exist gets 404 or 400, never 200.
pub async fn unknown_model(target: &Target) -> Finding {
    let body = json!({"model": UNKNOWN_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5});
    let answer = match target.chat(&body).await {
        Ok(answer) => answer,
        Err(error) => return Finding::broken(&error),
    };
    let latency = Latency::whole(&answer);
    match answer.status.as_u16() {
        404 | 400 => Finding::pass(format!("HTTP {} for {UNKNOWN_MODEL}", answer.status.as_u16()), latency),
        status => Finding::fail(format!("HTTP {status} for {UNKNOWN_MODEL}, expected 404 or 400"), latency),
    }
}
