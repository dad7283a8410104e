//! The demo's own webhook receiver: a `[[notify]]` target on loopback that turns each
//! notification posted to it (the generic JSON format) into one readable line, so that
//! the demo shows what an on-call person would have been sent.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Notifications kept; a demo sends a handful.
const KEPT: usize = 1000;

pub struct Receiver {
    /// Where the gateway posts (no secret in it: the demo's own loopback port).
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// How many lines `fresh` has handed out already.
    shown: usize,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/notifications", listener.local_addr()?);
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let task = tokio::spawn(accept(listener, lines.clone()));
        Ok(Receiver { url, lines, shown: 0, task })
    }

    /// The lines received since the last call.
    pub fn fresh(&mut self) -> Vec<String> {
        let lines = self.all();
        let fresh = lines.get(self.shown..).unwrap_or_default().to_vec();
        self.shown = lines.len();
        fresh
    }

    pub fn all(&self) -> Vec<String> {
        self.lines.lock().map(|lines| lines.clone()).unwrap_or_default()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, lines: Arc<Mutex<Vec<String>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let lines = lines.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<Incoming>| {
                let lines = lines.clone();
                async move {
                    if let Ok(body) = Limited::new(request.into_body(), 256 * 1024).collect().await
                        && let Ok(mut lines) = lines.lock()
                        && lines.len() < KEPT
                    {
                        lines.push(line(&body.to_bytes()));
                    }
                    let mut answer = Response::new(Full::new(Bytes::new()));
                    *answer.status_mut() = StatusCode::NO_CONTENT;
                    Ok::<_, std::convert::Infallible>(answer)
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// One notification as one line: `[critical] alert candidate_error_rate FIRING …`.
pub fn line(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return format!("(not JSON: {} bytes)", body.len());
    };
    let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    let severity = text(&json["severity"]);
    match json["type"].as_str() {
        Some("alert") => format!(
            "[{severity}] alert {} {} ({}): {} = {} ({} {} over {})",
            text(&json["alert"]),
            text(&json["state"]).to_uppercase(),
            text(&json["scope"]),
            text(&json["metric"]),
            json["value"].as_f64().map_or("no data".to_owned(), |value| format!("{value:.2}")),
            text(&json["op"]),
            json["threshold"],
            text(&json["window"]),
        ),
        Some("rollout") => {
            let event = &json["event"];
            format!(
                "[{severity}] rollout {}: {} ({} → {}, weight {}%): {}",
                text(&event["route"]),
                text(&event["kind"]),
                text(&event["from_phase"]),
                text(&event["to_phase"]),
                crate::cli::rollout::percent_json(&event["weight_percent"]),
                text(&event["reason"]),
            )
        }
        _ => format!("[{severity}] {}", text(&json["text"])),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn alerts_and_rollout_events_read_as_one_line_each() {
        let alert = json!({"type": "alert", "alert": "candidate_error_rate", "state": "firing", "severity": "critical",
                           "metric": "error_rate", "value": 19.512, "op": ">", "threshold": 5.0, "scope": "route default (candidate)",
                           "window": "10s"});
        assert_eq!(
            line(alert.to_string().as_bytes()),
            "[critical] alert candidate_error_rate FIRING (route default (candidate)): error_rate = 19.51 (> 5.0 over 10s)"
        );
        let event = json!({"type": "rollout", "severity": "critical", "event": {"route": "default", "kind": "rollback",
                           "from_phase": "progressing", "to_phase": "rolled_back", "weight_percent": 0.0, "reason": "3 failed checks"}});
        assert_eq!(
            line(event.to_string().as_bytes()),
            "[critical] rollout default: rollback (progressing → rolled_back, weight 0%): 3 failed checks"
        );
        assert_eq!(line(b"oops"), "(not JSON: 4 bytes)");
    }
}
