//! `cutover validate` against `cutover mock` upstreams on loopback: every required check
//! passes against the mock, each quirk fails exactly its checks (and the exit status),
//! `--compare` names exactly what the candidate lacks, `--json` keeps its keys, and the
//! `require_validation` gate holds a rollout pending until its candidate passes.

use std::process::Output;
use std::time::Duration;

use cutover::mock::{MockConfig, MockServer, Quirk};
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::binary::{BIN, Scratch};
use crate::check::describe;
use crate::support::{ADMIN_TOKEN, Reply, TempDir, send, start_gateway, two_upstreams};
use crate::wait::until;

/// Paced like a real model, so that real streaming can be told from fake: 24 chunks,
/// 10 ms apart.
fn paced(name: &str) -> MockConfig {
    MockConfig::default().with_name(name).with_chunk_gap(Duration::from_millis(10)).with_answer_tokens(24)
}

fn quirk(spec: &str) -> Quirk {
    Quirk::parse(spec).unwrap()
}

/// A configuration with upstreams `official` and `relay` (priced) and a route for gpt-4.1.
fn config(scratch: &Scratch, official: &MockServer, relay: &MockServer) -> std::path::PathBuf {
    let text = format!(
        r#"
[upstreams.official]
base_url = "{}"
[upstreams.relay]
base_url = "{}"
[prices.relay]
"gpt-4.1" = {{ input = 2.0, output = 8.0 }}
[[routes]]
name = "default"
models = ["gpt-4.1"]
primary = "official"
candidate = "relay"
"#,
        official.base_url(),
        relay.base_url()
    );
    scratch.write("cutover.toml", &text)
}

async fn validate(config: &std::path::Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("validate")
        .args(args)
        .arg("-c")
        .arg(config)
        .env_clear()
        .output()
        .await
        .unwrap_or_else(|error| panic!("cannot run {BIN}: {error}"))
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("not JSON ({error}):\n{}", describe(output)))
}

/// The ids of the checks of `report` whose status is not `pass`.
fn not_passed(report: &Value) -> Vec<String> {
    let checks = report["checks"].as_array().unwrap();
    checks
        .iter()
        .filter(|check| check["status"] != "pass")
        .map(|check| check["id"].as_str().unwrap().to_owned())
        .collect()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn every_required_check_passes_against_the_mock_with_stable_json() {
    let scratch = Scratch::new("validate-clean");
    let (official, relay) =
        (MockServer::start(paced("official")).await.unwrap(), MockServer::start(paced("relay")).await.unwrap());
    let config = config(&scratch, &official, &relay);
    let output = validate(&config, &["--upstream", "relay", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let json = json_of(&output);
    assert_eq!(keys(&json), ["compare", "parity", "passed", "upstream"]);
    assert_eq!(
        (json["passed"].clone(), json["compare"].clone(), json["parity"].clone()),
        (Value::Bool(true), Value::Null, Value::Null)
    );
    let report = &json["upstream"];
    assert_eq!(
        keys(report),
        ["checks", "model", "passed", "sample", "sent_model", "spent", "upstream", "usage_probe_prompt_tokens"]
    );
    // The mock does not look at pixels: the colour note is the one thing it cannot do.
    assert_eq!(not_passed(report), ["vision.colour"], "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), cutover_validate::CATALOGUE.len());
    for check in checks {
        assert_eq!(
            keys(check),
            ["capability", "id", "quality_note", "reason", "required", "status", "total_ms", "ttft_ms"],
            "{check}"
        );
        assert!(check["total_ms"].is_u64() || check["id"] == "honesty.model", "every exchange is timed: {check}");
    }
    assert_eq!(report["sample"]["answers"], 5);
    assert!(report["sample"]["median_ttft_ms"].is_u64() && report["sample"]["median_tokens_per_second"].is_f64());
    let spent = &report["spent"];
    assert!(spent["prompt_tokens"].as_u64().unwrap() > 0 && spent["cost_usd"].as_f64().unwrap() > 0.0, "{spent}");

    let text = validate(&config, &["--upstream", "relay"]).await;
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.contains("honesty.streaming") && table.contains("result: every required check passed"), "{table}");
    assert!(table.contains("spent:") && table.contains("$0.0"), "tokens and their cost are printed:\n{table}");
}

/// A Messages upstream is validated through the gateway's own translation: the suite's
/// chat completions reach it as Messages requests and its answers come back as chat ones.
/// What Messages cannot carry (JSON mode, structured output, `n` and `seed`) is
/// unsupported, the usage recount too (no local tokenizer counts Claude's tokens);
/// everything else passes.
#[tokio::test]
async fn a_messages_upstream_is_validated_through_the_translation() {
    let scratch = Scratch::new("validate-messages");
    let claude = paced("claude").with_api(cutover::mock::Api::Anthropic).with_api_key("sk-ant-validate");
    let (official, claude) =
        (MockServer::start(paced("official")).await.unwrap(), MockServer::start(claude).await.unwrap());
    let text = format!(
        r#"
[upstreams.official]
base_url = "{}"
[upstreams.claude]
base_url = "{}"
api = "anthropic"
api_key_env = "CLAUDE_KEY"
[[routes]]
name = "claude"
models = ["claude-sonnet-4-5"]
primary = "official"
candidate = "claude"
"#,
        official.base_url(),
        claude.base_url()
    );
    let config = scratch.write("cutover.toml", &text);
    let run = async |require: &str| {
        tokio::process::Command::new(BIN)
            .args(["validate", "--upstream", "claude", "--json", "--require", require, "-c"])
            .arg(&config)
            .env_clear()
            .env("CLAUDE_KEY", "sk-ant-validate")
            .output()
            .await
            .unwrap()
    };
    // JSON mode is required by default, and Messages has none: the exit status says so.
    let output = run("chat,json.mode").await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = &json_of(&output)["upstream"];
    let lacking = ["vision.colour", "json.mode", "json.schema", "params.sampling", "honesty.usage"];
    assert_eq!(not_passed(report), lacking, "{report:#}");
    let status = |id: &str| {
        let checks = report["checks"].as_array().unwrap();
        checks.iter().find(|check| check["id"] == id).unwrap()["status"].as_str().unwrap().to_owned()
    };
    for id in ["json.mode", "json.schema", "params.sampling", "honesty.usage"] {
        assert_eq!(status(id), "unsupported", "{id}: {report:#}");
    }
    // What Messages carries passes (`vision` as a group would take in its quality note).
    let carried = "models,chat,streaming,tools,params.max_tokens,params.stop,errors,honesty.model,\
                   honesty.streaming,honesty.tool_calls";
    let output = run(carried).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(report["usage_probe_prompt_tokens"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(claude.calls_to("/v1/chat/completions"), 0, "only Messages requests reached it");
    assert!(claude.calls_to("/v1/messages") > 10, "the checks were sent as Messages requests");
}

/// Each quirk and the checks it must fail (every other check passes).
const QUIRKS: [(&str, &[&str]); 12] = [
    ("wrong-tool", &["tools.forced", "tools.parallel"]),
    ("strip-tool-calls", &["tools.forced", "tools.parallel", "tools.streamed", "honesty.tool_calls"]),
    ("no-tools", &["tools.forced", "tools.auto", "tools.parallel", "tools.streamed", "honesty.tool_calls"]),
    ("invalid-json", &["json.mode", "json.schema"]),
    ("ignore-json-mode", &["json.mode", "json.schema"]),
    ("echo-model=gpt-4o-mini", &["honesty.model"]),
    ("inflate-prompt-tokens=1.5", &["honesty.usage"]),
    ("finish-reason=content_filter", &["chat", "params.max_tokens", "params.stop"]),
    ("no-stream-usage", &["streaming.usage"]),
    ("reject-images", &["vision"]),
    ("plain-errors", &["errors.invalid_request"]),
    ("fake-stream", &["honesty.streaming"]),
];

#[tokio::test]
async fn each_quirk_fails_exactly_its_checks_and_the_exit_status() {
    let scratch = Scratch::new("validate-quirks");
    let official = MockServer::start(paced("official")).await.unwrap();
    for (spec, expected) in QUIRKS {
        let relay = MockServer::start(paced("relay").with_quirk(quirk(spec))).await.unwrap();
        let output = validate(&config(&scratch, &official, &relay), &["--upstream", "relay", "--json"]).await;
        assert_eq!(output.status.code(), Some(1), "{spec}: {}", describe(&output));
        let mut failed = not_passed(&json_of(&output)["upstream"]);
        failed.retain(|id| id != "vision.colour");
        assert_eq!(failed, expected, "{spec}");
        relay.shutdown().await;
    }
}

#[tokio::test]
async fn compare_names_exactly_what_the_candidate_lacks_and_its_extra_prompt_tokens() {
    let scratch = Scratch::new("validate-compare");
    let official = MockServer::start(paced("official")).await.unwrap();
    let relay = paced("relay").with_quirk(quirk("no-stream-usage")).with_quirk(quirk("no-tools"));
    let relay = MockServer::start(relay.with_quirk(quirk("inflate-prompt-tokens=1.2"))).await.unwrap();
    let config = config(&scratch, &official, &relay);
    let output = validate(&config, &["--upstream", "relay", "--compare", "official", "--json"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let parity = &json_of(&output)["parity"];
    let lacking: Vec<&str> =
        parity["lacking_checks"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
    assert_eq!(
        lacking,
        [
            "streaming.usage",
            "tools.forced",
            "tools.auto",
            "tools.parallel",
            "tools.streamed",
            "honesty.usage",
            "honesty.tool_calls"
        ]
    );
    let difference = parity["prompt_token_difference_percent"].as_f64().unwrap();
    assert!((15.0..=25.0).contains(&difference), "about 20% more prompt tokens: {difference}");
    let summary = parity["summary"].as_str().unwrap();
    assert!(summary.starts_with("relay lacks: streamed usage, forced tool calls"), "{summary}");
    assert!(summary.contains("more prompt tokens than official"), "{summary}");

    let text = validate(&config, &["--upstream", "relay", "--compare", "official"]).await;
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.contains("parity: relay against official") && table.contains(summary), "{table}");
}

#[tokio::test]
async fn require_decides_which_checks_set_the_exit_status() {
    let scratch = Scratch::new("validate-require");
    let official = MockServer::start(paced("official")).await.unwrap();
    let relay = MockServer::start(paced("relay").with_quirk(quirk("no-tools"))).await.unwrap();
    let config = config(&scratch, &official, &relay);
    let lenient = validate(&config, &["--upstream", "relay", "--require", "chat,streaming,honesty.usage"]).await;
    assert_eq!(lenient.status.code(), Some(0), "{}", describe(&lenient));
    let strict = validate(&config, &["--upstream", "relay", "--require", "tools.auto"]).await;
    assert_eq!(strict.status.code(), Some(1), "{}", describe(&strict));
    let unknown = validate(&config, &["--upstream", "relay", "--require", "tool"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("\"tool\" is neither a check nor a group"));
    let nowhere = validate(&config, &["--upstream", "nowhere"]).await;
    assert_eq!(nowhere.status.code(), Some(2), "{}", describe(&nowhere));
}

async fn admin(gateway: &cutover::server::Running, method: Method, path: &str) -> Reply {
    let url = format!("http://{}{path}", gateway.admin_addr);
    send(method, &url, &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))], "").await
}

/// The route's events whose kind starts with `validation`, oldest first.
async fn validation_events(gateway: &cutover::server::Running) -> Vec<Value> {
    let events = admin(gateway, Method::GET, "/admin/events?route=default").await.json();
    let mut events: Vec<Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"].as_str().unwrap().starts_with("validation"))
        .cloned()
        .collect();
    events.reverse();
    events
}

#[tokio::test]
async fn the_gate_holds_a_rollout_pending_until_its_candidate_passes_validation() {
    let primary = MockServer::start(paced("primary")).await.unwrap();
    let broken = MockServer::start(paced("candidate").with_quirk(quirk("no-stream-usage"))).await.unwrap();
    let address = broken.addr();
    let plan = "models = [\"gpt-4.1\"]\n[routes.rollout]\ninterval = \"100ms\"\nrequire_validation = true\n\
                cooldown = \"0s\"\nsteps = [{ weight = 10, min_duration = \"1h\" }]\n";
    let dir = TempDir::new("validate-gate");
    let gateway = start_gateway(&two_upstreams(&primary.base_url(), &broken.base_url(), plan), &dir).await;

    let failed = until("a validation_failed event", async || validation_events(&gateway).await.pop()).await;
    assert_eq!(failed["kind"], "validation_failed");
    let table = failed["reason"].as_str().unwrap();
    assert!(table.contains("streaming.usage") && table.contains("include_usage asked, no usage chunk"), "{table}");
    let view = admin(&gateway, Method::GET, "/admin/rollouts/default").await.json();
    assert_eq!(view["phase"], "pending", "held by the gate: {view:#}");
    assert_eq!(view["validation"]["state"], "failed");
    assert!(view["validation"]["held"].as_str().unwrap().contains("did not pass"), "{view:#}");

    // The candidate is fixed in place; a retry validates it again, and the rollout starts.
    broken.shutdown().await;
    let listener = TcpListener::bind(address).await.expect("rebind the candidate's port");
    let _fixed = MockServer::start_on(listener, paced("candidate")).await;
    let retry = admin(&gateway, Method::POST, "/admin/rollouts/default/retry").await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    let started = until("the rollout to leave pending", async || {
        let view = admin(&gateway, Method::GET, "/admin/rollouts/default").await.json();
        (view["phase"] != "pending").then_some(view)
    })
    .await;
    assert_eq!(
        (started["phase"].clone(), started["validation"]["state"].clone()),
        ("progressing".into(), "passed".into())
    );
    let kinds: Vec<Value> = validation_events(&gateway).await.iter().map(|event| event["kind"].clone()).collect();
    assert_eq!(kinds, ["validation_failed", "validation_passed"]);
    gateway.shutdown().await;
}
