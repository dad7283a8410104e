//! `cutover demo`: a rollout in minutes on one machine. Two simulated upstreams (the
//! candidate a little faster, or failing with `--bad-candidate`), the gateway with a plan
//! compressed into seconds, and a load of many distinct users; live progress is printed
//! until the candidate is promoted (or rolled back), then what the traffic cost per arm
//! and the monthly projection all on the candidate, and the process exits.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::cli::rollout::percent;
use crate::cost::{WINDOW_SECONDS, now_seconds};
use crate::mock::{FaultKind, FaultRule, MockConfig, MockServer, UsagePlan};
use crate::server::{Running, start_on};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the demo: {0}")]
    Start(String),
    #[error("the rollout ended {0}, not as the demo expected")]
    UnexpectedEnd(String),
    #[error("the rollout did not finish within {0:?}")]
    TooSlow(Duration),
}

const USERS: u32 = 20_000;
const WORKERS: usize = 48;
const TIME_LIMIT: Duration = Duration::from_secs(600);

fn config(primary: &str, candidate: &str) -> String {
    format!(
        r#"
[admin]
token_env = "CUTOVER_DEMO_ADMIN_TOKEN"

[upstreams.primary]
base_url = "{primary}"
first_byte_timeout = "2s"
first_token_timeout = "2s"
idle_timeout = "2s"

[upstreams.candidate]
base_url = "{candidate}"
first_byte_timeout = "2s"
first_token_timeout = "2s"
idle_timeout = "2s"

# The guide's GPT-4.1 figures (official $15, relay $8 per million tokens), as an example.
[prices.primary]
"gpt-4.1" = {{ input = 15.0, output = 15.0 }}
[prices.candidate]
"gpt-4.1" = {{ input = 8.0, output = 8.0 }}

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
sticky = "header:x-user-id"
# No retries: a failing candidate request falls back to the primary at once, so the
# demo's users never wait for one. (The evidence counts a request as failed on its arm
# if any attempt there failed, so retries would hide nothing from the analysis.)
retries = 0

[routes.rollout]
interval = "2s"
failure_limit = 3
max_error_rate = 5.0
max_error_rate_increase = 2.0
max_latency_p95_ratio = 1.5
min_users = 20
steps = [
  {{ weight = 1,   min_duration = "8s", min_requests = 200 }},
  {{ weight = 5,   min_duration = "8s", min_requests = 300 }},
  {{ weight = 25,  min_duration = "8s", min_requests = 500 }},
  {{ weight = 50,  min_duration = "8s", min_requests = 500 }},
  {{ weight = 100, min_duration = "8s", min_requests = 500 }},
]
"#
    )
}

/// Runs the demo; `Ok` when the rollout ended as expected (promoted, or rolled back with
/// a bad candidate).
pub async fn run(bad_candidate: bool) -> Result<(), DemoError> {
    let start_error = |error: &dyn std::fmt::Display| DemoError::Start(error.to_string());
    let primary = MockServer::start(demo_mock("primary", 80)).await.map_err(|error| start_error(&error))?;
    let mut candidate_config = demo_mock("candidate", 50);
    if bad_candidate {
        candidate_config = candidate_config.with_fault(FaultRule::new(FaultKind::Status500, 0.2));
    }
    let candidate = MockServer::start(candidate_config).await.map_err(|error| start_error(&error))?;
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| start_error(&error))?;
    let token = format!("demo-{:016x}", fastrand::u64(..));
    let text = config(&primary.base_url(), &candidate.base_url());
    let env = |name: &str| (name == "CUTOVER_DEMO_ADMIN_TOKEN").then(|| token.clone());
    let config =
        crate::config::load_str(&text, &dir, env).map_err(|problems| DemoError::Start(format!("{problems:?}")))?;
    let proxy = TcpListener::bind("127.0.0.1:0").await.map_err(|error| start_error(&error))?;
    let admin = TcpListener::bind("127.0.0.1:0").await.map_err(|error| start_error(&error))?;
    let running = start_on(config, proxy, admin).await.map_err(|error| start_error(&error))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "cutover demo{}: primary (80 ms) → candidate (50 ms{})\n  API      http://{}/v1\n  metrics  http://{}/metrics\n  admin    http://{}/admin/rollouts  (Authorization: Bearer {token})\n",
        if bad_candidate { " --bad-candidate" } else { "" },
        if bad_candidate { ", 20% errors" } else { "" },
        running.proxy_addr,
        running.admin_addr,
        running.admin_addr,
    );
    drop(out);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load: Vec<_> =
        (0..WORKERS).map(|_| tokio::spawn(load_worker(running.proxy_addr, stop.clone(), sent.clone()))).collect();
    let ending = watch_progress(&running, &sent).await;
    stop.store(true, Relaxed);
    for worker in load {
        let _ = worker.await;
    }
    let spend = crate::cost::report(&running.gateway.load().metrics, None, WINDOW_SECONDS, now_seconds());
    let _ = writeln!(std::io::stdout().lock(), "\n{}", crate::cost::render(&spend));
    running.shutdown().await;
    primary.shutdown().await;
    candidate.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let ending = ending?;
    match (ending.as_str(), bad_candidate) {
        ("promoted", false) | ("rolled_back", true) => Ok(()),
        _ => Err(DemoError::UnexpectedEnd(ending)),
    }
}

/// A demo upstream answering after `latency_ms`, every answer reporting the same usage
/// (1,000 prompt tokens, 200 of them cached, and 250 completion tokens).
fn demo_mock(name: &str, latency_ms: u64) -> MockConfig {
    let usage = UsagePlan { prompt: Some(1000), completion: Some(250), cached: 200, ..UsagePlan::default() };
    MockConfig::default().with_name(name).with_latency(Duration::from_millis(latency_ms)).with_usage(usage)
}

/// Prints the rollout's progress every two seconds until it is promoted or rolled back.
async fn watch_progress(running: &Running, sent: &AtomicU64) -> Result<String, DemoError> {
    let started = Instant::now();
    let mut last_event = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let control = running.control.clone();
        let Ok(Ok(view)) = tokio::task::spawn_blocking(move || control.get("default")).await else { continue };
        let mut out = std::io::stdout().lock();
        for event in view["events"].as_array().into_iter().flatten().rev() {
            let id = event["id"].as_u64().unwrap_or(0);
            if id > last_event {
                last_event = id;
                let _ = writeln!(
                    out,
                    "  ── {} → {} at {}%: {}",
                    event["kind"].as_str().unwrap_or(""),
                    event["to_phase"].as_str().unwrap_or(""),
                    percent(&event["weight_percent"]),
                    event["reason"].as_str().unwrap_or("")
                );
            }
        }
        let _ = writeln!(out, "{}", progress_line(&view, started.elapsed(), sent.load(Relaxed)));
        let phase = view["phase"].as_str().unwrap_or_default().to_owned();
        if phase == "promoted" || phase == "rolled_back" {
            let _ = writeln!(out, "\nrollout {phase} after {:.0}s", started.elapsed().as_secs_f64());
            return Ok(phase);
        }
        if started.elapsed() > TIME_LIMIT {
            return Err(DemoError::TooSlow(TIME_LIMIT));
        }
    }
}

fn progress_line(view: &Value, elapsed: Duration, sent: u64) -> String {
    let arm = |name: &str| {
        let arm = &view["arms"][name];
        let requests = arm["requests"].as_u64().unwrap_or(0);
        let errors = arm["upstream_errors"].as_u64().unwrap_or(0);
        let rate = if requests == 0 { 0.0 } else { errors as f64 / requests as f64 * 100.0 };
        format!("{name} {requests} req {rate:.1}% err {} users", arm["users"])
    };
    let evaluation = &view["evaluation"];
    let verdict = evaluation["verdict"].as_str().unwrap_or("—");
    let missing: Vec<String> = evaluation["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|gate| gate["met"] == false)
        .map(|gate| {
            format!(
                "{} {}/{}",
                gate["gate"].as_str().unwrap_or(""),
                gate["have"].as_f64().unwrap_or(0.0).round(),
                gate["need"]
            )
        })
        .collect();
    let p95 = evaluation["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|check| check["criterion"] == "max_latency_p95_ratio")
        .map(|check| {
            format!(
                " p95 {:.0} vs {:.0} ms",
                check["candidate"].as_f64().unwrap_or(0.0),
                check["control"].as_f64().unwrap_or(0.0)
            )
        })
        .unwrap_or_default();
    format!(
        "[{:>4.0}s] step {}/{} weight {:>5}% {:<11} | {} | {} |{p95} verdict {verdict}{} ({sent} requests sent)",
        elapsed.as_secs_f64(),
        view["step"].as_u64().unwrap_or(0) + 1,
        view["steps"],
        percent(&view["weight"]),
        view["phase"].as_str().unwrap_or(""),
        arm("candidate"),
        arm("control"),
        if missing.is_empty() { String::new() } else { format!(", waiting for {}", missing.join(", ")) },
    )
}

/// One simulated client: random users, one in five requests streamed.
async fn load_worker(proxy: std::net::SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("http://{proxy}/v1/chat/completions");
    while !stop.load(Relaxed) {
        let user = format!("user-{}", fastrand::u32(..USERS));
        let stream = fastrand::u8(..5) == 0;
        let body = format!(
            r#"{{"model":"gpt-4.1","stream":{stream},"max_tokens":8,"messages":[{{"role":"user","content":"Hello"}}]}}"#
        );
        let request = http::Request::post(&url)
            .header("content-type", "application/json")
            .header("x-user-id", user)
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else { continue };
        if let Ok(response) = client.request(request).await {
            let _ = response.into_body().collect().await;
        }
        sent.fetch_add(1, Relaxed);
    }
}
