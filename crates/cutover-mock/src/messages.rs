//! `POST /v1/messages` and `POST /v1/messages/count_tokens` (Anthropic mode): text and
//! `tool_use` answers, whole or streamed as Anthropic streams them (`message_start`, per
//! block `content_block_start` / `_delta` / `_stop`, one `ping`, `message_delta`,
//! `message_stop`), with Anthropic's usage, and the faults and quirks of the
//! configuration applied.
//!
//! Usage splits the prompt tokens P (configured or estimated) the way Anthropic reports
//! them: `cache_read_input_tokens` C (`--usage-cached`), `cache_creation_input_tokens` W
//! (`--usage-cache-write`) and `input_tokens` P − C − W, so that a gateway adding them
//! up, as OpenAI counts, gets P back.
//!
//! Quirks applied: wrong-tool, strip-tool-calls, no-tools, echo-model,
//! inflate-prompt-tokens (P is scaled), finish-reason (as the `stop_reason`),
//! no-stream-usage (streams carry no usage), reject-images, plain-errors, fake-stream.
//! Ignored: invalid-json and ignore-json-mode, as this API has no JSON mode.

use std::borrow::Cow;

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError, json};
use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::anthropic;
use super::ctx::Ctx;
use super::faults::FaultKind;
use super::messages_request::{MessagesRequest, Output, Purpose};
use super::runtime::Runtime;
use super::stream::{self, StreamPlan};
use super::wire::{quote, split_even};

/// Input fragments per streamed `tool_use` block (after the empty first one).
const INPUT_FRAGMENTS: usize = 4;

/// Why a request is refused before any answer: the status and Anthropic's message.
struct Refused(StatusCode, String);

impl Refused {
    fn response(&self) -> Response<BoxBody> {
        anthropic::error(self.0, &self.1)
    }
}

/// The request, parsed and checked, or why it is refused.
fn accept<'b>(runtime: &Runtime, body: &'b Bytes, purpose: Purpose) -> Result<MessagesRequest<'b>, Refused> {
    let request: MessagesRequest<'_> = serde_json::from_slice(body)
        .map_err(|error| Refused(StatusCode::BAD_REQUEST, format!("invalid request body: {error}")))?;
    let Some(model) = request.model() else {
        return Err(Refused(StatusCode::BAD_REQUEST, "model: Field required".to_owned()));
    };
    if !runtime.knows_model(model) {
        return Err(Refused(StatusCode::NOT_FOUND, anthropic::unknown_model(model)));
    }
    match request.refusal(&runtime.quirks, purpose) {
        Some(message) => Err(Refused(StatusCode::BAD_REQUEST, message)),
        None => Ok(request),
    }
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": P}`, never faulted nor delayed.
pub(super) fn count_tokens(ctx: &Ctx, body: &Bytes) -> Response<BoxBody> {
    let runtime = &ctx.runtime;
    match accept(runtime, body, Purpose::Count) {
        Ok(request) => {
            let tokens = runtime.usage.prompt.unwrap_or_else(|| request.prompt_tokens());
            json(StatusCode::OK, format!(r#"{{"input_tokens":{tokens}}}"#))
        }
        Err(refused) => refused.response(),
    }
}

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let runtime = &ctx.runtime;
    let request = match accept(runtime, body, Purpose::Answer) {
        Ok(request) => request,
        Err(refused) => return Ok(refused.response()),
    };
    let streamed = request.stream.unwrap_or(false);
    let (fault, early) = ctx.before_answer(streamed).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let quirks = &runtime.quirks;
    let output = request.output(&runtime.answer, quirks);
    // A tool call costs as many tokens as a whole text answer would, within `max_tokens`.
    let (words, output_tokens, natural, stop_sequence) = match &output {
        Output::Text { tokens, stop_reason, stop_sequence } => (*tokens, *tokens, *stop_reason, *stop_sequence),
        Output::Tools(_) => (0, runtime.answer.tokens().min(request.max_tokens()), "tool_use", None),
    };
    let stop_reason = match fault {
        Some(FaultKind::ContentFilter) => "refusal",
        _ => quirks.finish_reason.as_deref().unwrap_or(natural),
    };
    let answer = Answer {
        id: format!("msg_{}", ctx.id),
        model: quirks.echo_model.as_deref().or(request.model()).unwrap_or_default(),
        blocks: blocks(ctx, &output),
        words,
        stop_reason,
        stop_sequence,
        usage: usage(runtime, request.prompt_tokens(), output_tokens as u64),
    };
    if !streamed {
        return Ok(json(StatusCode::OK, serde_json::to_vec(&answer.message(true))?));
    }
    let usage = !quirks.no_stream_usage;
    let plan = events(ctx, &answer, usage)?;
    Ok(stream::response_in(plan, ctx.pacing(fault, quirks.fake_stream), stream::ANTHROPIC))
}

/// Everything one answer says, whole or streamed.
struct Answer<'a> {
    id: String,
    model: &'a str,
    blocks: Vec<Block<'a>>,
    /// Words of the text block (none for tool calls).
    words: usize,
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
    usage: Option<Usage>,
}

impl Answer<'_> {
    /// The message object: complete, or as `message_start` carries it (no content, no
    /// stop reason yet, one output token).
    fn message(&self, complete: bool) -> Message<'_> {
        Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: self.model,
            content: if complete { &self.blocks } else { &[] },
            stop_reason: complete.then_some(self.stop_reason),
            stop_sequence: self.stop_sequence.filter(|_| complete),
            usage: if complete { self.usage } else { self.usage.map(|usage| Usage { output_tokens: 1, ..usage }) },
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [Block<'a>],
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: String, name: Cow<'a, str>, input: Value },
}

/// Anthropic's `usage`.
#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// The usage of an answer with `output` tokens to a prompt estimated at `prompt`, split
/// as the module documentation says; `None` when usage is omitted.
fn usage(runtime: &Runtime, prompt: u64, output: u64) -> Option<Usage> {
    let mut usage = runtime.usage.usage(prompt, output)?;
    if let Some(factor) = runtime.quirks.inflate_prompt_tokens {
        usage = usage.with_prompt_scaled(factor);
    }
    let (read, written) = (usage.cached_tokens(), runtime.cache_write);
    Some(Usage {
        input_tokens: usage.prompt_tokens().saturating_sub(read).saturating_sub(written),
        cache_creation_input_tokens: written,
        cache_read_input_tokens: read,
        output_tokens: usage.completion_tokens(),
    })
}

fn tool_use_id(ctx: &Ctx, k: usize) -> String {
    if k == 0 { format!("toolu_{}", ctx.id) } else { format!("toolu_{}_{k}", ctx.id) }
}

fn blocks<'a>(ctx: &'a Ctx, output: &'a Output<'_>) -> Vec<Block<'a>> {
    match output {
        Output::Text { tokens, .. } => vec![Block::Text { text: ctx.runtime.answer.text(*tokens) }],
        Output::Tools(uses) => uses
            .iter()
            .enumerate()
            .map(|(k, tool)| Block::ToolUse {
                id: tool_use_id(ctx, k),
                name: Cow::Borrowed(&tool.name),
                input: tool.input.clone(),
            })
            .collect(),
    }
}

/// One streamed event; its data starts with its `type`, as Anthropic's do.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: Delta<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<OutputUsage>,
    },
}

#[derive(Serialize)]
struct Delta<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
        }
    }

    /// `event: <name>` and `data: <json>`.
    fn sse(&self) -> Result<String, serde_json::Error> {
        Ok(format!("event: {}\ndata: {}\n\n", self.name(), serde_json::to_string(self)?))
    }
}

/// `content_block_start` of block `index`: the block as whole, but text empty and input `{}`.
fn block_start(index: usize, block: &Block<'_>) -> Result<String, serde_json::Error> {
    let content_block = match block {
        Block::Text { .. } => Block::Text { text: "" },
        Block::ToolUse { id, name, .. } => {
            Block::ToolUse { id: id.clone(), name: name.clone(), input: Value::Object(Map::new()) }
        }
    };
    Event::ContentBlockStart { index, content_block }.sse()
}

/// The `content_block_delta` events of block `index`: one per word for text (`words` of
/// them); for a tool, an empty `partial_json` then its input in fragments.
fn block_deltas(ctx: &Ctx, index: usize, block: &Block<'_>, words: usize) -> Vec<String> {
    let delta = |delta: String| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{delta}}}\n\n"
        )
    };
    match block {
        Block::Text { .. } => ctx
            .runtime
            .answer
            .quoted_words(words)
            .iter()
            .map(|word| delta(format!("{{\"type\":\"text_delta\",\"text\":{word}}}")))
            .collect(),
        Block::ToolUse { input, .. } => {
            let input = input.to_string();
            let fragments = split_even(&input, INPUT_FRAGMENTS).into_iter().map(quote);
            std::iter::once(quote(""))
                .chain(fragments)
                .map(|json| delta(format!("{{\"type\":\"input_json_delta\",\"partial_json\":{json}}}")))
                .collect()
        }
    }
}

/// The stream of `answer`, with its usage unless `with_usage` is false.
fn events(ctx: &Ctx, answer: &Answer<'_>, with_usage: bool) -> Result<StreamPlan, serde_json::Error> {
    let mut message = answer.message(false);
    if !with_usage {
        message.usage = None;
    }
    let mut head = vec![Event::MessageStart { message }.sse()?];
    let mut body = Vec::new();
    for (index, block) in answer.blocks.iter().enumerate() {
        let mut deltas = block_deltas(ctx, index, block, answer.words);
        if index == 0 {
            head.push(block_start(0, block)?);
            head.push(Event::Ping.sse()?);
        } else if let Some(first) = deltas.first_mut() {
            // One frame: the turn to the next block must not cost a chunk gap of its own.
            let turn = [Event::ContentBlockStop { index: index - 1 }.sse()?, block_start(index, block)?];
            first.insert_str(0, &turn.concat());
        }
        body.extend(deltas.into_iter().map(Bytes::from));
    }
    let delta = Delta { stop_reason: answer.stop_reason, stop_sequence: answer.stop_sequence };
    let usage = answer.usage.filter(|_| with_usage).map(|usage| OutputUsage { output_tokens: usage.output_tokens });
    let tail = [
        Event::ContentBlockStop { index: answer.blocks.len().saturating_sub(1) }.sse()?,
        Event::MessageDelta { delta, usage }.sse()?,
    ];
    let bytes = |events: Vec<String>| events.into_iter().map(Bytes::from).collect();
    Ok(StreamPlan { head: bytes(head), body, tail: bytes(tail.into()) })
}
