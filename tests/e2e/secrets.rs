//! Secrets never leave the process: gateway keys, the admin token, upstream keys and
//! webhook URLs read from the environment appear in no plan, log line, metric or answer.

use serde_json::json;

use crate::binary::{Gateway, Mock, Scratch, get, post_json, send};
use crate::check::{check, describe};
use crate::configs::GatewayToml;

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
    let config = GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url())
        .gateway_key("web-app", "GATEWAY_KEY")
        .admin_token_env("ADMIN_TOKEN")
        .upstream_line("primary", "api_key_env = \"UPSTREAM_KEY\"")
        .build();
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
