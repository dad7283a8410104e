//! Anthropic's Messages answers as the comparison reads them: the model, `stop_reason`
//! as the finish, text blocks as the text and `tool_use` blocks as the tool calls (their
//! `input` as compact JSON arguments) — whole, or assembled from a stream's events, whose
//! `input_json_delta` fragments belong to the block their `index` names.

use serde_json::Value;

use super::{Answer, MAX_TOOL_CALLS};

impl Answer {
    /// Whether `json` is a whole Messages answer (`"type": "message"`); read if it is.
    pub(super) fn take_message(&mut self, json: &Value) -> bool {
        if json.get("type").and_then(Value::as_str) != Some("message") {
            return false;
        }
        self.take_model(json);
        self.take_stop_reason(json);
        for block in json.get("content").and_then(Value::as_array).into_iter().flatten() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => self.push_text(block.get("text").and_then(Value::as_str).unwrap_or_default()),
                Some("tool_use") => {
                    let name = block.get("name").and_then(Value::as_str).unwrap_or_default();
                    let input = block.get("input").map(Value::to_string).unwrap_or_default();
                    self.push_call(name, &input);
                }
                _ => {}
            }
        }
        true
    }

    fn take_stop_reason(&mut self, json: &Value) {
        if let Some(reason) = json.get("stop_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }
}

/// A Messages stream being read: which tool call each `tool_use` block became.
#[derive(Debug, Default)]
pub(super) struct MessagesStream {
    /// `(content block index, tool call)`: a handful at most, so a list.
    tool_blocks: Vec<(u64, usize)>,
}

impl MessagesStream {
    /// Whether `json` is a Messages stream event; taken into `answer` if it is.
    pub(super) fn take(&mut self, answer: &mut Answer, json: &Value) -> bool {
        let index = || json.get("index").and_then(Value::as_u64);
        match json.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(message) = json.get("message") {
                    answer.take_model(message);
                }
            }
            Some("content_block_start") => {
                let block = json.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("tool_use")
                    && let Some(index) = index()
                    && answer.tool_calls.len() < MAX_TOOL_CALLS
                {
                    self.tool_blocks.push((index, answer.tool_calls.len()));
                    answer.push_call(block.get("name").and_then(Value::as_str).unwrap_or_default(), "");
                }
            }
            Some("content_block_delta") => {
                let delta = json.get("delta").unwrap_or(&Value::Null);
                let text = |name| delta.get(name).and_then(Value::as_str).unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => answer.push_text(text("text")),
                    Some("input_json_delta") => {
                        let call = index().and_then(|index| self.call_of(index));
                        if let Some(call) = call.and_then(|call| answer.tool_calls.get_mut(call)) {
                            super::append_bounded(call, text("partial_json"));
                        }
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                answer.take_stop_reason(json.get("delta").unwrap_or(&Value::Null));
                self.close_inputs(answer);
            }
            Some("message_stop" | "content_block_stop" | "ping") => {}
            _ => return false,
        }
        true
    }

    /// A tool called without arguments streams none: its input is `{}`, as a whole
    /// answer's would be.
    fn close_inputs(&self, answer: &mut Answer) {
        for (_, call) in &self.tool_blocks {
            if let Some(call) = answer.tool_calls.get_mut(*call).filter(|call| call.arguments.is_empty()) {
                call.arguments.push_str("{}");
            }
        }
    }

    fn call_of(&self, block: u64) -> Option<usize> {
        self.tool_blocks.iter().find(|(index, _)| *index == block).map(|(_, call)| *call)
    }
}
