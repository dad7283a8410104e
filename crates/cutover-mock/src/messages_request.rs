//! What the mock reads from an Anthropic Messages request (`/v1/messages` and its token
//! count), the checks the real API makes before answering (a 400 naming the field at
//! fault), and the answer the request calls for: the answer text capped by `max_tokens`
//! or cut at a stop sequence, or `tool_use` blocks chosen by [`super::tool_rule`] with
//! inputs that are minimal instances of each tool's `input_schema` (see [`instance`]).
//!
//! `tool_choice` maps onto the rule as `none` → no call, `tool` → that tool, `auto`,
//! `any` or none given → the prompt-named tools (the first only with
//! `disable_parallel_tool_use`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::instance::instance;
use super::quirks::Quirks;
use super::runtime::Answer;
use super::tool_rule::{self, ToolChoice};
use super::wire::tokens_for_chars;

/// Only what the mock looks at; everything else is skipped unparsed. Required fields are
/// optional here so that their absence is a 400 naming them, as Anthropic words it.
#[derive(Deserialize)]
pub(super) struct MessagesRequest<'a> {
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    /// A `Value` so that a non-integer is refused by name rather than as unparsable JSON.
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(borrow, default)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    system: Option<Content<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(borrow, default)]
    tool_choice: Option<ToolChoiceParam<'a>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(borrow, default)]
    stop_sequences: Option<Vec<Cow<'a, str>>>,
    /// Accepted (its `user_id` must be a string) and otherwise ignored.
    #[serde(borrow, default, rename = "metadata")]
    _metadata: Option<Metadata<'a>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Content<'a>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default, rename = "user_id")]
    _user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    /// Absent or `custom` for client tools; server tools (`web_search_…`) have a version.
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
struct ToolChoiceParam<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

/// A `content` or `system`: a string, or blocks (`text`, `image`, `tool_use`,
/// `tool_result`, …).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Blocks(#[serde(borrow)] Vec<Block<'a>>),
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    /// A `tool_result`'s content, itself a string or blocks.
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

impl Content<'_> {
    /// The text of the string, or of the text blocks joined.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Text(text) => Cow::Borrowed(text),
            Content::Blocks(blocks) => blocks.iter().filter_map(|b| b.text.as_deref()).collect(),
        }
    }

    /// Characters of text, those of tool results included.
    fn chars(&self) -> usize {
        match self {
            Content::Text(text) => text.chars().count(),
            Content::Blocks(blocks) => blocks
                .iter()
                .map(|b| {
                    b.text.as_ref().map_or(0, |t| t.chars().count()) + b.content.as_ref().map_or(0, Content::chars)
                })
                .sum(),
        }
    }

    fn has_image(&self) -> bool {
        let Content::Blocks(blocks) = self else {
            return false;
        };
        blocks.iter().any(|b| b.kind == "image" || b.content.as_ref().is_some_and(Content::has_image))
    }
}

/// What a request is checked for: an answer needs `max_tokens`, a token count does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Answer,
    Count,
}

/// One `tool_use` block of an answer.
pub(super) struct ToolUse<'r> {
    pub name: Cow<'r, str>,
    pub input: Value,
}

/// What the answer says.
pub(super) enum Output<'r> {
    /// The first `tokens` words of the mock's answer, and why it ends there.
    Text {
        tokens: usize,
        stop_reason: &'static str,
        stop_sequence: Option<&'r str>,
    },
    Tools(Vec<ToolUse<'r>>),
}

impl<'r> MessagesRequest<'r> {
    /// The model asked for, `None` when the request names none (a 400).
    pub(super) fn model(&self) -> Option<&str> {
        self.model.as_deref().filter(|model| !model.is_empty())
    }

    /// The 400 message Anthropic (or a quirk) would refuse this request with, if any;
    /// the model aside (see [`Self::model`]).
    pub(super) fn refusal(&self, quirks: &Quirks, purpose: Purpose) -> Option<String> {
        if purpose == Purpose::Answer
            && let Some(refusal) = self.max_tokens_refusal()
        {
            return Some(refusal.to_owned());
        }
        let Some(messages) = &self.messages else {
            return Some("messages: Field required".to_owned());
        };
        if messages.is_empty() {
            return Some("messages: at least one message is required".to_owned());
        }
        if let Some(i) = messages.iter().position(|m| !matches!(&*m.role, "user" | "assistant")) {
            return Some(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        for (name, value) in [("temperature", self.temperature), ("top_p", self.top_p)] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Some(format!("{name}: Input should be between 0 and 1"));
            }
        }
        if let Some(refusal) = self.tools_refusal(quirks.no_tools) {
            return Some(refusal);
        }
        if quirks.reject_images && messages.iter().any(|m| m.content.has_image()) {
            return Some("messages: This model does not support image inputs (simulated).".to_owned());
        }
        None
    }

    fn max_tokens_refusal(&self) -> Option<&'static str> {
        match &self.max_tokens {
            None => Some("max_tokens: Field required"),
            Some(value) => match value.as_u64() {
                None => Some("max_tokens: Input should be a valid integer"),
                Some(0) => Some("max_tokens: Input should be greater than or equal to 1"),
                Some(_) => None,
            },
        }
    }

    fn tools_refusal(&self, no_tools: bool) -> Option<String> {
        let tools = self.tools.as_deref().unwrap_or_default();
        if no_tools && !tools.is_empty() {
            return Some("tools: This model does not support tools (simulated).".to_owned());
        }
        let custom = |tool: &Tool<'_>| tool.kind.as_deref().is_none_or(|kind| kind == "custom");
        if let Some(i) = tools.iter().position(|tool| custom(tool) && tool.input_schema.is_none()) {
            return Some(format!("tools.{i}.input_schema: Field required"));
        }
        let choice = self.tool_choice.as_ref()?;
        match (&*choice.kind, choice.name.as_deref()) {
            ("auto" | "none", _) => None,
            ("any" | "tool", _) if tools.is_empty() => {
                Some("tool_choice: tool_choice may only be specified while providing tools".to_owned())
            }
            ("any", _) => None,
            ("tool", None) => Some("tool_choice.tool.name: Field required".to_owned()),
            ("tool", Some(name)) if tools.iter().any(|tool| tool.name == name) => None,
            ("tool", Some(name)) => Some(format!("tool_choice.tool.name: tool '{name}' not found in 'tools'")),
            (other, _) => {
                Some(format!("tool_choice.type: Input tag '{other}' does not match 'auto', 'any', 'tool' or 'none'"))
            }
        }
    }

    /// `max_tokens`, once checked.
    pub(super) fn max_tokens(&self) -> usize {
        self.max_tokens.as_ref().and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize)
    }

    /// The answer this request calls for, quirks applied.
    pub(super) fn output(&self, answer: &Answer, quirks: &Quirks) -> Output<'_> {
        let calls = self.tool_uses(quirks.wrong_tool);
        if !calls.is_empty() && !quirks.strip_tool_calls {
            return Output::Tools(calls);
        }
        let whole = answer.tokens();
        let cap = self.max_tokens();
        let sequences = self.stop_sequences.as_deref().unwrap_or_default();
        let full = answer.text(whole);
        let first = sequences.iter().filter(|s| !s.is_empty()).filter_map(|s| Some((full.find(&**s)?, &**s))).min();
        let stopped = first.and_then(|(_, sequence)| Some((answer.words_before(&[sequence])?, sequence)));
        match stopped {
            Some((tokens, sequence)) if tokens <= cap => {
                Output::Text { tokens, stop_reason: "stop_sequence", stop_sequence: Some(sequence) }
            }
            _ if cap < whole => Output::Text { tokens: cap, stop_reason: "max_tokens", stop_sequence: None },
            _ => Output::Text { tokens: whole, stop_reason: "end_turn", stop_sequence: None },
        }
    }

    /// The calls due by [`tool_rule`], as `tool_use` blocks.
    fn tool_uses(&self, wrong_tool: bool) -> Vec<ToolUse<'_>> {
        let tools = self.tools.as_deref().unwrap_or_default();
        let names: Vec<&str> = tools.iter().map(|tool| &*tool.name).collect();
        let choice = match &self.tool_choice {
            Some(choice) if choice.kind == "none" => ToolChoice::None,
            Some(choice) if choice.kind == "tool" => ToolChoice::Forced(choice.name.as_deref().unwrap_or_default()),
            choice => {
                ToolChoice::Auto { parallel: choice.as_ref().and_then(|c| c.disable_parallel_tool_use) != Some(true) }
            }
        };
        tool_rule::chosen(&names, choice, &self.last_user_text())
            .into_iter()
            .map(|i| {
                let input = tools[i]
                    .input_schema
                    .as_ref()
                    .map_or_else(|| Value::Object(serde_json::Map::new()), |schema| instance(schema, schema));
                ToolUse { name: tool_rule::called_name(&names, i, wrong_tool), input }
            })
            .collect()
    }

    fn last_user_text(&self) -> Cow<'_, str> {
        let messages = self.messages.as_deref().unwrap_or_default();
        messages.iter().rev().find(|m| m.role == "user").map_or(Cow::Borrowed(""), |m| m.content.text())
    }

    /// The prompt's tokens, estimated from the text of the system prompt and the messages.
    pub(super) fn prompt_tokens(&self) -> u64 {
        let messages = self.messages.iter().flatten().map(|m| m.content.chars()).sum::<usize>();
        tokens_for_chars(self.system.as_ref().map_or(0, Content::chars) + messages)
    }
}
