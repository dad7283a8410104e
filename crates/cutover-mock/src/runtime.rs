//! The running form of a `MockConfig`: everything a request needs, computed once at
//! startup (answer words, JSON bodies, header values) so the hot path only copies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use super::anthropic;
use super::config::{Api, MockConfig};
use super::faults::FaultSet;
use super::quirks::Quirks;
use super::usage::UsagePlan;
use super::wire::quote;

/// Filler words after the opening "Simulated answer from mock <name>.".
const FILLER: [&str; 12] =
    ["The", "gateway", "under", "test", "receives", "these", "words", "one", "token", "at", "a", "time."];

/// Chat (and messages) requests for a model whose name starts with this get a `404`
/// (unless the model is listed), so the unknown-model path can be exercised.
pub const UNKNOWN_MODEL_PREFIX: &str = "no-such-";

/// Swapped whole (arc-swap) when faults or latency change at runtime.
#[derive(Debug, Clone)]
pub(super) struct Runtime {
    pub api: Api,
    pub name_header: HeaderValue,
    pub fingerprint: String,
    pub latency: Duration,
    pub ttft: Duration,
    pub chunk_gap: Duration,
    pub answer: Arc<Answer>,
    /// The expected key; compared with what follows `Bearer ` in `authorization` (Anthropic
    /// mode: with `x-api-key`).
    pub api_key: Option<Bytes>,
    pub model_list: Bytes,
    pub models: Arc<[(String, Bytes)]>,
    pub faults: Arc<FaultSet>,
    pub errors: Arc<ErrorBodies>,
    pub usage: UsagePlan,
    /// Anthropic mode: `cache_creation_input_tokens`.
    pub cache_write: u64,
    pub quirks: Arc<Quirks>,
}

impl Runtime {
    pub(super) fn new(config: &MockConfig) -> Runtime {
        let name = &config.name;
        let model = |id: &str| match config.api {
            Api::OpenAi => model_json(id, name),
            Api::Anthropic => anthropic::model_json(id),
        };
        let models: Vec<(String, Bytes)> =
            config.models.iter().map(|id| (id.clone(), Bytes::from(model(id).to_string()))).collect();
        let list = match config.api {
            Api::OpenAi => {
                json!({"object": "list", "data": config.models.iter().map(|id| model(id)).collect::<Vec<_>>()})
            }
            Api::Anthropic => anthropic::model_list(&config.models),
        };
        let errors = match config.api {
            Api::OpenAi => ErrorBodies::new(name),
            Api::Anthropic => anthropic::error_bodies(name),
        };
        Runtime {
            api: config.api,
            name_header: header_value(name),
            fingerprint: format!("fp_{name}"),
            latency: config.latency,
            ttft: config.ttft,
            chunk_gap: config.chunk_gap,
            answer: Arc::new(Answer::new(name, config.answer_tokens)),
            api_key: config.api_key.as_ref().map(|key| Bytes::from(key.clone())),
            model_list: Bytes::from(list.to_string()),
            models: models.into(),
            faults: Arc::new(FaultSet::new(&config.faults)),
            errors: Arc::new(errors),
            usage: config.usage,
            cache_write: config.cache_write,
            quirks: Arc::new(Quirks::new(&config.quirks)),
        }
    }

    /// The precomputed `GET /v1/models/{id}` body.
    pub(super) fn model(&self, id: &str) -> Option<Bytes> {
        self.models.iter().find(|(model, _)| model == id).map(|(_, body)| body.clone())
    }

    /// Whether chat (or messages) answers `model`: any listed model, and any other name too
    /// (tests send aliased names such as `relay-gpt-4.1`), except names starting with
    /// [`UNKNOWN_MODEL_PREFIX`], which the mock treats as models that do not exist.
    pub(super) fn knows_model(&self, model: &str) -> bool {
        !model.starts_with(UNKNOWN_MODEL_PREFIX) || self.models.iter().any(|(id, _)| id == model)
    }

    /// Whether `authorization` satisfies the configured key (always, when there is none).
    pub(super) fn authorized(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") && value[7..] == key[..]
    }
}

fn model_json(id: &str, owner: &str) -> serde_json::Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
}

/// The name as a header value, with anything a header cannot carry replaced by `_`
/// (the CLI rejects such names; a test might not).
pub(super) fn header_value(name: &str) -> HeaderValue {
    let clean: String = name.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("mock"))
}

/// The answer every chat request gets, as words (one per token) and as a JSON object.
#[derive(Debug)]
pub(super) struct Answer {
    text: String,
    /// `ends[i]` is where word `i` ends in `text`; each word after the first carries its
    /// leading space, so any prefix of words is a slice of `text`.
    ends: Vec<usize>,
    /// Each word as a JSON string literal, ready to splice into a chunk.
    quoted: Vec<String>,
    /// The content for `response_format` json_object / json_schema requests.
    pub json: String,
}

impl Answer {
    fn new(name: &str, tokens: usize) -> Answer {
        let opening = ["Simulated", "answer", "from", "mock"].map(str::to_owned);
        let words = opening
            .into_iter()
            .chain([format!("{name}.")])
            .chain(FILLER.iter().cycle().map(|&w| w.to_owned()))
            .take(tokens);
        let (mut text, mut ends, mut quoted) = (String::new(), Vec::new(), Vec::new());
        for (i, word) in words.enumerate() {
            let start = text.len();
            if i > 0 {
                text.push(' ');
            }
            text.push_str(&word);
            ends.push(text.len());
            quoted.push(quote(&text[start..]));
        }
        let json = json!({"answer": "simulated", "source": name}).to_string();
        Answer { text, ends, quoted, json }
    }

    /// The first `tokens` words (all of them when there are fewer).
    pub(super) fn text(&self, tokens: usize) -> &str {
        let end = tokens.min(self.ends.len()).checked_sub(1).map_or(0, |last| self.ends[last]);
        &self.text[..end]
    }

    /// The first `tokens` words as JSON string literals.
    pub(super) fn quoted_words(&self, tokens: usize) -> &[String] {
        &self.quoted[..tokens.min(self.quoted.len())]
    }

    pub(super) fn tokens(&self) -> usize {
        self.ends.len()
    }

    /// With `stop` sequences, how many whole words come before the first occurrence of
    /// any of them; `None` when none occurs. The answer stops at word granularity.
    pub(super) fn words_before(&self, stop: &[impl AsRef<str>]) -> Option<usize> {
        let at = stop.iter().filter(|s| !s.as_ref().is_empty()).filter_map(|s| self.text.find(s.as_ref())).min()?;
        Some(self.ends.iter().take_while(|&&end| end <= at).count())
    }
}

/// Error bodies in the shape of the API spoken, one per fault or auth failure.
#[derive(Debug)]
pub(super) struct ErrorBodies {
    pub unauthorized: Bytes,
    pub server_error: Bytes,
    pub overloaded: Bytes,
    pub rate_limited: Bytes,
    pub context_length: Bytes,
    pub content_filter: Bytes,
}

impl ErrorBodies {
    fn new(name: &str) -> ErrorBodies {
        ErrorBodies {
            unauthorized: error_json(
                &format!("Incorrect API key provided (mock {name})."),
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
            server_error: error_json(
                &format!("The server had an error while processing your request (simulated by mock {name})."),
                "server_error",
                None,
                None,
            ),
            overloaded: error_json(
                &format!("The engine is currently overloaded, please try again later (simulated by mock {name})."),
                "server_error",
                None,
                None,
            ),
            rate_limited: error_json(
                &format!("Rate limit reached for requests (simulated by mock {name})."),
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
            context_length: error_json(
                "This model's maximum context length is 128000 tokens. However, your messages resulted \
                 in 131072 tokens. Please reduce the length of the messages (simulated).",
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            ),
            content_filter: error_json(
                &format!("Your request was rejected as a result of our safety system (simulated by mock {name})."),
                "invalid_request_error",
                None,
                Some("content_policy_violation"),
            ),
        }
    }
}

/// `{"error": {...}}` in OpenAI's shape.
pub(super) fn error_json(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Bytes {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    Bytes::from(body.to_string())
}
