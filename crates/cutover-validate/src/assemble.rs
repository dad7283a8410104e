//! A streamed chat completion put back together the way the OpenAI SDKs do it, noting
//! every departure from OpenAI's chunk sequence on the way: a role delta first, content
//! and tool-call deltas (keyed by `index`; a call's first delta carries `id`, `type` and
//! the name, later ones argument fragments), a `finish_reason`, with `include_usage` a
//! last chunk with empty `choices` and the usage, then `[DONE]`.

use std::time::Duration;

use serde_json::Value;

use super::exchange::Streamed;

/// One tool call, assembled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A stream of choice 0, assembled.
#[derive(Debug, Default)]
pub struct Assembled {
    pub content: String,
    pub finish: Option<String>,
    pub calls: Vec<Call>,
    pub usage: Option<Value>,
    /// The usage rode on a chunk that has choices instead of a chunk of its own.
    pub usage_with_choices: bool,
    pub model: Option<String>,
    /// Arrival of each chunk carrying content or a tool-call delta.
    pub content_times: Vec<Duration>,
    /// Departures from OpenAI's sequence, in the order met.
    pub problems: Vec<String>,
    pub done: bool,
}

impl Assembled {
    pub fn ttft(&self) -> Option<Duration> {
        self.content_times.first().copied()
    }

    /// The first departure, if any.
    pub fn first_problem(&self) -> Option<String> {
        self.problems.first().cloned()
    }
}

pub fn assemble(streamed: &Streamed) -> Assembled {
    let mut out = Assembled::default();
    let mut id: Option<String> = None;
    let mut saw_role = false;
    for (at, event) in &streamed.events {
        if out.done {
            out.problems.push("an event after [DONE]".to_owned());
            break;
        }
        if event == "[DONE]" {
            out.done = true;
            continue;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(event) else {
            out.problems.push(format!("an event that is not JSON: {}", super::check::one_line(event, 60)));
            continue;
        };
        if chunk.get("error").is_some() {
            out.problems.push(format!("an error event: {}", super::check::one_line(event, 80)));
            continue;
        }
        if chunk["object"] != "chat.completion.chunk" {
            out.problems.push(format!("a chunk whose object is {}", chunk["object"]));
        }
        match (&id, chunk["id"].as_str()) {
            (None, Some(first)) => id = Some(first.to_owned()),
            (Some(first), Some(this)) if first != this => out.problems.push("chunks with different ids".to_owned()),
            _ => {}
        }
        if out.model.is_none() {
            out.model = chunk["model"].as_str().map(str::to_owned);
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| !usage.is_null()) {
            out.usage_with_choices = chunk["choices"].as_array().is_some_and(|choices| !choices.is_empty());
            out.usage = Some(usage.clone());
        }
        let Some(choice) = chunk["choices"].as_array().and_then(|choices| choices.iter().find(|c| c["index"] == 0))
        else {
            continue;
        };
        let delta = &choice["delta"];
        if !saw_role {
            saw_role = true;
            if delta["role"] != "assistant" {
                out.problems.push("the first chunk carries no assistant role".to_owned());
            }
        }
        if let Some(content) = delta["content"].as_str().filter(|content| !content.is_empty()) {
            out.content.push_str(content);
            out.content_times.push(*at);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            out.content_times.push(*at);
            for call in calls {
                add_call_delta(&mut out, call);
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            out.finish = Some(finish.to_owned());
        }
    }
    if !out.done {
        out.problems.push("no [DONE] at the end".to_owned());
    }
    out
}

fn add_call_delta(out: &mut Assembled, delta: &Value) {
    let Some(index) = delta["index"].as_u64().map(|i| i as usize) else {
        out.problems.push("a tool-call delta without index".to_owned());
        return;
    };
    let fragment = delta["function"]["arguments"].as_str().unwrap_or("");
    if index == out.calls.len() {
        let (id, name) = (delta["id"].as_str(), delta["function"]["name"].as_str());
        if id.is_none() || name.is_none() || delta["type"] != "function" {
            out.problems.push(format!("tool call {index}'s first delta lacks its id, type or name"));
        }
        out.calls.push(Call {
            id: id.unwrap_or_default().to_owned(),
            name: name.unwrap_or_default().to_owned(),
            arguments: fragment.to_owned(),
        });
    } else if let Some(call) = out.calls.get_mut(index) {
        call.arguments.push_str(fragment);
        if let Some(name) = delta["function"]["name"].as_str().filter(|name| !name.is_empty()) {
            call.name.push_str(name);
        }
    } else {
        out.problems.push(format!("tool call index {index} skips ahead"));
    }
}

/// The tool calls of a whole answer's first choice.
pub fn whole_calls(completion: &Value) -> Vec<Call> {
    let calls = completion.pointer("/choices/0/message/tool_calls").and_then(Value::as_array);
    calls
        .into_iter()
        .flatten()
        .map(|call| Call {
            id: call["id"].as_str().unwrap_or_default().to_owned(),
            name: call["function"]["name"].as_str().unwrap_or_default().to_owned(),
            arguments: call["function"]["arguments"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}
