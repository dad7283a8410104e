//! `cutover demo`: a rollout in minutes on one machine. Two simulated upstreams (the
//! candidate a little faster, or failing with `--bad-candidate`), the gateway with a plan
//! and alert rules compressed into seconds, a webhook receiver of its own as the
//! notifier, and a load of many distinct users; progress is printed (`report`) until the
//! candidate is promoted (or rolled back), then a summary, what the traffic cost per arm
//! and the monthly projection all on the candidate. The process then exits, or with
//! `--hold` keeps everything running for the dashboard until Ctrl-C. The gateway's log
//! goes to a file (`log_path`), not between the progress lines.

mod receiver;
mod report;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use cutover_cost::{WINDOW_SECONDS, now_seconds};
use cutover_metrics::FailureReason;
use cutover_model::{Outcome, Role};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::mock::{FaultKind, FaultRule, MockConfig, MockServer, UsagePlan};
use crate::server::{Running, start_on};
use receiver::Receiver;
use report::Steps;

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

/// Where the demo's gateway logs (every level `CUTOVER_LOG` lets through), overwritten
/// by each run.
pub fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join("cutover-demo.log")
}

fn config(primary: &str, candidate: &str, receiver: &str) -> String {
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
# Each step waits for its requests (about 40 s at the demo's load), longer than the
# default max_duration of 4 × min_duration would allow.
steps = [
  {{ weight = 1,   min_duration = "8s", min_requests = 200, max_duration = "3m" }},
  {{ weight = 5,   min_duration = "8s", min_requests = 300, max_duration = "3m" }},
  {{ weight = 25,  min_duration = "8s", min_requests = 500, max_duration = "3m" }},
  {{ weight = 50,  min_duration = "8s", min_requests = 500, max_duration = "3m" }},
  {{ weight = 100, min_duration = "8s", min_requests = 500, max_duration = "3m" }},
]

# The demo's own receiver: every notification, info and up, printed as it arrives.
[[notify]]
name = "demo-receiver"
url = "{receiver}"
format = "json"
min_severity = "info"

# Alert rules on the demo's time scale (the defaults watch minutes, not seconds).
[[alerts]]
name = "candidate_error_rate"
metric = "error_rate"
route = "default"
role = "candidate"
op = ">"
threshold = 10.0
for = "10s"
window = "30s"
severity = "critical"

[[alerts]]
name = "candidate_latency_p95"
metric = "latency_p95_ms"
route = "default"
role = "candidate"
op = ">"
threshold = 500.0
for = "10s"
window = "30s"
severity = "warning"
"#
    )
}

/// Runs the demo; `Ok` when the rollout ended as expected (promoted, or rolled back with
/// a bad candidate). With `hold`, everything keeps running after the verdict until Ctrl-C.
pub async fn run(bad_candidate: bool, hold: bool) -> Result<(), DemoError> {
    let start_error = |error: &dyn std::fmt::Display| DemoError::Start(error.to_string());
    let primary = MockServer::start(demo_mock("primary", 80)).await.map_err(|error| start_error(&error))?;
    let mut candidate_config = demo_mock("candidate", 50);
    if bad_candidate {
        candidate_config = candidate_config.with_fault(FaultRule::new(FaultKind::Status500, 0.2));
    }
    let candidate = MockServer::start(candidate_config).await.map_err(|error| start_error(&error))?;
    let mut receiver = Receiver::start().await.map_err(|error| start_error(&error))?;
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| start_error(&error))?;
    let token = format!("demo-{:016x}", fastrand::u64(..));
    let text = config(&primary.base_url(), &candidate.base_url(), &receiver.url);
    let env = |name: &str| (name == "CUTOVER_DEMO_ADMIN_TOKEN").then(|| token.clone());
    let config =
        cutover_config::load_str(&text, &dir, env).map_err(|problems| DemoError::Start(format!("{problems:?}")))?;
    let proxy = TcpListener::bind("127.0.0.1:0").await.map_err(|error| start_error(&error))?;
    let admin = TcpListener::bind("127.0.0.1:0").await.map_err(|error| start_error(&error))?;
    let running = start_on(config, proxy, admin).await.map_err(|error| start_error(&error))?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "cutover demo{}: primary (80 ms) → candidate (50 ms{})\n  \
         API        http://{}/v1\n  \
         dashboard  http://{}/dashboard   (admin token: {token})\n  \
         admin API  http://{}/admin/rollouts   (Authorization: Bearer <admin token>)\n  \
         metrics    http://{}/metrics\n  \
         gateway log {}\n",
        if bad_candidate { " --bad-candidate" } else { "" },
        if bad_candidate { ", 20% errors" } else { "" },
        running.proxy_addr,
        running.admin_addr,
        running.admin_addr,
        running.admin_addr,
        log_path().display(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load: Vec<_> =
        (0..WORKERS).map(|_| tokio::spawn(load_worker(running.proxy_addr, stop.clone(), sent.clone()))).collect();
    let started = Instant::now();
    let mut steps = Steps::default();
    let ending = watch_progress(&running, &mut steps, &mut receiver, started).await;
    if !hold {
        stop.store(true, Relaxed);
        for worker in load.iter() {
            worker.abort();
        }
    }
    // The last notifications (a rollback's, an alert's) are posted right after the verdict.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary = summary(&running, &steps, &receiver, sent.load(Relaxed), started.elapsed());
    let spend = cutover_cost::report(&running.gateway.load().metrics.cost, None, WINDOW_SECONDS, now_seconds());
    let _ = writeln!(std::io::stdout().lock(), "{summary}\n{}", cutover_cost::render(&spend));
    if hold {
        let _ = writeln!(
            std::io::stdout().lock(),
            "holding: the gateway, the upstreams and the load keep running for the dashboard \
             (http://{}/dashboard); Ctrl-C to stop",
            running.admin_addr
        );
        hold_until_interrupted(&mut receiver).await;
        stop.store(true, Relaxed);
        for worker in load.iter() {
            worker.abort();
        }
    }
    running.shutdown().await;
    receiver.stop();
    primary.shutdown().await;
    candidate.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let ending = ending?;
    match (ending.as_str(), bad_candidate) {
        ("promoted", false) | ("rolled_back", true) => Ok(()),
        _ => Err(DemoError::UnexpectedEnd(ending)),
    }
}

/// Prints notifications as they come until Ctrl-C (or SIGTERM).
async fn hold_until_interrupted(receiver: &mut Receiver) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending().await } } => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => print_notifications(receiver),
        }
    }
}

fn print_notifications(receiver: &mut Receiver) {
    let mut out = std::io::stdout().lock();
    for line in receiver.fresh() {
        let _ = writeln!(out, "  ✉ {line}");
    }
}

/// The end of the run in a few lines: the steps, the whole run per arm, the notifications.
fn summary(running: &Running, steps: &Steps, receiver: &Receiver, sent: u64, elapsed: Duration) -> String {
    let mut out = format!(
        "\nsummary ({:.0}s, {sent} requests sent; per step: the candidate and its control at the step's last look)\n",
        elapsed.as_secs_f64()
    );
    out.push_str(&steps.render(cutover_model::unix_millis()));
    out.push_str("  whole run per arm (the gateway's counters):\n");
    let gateway = running.gateway.load();
    for route in gateway.metrics.routes().values() {
        for role in [Role::Primary, Role::Candidate] {
            let Some(arm) = route.arm(role) else { continue };
            let requests: u64 = Outcome::ALL.iter().map(|outcome| arm.count(*outcome)).sum();
            let fallbacks: u64 = FailureReason::ALL.iter().map(|reason| route.fallbacks(role, *reason)).sum();
            out.push_str(&format!(
                "    {:<9} {requests:>7} requests  {:>5} upstream errors  {:>5} client errors{}\n",
                role.as_str(),
                arm.count(Outcome::UpstreamError),
                arm.count(Outcome::ClientError),
                if role == Role::Candidate {
                    format!("  {fallbacks:>5} fell back to the primary")
                } else {
                    String::new()
                },
            ));
        }
    }
    let notifications = receiver.all();
    out.push_str(&format!("  notifications received by the demo's webhook ({}):\n", notifications.len()));
    for line in &notifications {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

/// A demo upstream answering after `latency_ms`, every answer reporting the same usage
/// (1,000 prompt tokens, 200 of them cached, and 250 completion tokens).
fn demo_mock(name: &str, latency_ms: u64) -> MockConfig {
    let usage = UsagePlan { prompt: Some(1000), completion: Some(250), cached: 200, ..UsagePlan::default() };
    MockConfig::default().with_name(name).with_latency(Duration::from_millis(latency_ms)).with_usage(usage)
}

/// Prints the rollout's progress every two seconds until it is promoted or rolled back:
/// each new transition, each notification received, then the interval's line.
async fn watch_progress(
    running: &Running,
    steps: &mut Steps,
    receiver: &mut Receiver,
    started: Instant,
) -> Result<String, DemoError> {
    let mut last_event = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let control = running.control.clone();
        let Ok(Ok(view)) = tokio::task::spawn_blocking(move || control.get("default")).await else { continue };
        let mut out = std::io::stdout().lock();
        for event in view.events.iter().rev() {
            if event.id > last_event {
                last_event = event.id;
                steps.event(event);
                let _ = writeln!(out, "{}", report::transition_line(event));
            }
        }
        steps.view(&view);
        drop(out);
        print_notifications(receiver);
        let _ = writeln!(std::io::stdout().lock(), "{}", report::interval_line(&view, started.elapsed().as_secs()));
        let phase = view.phase.as_str().to_owned();
        if phase == "promoted" || phase == "rolled_back" {
            let _ =
                writeln!(std::io::stdout().lock(), "\nrollout {phase} after {:.0}s", started.elapsed().as_secs_f64());
            return Ok(phase);
        }
        if started.elapsed() > TIME_LIMIT {
            return Err(DemoError::TooSlow(TIME_LIMIT));
        }
    }
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
