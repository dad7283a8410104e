//! The checks themselves, one file per group, run one after the other (so that their
//! latencies do not disturb each other) against one [`Target`]. Each spends few tokens:
//! short prompts and small `max_tokens`, except the one long answer that real streaming
//! needs.

mod basic;
mod formats;
mod honesty;
mod params;
mod tools;

use serde_json::{Value, json};

use super::assemble::{Assembled, assemble};
use super::check::{Finding, Latency};
use super::exchange::{Streamed, Target};

/// What the checks found, by check id, and what the parity table needs besides.
#[derive(Debug, Default)]
pub struct Findings {
    pub by_id: Vec<(&'static str, Finding)>,
    /// The `prompt_tokens` reported for the usage probe (the same prompt everywhere).
    pub usage_probe_prompt_tokens: Option<u64>,
}

impl Findings {
    fn add(&mut self, id: &'static str, finding: Finding) {
        self.by_id.push((id, finding));
    }
}

/// Runs every check of the catalogue against `target`.
pub async fn run(target: &Target) -> Findings {
    let mut findings = Findings::default();
    findings.add("models", basic::models(target).await);
    let (chat, chat_model) = basic::chat(target).await;
    findings.add("chat", chat);
    let (streaming, usage, stream_model) = basic::streaming(target).await;
    findings.add("streaming", streaming);
    findings.add("streaming.usage", usage);
    let forced = tools::forced(target).await;
    findings.add("tools.forced", forced);
    findings.add("tools.auto", tools::auto(target).await);
    findings.add("tools.parallel", tools::parallel(target).await);
    findings.add("tools.streamed", tools::streamed(target).await);
    let (vision, colour) = formats::vision(target).await;
    findings.add("vision", vision);
    findings.add("vision.colour", colour);
    findings.add("json.mode", formats::json_mode(target).await);
    findings.add("json.schema", formats::json_schema(target).await);
    findings.add("params.max_tokens", params::max_tokens(target).await);
    findings.add("params.stop", params::stop(target).await);
    findings.add("params.sampling", params::sampling(target).await);
    findings.add("errors.invalid_request", params::invalid_request(target).await);
    findings.add("errors.unknown_model", params::unknown_model(target).await);
    findings.add("honesty.model", honesty::model_echo(target, [chat_model, stream_model]));
    let (usage, reported) = honesty::usage(target).await;
    findings.add("honesty.usage", usage);
    findings.usage_probe_prompt_tokens = reported;
    findings.add("honesty.streaming", honesty::real_streaming(target).await);
    findings.add("honesty.tool_calls", tools::not_stripped(target).await);
    findings
}

/// A chat request for the model under test with one user message, plus `extra` fields.
fn ask(target: &Target, prompt: &str, extra: Value) -> Value {
    let mut body = json!({"model": target.sent_model, "messages": [{"role": "user", "content": prompt}]});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

/// A streamed answer that came back 2xx, with its assembly and latency; otherwise the
/// finding that says why not (the exchange broke, or the upstream refused).
async fn stream_ok(target: &Target, body: &Value) -> Result<(Streamed, Assembled, Latency), Finding> {
    let streamed = target.stream(body).await.map_err(|error| Finding::broken(&error))?;
    if !streamed.status.is_success() {
        return Err(Finding::refused(streamed.status, &streamed.error_body, Latency::default()));
    }
    let assembled = assemble(&streamed);
    let latency = Latency::streamed(&streamed, assembled.ttft());
    Ok((streamed, assembled, latency))
}

/// The first choice's message content of a whole answer.
fn content(completion: &Value) -> Option<&str> {
    completion.pointer("/choices/0/message/content").and_then(Value::as_str)
}

fn finish_reason(completion: &Value) -> Option<&str> {
    completion.pointer("/choices/0/finish_reason").and_then(Value::as_str)
}
