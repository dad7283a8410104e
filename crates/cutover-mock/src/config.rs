//! What a mock upstream simulates: the API it speaks, its identity, pacing, credentials,
//! models and faults, and the errors raised while building that from flags or specs.

use std::fmt;
use std::time::Duration;

use super::faults::FaultRule;
use super::quirks::Quirk;
use super::usage::UsagePlan;

/// Models listed by `GET /v1/models` unless configured otherwise.
pub const DEFAULT_MODELS: [&str; 4] = ["gpt-4.1", "gpt-4.1-mini", "gpt-4o", "text-embedding-3-small"];

/// Models listed by `GET /v1/models` in Anthropic mode unless configured otherwise.
pub const DEFAULT_ANTHROPIC_MODELS: [&str; 3] = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"];

/// Content chunks (and completion tokens) per answer unless configured otherwise.
pub const DEFAULT_ANSWER_TOKENS: usize = 16;

/// The API a mock speaks: its paths, headers, request and answer shapes, error shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// OpenAI's: chat and legacy completions, embeddings, responses, models.
    #[default]
    #[value(name = "openai")]
    OpenAi,
    /// Anthropic's Messages API: `/v1/messages`, token counting, models.
    #[value(name = "anthropic")]
    Anthropic,
}

impl Api {
    /// The models listed when none are configured.
    pub fn default_models(self) -> Vec<String> {
        let models: &[&str] = match self {
            Api::OpenAi => &DEFAULT_MODELS,
            Api::Anthropic => &DEFAULT_ANTHROPIC_MODELS,
        };
        models.iter().map(|&m| m.to_owned()).collect()
    }
}

/// How a mock upstream behaves. Built with `Default` and the `with_*` methods.
#[derive(Clone)]
pub struct MockConfig {
    /// The API spoken; everything below applies to either unless it says otherwise.
    pub api: Api,
    /// Returned in the `x-mock-name` header, in `system_fingerprint` (`fp_<name>`) and in
    /// the answer text, so a test can tell which upstream answered.
    pub name: String,
    /// Non-streamed: delay before the response. Streamed: delay before the headers.
    pub latency: Duration,
    /// Streamed: delay between the headers (and role chunk) and the first content chunk.
    pub ttft: Duration,
    /// Streamed: delay between content chunks.
    pub chunk_gap: Duration,
    /// Content chunks per streamed answer, and `completion_tokens` of every answer.
    pub answer_tokens: usize,
    /// When set, requests must carry `Authorization: Bearer <key>` (Anthropic mode:
    /// `x-api-key: <key>`).
    pub api_key: Option<String>,
    /// Served by `GET /v1/models`; chat (and messages) requests accept any model regardless, except names
    /// starting with [`super::UNKNOWN_MODEL_PREFIX`] that are not listed (404).
    pub models: Vec<String>,
    /// Tried in order for every inference request; see [`FaultRule`].
    pub faults: Vec<FaultRule>,
    /// The usage answers report, and where.
    pub usage: UsagePlan,
    /// Anthropic mode: the prompt tokens reported as written to the cache
    /// (`cache_creation_input_tokens`). Kept apart from [`UsagePlan`], whose fields
    /// callers list in full, since OpenAI's usage has no such count.
    pub cache_write: u64,
    /// Deliberate incompatibilities, each breaking one capability; see [`Quirk`].
    pub quirks: Vec<Quirk>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            api: Api::OpenAi,
            name: "mock".to_owned(),
            latency: Duration::ZERO,
            ttft: Duration::ZERO,
            chunk_gap: Duration::ZERO,
            answer_tokens: DEFAULT_ANSWER_TOKENS,
            api_key: None,
            models: Api::OpenAi.default_models(),
            faults: Vec::new(),
            usage: UsagePlan::default(),
            cache_write: 0,
            quirks: Vec::new(),
        }
    }
}

impl MockConfig {
    /// Sets the API; models still at the other API's defaults become this one's.
    pub fn with_api(mut self, api: Api) -> Self {
        let other = if api == Api::OpenAi { Api::Anthropic } else { Api::OpenAi };
        if self.models == other.default_models() {
            self.models = api.default_models();
        }
        self.api = api;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_ttft(mut self, ttft: Duration) -> Self {
        self.ttft = ttft;
        self
    }

    pub fn with_chunk_gap(mut self, chunk_gap: Duration) -> Self {
        self.chunk_gap = chunk_gap;
        self
    }

    pub fn with_answer_tokens(mut self, answer_tokens: usize) -> Self {
        self.answer_tokens = answer_tokens;
        self
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    pub fn with_models<I, M>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the fault rules.
    pub fn with_faults(mut self, faults: Vec<FaultRule>) -> Self {
        self.faults = faults;
        self
    }

    /// Replaces the usage plan.
    pub fn with_usage(mut self, usage: UsagePlan) -> Self {
        self.usage = usage;
        self
    }

    /// Anthropic mode: the prompt tokens reported as written to the cache.
    pub fn with_cache_write(mut self, tokens: u64) -> Self {
        self.cache_write = tokens;
        self
    }

    /// Adds one quirk (a later value of the same quirk wins).
    pub fn with_quirk(mut self, quirk: Quirk) -> Self {
        self.quirks.push(quirk);
        self
    }

    /// Appends one fault rule after the existing ones.
    pub fn with_fault(mut self, fault: FaultRule) -> Self {
        self.faults.push(fault);
        self
    }
}

// By hand so that a key read from the environment never lands in a log line.
impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("api", &self.api)
            .field("name", &self.name)
            .field("latency", &self.latency)
            .field("ttft", &self.ttft)
            .field("chunk_gap", &self.chunk_gap)
            .field("answer_tokens", &self.answer_tokens)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("models", &self.models)
            .field("faults", &self.faults)
            .field("usage", &self.usage)
            .field("cache_write", &self.cache_write)
            .field("quirks", &self.quirks)
            .finish()
    }
}
