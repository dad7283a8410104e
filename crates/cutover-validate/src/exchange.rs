//! One upstream as the suite talks to it: the connections traffic uses
//! (`net::upstream::UpstreamConnections`), its base URL, key, account identity and alias
//! map from the configuration,
//! each exchange timed (time to the response headers, to the first content, to the end),
//! streams read event by event with each event's arrival time, and the tokens every
//! answer reports added up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::{Identity, Upstream};
use cutover_net::{body::Chain, upstream::UpstreamConnections};
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

    /// `POST /chat/completions` with `body`, whole.
    pub async fn chat(&self, body: &Value) -> Result<Answer, ExchangeError> {
        let answer =
            self.whole(self.request(Method::POST, "/chat/completions", Bytes::from(body.to_string()))?).await?;
        if answer.status.is_success()
            && let Some(usage) = answer.json().and_then(|json| json.get("usage").cloned())
        {
            self.add_usage(&usage);
        }
        Ok(answer)
    }

    /// `POST /chat/completions` with `body` (which asks for a stream), read to its end.
    pub async fn stream(&self, body: &Value) -> Result<Streamed, ExchangeError> {
        let request = self.request(Method::POST, "/chat/completions", Bytes::from(body.to_string()))?;
        let started = Instant::now();
        let deadline = started + self.timeout;
        let response = tokio::time::timeout_at(deadline, self.connections.send(request))
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
            events.extend(reader.push(&data).into_iter().map(|event| (at, event)));
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
                .send(request)
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

    /// Prompt and completion tokens reported so far.
    pub fn tokens(&self) -> (u64, u64) {
        (self.spent.prompt.load(Ordering::Relaxed), self.spent.completion.load(Ordering::Relaxed))
    }
}

fn content_type(headers: &http::HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}
