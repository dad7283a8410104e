//! Tool calls: forced by name (arguments valid against the function's JSON Schema, with
//! the `jsonschema` crate), `tool_choice: "auto"` accepted, parallel calls, streamed
//! deltas that assemble into the same call, and (honesty) a call that comes back when the
//! prompt needs one.

use serde_json::{Value, json};

use super::{ask, stream_ok};
use crate::assemble::{Call, whole_calls};
use crate::check::{Finding, Latency, one_line};
use crate::exchange::Target;

const WEATHER: &str = "What is the weather in Hanoi right now?";

fn weather_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["city", "unit"],
           "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}})
}

fn time_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["timezone"],
           "properties": {"timezone": {"type": "string"}}})
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
                                           "strict": true, "parameters": weather_schema()}},
        {"type": "function", "function": {"name": "get_time", "description": "Current time in an IANA time zone.",
                                           "strict": true, "parameters": time_schema()}},
    ])
}

fn forced_choice() -> Value {
    json!({"type": "function", "function": {"name": "get_weather"}})
}

/// Why `call` is not a valid call of an offered function, if it is not.
fn invalid(call: &Call) -> Option<String> {
    let schema = match call.name.as_str() {
        "get_weather" => weather_schema(),
        "get_time" => time_schema(),
        other => return Some(format!("called {other:?}, which was not offered")),
    };
    let arguments: Value = match serde_json::from_str(&call.arguments) {
        Ok(arguments) => arguments,
        Err(error) => return Some(format!("{}'s arguments are not JSON ({error})", call.name)),
    };
    jsonschema::validate(&schema, &arguments)
        .err()
        .map(|error| format!("{}'s arguments {} break its schema: {error}", call.name, one_line(&call.arguments, 60)))
}

/// A whole answer's calls, or the finding that ends the check.
async fn whole(target: &Target, body: &Value) -> Result<(Vec<Call>, Value, Latency), Finding> {
    let answer = target.chat(body).await.map_err(|error| Finding::broken(&error))?;
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return Err(Finding::refused(answer.status, &answer.body, latency));
    }
    let completion = answer.json().ok_or_else(|| Finding::fail("the body is not JSON", latency))?;
    Ok((whole_calls(&completion), completion, latency))
}

fn text_instead(completion: &Value) -> String {
    let text = completion.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or("");
    format!("no tool call; answered in text: {}", one_line(text, 60))
}

/// `tool_choice` naming `get_weather` gets exactly that call, with valid arguments.
pub async fn forced(target: &Target) -> Finding {
    let body = ask(target, WEATHER, json!({"tools": tools(), "tool_choice": forced_choice(), "max_tokens": 100}));
    let (calls, completion, latency) = match whole(target, &body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    let problem = match calls.first() {
        None => Some(text_instead(&completion)),
        Some(call) if call.name != "get_weather" => Some(format!("forced get_weather, called {:?}", call.name)),
        Some(call) => invalid(call),
    };
    Finding::unless(problem, "get_weather called with schema-valid arguments", latency)
}

/// `tool_choice: "auto"` is accepted (a call or a text answer are both fine).
pub async fn auto(target: &Target) -> Finding {
    let body = ask(target, WEATHER, json!({"tools": tools(), "tool_choice": "auto", "max_tokens": 100}));
    match whole(target, &body).await {
        Ok((calls, _, latency)) if calls.is_empty() => Finding::pass("accepted; answered in text", latency),
        Ok((calls, _, latency)) => Finding::pass(format!("accepted; called {}", calls[0].name), latency),
        Err(finding) => finding,
    }
}

/// A prompt that needs both functions gets both calls in one answer.
pub async fn parallel(target: &Target) -> Finding {
    let prompt = "Call get_weather for Hanoi and get_time for Asia/Ho_Chi_Minh, both in this one answer.";
    let body = ask(target, prompt, json!({"tools": tools(), "parallel_tool_calls": true, "max_tokens": 200}));
    let (calls, completion, latency) = match whole(target, &body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    let mut names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let problem = match calls.len() {
        0 => Some(text_instead(&completion)),
        1 => Some(format!("one call ({}) where two were asked", calls[0].name)),
        _ if names.len() < 2 => Some(format!("{} calls, all of {}", calls.len(), names.join(", "))),
        _ => calls.iter().find_map(invalid),
    };
    Finding::unless(problem, format!("{} calls in one answer: {}", calls.len(), names.join(", ")), latency)
}

/// A forced call, streamed: OpenAI's delta sequence, assembling into the call the same
/// request gets whole.
pub async fn streamed(target: &Target) -> Finding {
    let extra = json!({"tools": tools(), "tool_choice": forced_choice(), "max_tokens": 100});
    let whole_body = ask(target, WEATHER, extra.clone());
    let (whole_calls, _, _) = match whole(target, &whole_body).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    let mut body = whole_body;
    body["stream"] = json!(true);
    let (_, assembled, latency) = match stream_ok(target, &body).await {
        Ok(answer) => answer,
        Err(finding) => return finding,
    };
    let parsed = |call: &Call| serde_json::from_str::<Value>(&call.arguments).ok();
    let problem = if let Some(problem) = assembled.first_problem() {
        Some(problem)
    } else {
        match (assembled.calls.first(), whole_calls.first()) {
            (None, _) => Some(format!("no tool-call deltas; streamed text: {}", one_line(&assembled.content, 60))),
            (Some(call), _) if parsed(call).is_none() => {
                Some(format!("the assembled arguments are not JSON: {}", one_line(&call.arguments, 60)))
            }
            (Some(call), Some(whole)) if call.name != whole.name || parsed(call) != parsed(whole) => Some(format!(
                "assembled {}({}) differs from the whole answer's {}({})",
                call.name,
                one_line(&call.arguments, 40),
                whole.name,
                one_line(&whole.arguments, 40)
            )),
            (Some(call), _) => {
                return Finding::pass(format!("{} assembled from its deltas, as answered whole", call.name), latency);
            }
        }
    };
    Finding::unless(problem, "", latency)
}

/// Honesty: with tools offered and a prompt that needs one, the call comes back.
pub async fn not_stripped(target: &Target) -> Finding {
    let prompt = "Use the get_weather tool: what is the weather in Hanoi right now?";
    let body = ask(target, prompt, json!({"tools": tools(), "max_tokens": 100}));
    match whole(target, &body).await {
        Ok((calls, completion, latency)) if calls.is_empty() => Finding::fail(text_instead(&completion), latency),
        Ok((calls, _, latency)) => Finding::pass(format!("{} came back", calls[0].name), latency),
        Err(finding) => finding,
    }
}
