//! What the mock reads from a chat completion request, parsed without building a DOM
//! for the messages, the checks OpenAI makes before answering (400 with the `param` at
//! fault), and the kind of answer the request calls for.
//!
//! Which tools are called follows [`super::tool_rule`] (`tool_choice` "none", a named
//! function, or "auto" / "required" / absent; `parallel_tool_calls: false` keeps the first
//! call only). Arguments are a minimal instance of the function's `parameters` (see
//! [`instance`]).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::images;
use super::instance::instance;
use super::quirks::Quirks;
use super::runtime::Answer;
use super::tool_rule::{self, ToolChoice};
use super::wire::{StreamOptions, tokens_for_chars};

/// Only what the mock looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
pub(super) struct ChatRequest<'a> {
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(borrow, default)]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(borrow, default)]
    stop: Option<Stop<'a>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    /// Accepted and ignored: the mock's answers are deterministic anyway.
    #[serde(default, rename = "seed")]
    _seed: Option<i64>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Content<'a>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    parameters: Option<Value>,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    json_schema: Option<JsonSchemaFormat>,
}

#[derive(Deserialize)]
struct JsonSchemaFormat {
    #[serde(default)]
    schema: Option<Value>,
}

/// `stop`: one string or up to four.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Stop<'_> {
    fn sequences(&self) -> &[Cow<'_, str>] {
        match self {
            Stop::One(one) => std::slice::from_ref(one),
            Stop::Many(many) => many,
        }
    }
}

/// A refused request: the offending `param` and OpenAI-style wording.
#[derive(Debug)]
pub(super) struct Invalid {
    pub param: &'static str,
    pub message: String,
    /// `Some` for refusals with their own code (e.g. `invalid_image_url`).
    pub code: Option<&'static str>,
}

impl Invalid {
    fn new(param: &'static str, message: impl Into<String>) -> Invalid {
        Invalid { param, message: message.into(), code: None }
    }
}

/// One function call of an answer.
pub(super) struct Call<'r> {
    pub name: Cow<'r, str>,
    pub arguments: String,
}

/// What the answer says.
pub(super) enum Output<'r> {
    /// The first `tokens` words of the mock's answer.
    Text {
        tokens: usize,
        finish: &'static str,
    },
    /// JSON-mode or structured-output content.
    Json(String),
    Tools(Vec<Call<'r>>),
}

impl<'r> ChatRequest<'r> {
    /// The 400 OpenAI (or a quirk) would answer this request with, if any.
    pub(super) fn refusal(&self, quirks: &Quirks) -> Option<Invalid> {
        let tools = self.functions().count();
        if quirks.no_tools && tools > 0 {
            return Some(Invalid::new("tools", "This model does not support tools (simulated)."));
        }
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Some(Invalid::new("temperature", format!("{t} is greater than the maximum of 2 - 'temperature'")));
        }
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return Some(Invalid::new("top_p", format!("{p} is greater than the maximum of 1 - 'top_p'")));
        }
        if let Some(n) = self.n.filter(|n| !(1..=128).contains(n)) {
            return Some(Invalid::new("n", format!("{n} is not in the range 1..128 - 'n'")));
        }
        for (param, value) in [("max_tokens", self.max_tokens), ("max_completion_tokens", self.max_completion_tokens)] {
            if value == Some(0) {
                return Some(Invalid::new(param, format!("0 is less than the minimum of 1 - '{param}'")));
            }
        }
        if self.stop.as_ref().is_some_and(|stop| stop.sequences().len() > 4) {
            return Some(Invalid::new("stop", "'stop' accepts at most 4 sequences"));
        }
        if let Some(refusal) = self.tool_choice_refusal(tools) {
            return Some(refusal);
        }
        if let Some(format) = &self.response_format {
            match &*format.kind {
                "text" | "json_object" => {}
                "json_schema" if format.json_schema.as_ref().is_some_and(|s| s.schema.is_some()) => {}
                "json_schema" => {
                    return Some(Invalid::new(
                        "response_format.json_schema",
                        "Missing required parameter: 'response_format.json_schema.schema'.",
                    ));
                }
                other => {
                    return Some(Invalid::new("response_format.type", format!("Invalid value: '{other}'.")));
                }
            }
        }
        self.image_refusal(quirks.reject_images)
    }

    fn tool_choice_refusal(&self, tools: usize) -> Option<Invalid> {
        let choice = self.tool_choice.as_ref()?;
        match choice {
            Value::String(mode) if matches!(mode.as_str(), "none" | "auto") => None,
            Value::String(mode) if mode == "required" && tools > 0 => None,
            Value::String(mode) if mode == "required" => {
                Some(Invalid::new("tool_choice", "tool_choice 'required' is only allowed when tools are specified."))
            }
            _ => match choice.pointer("/function/name").and_then(Value::as_str) {
                Some(name) if self.functions().any(|f| f.name == name) => None,
                Some(name) => Some(Invalid::new("tool_choice", format!("Tool choice '{name}' not found in 'tools'."))),
                None => Some(Invalid::new("tool_choice", "Invalid value for 'tool_choice'.")),
            },
        }
    }

    fn image_refusal(&self, reject_all: bool) -> Option<Invalid> {
        let mut urls = self.messages.iter().flat_map(|m| m.content.images.iter());
        if reject_all {
            return urls.next().map(|_| Invalid {
                param: "messages",
                message: "This model does not support image inputs (simulated).".to_owned(),
                code: Some("invalid_image"),
            });
        }
        urls.find_map(|url| images::check(url).err()).map(|error| Invalid {
            param: "messages",
            message: error.message().to_owned(),
            code: Some("invalid_image_url"),
        })
    }

    fn functions(&self) -> impl Iterator<Item = &Function<'r>> {
        self.tools.iter().flatten().filter_map(|tool| tool.function.as_ref())
    }

    /// Choices to answer, `n` (1 by default).
    pub(super) fn choices(&self) -> usize {
        self.n.map_or(1, |n| n as usize)
    }

    /// The answer this request calls for, quirks applied.
    pub(super) fn output(&self, answer: &Answer, quirks: &Quirks) -> Output<'_> {
        let calls = self.tool_calls(quirks.wrong_tool);
        if !calls.is_empty() && !quirks.strip_tool_calls {
            return Output::Tools(calls);
        }
        if let Some(format) = self.response_format.as_ref().filter(|_| !quirks.ignore_json_mode) {
            let content = match (&*format.kind, format.json_schema.as_ref().and_then(|s| s.schema.as_ref())) {
                ("json_object", _) => Some(answer.json.clone()),
                ("json_schema", Some(schema)) => Some(instance(schema, schema).to_string()),
                _ => None,
            };
            if let Some(mut content) = content {
                if quirks.invalid_json {
                    content.pop();
                }
                return Output::Json(content);
            }
        }
        self.text_output(answer)
    }

    fn text_output(&self, answer: &Answer) -> Output<'_> {
        let whole = answer.tokens();
        let cap = self.max_completion_tokens.or(self.max_tokens).map_or(usize::MAX, |n| n as usize);
        let stopped_at = self.stop.as_ref().and_then(|stop| answer.words_before(stop.sequences()));
        match stopped_at {
            Some(tokens) if tokens <= cap => Output::Text { tokens, finish: "stop" },
            _ if cap < whole => Output::Text { tokens: cap, finish: "length" },
            _ => Output::Text { tokens: whole, finish: "stop" },
        }
    }

    /// The calls due by the rule of [`tool_rule`].
    fn tool_calls(&self, wrong_tool: bool) -> Vec<Call<'_>> {
        let offered: Vec<&Function<'_>> = self.functions().collect();
        let names: Vec<&str> = offered.iter().map(|f| &*f.name).collect();
        let choice = match &self.tool_choice {
            Some(Value::String(mode)) if mode == "none" => ToolChoice::None,
            Some(choice @ Value::Object(_)) => {
                ToolChoice::Forced(choice.pointer("/function/name").and_then(Value::as_str).unwrap_or_default())
            }
            _ => ToolChoice::Auto { parallel: self.parallel_tool_calls != Some(false) },
        };
        tool_rule::chosen(&names, choice, self.last_user_text())
            .into_iter()
            .map(|i| {
                let arguments =
                    offered[i].parameters.as_ref().map_or_else(|| "{}".to_owned(), |p| instance(p, p).to_string());
                Call { name: tool_rule::called_name(&names, i, wrong_tool), arguments }
            })
            .collect()
    }

    fn last_user_text(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == "user").map_or("", |m| &m.content.text)
    }

    pub(super) fn prompt_tokens(&self) -> u64 {
        tokens_for_chars(self.messages.iter().map(|m| m.content.chars).sum())
    }
}

/// A message `content`: its text (a string, or the `text` parts joined), the characters
/// of that text, and the URLs of its `image_url` parts.
#[derive(Default)]
struct Content<'a> {
    text: Cow<'a, str>,
    chars: usize,
    images: Vec<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContentVisitor(std::marker::PhantomData))
    }
}

struct ContentVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
    type Value = Content<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of content parts, or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Content<'a>, E> {
        Ok(Content { chars: v.chars().count(), text: Cow::Borrowed(v), images: Vec::new() })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Content<'a>, E> {
        Ok(Content { chars: v.chars().count(), text: Cow::Owned(v.to_owned()), images: Vec::new() })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Content<'a>, E> {
        Ok(Content::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Content<'a>, E> {
        Ok(Content::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
        let mut content = Content::default();
        while let Some(part) = seq.next_element::<Part<'a>>()? {
            if let Some(text) = part.text {
                content.chars += text.chars().count();
                content.text.to_mut().push_str(&text);
            }
            if let Some(image) = part.image_url {
                content.images.push(image.url);
            }
        }
        Ok(content)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Content<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Err(de::Error::invalid_type(de::Unexpected::Map, &self))
    }
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<ImageUrl<'a>>,
}

#[derive(Deserialize)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
}
