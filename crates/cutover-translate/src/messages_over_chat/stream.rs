//! The upstream's chat chunk stream as Messages events. Chat streams one flat delta per
//! chunk; Messages streams numbered content blocks, each started, filled and stopped in
//! turn — so the translator keeps which block is open and which block each tool call
//! became, and holds the stop reason and usage back for `message_delta` at `[DONE]`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::answer::{Held, stop_reason};
use crate::json::str_or_empty;
use crate::sse::{self, write_event};
use crate::usage::Usage;
use crate::{BadStream, errors};

/// Translates an upstream chat chunk stream, event by event, into Messages events.
#[derive(Debug, Default)]
pub struct EventTranslator {
    /// Whether `message_start` was written: the first chunk writes it.
    started: bool,
    /// The content block open now.
    open: Option<Open>,
    /// The index the next content block starts at: how many were started.
    next_block: u64,
    /// The content block each of the upstream's tool call indexes became.
    tool_blocks: BTreeMap<u64, u64>,
    finish_reason: Option<String>,
    /// Whether the model refused (chat's `refusal` deltas), which is a stop reason in Messages.
    refused: bool,
    usage: Usage,
    finished: bool,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    index: u64,
    text: bool,
}

impl EventTranslator {
    /// Messages streams always carry usage, so `include_usage` changes nothing here.
    pub fn new(_include_usage: bool) -> EventTranslator {
        EventTranslator::default()
    }

    /// Translates `events`, whole upstream events, appending the client's to `out`.
    pub fn push(&mut self, events: &[u8], out: &mut Vec<u8>) -> Result<(), BadStream> {
        for event in sse::events(events)? {
            // What follows the end is no part of the answer.
            if self.finished {
                continue;
            }
            if event.data == "[DONE]" {
                self.done(out)?;
                continue;
            }
            let data = sse::json(&event)?;
            match data.get("error") {
                Some(error) => write_event(out, &errors::anthropic_from_openai_event(error)),
                None => self.chunk(&data, out)?,
            }
        }
        Ok(())
    }

    /// Whether the upstream's `[DONE]` came and `message_stop` was written.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The upstream's stream ended: an answer that finished (its `finish_reason` came)
    /// without `[DONE]` — some relays leave it out — is ended as `[DONE]` would end it.
    /// One that did not finish is left unended, for the gateway to fail as cut short.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.started && self.finish_reason.is_some() && !self.finished {
            // Started, so `done` cannot fail.
            let _ = self.done(out);
        }
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        if !self.started {
            self.start(chunk, out);
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            self.usage = Usage::from_openai(usage);
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                return Err(BadStream("a chunk holds a choice other than the first".to_owned()));
            }
            if let Some(delta) = choice.get("delta") {
                self.delta(delta, out)?;
            }
            if let Some(finish) = choice.get("finish_reason").and_then(Value::as_str) {
                self.close(out);
                self.finish_reason = Some(finish.to_owned());
            }
        }
        Ok(())
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        self.started = true;
        let message = json!({
            "id": str_or_empty(chunk, "id"), "type": "message", "role": "assistant", "content": [],
            "model": str_or_empty(chunk, "model"),
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0},
        });
        write_event(out, &json!({"type": "message_start", "message": message}));
    }

    fn delta(&mut self, delta: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        for member in ["content", "refusal"] {
            if let Some(text) = delta.get(member).and_then(Value::as_str).filter(|text| !text.is_empty()) {
                self.refused |= member == "refusal";
                self.text(text, out);
            }
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            self.tool_call(call, out)?;
        }
        Ok(())
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(Open { index, text: true }) => index,
            _ => self.start_block(json!({"type": "text", "text": ""}), true, out),
        };
        let delta = json!({"type": "text_delta", "text": text});
        write_event(out, &json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    /// A tool call's first delta (with its id and name) starts its block; its argument
    /// fragments go to that block while it is open. A fragment for a block already
    /// stopped (text or another call came between) cannot follow its `content_block_stop`.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) -> Result<(), BadStream> {
        let position = call.get("index").and_then(Value::as_u64);
        let position = position.ok_or_else(|| BadStream("a tool call delta has no index".to_owned()))?;
        let block = match self.tool_blocks.get(&position) {
            Some(&block) => block,
            None => self.start_tool_block(call, position, out)?,
        };
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or_default();
        if arguments.is_empty() {
            return Ok(());
        }
        if self.open.is_none_or(|open| open.index != block) {
            return Err(BadStream(format!("tool call {position}'s arguments came after its block was stopped")));
        }
        let delta = json!({"type": "input_json_delta", "partial_json": arguments});
        write_event(out, &json!({"type": "content_block_delta", "index": block, "delta": delta}));
        Ok(())
    }

    /// Starts the block of the new tool call at `position`, which must carry its id and name.
    fn start_tool_block(&mut self, call: &Value, position: u64, out: &mut Vec<u8>) -> Result<u64, BadStream> {
        let id = call.get("id").and_then(Value::as_str);
        let name = call.pointer("/function/name").and_then(Value::as_str);
        let (Some(id), Some(name)) = (id, name) else {
            return Err(BadStream(format!("tool call {position} starts without an id and a name")));
        };
        let block = self.start_block(json!({"type": "tool_use", "id": id, "name": name, "input": {}}), false, out);
        self.tool_blocks.insert(position, block);
        Ok(block)
    }

    /// Stops the open block and starts `block`, returning its index.
    fn start_block(&mut self, block: Value, text: bool, out: &mut Vec<u8>) -> u64 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(Open { index, text });
        write_event(out, &json!({"type": "content_block_start", "index": index, "content_block": block}));
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            write_event(out, &json!({"type": "content_block_stop", "index": open.index}));
        }
    }

    /// `[DONE]`: the stop reason and the usage held back, then the end.
    fn done(&mut self, out: &mut Vec<u8>) -> Result<(), BadStream> {
        if !self.started {
            return Err(BadStream("the stream ended before its first chunk".to_owned()));
        }
        self.close(out);
        let held = Held { refused: self.refused, tool_called: !self.tool_blocks.is_empty() };
        let delta = json!({"stop_reason": stop_reason(self.finish_reason.as_deref(), held), "stop_sequence": null});
        write_event(out, &json!({"type": "message_delta", "delta": delta, "usage": self.usage.to_anthropic()}));
        write_event(out, &json!({"type": "message_stop"}));
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
