//! Quirks: deliberate departures from OpenAI's behaviour, each breaking exactly one
//! capability, so that `cutover validate` and the shadow comparison can be shown to catch
//! it. Unlike faults (which fail a share of requests), a quirk applies to every request
//! it concerns, and only to chat completions, or to messages in Anthropic mode (errors
//! and `GET /v1/models` aside; which apply to messages is listed in `messages`).
//!
//! The names are shared with the shadow comparison's tests; see [`QUIRK_NAMES`].

use std::fmt;

use super::error::MockError;

/// The quirk names [`Quirk::parse`] accepts, for help texts and error messages.
pub const QUIRK_NAMES: &str = "wrong-tool, strip-tool-calls, no-tools, invalid-json, ignore-json-mode, \
     echo-model=<name>, inflate-prompt-tokens=<factor>, finish-reason=<reason>, no-stream-usage, \
     reject-images, plain-errors, fake-stream";

/// One way to be not quite OpenAI-compatible.
#[derive(Debug, Clone, PartialEq)]
pub enum Quirk {
    /// Tool calls name another offered function than the one forced (or the one the
    /// deterministic rule picks); with a single tool offered, `<name>_alt`.
    WrongTool,
    /// Where a tool call is due, the answer is text (`finish_reason` "stop") instead.
    StripToolCalls,
    /// `400` for any request carrying `tools`.
    NoTools,
    /// JSON-mode and structured-output content is broken JSON (the last brace is missing).
    InvalidJson,
    /// `response_format` is ignored: the answer is the usual prose.
    IgnoreJsonMode,
    /// Answers report this model instead of the one asked for.
    EchoModel(String),
    /// `prompt_tokens` (and `total_tokens`) multiplied by this factor.
    InflatePromptTokens(f64),
    /// This `finish_reason` instead of the real one.
    FinishReason(String),
    /// `stream_options.include_usage` is ignored: streams carry no usage.
    NoStreamUsage,
    /// `400` for any request with an image content part.
    RejectImages,
    /// Error answers are `text/plain` prose instead of OpenAI's `{"error": {...}}`.
    PlainErrors,
    /// Streams wait for the whole answer (time to first token plus every chunk gap),
    /// then send every chunk at once.
    FakeStream,
}

impl Quirk {
    /// Parses `NAME[=VALUE]`, see [`QUIRK_NAMES`].
    pub fn parse(spec: &str) -> Result<Quirk, MockError> {
        parse_quirk(spec.trim()).map_err(|reason| MockError::InvalidQuirk { spec: spec.to_owned(), reason })
    }
}

fn parse_quirk(spec: &str) -> Result<Quirk, String> {
    let (name, value) = match spec.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (spec, None),
    };
    let quirk = match (name, value) {
        ("wrong-tool", None) => Quirk::WrongTool,
        ("strip-tool-calls", None) => Quirk::StripToolCalls,
        ("no-tools", None) => Quirk::NoTools,
        ("invalid-json", None) => Quirk::InvalidJson,
        ("ignore-json-mode", None) => Quirk::IgnoreJsonMode,
        ("no-stream-usage", None) => Quirk::NoStreamUsage,
        ("reject-images", None) => Quirk::RejectImages,
        ("plain-errors", None) => Quirk::PlainErrors,
        ("fake-stream", None) => Quirk::FakeStream,
        ("echo-model", Some(model)) if !model.is_empty() => Quirk::EchoModel(model.to_owned()),
        ("finish-reason", Some(reason)) if !reason.is_empty() => Quirk::FinishReason(reason.to_owned()),
        ("inflate-prompt-tokens", Some(factor)) => match factor.parse::<f64>() {
            Ok(factor) if factor.is_finite() && factor > 0.0 => Quirk::InflatePromptTokens(factor),
            _ => return Err(format!("bad factor {factor:?}; expected a positive number, e.g. 1.5")),
        },
        ("echo-model" | "finish-reason" | "inflate-prompt-tokens", _) => {
            return Err(format!("{name} needs a value, e.g. {name}=VALUE"));
        }
        (_, Some(_)) if parse_quirk(name).is_ok() => return Err(format!("{name} takes no value")),
        _ => return Err(format!("unknown quirk {name:?}; expected one of {QUIRK_NAMES}")),
    };
    Ok(quirk)
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quirk::WrongTool => f.write_str("wrong-tool"),
            Quirk::StripToolCalls => f.write_str("strip-tool-calls"),
            Quirk::NoTools => f.write_str("no-tools"),
            Quirk::InvalidJson => f.write_str("invalid-json"),
            Quirk::IgnoreJsonMode => f.write_str("ignore-json-mode"),
            Quirk::EchoModel(model) => write!(f, "echo-model={model}"),
            Quirk::InflatePromptTokens(factor) => write!(f, "inflate-prompt-tokens={factor}"),
            Quirk::FinishReason(reason) => write!(f, "finish-reason={reason}"),
            Quirk::NoStreamUsage => f.write_str("no-stream-usage"),
            Quirk::RejectImages => f.write_str("reject-images"),
            Quirk::PlainErrors => f.write_str("plain-errors"),
            Quirk::FakeStream => f.write_str("fake-stream"),
        }
    }
}

/// The quirks of one mock, resolved for the hot path: flags and values, not a list.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Quirks {
    pub wrong_tool: bool,
    pub strip_tool_calls: bool,
    pub no_tools: bool,
    pub invalid_json: bool,
    pub ignore_json_mode: bool,
    pub echo_model: Option<String>,
    pub inflate_prompt_tokens: Option<f64>,
    pub finish_reason: Option<String>,
    pub no_stream_usage: bool,
    pub reject_images: bool,
    pub plain_errors: bool,
    pub fake_stream: bool,
}

impl Quirks {
    /// The set `quirks` describe; a later value of the same quirk wins.
    pub(super) fn new(quirks: &[Quirk]) -> Quirks {
        let mut set = Quirks::default();
        for quirk in quirks {
            match quirk {
                Quirk::WrongTool => set.wrong_tool = true,
                Quirk::StripToolCalls => set.strip_tool_calls = true,
                Quirk::NoTools => set.no_tools = true,
                Quirk::InvalidJson => set.invalid_json = true,
                Quirk::IgnoreJsonMode => set.ignore_json_mode = true,
                Quirk::EchoModel(model) => set.echo_model = Some(model.clone()),
                Quirk::InflatePromptTokens(factor) => set.inflate_prompt_tokens = Some(*factor),
                Quirk::FinishReason(reason) => set.finish_reason = Some(reason.clone()),
                Quirk::NoStreamUsage => set.no_stream_usage = true,
                Quirk::RejectImages => set.reject_images = true,
                Quirk::PlainErrors => set.plain_errors = true,
                Quirk::FakeStream => set.fake_stream = true,
            }
        }
        set
    }
}
