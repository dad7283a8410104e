//! What the comparison needs of one answer, read from its captured bytes after it ended
//! (in the mirror's task, never on the client's path): the reported model, the first
//! choice's `finish_reason`, text (assembled from a stream's deltas, up to a bound) and
//! tool calls (a stream's deltas assembled by index). Chat and legacy completions, whole or
//! streamed; the Responses API's `output` (whole, or `response.completed` of a stream);
//! Anthropic's Messages, whole or streamed (`messages`); embeddings carry only their model.

mod messages;

use serde_json::Value;

use super::capture::Captured;
use messages::MessagesStream;

/// Assembled text beyond this is not kept (the similarity reads a prefix of both sides).
pub const MAX_CONTENT_CHARS: usize = 32 << 10;
/// Tool calls beyond this many are not kept.
const MAX_TOOL_CALLS: usize = 64;
/// One call's arguments beyond this are not kept (then they are not judged).
const MAX_ARGUMENT_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
    /// The arguments outgrew `MAX_ARGUMENT_BYTES`: not judged.
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// The text and tool calls are the whole answer's: nothing was skipped, cut or
    /// unreadable. When false only the model and the finish are compared.
    pub complete: bool,
}

impl Answer {
    /// Reads a captured answer; `streamed` says it is an event stream.
    pub fn read(captured: &Captured, streamed: bool) -> Answer {
        if streamed {
            return read_stream(captured);
        }
        match captured.whole().and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()) {
            Some(json) => {
                let mut answer = Answer { complete: true, ..Answer::default() };
                answer.take_whole(&json);
                answer
            }
            // Too long to hold or not JSON: nothing is compared but what the caller knows.
            None => Answer::default(),
        }
    }

    /// A whole answer (chat, completions, embeddings, responses, Messages).
    fn take_whole(&mut self, json: &Value) {
        if self.take_message(json) {
            return;
        }
        self.take_model(json);
        if let Some(output) = json.get("output").and_then(Value::as_array) {
            self.take_responses_output(json, output);
            return;
        }
        let Some(choice) = first_choice(json) else { return };
        self.take_finish(choice);
        let message = choice.get("message").unwrap_or(choice);
        if let Some(text) =
            message.get("content").and_then(Value::as_str).or(choice.get("text").and_then(Value::as_str))
        {
            self.push_text(text);
        }
        for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let function = call.get("function").unwrap_or(call);
            let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
            let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or_default();
            self.push_call(name, arguments);
        }
    }

    /// The Responses API: `status` stands for the finish, `output_text` parts are the text,
    /// `function_call` items the tool calls.
    fn take_responses_output(&mut self, json: &Value, output: &[Value]) {
        if let Some(status) = json.get("status").and_then(Value::as_str) {
            self.finish_reason = Some(status.to_owned());
        }
        for item in output {
            match item.get("type").and_then(Value::as_str) {
                Some("function_call") => {
                    let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                    let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or_default();
                    self.push_call(name, arguments);
                }
                Some("message") => {
                    for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(text) = part.get("text").and_then(Value::as_str) {
                            self.push_text(text);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// One streamed event's data (chat or completions chunk, or a Responses event).
    fn take_event(&mut self, json: &Value) {
        if let Some(response) = json.get("response").filter(|response| response.get("output").is_some()) {
            // `response.completed` (or `.incomplete`) carries the whole answer.
            let complete = self.complete;
            *self = Answer { complete, ..Answer::default() };
            self.take_whole(response);
            return;
        }
        self.take_model(json);
        let Some(choice) = first_choice(json) else { return };
        self.take_finish(choice);
        let delta = choice.get("delta").unwrap_or(choice);
        if let Some(text) = delta.get("content").and_then(Value::as_str).or(choice.get("text").and_then(Value::as_str))
        {
            self.push_text(text);
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            let function = call.get("function").unwrap_or(call);
            if index >= MAX_TOOL_CALLS {
                continue;
            }
            while self.tool_calls.len() <= index {
                self.tool_calls.push(ToolCall::default());
            }
            let slot = &mut self.tool_calls[index];
            if let Some(name) = function.get("name").and_then(Value::as_str) {
                slot.name.push_str(name);
            }
            if let Some(arguments) = function.get("arguments").and_then(Value::as_str) {
                append_bounded(slot, arguments);
            }
        }
    }

    fn take_model(&mut self, json: &Value) {
        if self.model.is_none()
            && let Some(model) = json.get("model").and_then(Value::as_str)
        {
            self.model = Some(model.to_owned());
        }
    }

    fn take_finish(&mut self, choice: &Value) {
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn push_text(&mut self, text: &str) {
        let room = MAX_CONTENT_CHARS.saturating_sub(self.content.len());
        if text.len() <= room {
            self.content.push_str(text);
            return;
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.content.push_str(&text[..cut]);
    }

    fn push_call(&mut self, name: &str, arguments: &str) {
        if self.tool_calls.len() < MAX_TOOL_CALLS {
            let mut call = ToolCall { name: name.to_owned(), ..ToolCall::default() };
            append_bounded(&mut call, arguments);
            self.tool_calls.push(call);
        }
    }
}

fn append_bounded(call: &mut ToolCall, arguments: &str) {
    if call.arguments.len() + arguments.len() > MAX_ARGUMENT_BYTES {
        call.truncated = true;
    } else {
        call.arguments.push_str(arguments);
    }
}

fn first_choice(json: &Value) -> Option<&Value> {
    json.get("choices")?.as_array()?.iter().find(|choice| choice.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

/// A stream's events: all of them when whole; otherwise the whole events of the head and
/// of the tail, and the text and tool calls are marked incomplete.
fn read_stream(captured: &Captured) -> Answer {
    let mut answer = Answer { complete: captured.is_whole(), ..Answer::default() };
    let mut messages = MessagesStream::default();
    let mut take = |json: &Value| {
        if !messages.take(&mut answer, json) {
            answer.take_event(json);
        }
    };
    if let Some(whole) = captured.whole() {
        for_each_event(&whole, &mut take);
        return answer;
    }
    for_each_event(&captured.head, &mut take);
    // The tail begins inside an event: skip to the first event boundary.
    let tail = &captured.tail[..];
    if let Some(at) = memchr::memmem::find(tail, b"\n\n") {
        for_each_event(&tail[at + 2..], &mut take);
    }
    answer.complete = false;
    answer
}

/// Calls `take` with each `data:` line's JSON (`[DONE]` and other lines skipped). A line
/// cut at the end of the bytes does not parse and is skipped.
fn for_each_event(bytes: &[u8], mut take: impl FnMut(&Value)) {
    for line in bytes.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else { continue };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            continue;
        }
        if let Ok(json) = serde_json::from_slice::<Value>(data) {
            take(&json);
        }
    }
}

#[cfg(test)]
mod tests;
