//! One upstream as the suite talks to it: the connections traffic uses
//! (`net::upstream::UpstreamConnections`), its base URL, key, account identity and alias
//! map from the configuration,
//! each exchange timed (time to the response headers, to the first content, to the end),
//! streams read event by event with each event's arrival time, and the tokens every
//! answer reports added up. The suite speaks chat completions; to an upstream of
//! Anthropic's Messages API every exchange goes through the gateway's own translation
//! (`cutover_translate::chat_over_messages`), as an OpenAI client's traffic to it does,
//! and a request that cannot be translated is no exchange (`Untranslatable`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::{Identity, Upstream};
use cutover_model::Api;
use cutover_net::{body::Chain, upstream::UpstreamConnections};
use cutover_translate::chat_over_messages;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::time::Instant;

use super::sse::SseReader;

/// The longest the suite waits for one answer, whatever the upstream's own timeout.
const MAX_EXCHANGE: Duration = Duration::from_secs(120);

/// Why an exchange produced no answer to judge.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no answer: {0}")]
    Transport(String),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("the answer broke off: {0}")]
    Body(String),
    /// The upstream speaks Messages, which cannot carry what the check asks for.
    #[error("{0}")]
    Untranslatable(#[from] cutover_translate::Untranslatable),
    #[error("the stream cannot be translated from Messages: {0}")]
    BadStream(#[from] cutover_translate::BadStream),
}

/// A whole (non-streamed) answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Bytes,
    pub total: Duration,
}

impl Answer {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A streamed answer: the `data:` payload of each event with its arrival time.
#[derive(Debug)]
pub struct Streamed {
    pub status: StatusCode,
    pub content_type: String,
    pub events: Vec<(Duration, String)>,
    /// The body of a non-2xx answer (not an event stream).
    pub error_body: Bytes,
    pub total: Duration,
}

/// Tokens the upstream reported for the suite's requests.
#[derive(Debug, Default)]
pub struct Spent {
    pub prompt: AtomicU64,
    pub completion: AtomicU64,
}

/// The upstream under test and how to reach it.
pub struct Target {
    pub upstream: Arc<Upstream>,
    connections: UpstreamConnections,
    identity: Identity,
    /// The model as the upstream is sent it (after `models = { … }`).
    pub sent_model: String,
    timeout: Duration,
    pub spent: Spent,
}

impl Target {
    pub fn new(upstream: Arc<Upstream>, model: &str) -> Target {
        let identity = upstream.identity();
        let sent_model = upstream.model_aliases.get(model).cloned().unwrap_or_else(|| model.to_owned());
        Target {
            connections: UpstreamConnections::for_upstream(&upstream),
            identity,
            sent_model,
            timeout: upstream.timeouts.total.min(MAX_EXCHANGE),
            upstream,
            spent: Spent::default(),
        }
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>, ExchangeError> {
        let upstream = &self.upstream;
        let uri = format!("{}://{}{}{path}", upstream.scheme, upstream.authority, upstream.base_path);
        let mut request = Request::builder().method(method).uri(uri);
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(headers) = request.headers_mut() {
            self.identity.apply(headers, None);
        }
        request.body(Full::new(body)).map_err(|error| ExchangeError::Transport(error.to_string()))
    }

    /// `GET {base_url}{path}`.
    pub async fn get(&self, path: &str) -> Result<Answer, ExchangeError> {
        self.whole(self.request(Method::GET, path, Bytes::new())?).await
    }

    /// A chat request as this upstream takes it: the path and body, and for a Messages
    /// upstream whether the client's stream carries the usage chunk.
    fn chat_request(&self, body: &Value) -> Result<(&'static str, Bytes, Option<bool>), ExchangeError> {
        match self.upstream.api {
            Api::OpenAi => Ok(("/chat/completions", Bytes::from(body.to_string()), None)),
            Api::Anthropic => {
                let body = without_openai_hints(body.clone()).to_string();
                let translated = chat_over_messages::request(body.as_bytes())?;
                let include_usage = Some(translated.include_usage);
                Ok((chat_over_messages::UPSTREAM_PATH, Bytes::from(translated.body), include_usage))
            }
        }
    }

    /// `POST /chat/completions` with `body`, whole.
    pub async fn chat(&self, body: &Value) -> Result<Answer, ExchangeError> {
        let (path, body, translated) = self.chat_request(body)?;
        let mut answer = self.whole(self.request(Method::POST, path, body)?).await?;
        if translated.is_some() {
            let chat = chat_over_messages::answer(answer.status.as_u16(), &answer.body);
            answer.status = StatusCode::from_u16(chat.status).unwrap_or(StatusCode::BAD_GATEWAY);
            answer.content_type = "application/json".to_owned();
            answer.body = Bytes::from(chat.body);
        }
        if answer.status.is_success()
            && let Some(usage) = answer.json().and_then(|json| json.get("usage").cloned())
        {
            self.add_usage(&usage);
        }
        Ok(answer)
    }

    /// `POST /chat/completions` with `body` (which asks for a stream), read to its end.
    pub async fn stream(&self, body: &Value) -> Result<Streamed, ExchangeError> {
        let (path, body, translated) = self.chat_request(body)?;
        let mut translator = translated.map(ChatEvents::new);
        let request = self.request(Method::POST, path, body)?;
        let started = Instant::now();
        let deadline = started + self.timeout;
        let response = tokio::time::timeout_at(deadline, self.connections.send(request, None))
            .await
            .map_err(|_| ExchangeError::Timeout(self.timeout))?
            .map_err(|error| ExchangeError::Transport(Chain(&error).to_string()))?;
        let status = response.status();
        let content_type = content_type(response.headers());
        let mut body = response.into_body();
        let mut reader = SseReader::default();
        let (mut events, mut raw) = (Vec::new(), Vec::new());
        loop {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .map_err(|_| ExchangeError::Timeout(self.timeout))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|error| ExchangeError::Body(Chain(&error).to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            let at = started.elapsed();
            if !status.is_success() {
                raw.extend_from_slice(&data);
                continue;
            }
            let read = reader.push(&data);
            let read = match &mut translator {
                Some(translator) => translator.push(&read)?,
                None => read,
            };
            events.extend(read.into_iter().map(|event| (at, event)));
        }
        if let Some(translator) = &mut translator {
            let at = started.elapsed();
            events.extend(translator.end().into_iter().map(|event| (at, event)));
        }
        for (_, event) in &events {
            if let Some(usage) = serde_json::from_str::<Value>(event).ok().and_then(|chunk| chunk.get("usage").cloned())
            {
                self.add_usage(&usage);
            }
        }
        Ok(Streamed { status, content_type, events, error_body: Bytes::from(raw), total: started.elapsed() })
    }

    async fn whole(&self, request: Request<Full<Bytes>>) -> Result<Answer, ExchangeError> {
        let started = Instant::now();
        let exchange = async {
            let response = self
                .connections
                .send(request, None)
                .await
                .map_err(|error| ExchangeError::Transport(Chain(&error).to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|error| ExchangeError::Body(Chain(&error).to_string()))?.to_bytes();
            Ok(Answer {
                status: parts.status,
                content_type: content_type(&parts.headers),
                body,
                total: started.elapsed(),
            })
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| ExchangeError::Timeout(self.timeout))?
    }

    fn add_usage(&self, usage: &Value) {
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        self.spent.prompt.fetch_add(count("prompt_tokens"), Ordering::Relaxed);
        self.spent.completion.fetch_add(count("completion_tokens"), Ordering::Relaxed);
    }

    /// Whether the upstream speaks Messages (the suite's requests are translated to it).
    pub fn speaks_messages(&self) -> bool {
        self.upstream.api == Api::Anthropic
    }

    /// Prompt and completion tokens reported so far.
    pub fn tokens(&self) -> (u64, u64) {
        (self.spent.prompt.load(Ordering::Relaxed), self.spent.completion.load(Ordering::Relaxed))
    }
}

/// A check's request without the two hints Messages has no counterpart for and no check
/// judges: `strict` on a tool (the arguments are judged against the schema either way)
/// and an image's `detail`. The translation refuses both, rightly for a client that
/// counts on them; the suite only asks whether the upstream can call tools and see.
fn without_openai_hints(mut body: Value) -> Value {
    for tool in body.get_mut("tools").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(function) = tool.get_mut("function").and_then(Value::as_object_mut) {
            function.remove("strict");
        }
    }
    for message in body.get_mut("messages").and_then(Value::as_array_mut).into_iter().flatten() {
        for part in message.get_mut("content").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(image) = part.get_mut("image_url").and_then(Value::as_object_mut) {
                image.remove("detail");
            }
        }
    }
    body
}

/// A Messages stream read as chat chunks: each event's data translated as it comes.
struct ChatEvents {
    translator: chat_over_messages::EventTranslator,
    reader: SseReader,
}

impl ChatEvents {
    fn new(include_usage: bool) -> ChatEvents {
        ChatEvents { translator: chat_over_messages::EventTranslator::new(include_usage), reader: SseReader::default() }
    }

    /// The chat chunks' data for the Messages events' `data` (each carries its `type`).
    fn push(&mut self, events: &[String]) -> Result<Vec<String>, ExchangeError> {
        let mut out = Vec::new();
        for data in events {
            self.translator.push(format!("data: {data}\n\n").as_bytes(), &mut out)?;
        }
        Ok(self.reader.push(&out))
    }

    /// At the stream's end: a finished answer left without `message_stop` is ended.
    fn end(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.translator.end(&mut out);
        self.reader.push(&out)
    }
}

fn content_type(headers: &http::HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}
