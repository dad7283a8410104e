//! The notifiers' workers: one bounded queue and one task per notifier; a post has a
//! timeout and is retried with a doubling backoff on a transport error or a 5xx/429.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::Notifier;
use cutover_model::Severity;
use cutover_net::client::UpstreamClient;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use tokio::sync::mpsc;

use super::format::{Message, render};

/// Messages waiting per notifier; beyond, new ones are dropped and counted.
const QUEUE: usize = 64;
/// One post's deadline.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per message, the first included.
const ATTEMPTS: u32 = 3;
/// The wait before the first retry; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How one message ended for one notifier, for `cutover_notifications_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent = 0,
    /// Every attempt failed (logged).
    Failed = 1,
    /// The notifier's queue was full.
    Dropped = 2,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Sent, Outcome::Failed, Outcome::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Why a post failed. Never shows the URL: it is a secret.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the receiver answered {0}")]
    Status(StatusCode),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the receiver: {0}")]
    Transport(String),
    #[error("the URL cannot be used for a request")]
    BadUrl,
    #[error("no notifier named {0:?}")]
    UnknownNotifier(String),
}

impl DeliveryError {
    fn retryable(&self) -> bool {
        match self {
            DeliveryError::Status(status) => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            DeliveryError::Timeout(_) | DeliveryError::Transport(_) => true,
            DeliveryError::BadUrl | DeliveryError::UnknownNotifier(_) => false,
        }
    }
}

struct Worker {
    notifier: Notifier,
    min_severity: Severity,
    queue: mpsc::Sender<Message>,
    counts: [AtomicU64; 3],
}

/// The handle every producer sends through; cheap to clone. Without notifiers, sending
/// does nothing.
#[derive(Clone, Default)]
pub struct Notifications {
    workers: Arc<Vec<Arc<Worker>>>,
    client: Option<UpstreamClient>,
}

impl Notifications {
    /// Starts one worker per notifier on the current runtime.
    pub fn start(notifiers: &[Notifier]) -> Notifications {
        if notifiers.is_empty() {
            return Notifications::default();
        }
        let client = cutover_net::client::build(Duration::from_secs(2));
        let workers: Vec<Arc<Worker>> = notifiers
            .iter()
            .map(|notifier| {
                let (queue, messages) = mpsc::channel(QUEUE);
                let worker = Arc::new(Worker {
                    notifier: notifier.clone(),
                    min_severity: notifier.min_severity,
                    queue,
                    counts: Default::default(),
                });
                tokio::spawn(work(worker.clone(), client.clone(), messages));
                worker
            })
            .collect();
        Notifications { workers: Arc::new(workers), client: Some(client) }
    }

    /// Queues `message` for every notifier it is loud enough for; never waits.
    pub fn send(&self, message: Message) {
        for worker in self.workers.iter().filter(|worker| message.severity >= worker.min_severity) {
            if worker.queue.try_send(message.clone()).is_err() {
                worker.counts[Outcome::Dropped as usize].fetch_add(1, Relaxed);
                tracing::warn!(notifier = %worker.notifier.name, "notification queue full: message dropped");
            }
        }
    }

    /// Each notifier's name and its count per outcome, for the metrics.
    pub fn counts(&self) -> Vec<(String, [u64; 3])> {
        self.workers
            .iter()
            .map(|worker| {
                (
                    worker.notifier.name.clone(),
                    Outcome::ALL.map(|outcome| worker.counts[outcome as usize].load(Relaxed)),
                )
            })
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|worker| worker.notifier.name.clone()).collect()
    }

    /// Posts `message` at once to the notifier `name` (every severity), without retries,
    /// and says how the receiver answered: `cutover alerts test`.
    pub async fn test(&self, name: &str, message: &Message) -> Result<StatusCode, DeliveryError> {
        let worker = self
            .workers
            .iter()
            .find(|worker| worker.notifier.name == name)
            .ok_or_else(|| DeliveryError::UnknownNotifier(name.to_owned()))?;
        let client = self.client.as_ref().ok_or_else(|| DeliveryError::UnknownNotifier(name.to_owned()))?;
        let result = post(client, &worker.notifier, message).await;
        let outcome = if result.is_ok() { Outcome::Sent } else { Outcome::Failed };
        worker.counts[outcome as usize].fetch_add(1, Relaxed);
        result
    }
}

async fn work(worker: Arc<Worker>, client: UpstreamClient, mut messages: mpsc::Receiver<Message>) {
    while let Some(message) = messages.recv().await {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let outcome = loop {
            match post(&client, &worker.notifier, &message).await {
                Ok(_) => break Outcome::Sent,
                Err(error) if error.retryable() && attempt < ATTEMPTS => {
                    tracing::info!(notifier = %worker.notifier.name, %error, attempt, "notification failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(error) => {
                    tracing::warn!(notifier = %worker.notifier.name, %error, attempt, "notification not delivered");
                    break Outcome::Failed;
                }
            }
        };
        worker.counts[outcome as usize].fetch_add(1, Relaxed);
    }
}

async fn post(client: &UpstreamClient, notifier: &Notifier, message: &Message) -> Result<StatusCode, DeliveryError> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(notifier.url.expose())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(render(notifier.format, message))))
        .map_err(|_| DeliveryError::BadUrl)?;
    match tokio::time::timeout(POST_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => Ok(response.status()),
        Ok(Ok(response)) => Err(DeliveryError::Status(response.status())),
        // The error's text may hold the URL (hyper's does not today); keep to its kind.
        Ok(Err(error)) if error.is_connect() => Err(DeliveryError::Transport("connection failed".to_owned())),
        Ok(Err(_)) => Err(DeliveryError::Transport("the exchange failed".to_owned())),
        Err(_) => Err(DeliveryError::Timeout(POST_TIMEOUT)),
    }
}
