//! The upstream's Messages events as a chat chunk stream. Messages streams numbered content
//! blocks; chat streams flat deltas, tool calls numbered among themselves — so the
//! translator keeps which block is text and which tool call each `tool_use` block became,
//! and the usage, which `message_start` and `message_delta` tell in parts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::answer::finish_reason;
use super::now_seconds;
use crate::json::str_or_empty;
use crate::sse::{self, write_data, write_done};
use crate::usage::Usage;
use crate::{BadStream, errors};

/// Translates an upstream Messages event stream, event by event, into chat chunks.
#[derive(Debug)]
pub struct EventTranslator {
    /// Whether the client asked for the usage chunk.
    include_usage: bool,
    /// Every chunk's `created`, fixed when the stream starts.
    created: u64,
    /// Every chunk's `id` and `model`, from `message_start`.
    id: String,
    model: String,
    started: bool,
    /// What each content block, by index, holds: text, or the tool call numbered so.
    blocks: BTreeMap<u64, Block>,
    /// The index the next tool call gets: how many were started.
    next_tool_call: u64,
    usage: Usage,
    /// Whether `message_delta` told the stop reason: the answer is complete.
    stopped: bool,
    finished: bool,
}

#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    Tool(u64),
}

impl EventTranslator {
    /// A translator for a client that asked for the usage chunk or not.
    pub fn new(include_usage: bool) -> EventTranslator {
        EventTranslator::at(include_usage, now_seconds())
    }

    /// A translator whose chunks were `created` at `created` (Unix seconds).
    pub(super) fn at(include_usage: bool, created: u64) -> EventTranslator {
        EventTranslator {
            include_usage,
            created,
            id: String::new(),
            model: String::new(),
            started: false,
            blocks: BTreeMap::new(),
            next_tool_call: 0,
            usage: Usage::default(),
            stopped: false,
            finished: false,
        }
    }

    /// Translates `events`, whole upstream events, appending the client's to `out`.
    pub fn push(&mut self, events: &[u8], out: &mut Vec<u8>) -> Result<(), BadStream> {
        for event in sse::events(events)? {
            // What follows the end is no part of the answer.
            if self.finished {
                continue;
            }
            let data = sse::json(&event)?;
            let kind = data.get("type").and_then(Value::as_str).or(event.name.as_deref()).unwrap_or_default();
            self.event(kind, &data, out)?;
        }
        Ok(())
    }

    /// Whether the upstream's `message_stop` came and `data: [DONE]` was written.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The upstream's stream ended: an answer whose stop reason came (`message_delta`)
    /// without `message_stop` is ended as `message_stop` would end it (its usage chunk
    /// included). One that did not finish is left unended, for the gateway to fail.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.stopped && !self.finished {
            self.stop(out);
        }
    }

    fn event(&mut self, kind: &str, data: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        match kind {
            "error" => write_data(out, &errors::openai_from_anthropic_event(data)),
            "message_start" => self.start(data, out),
            // New event types may come (the API says so): they carry nothing to translate.
            "ping" | "content_block_stop" => {}
            _ if !self.started => return Err(BadStream(format!("a `{kind}` event came before `message_start`"))),
            "content_block_start" => self.block_start(data, out)?,
            "content_block_delta" => self.block_delta(data, out)?,
            "message_delta" => self.message_delta(data, out),
            "message_stop" => self.stop(out),
            _ => {}
        }
        Ok(())
    }

    /// A chunk of this stream with one choice: `delta`, `finish_reason`.
    fn chunk(&self, delta: Value, finish_reason: Value) -> Value {
        let choice = json!({"index": 0, "delta": delta, "finish_reason": finish_reason});
        self.chunk_with(vec![choice])
    }

    fn chunk_with(&self, choices: Vec<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": choices,
        });
        // With the usage chunk asked for, OpenAI's other chunks say `"usage": null`.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn start(&mut self, data: &Value, out: &mut Vec<u8>) {
        let message = data.get("message").unwrap_or(&Value::Null);
        (self.id, self.model) = (str_or_empty(message, "id").to_owned(), str_or_empty(message, "model").to_owned());
        self.usage.update_from_anthropic(message.get("usage").unwrap_or(&Value::Null));
        self.started = true;
        write_data(out, &self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    }

    fn block_start(&mut self, data: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        let index = block_index(data)?;
        let block = data.get("content_block").unwrap_or(&Value::Null);
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                self.blocks.insert(index, Block::Text);
                let text = str_or_empty(block, "text");
                if !text.is_empty() {
                    write_data(out, &self.chunk(json!({"content": text}), Value::Null));
                }
            }
            Some("tool_use") => {
                let call = self.next_tool_call;
                self.next_tool_call += 1;
                self.blocks.insert(index, Block::Tool(call));
                let function = json!({"name": str_or_empty(block, "name"), "arguments": ""});
                let id = str_or_empty(block, "id");
                let tool_call = json!({"index": call, "id": id, "type": "function", "function": function});
                write_data(out, &self.chunk(json!({"tool_calls": [tool_call]}), Value::Null));
            }
            other => {
                let kind = other.unwrap_or("untyped");
                return Err(BadStream(format!("a `{kind}` content block has no place in a chat completion")));
            }
        }
        Ok(())
    }

    fn block_delta(&mut self, data: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        let index = block_index(data)?;
        let delta = data.get("delta").unwrap_or(&Value::Null);
        let kind = delta.get("type").and_then(Value::as_str).unwrap_or("untyped");
        let partial = str_or_empty(delta, "partial_json");
        let chunk = match (self.blocks.get(&index), kind) {
            (Some(Block::Text), "text_delta") => json!({"content": str_or_empty(delta, "text")}),
            (Some(Block::Tool(_)), "input_json_delta") if partial.is_empty() => return Ok(()),
            (Some(Block::Tool(call)), "input_json_delta") => {
                json!({"tool_calls": [{"index": call, "function": {"arguments": partial}}]})
            }
            (None, _) => return Err(BadStream(format!("a delta came for content block {index}, never started"))),
            (Some(_), _) => return Err(BadStream(format!("a `{kind}` delta has no place in a chat completion"))),
        };
        write_data(out, &self.chunk(chunk, Value::Null));
        Ok(())
    }

    fn message_delta(&mut self, data: &Value, out: &mut Vec<u8>) {
        self.usage.update_from_anthropic(data.get("usage").unwrap_or(&Value::Null));
        let stop = data.pointer("/delta/stop_reason").and_then(Value::as_str);
        self.stopped |= stop.is_some();
        write_data(out, &self.chunk(json!({}), finish_reason(stop)));
    }

    /// `message_stop`: the usage chunk if asked for, then `[DONE]`.
    fn stop(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            let mut chunk = self.chunk_with(Vec::new());
            chunk["usage"] = self.usage.to_openai();
            write_data(out, &chunk);
        }
        write_done(out);
        self.finished = true;
    }
}

fn block_index(data: &Value) -> Result<u64, BadStream> {
    data.get("index").and_then(Value::as_u64).ok_or_else(|| BadStream("a content block event has no index".to_owned()))
}

#[cfg(test)]
mod tests;
