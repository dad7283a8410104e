//! The `cutover` command line as an operator uses it: `check` on good and broken
//! configurations, and `serve` across restarts, `kill -9`, admin mistakes and SIGTERM.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::{BIN, Gateway, Mock, Process, Scratch, Streaming, get, post_json, send, sse_data};

/// Secrets with recognisable values: every one contains `SECRET`, which nothing else in
/// the configurations below does, so any leak is visible.
const SECRETS: [(&str, &str); 5] = [
    ("CUTOVER_KEY_WEB", "sk-gw-SECRET-web-5d1e"),
    ("CUTOVER_ADMIN_TOKEN", "adm-SECRET-token-77c2"),
    ("OPENAI_API_KEY", "sk-up-SECRET-official-9a0b"),
    ("RELAY_API_KEY", "sk-up-SECRET-relay-31f4"),
    ("CUTOVER_WEBHOOK_URL", "https://hooks.example.com/SECRET-webhook-0e6d"),
];

const GOOD_CONFIG: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"
max_body_mb = 8

[auth]
keys = [{ name = "web-app", key_env = "CUTOVER_KEY_WEB" }]

[admin]
token_env = "CUTOVER_ADMIN_TOKEN"

[upstreams.official]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
timeout = "30s"
connect_timeout = "2s"
first_byte_timeout = "10s"
first_token_timeout = "5s"
idle_timeout = "10s"

[upstreams.relay]
base_url = "https://relay.example.com/v1"
api_key_env = "RELAY_API_KEY"
models = { "gpt-4.1" = "openai/gpt-4.1" }

[prices.relay]
"gpt-4.1" = { input = 8.0, output = 8.0 }

[[routes]]
name = "default"
models = ["gpt-4.1", "gpt-4.1-*"]
primary = "official"
candidate = "relay"
sticky = "header:x-user-id"
fallback = true
fallback_on = ["connect", "timeout", "5xx", "429", "408"]
retries = 2

[routes.rollout]
interval = "1m"
failure_limit = 3
on_failure = "rollback"
steps = [
  { shadow = 1.0, weight = 0,  min_duration = "1h", min_requests = 500 },
  { weight = 1,   min_duration = "4h",  min_requests = 1000,  max_error_rate = 5.0 },
  { weight = 100, min_duration = "72h", min_requests = 500000, max_error_rate = 1.0 },
]

[[routes]]
name = "rest"
primary = "official"

[[alerts]]
name = "candidate_errors"
metric = "error_rate"
upstream = "relay"
op = ">"
threshold = 5.0
for = "5m"
severity = "critical"

[[notify]]
name = "oncall"
url_env = "CUTOVER_WEBHOOK_URL"
format = "json"
min_severity = "warning"
"#;

/// Runs `cutover check -c CONFIG` with exactly `env` as environment.
fn check(config: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(["check", "-c"])
        .arg(config)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {BIN}: {error}"))
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_a_good_config_and_prints_the_plan_without_secrets() {
    let scratch = Scratch::new("check-good");
    let config = scratch.write("cutover.toml", GOOD_CONFIG);
    let output = check(&config, &SECRETS);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let plan = String::from_utf8_lossy(&output.stdout);
    for expected in ["official", "relay", "https://api.openai.com/v1", "default", "rest", "OPENAI_API_KEY", "web-app"] {
        assert!(plan.contains(expected), "the plan does not mention {expected:?}:\n{all}");
    }
    for (variable, secret) in SECRETS {
        assert!(!all.contains(secret), "the value of ${variable} leaked:\n{all}");
    }
    assert!(!all.contains("SECRET"), "a secret leaked in part:\n{all}");
}

#[test]
fn check_accepts_the_shipped_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local.toml");
    let output = check(&example, &[("CUTOVER_ADMIN_TOKEN", "dev-admin")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn check_names_the_key_path_of_every_problem_and_exits_2() {
    let scratch = Scratch::new("check-bad");
    let config = scratch.write(
        "cutover.toml",
        r#"
[server]
listen = "127.0.0.1:8080"
lisen_port = 9000

[auth]
keys = [{ name = "web-app", key_env = "CUTOVER_E2E_UNSET_GATEWAY_KEY" }]

[upstreams.primary]
base_url = "http://127.0.0.1:8001/v1"
timeout = "30 parsecs"

[upstreams.candidate]
base_url = "http://127.0.0.1:8002/v1"
api_key_env = "CUTOVER_E2E_UNSET_UPSTREAM_KEY"

[[routes]]
name = "default"
primary = "primary"
candidate = "nowhere"
"#,
    );
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Each problem: its key path, then a message that names the offending value.
    let expected = [
        ("server.lisen_port", "lisen_port"),
        ("auth.keys[0].key_env", "CUTOVER_E2E_UNSET_GATEWAY_KEY"),
        ("upstreams.primary.timeout", "30 parsecs"),
        ("upstreams.candidate.api_key_env", "CUTOVER_E2E_UNSET_UPSTREAM_KEY"),
        ("routes[0].candidate", "nowhere"),
    ];
    for (path, mention) in expected {
        assert!(
            stderr.lines().any(|line| line.contains(&format!("{path}: ")) && line.contains(mention)),
            "no `{path}: …{mention}…` line:\n{all}"
        );
    }
    assert!(output.stdout.is_empty(), "a failed check printed a plan:\n{all}");
}

#[test]
fn check_on_a_missing_file_exits_2_naming_the_file() {
    let scratch = Scratch::new("check-missing");
    let missing = scratch.path().join("no-such-cutover.toml");
    let output = check(&missing, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(stderr.contains("no-such-cutover.toml"), "the message does not name the file:\n{all}");
    assert!(
        ["no such file", "not found", "does not exist", "cannot read"].iter().any(|reason| stderr.contains(reason)),
        "the message does not say the file is missing:\n{all}"
    );
}

#[test]
fn check_points_at_the_line_of_a_toml_syntax_error() {
    let scratch = Scratch::new("check-syntax");
    let config = scratch.write("cutover.toml", "[server]\nlisten = \"127.0.0.1:8080\"\nmax_body_mb = = 3\n");
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3"), "the message does not point at line 3:\n{all}");
}

const ADMIN_TOKEN: &str = "admin-token-e2e";
const GATEWAY_ENV: [(&str, &str); 1] = [("CUTOVER_ADMIN_TOKEN", ADMIN_TOKEN)];

/// A gateway between two mocks, route `default`, sticky on `x-user-id`, its state in
/// `state.db` beside the config.
fn serve_config(primary: &Mock, candidate: &Mock) -> String {
    format!(
        r#"
[server]
drain_timeout = "20s"

[admin]
token_env = "CUTOVER_ADMIN_TOKEN"

[state]
path = "state.db"

[upstreams.primary]
base_url = "{}"

[upstreams.candidate]
base_url = "{}"

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
sticky = "header:x-user-id"
"#,
        primary.base_url(),
        candidate.base_url()
    )
}

async fn two_mocks(scratch: &Scratch, primary_flags: &[&str]) -> (Mock, Mock) {
    let primary = Mock::start(scratch, "primary", primary_flags, &[]).await;
    let candidate = Mock::start(scratch, "candidate", &[], &[]).await;
    (primary, candidate)
}

fn admin_auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

async fn set_weight(gateway: &Gateway, weight: f64) -> Value {
    let reply = post_json(
        &gateway.admin_url("/admin/rollouts/default/weight"),
        &[("authorization", &admin_auth())],
        &json!({ "weight": weight }),
    )
    .await;
    assert_eq!(reply.status, 200, "set weight {weight}: {}", reply.text());
    reply.json()
}

async fn rollout(gateway: &Gateway) -> Value {
    let reply = get(&gateway.admin_url("/admin/rollouts/default"), &[("authorization", &admin_auth())]).await;
    assert_eq!(reply.status, 200, "GET rollout: {}", reply.text());
    reply.json()
}

/// The upstream that answered a chat completion for `user`.
async fn upstream_for(gateway: &Gateway, user: &str) -> String {
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello"}]});
    let reply = post_json(&gateway.url("/v1/chat/completions"), &[("x-user-id", user)], &body).await;
    assert_eq!(reply.status, 200, "chat for {user}: {}", reply.text());
    assert_eq!(reply.header("x-cutover-route"), Some("default"));
    assert_eq!(reply.header("x-cutover-fallback"), None, "no upstream failed, yet: {:?}", reply.headers);
    reply
        .header("x-cutover-upstream")
        .unwrap_or_else(|| panic!("no x-cutover-upstream: {:?}", reply.headers))
        .to_owned()
}

/// The users among `user-0`..`user-{count}` that the split sends to the candidate.
async fn candidate_users(gateway: &Gateway, count: usize) -> Vec<String> {
    let mut on_candidate = Vec::new();
    for user in (0..count).map(|n| format!("user-{n}")) {
        if upstream_for(gateway, &user).await == "candidate" {
            on_candidate.push(user);
        }
    }
    on_candidate
}

#[tokio::test]
async fn weight_and_sticky_split_survive_a_graceful_restart() {
    let scratch = Scratch::new("restart");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate);
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    assert!(scratch.path().join("state.db").exists(), "the state file is not beside the config");
    assert!(candidate_users(&gateway, 20).await.is_empty(), "a fresh route sends users to the candidate");

    let set = set_weight(&gateway, 30.0).await;
    assert_eq!(set["weight"], 30.0, "{set}");
    let before = candidate_users(&gateway, 100).await;
    assert!((15..=45).contains(&before.len()), "{} of 100 users on the candidate at 30%", before.len());

    gateway.process.signal("TERM");
    let status = gateway.process.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM exit: {status}\n{}", gateway.process.log());
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let view = rollout(&gateway).await;
    assert_eq!(view["weight"], 30.0, "{view}");
    assert_eq!(view["phase"], set["phase"], "{view}");
    assert_eq!(view["step_started_at"], set["step_started_at"], "the step's start time moved: {view}");
    let after = candidate_users(&gateway, 100).await;
    assert_eq!(after, before, "users moved between arms across a restart at the same weight");
}

#[tokio::test]
async fn weight_set_through_admin_survives_sigkill_right_after_the_post() {
    let scratch = Scratch::new("sigkill");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate);
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    assert_eq!(upstream_for(&gateway, "user-1").await, "primary");

    let set = set_weight(&gateway, 100.0).await;
    gateway.process.signal("KILL");
    let status = gateway.process.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.signal(), Some(9), "the gateway was not killed by SIGKILL: {status}");
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let view = rollout(&gateway).await;
    assert_eq!(view["weight"], 100.0, "{view}");
    assert_eq!(view["phase"], set["phase"], "{view}");
    assert_eq!(view["step_started_at"], set["step_started_at"], "the step's start time moved: {view}");
    for user in ["user-1", "user-2", "user-3"] {
        assert_eq!(upstream_for(&gateway, user).await, "candidate", "{user} at weight 100");
    }
    let metrics = get(&gateway.admin_url("/metrics"), &[]).await.text();
    assert!(
        metrics.lines().any(|line| line == "cutover_rollout_weight_percent{route=\"default\"} 100"),
        "the weight gauge does not say 100:\n{metrics}"
    );
    let events = get(&gateway.admin_url("/admin/events"), &[("authorization", &admin_auth())]).await.json();
    let recorded = events.as_array().is_some_and(|events| events.iter().any(|event| event["weight_percent"] == 100.0));
    assert!(recorded, "no event records the change to 100%: {events}");
}

#[tokio::test]
async fn admin_refuses_weights_outside_0_to_100_and_requests_without_the_token() {
    let scratch = Scratch::new("admin-refusals");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate), &GATEWAY_ENV).await;
    let weight_url = gateway.admin_url("/admin/rollouts/default/weight");
    let auth = admin_auth();

    for weight in [json!(150), json!(-1), json!(100.001), json!("50")] {
        let reply = post_json(&weight_url, &[("authorization", &auth)], &json!({ "weight": weight })).await;
        assert_eq!(reply.status, 400, "weight {weight}: {}", reply.text());
        reply.openai_error();
    }
    for headers in [vec![], vec![("authorization", "Bearer wrong-token")], vec![("authorization", ADMIN_TOKEN)]] {
        let reply = post_json(&weight_url, &headers, &json!({"weight": 50})).await;
        assert_eq!(reply.status, 401, "POST with {headers:?}: {}", reply.text());
        reply.openai_error();
        let reply = get(&gateway.admin_url("/admin/rollouts"), &headers).await;
        assert_eq!(reply.status, 401, "GET with {headers:?}: {}", reply.text());
    }
    let view = rollout(&gateway).await;
    assert_eq!(view["weight"], 0.0, "a refused change changed the weight: {view}");
    assert_eq!(view["phase"], "pending", "{view}");
}

#[tokio::test]
async fn sigterm_lets_an_inflight_stream_finish_then_exits_0() {
    let scratch = Scratch::new("sigterm");
    let (primary, candidate) = two_mocks(&scratch, &["--chunk-gap", "100", "--tokens", "20"]).await;
    let mut gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate), &GATEWAY_ENV).await;
    let body =
        json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Tell me a story"}]});
    let mut stream = Streaming::open(&gateway.url("/v1/chat/completions"), &[("x-user-id", "reader")], &body).await;
    assert_eq!(stream.status, 200);
    let content_type = stream.headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "content-type {content_type:?}");
    let mut received = stream.next().await.expect("a first chunk").to_vec();

    gateway.process.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(gateway.proxy).await.is_err();
    received.extend(stream.rest().await);

    let text = String::from_utf8_lossy(&received);
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "the stream did not end with [DONE]:\n{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| panic!("not JSON: {data}")))
        .collect();
    assert!(chunks.iter().all(|chunk| chunk.get("error").is_none()), "an error event:\n{text}");
    let content: String = chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(content.starts_with("Simulated answer from mock primary."), "{content:?}");
    assert_eq!(content.split_whitespace().count(), 20, "not all 20 tokens arrived: {content:?}");
    assert!(chunks.iter().any(|chunk| chunk["choices"][0]["finish_reason"] == "stop"), "no finish chunk:\n{text}");

    let status = gateway.process.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "exit after draining: {status}\n{}", gateway.process.log());
    assert!(refused, "the proxy still accepted connections while draining");
}

#[tokio::test]
async fn serve_exits_nonzero_naming_the_address_when_its_port_is_taken() {
    let scratch = Scratch::new("port-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let config = scratch.write(
        "cutover.toml",
        &format!(
            "[server]\nlisten = \"{address}\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
             [upstreams.primary]\nbase_url = \"http://127.0.0.1:9/v1\"\n\n\
             [[routes]]\nname = \"default\"\nprimary = \"primary\"\n"
        ),
    );
    let config = config.display().to_string();
    let mut gateway = Process::start(&scratch, "gateway", &["serve", "-c", &config], &[]);
    let status = gateway.wait_exit(Duration::from_secs(10)).await;
    assert!(!status.success(), "serve on a taken port exited with {status}");
    assert!(gateway.log().contains(&address), "the error does not name {address}:\n{}", gateway.log());
}

#[tokio::test]
async fn serve_never_writes_secrets_to_logs_metrics_or_answers() {
    const GATEWAY_SECRET: &str = "sk-gw-SECRET-e2e-4b1c";
    const ADMIN_SECRET: &str = "adm-SECRET-e2e-d00d";
    const UPSTREAM_SECRET: &str = "sk-up-SECRET-e2e-90aa";
    let scratch = Scratch::new("secrets");
    let primary =
        Mock::start(&scratch, "primary", &["--api-key-env", "UPSTREAM_KEY"], &[("UPSTREAM_KEY", UPSTREAM_SECRET)])
            .await;
    // A flaky candidate, so that fallbacks and their log lines happen too.
    let candidate = Mock::start(&scratch, "candidate", &["--fault", "500:0.5"], &[]).await;
    let config = format!(
        r#"
[auth]
keys = [{{ name = "web-app", key_env = "GATEWAY_KEY" }}]

[admin]
token_env = "ADMIN_TOKEN"

[upstreams.primary]
base_url = "{}"
api_key_env = "UPSTREAM_KEY"

[upstreams.candidate]
base_url = "{}"

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
"#,
        primary.base_url(),
        candidate.base_url()
    );
    let env = [
        ("GATEWAY_KEY", GATEWAY_SECRET),
        ("ADMIN_TOKEN", ADMIN_SECRET),
        ("UPSTREAM_KEY", UPSTREAM_SECRET),
        ("CUTOVER_LOG", "debug"),
    ];
    let gateway = Gateway::start(&scratch, &config, &env).await;
    let key = format!("Bearer {GATEWAY_SECRET}");
    let admin = format!("Bearer {ADMIN_SECRET}");
    let weight = post_json(
        &gateway.admin_url("/admin/rollouts/default/weight"),
        &[("authorization", &admin)],
        &json!({"weight": 50}),
    )
    .await;
    assert_eq!(weight.status, 200, "{}", weight.text());

    let mut seen = Vec::new();
    let chat = gateway.url("/v1/chat/completions");
    for n in 0..12 {
        let body = json!({"model": "gpt-4.1", "stream": n % 2 == 1, "messages": [{"role": "user", "content": "Hi"}]});
        let user = format!("user-{n}");
        seen.push(post_json(&chat, &[("authorization", &key), ("x-user-id", &user)], &body).await);
    }
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}]});
    seen.push(post_json(&chat, &[("authorization", "Bearer sk-wrong")], &body).await);
    seen.push(post_json(&chat, &[], &body).await);
    seen.push(send(http::Method::POST, &chat, &[("authorization", &key)], "{not json").await);
    seen.push(get(&gateway.url("/v1/models"), &[("authorization", &key)]).await);
    for path in ["/metrics", "/admin/rollouts", "/admin/events", "/admin/nope"] {
        seen.push(get(&gateway.admin_url(path), &[("authorization", &admin)]).await);
    }
    assert!(seen.iter().take(12).all(|reply| reply.status == 200), "a chat failed: {seen:?}");

    for reply in &seen {
        let shown = format!("{:?}\n{}", reply.headers, reply.text());
        assert!(!shown.contains("SECRET"), "a secret in an answer ({}):\n{shown}", reply.status);
    }
    let log = gateway.process.log();
    assert!(log.contains("DEBUG") || log.contains("INFO"), "the gateway logged nothing:\n{log}");
    assert!(!log.contains("SECRET"), "a secret in the gateway's log:\n{log}");
}

/// A plan whose first step needs far more evidence than the test sends, so it stays put.
const SLOW_PLAN: &str = r#"
[routes.rollout]
interval = "300ms"
max_error_rate = 5.0
steps = [
  { weight = 10,  min_duration = "1h", min_requests = 1000000 },
  { weight = 100, min_duration = "1h", min_requests = 1000000 },
]
"#;

#[tokio::test]
async fn a_rollout_killed_mid_step_resumes_the_same_step_with_its_start_time_and_evidence() {
    let scratch = Scratch::new("sigkill-step");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate) + SLOW_PLAN;
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let started = std::time::Instant::now();
    while rollout(&gateway).await["phase"] != "progressing" {
        assert!(started.elapsed() < Duration::from_secs(10), "the rollout never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for user in 0..300 {
        upstream_for(&gateway, &format!("user-{user}")).await;
    }
    // Several analysis intervals with no traffic: the evidence is persisted as it stands.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = rollout(&gateway).await;
    assert_eq!((before["phase"].as_str(), before["weight"].as_f64()), (Some("progressing"), Some(10.0)), "{before}");
    gateway.process.signal("KILL");
    gateway.process.wait_exit(Duration::from_secs(5)).await;
    drop(gateway);

    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let after = rollout(&gateway).await;
    assert_eq!(after["phase"], "progressing", "{after}");
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["step_started_at"], before["step_started_at"], "the step's clock restarted: {after}");
    let requests = |view: &Value, arm: &str| view["arms"][arm]["requests"].as_u64().unwrap_or(0);
    assert!(requests(&after, "candidate") > 0, "the candidate's evidence was lost: {after}");
    assert_eq!(
        requests(&after, "candidate"),
        requests(&before, "candidate"),
        "evidence persisted by the last interval"
    );
}

#[tokio::test]
async fn the_rollout_cli_drives_a_running_gateway_and_explains_refusals() {
    let scratch = Scratch::new("rollout-cli");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate) + &SLOW_PLAN.replace("300ms", "1h");
    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let path = scratch.path().join("cutover.toml").display().to_string();
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        command.arg("rollout").args(args).args(["-c", &path]).env_clear().env("CUTOVER_ADMIN_TOKEN", ADMIN_TOKEN);
        command.output().expect("cutover rollout runs")
    };
    let paused = cli(&["pause"]);
    assert_eq!(paused.status.code(), Some(1), "pausing a pending rollout is refused");
    assert!(String::from_utf8_lossy(&paused.stderr).contains("409"), "{}", String::from_utf8_lossy(&paused.stderr));
    assert!(cli(&["resume"]).status.success());
    assert!(cli(&["promote"]).status.success());
    let status = cli(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("phase progressing") && text.contains("weight 100%"), "{text}");
    assert!(text.contains("step 2/2"), "{text}");
    let json = cli(&["status", "--json"]);
    let views: Value = serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    assert_eq!(views[0]["events"][0]["kind"], "promote");
    assert!(views[0]["events"][0]["actor"].as_str().unwrap().contains("cli"));
    assert!(cli(&["set-weight", "2.5"]).status.success());
    assert_eq!(rollout(&gateway).await["weight"], 2.5);
    assert!(cli(&["abort"]).status.success());
    assert_eq!(rollout(&gateway).await["phase"], "rolled_back");
}

/// Runs `cutover demo` with `args` as a user would, to its end.
async fn run_demo(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
    command.arg("demo").args(args).env("CUTOVER_LOG", "warn").kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .expect("the demo ends within its own time limit")
        .expect("cutover demo runs");
    (output.status, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn the_demo_promotes_a_healthy_candidate_through_every_step() {
    let (status, out) = run_demo(&[]).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("admin    http://127.0.0.1:"), "it says where the admin API is: {out}");
    for weight in ["5%", "25%", "50%", "100%"] {
        assert!(out.contains(&format!("advance → progressing at {weight}")), "no step at {weight}: {out}");
    }
    assert!(out.contains("promoted → promoted at 100%"), "{out}");
    assert!(out.contains("rollout promoted after"), "{out}");
}

#[tokio::test]
async fn the_bad_candidate_demo_rolls_back_automatically() {
    let (status, out) = run_demo(&["--bad-candidate"]).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("rollback → rolled_back"), "{out}");
    assert!(out.contains("rollout rolled_back after"), "{out}");
    assert!(!out.contains("advance →"), "a failing candidate never advanced: {out}");
}
