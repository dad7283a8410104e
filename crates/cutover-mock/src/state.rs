//! What one mock server shares between its connections: the swappable runtime, call and
//! connection counters, the last request seen, and the shutdown signal that ends hung faults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use arc_swap::ArcSwap;
use bytes::Bytes;
use cutover_net::serve::Accepted;
use http::request::Parts;
use tokio::sync::watch;

use super::runtime::Runtime;

/// The endpoints counted separately; everything else shares `Other`. A fixed set, so
/// counting is an array index and never grows with what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Messages,
    CountTokens,
    Models,
    Other,
}

impl Endpoint {
    /// `/v1/models` and `/v1/models/{id}` both count as `Models`.
    pub(super) fn of(path: &str) -> Endpoint {
        match path {
            "/v1/chat/completions" => Endpoint::Chat,
            "/v1/completions" => Endpoint::Completions,
            "/v1/embeddings" => Endpoint::Embeddings,
            "/v1/messages" => Endpoint::Messages,
            "/v1/messages/count_tokens" => Endpoint::CountTokens,
            "/v1/models" => Endpoint::Models,
            _ if path.starts_with("/v1/models/") => Endpoint::Models,
            _ => Endpoint::Other,
        }
    }
}

/// A request as the mock received it, for tests to assert on.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Names in lower case, in the order received; non-UTF-8 values are converted lossily.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The raw request, kept as received (moving the parts in costs nothing); converted to
/// a [`RecordedRequest`] only when a test asks.
struct Raw {
    parts: Parts,
    body: Bytes,
}

pub(super) struct State {
    pub runtime: ArcSwap<Runtime>,
    calls: AtomicU64,
    per_endpoint: [AtomicU64; Endpoint::Other as usize + 1],
    /// A std mutex: held only to swap one value in or out, never across an await.
    last: Mutex<Option<Raw>>,
    /// Random per server, so ids from two mocks in one test never collide.
    id_prefix: u32,
    sequence: AtomicU64,
    pub stopping: watch::Sender<bool>,
    /// Connections accepted, so tests can see how many a client opened.
    pub connections: Accepted,
}

impl State {
    pub(super) fn new(runtime: Runtime) -> State {
        State {
            runtime: ArcSwap::from_pointee(runtime),
            calls: AtomicU64::new(0),
            per_endpoint: Default::default(),
            last: Mutex::new(None),
            id_prefix: fastrand::u32(..),
            sequence: AtomicU64::new(0),
            stopping: watch::Sender::new(false),
            connections: Accepted::default(),
        }
    }

    pub(super) fn count(&self, endpoint: Endpoint) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.per_endpoint[endpoint as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub(super) fn calls_to(&self, endpoint: Endpoint) -> u64 {
        self.per_endpoint[endpoint as usize].load(Ordering::Relaxed)
    }

    /// A fresh hex id for one request, used in `x-request-id` and the answer's ids.
    pub(super) fn next_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{:08x}", self.id_prefix, n)
    }

    pub(super) fn record(&self, parts: Parts, body: Bytes) {
        let previous = self.lock_last().replace(Raw { parts, body });
        // Dropped outside the lock: freeing a header map is not free.
        drop(previous);
    }

    pub(super) fn last_request(&self) -> Option<RecordedRequest> {
        let last = self.lock_last();
        let raw = last.as_ref()?;
        Some(RecordedRequest {
            method: raw.parts.method.to_string(),
            path: raw.parts.uri.path().to_owned(),
            headers: raw
                .parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect(),
            body: raw.body.clone(),
        })
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Option<Raw>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
