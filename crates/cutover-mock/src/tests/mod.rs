//! The mock as a client sees it: real servers on port 0, spoken to over HTTP.

mod answers;
mod capabilities;
mod faults;
mod messages;
mod messages_errors;
mod quirks;
mod usage;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{FaultRule, MockConfig, MockServer};

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    /// Set when the body ended in an error instead of cleanly.
    body_error: Option<String>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap()
    }

    /// The JSON at `pointer` (e.g. `/choices/0/message`), `null` when absent.
    fn at(&self, pointer: &str) -> Value {
        self.json().pointer(pointer).cloned().unwrap_or_default()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The payloads of the SSE events, in order.
    fn events(&self) -> Vec<&str> {
        self.text.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).collect()
    }

    /// The events before `[DONE]`, parsed.
    fn chunks(&self) -> Vec<Value> {
        let events = self.events().into_iter().filter(|e| *e != "[DONE]");
        events.map(|e| serde_json::from_str(e).unwrap()).collect()
    }

    /// The concatenated values at `pointer` across chunks (content or arguments deltas).
    fn joined(&self, pointer: &str) -> String {
        self.chunks().iter().filter_map(|c| c.pointer(pointer)?.as_str().map(str::to_owned)).collect()
    }
}

async fn send(
    mock: &MockServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<Reply, hyper_util::client::legacy::Error> {
    let uri = format!("http://{}{path}", mock.addr());
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(body.map_or_else(Bytes::new, |body| Bytes::from(body.to_string())));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let (parts, mut body) = client.request(request.body(body).unwrap()).await?.into_parts();
    let (mut text, mut body_error) = (String::new(), None);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => text.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap())),
            Err(error) => {
                body_error = Some(error.to_string());
                break;
            }
        }
    }
    Ok(Reply { status: parts.status, headers: parts.headers, text, body_error })
}

async fn get(mock: &MockServer, path: &str) -> Reply {
    send(mock, "GET", path, &[], None).await.unwrap()
}

async fn post(mock: &MockServer, path: &str, body: Value) -> Reply {
    send(mock, "POST", path, &[], Some(body)).await.unwrap()
}

async fn chat(mock: &MockServer, body: Value) -> Reply {
    post(mock, "/v1/chat/completions", body).await
}

/// A chat request of 40 characters (10 prompt tokens).
fn hello(stream: bool) -> Value {
    let messages = json!([{"role": "user", "content": "x".repeat(40)}]);
    json!({"model": "gpt-4.1", "stream": stream, "messages": messages})
}

async fn mock(config: MockConfig) -> MockServer {
    MockServer::start(config).await.unwrap()
}

async fn faulty(spec: &str) -> MockServer {
    mock(MockConfig::default().with_fault(rule(spec))).await
}

fn rule(spec: &str) -> FaultRule {
    FaultRule::parse(spec).unwrap()
}
