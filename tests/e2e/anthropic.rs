//! Claude traffic: Anthropic's Messages API through the gateway, in two worlds of the
//! same routes. Passed through: every upstream speaks Messages (`api = "anthropic"`, a
//! `cutover mock --api anthropic` that requires its own `x-api-key` and an
//! `anthropic-version`). Relayed: only the primary `claude-a` does, and every other
//! upstream is an OpenAI-format relay (a `cutover mock` requiring its bearer key) that the
//! gateway translates to and from — the migration of the seed's Claude row. Driven by the
//! official `anthropic` Python SDK (`python/anthropic_client.py`) and Node SDK
//! (`clients/node/anthropic_sdk.mjs`), and by raw HTTP for the exact cost per arm.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::binary::{Gateway, Mock, Scratch, get, post_json, send};
use crate::configs::GatewayToml;
use crate::script_report::run_script;

const GATEWAY_KEY: &str = "sk-cutover-anthropic-test-key";
const ADMIN_TOKEN: &str = "admin-token-anthropic";
const A_KEY: &str = "sk-ant-upstream-a";
const B_KEY: &str = "sk-ant-upstream-b";
const MODEL: &str = "claude-sonnet-4-5";
const SCRIPT_WITHIN: Duration = Duration::from_secs(180);

/// What every answer of `claude-a` reports, counted as OpenAI counts (input includes the
/// cache reads and writes), and of `claude-b`.
const A_USAGE: [&str; 8] =
    ["--usage-prompt", "1000", "--usage-cached", "400", "--usage-cache-write", "100", "--usage-completion", "50"];
const B_USAGE: [&str; 6] = ["--usage-prompt", "1000", "--usage-cached", "300", "--usage-completion", "40"];

/// Claude Sonnet's shape of price on `claude-a` (cache reads at a tenth, writes at 1.25×)
/// and a relay's on `claude-b`, USD per million tokens.
const PRICES: &str = r#"
[prices.claude-a]
"claude-sonnet-4-5" = { input = 3.0, cached_input = 0.3, cache_write = 3.75, output = 15.0 }
[prices.claude-b]
"claude-sonnet-4-5" = { input = 2.0, cached_input = 0.2, output = 10.0 }
"#;

/// One answer's cost on each arm, in nano-dollars: the same whether `claude-b` speaks
/// Messages or is translated to, since translation keeps every count.
const A_NANOS: u64 = (1000 - 400 - 100) * 3000 + 400 * 300 + 100 * 3750 + 50 * 15000;
const B_NANOS: u64 = (1000 - 300) * 2000 + 300 * 200 + 40 * 10000;

/// What API the upstreams other than the primary `claude-a` speak.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Others {
    /// Messages, as `claude-a`: passed through.
    Anthropic,
    /// OpenAI's chat completions: translated.
    OpenAi,
}

/// The gateway `anthropic_client.py` describes, with its mocks.
struct World {
    gateway: Gateway,
    _mocks: Vec<Mock>,
    _scratch: Scratch,
}

impl World {
    async fn start(tag: &str, others: Others) -> World {
        let scratch = Scratch::new(tag);
        let keys = [("A_KEY", A_KEY), ("B_KEY", B_KEY)];
        let anthropic = |flags: &[&'static str]| [&["--api", "anthropic"][..], flags].concat();
        let other = |flags: &[&'static str]| match others {
            Others::Anthropic => anthropic(flags),
            Others::OpenAi => flags.to_vec(),
        };
        let a_flags = [&["--api-key-env", "A_KEY"][..], &A_USAGE].concat();
        let b_flags = [&["--api-key-env", "B_KEY"][..], &B_USAGE].concat();
        let claude_a = Mock::start(&scratch, "claude-a", &anthropic(&a_flags), &keys).await;
        let claude_b = Mock::start(&scratch, "claude-b", &other(&b_flags), &keys).await;
        let erroring = Mock::start(&scratch, "erroring", &other(&["--fault", "error-event"]), &[]).await;
        let limited = Mock::start(&scratch, "limited", &other(&["--fault", "429"]), &[]).await;
        let overloaded = Mock::start(&scratch, "overloaded", &other(&["--fault", "529"]), &[]).await;
        let cutter = Mock::start(&scratch, "cutter", &other(&["--fault", "stream-cut", "--chunk-gap", "5"]), &[]).await;
        let quirky = ["--quirk", "wrong-tool", "--quirk", "echo-model=claude-haiku-4-5"];
        let quirky = Mock::start(&scratch, "quirky", &other(&quirky), &[]).await;
        let mut config = GatewayToml::new()
            .gateway_key("anthropic-tests", "GATEWAY_KEY")
            .admin_token_env("ADMIN_TOKEN")
            .upstream("claude-a", &claude_a.base_url())
            .upstream_line("claude-a", "api_key_env = \"A_KEY\"")
            .upstream("claude-b", &claude_b.base_url())
            .upstream_line("claude-b", "api_key_env = \"B_KEY\"");
        let faulty = [
            ("erroring", &erroring),
            ("limited", &limited),
            ("overloaded", &overloaded),
            ("cutter", &cutter),
            ("quirky", &quirky),
        ];
        for (name, mock) in faulty {
            config = config.upstream(name, &mock.base_url());
        }
        let config = match others {
            Others::Anthropic => config.every_upstream("api = \"anthropic\""),
            Others::OpenAi => config.upstream_line("claude-a", "api = \"anthropic\""),
        };
        let config = config
            .route("claude", "claude-a", Some("claude-b"))
            .route_line("claude", &format!("models = [\"{MODEL}\"]"))
            .route_line("claude", "sticky = \"header:x-user-id\"")
            .route("flaky", "claude-a", Some("erroring"))
            .route_line("flaky", "models = [\"flaky-*\"]")
            .route("limited", "limited", None)
            .route_line("limited", "models = [\"limited-*\"]")
            .route("overloaded", "overloaded", None)
            .route_line("overloaded", "models = [\"overloaded-*\"]")
            .route("cutter", "cutter", None)
            .route_line("cutter", "models = [\"cut-*\"]")
            .route("mirrored", "claude-a", Some("claude-b"))
            .route_line("mirrored", "models = [\"mirror-*\"]")
            .route_line("mirrored", "shadow = 1.0")
            .route("quirky", "claude-a", Some("quirky"))
            .route_line("quirky", "models = [\"quirky-*\"]")
            .route_line("quirky", "shadow = 1.0")
            .section(PRICES)
            .build();
        let env = [("GATEWAY_KEY", GATEWAY_KEY), ("ADMIN_TOKEN", ADMIN_TOKEN), ("A_KEY", A_KEY), ("B_KEY", B_KEY)];
        let gateway = Gateway::start(&scratch, &config, &env).await;
        let world = World {
            gateway,
            _mocks: vec![claude_a, claude_b, erroring, limited, overloaded, cutter, quirky],
            _scratch: scratch,
        };
        world.set_weight("claude", 50).await;
        world.set_weight("flaky", 100).await;
        world
    }

    /// The `shadow_agreement` of `route`'s step, once it has compared `pairs` pairs.
    async fn agreement(&self, route: &str, pairs: u64) -> serde_json::Value {
        let url = self.gateway.admin_url(&format!("/admin/rollouts/{route}"));
        let auth = format!("Bearer {ADMIN_TOKEN}");
        crate::wait::until(&format!("{pairs} pairs compared on {route}"), async || {
            let agreement = get(&url, &[("authorization", &auth)]).await.json()["shadow_agreement"].clone();
            (agreement["pairs"].as_u64() >= Some(pairs)).then_some(agreement)
        })
        .await
    }

    async fn set_weight(&self, route: &str, weight: u32) {
        let url = self.gateway.admin_url(&format!("/admin/rollouts/{route}/weight"));
        let reply =
            post_json(&url, &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))], &json!({"weight": weight})).await;
        assert_eq!(reply.status, 200, "setting {route}'s weight to {weight}: {}", reply.text());
    }

    /// A Messages request as the SDKs send it: the gateway key in `x-api-key`.
    async fn message(&self, user: &str, stream: bool) -> crate::binary::Reply {
        let body = json!({"model": MODEL, "max_tokens": 256, "stream": stream,
            "messages": [{"role": "user", "content": "Say hello in five words."}]});
        let headers = [("x-api-key", GATEWAY_KEY), ("anthropic-version", "2023-06-01"), ("x-user-id", user)];
        post_json(&self.gateway.url("/v1/messages"), &headers, &body).await
    }
}

/// Fails (never skips) when the SDK cannot run.
fn require_python_anthropic() {
    let probe = std::process::Command::new("python3").args(["-c", "import anthropic"]).output();
    match probe {
        Ok(output) if output.status.success() => {}
        other => {
            panic!("the `anthropic` Python package is required for these tests: `pip install anthropic` ({other:?})")
        }
    }
}

#[tokio::test]
async fn anthropic_python_sdk_works_through_the_gateway_passed_through() {
    anthropic_python_sdk_works_through_the_gateway("anthropic-sdk", Others::Anthropic).await;
}

#[tokio::test]
async fn anthropic_python_sdk_works_through_the_gateway_translated_to_openai_format_relays() {
    anthropic_python_sdk_works_through_the_gateway("anthropic-sdk-relayed", Others::OpenAi).await;
}

async fn anthropic_python_sdk_works_through_the_gateway(tag: &str, others: Others) {
    require_python_anthropic();
    let world = World::start(tag, others).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/anthropic_client.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .env("CUTOVER_BASE_URL", format!("http://{}", world.gateway.proxy))
        .env("CUTOVER_KEY", GATEWAY_KEY)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let run = run_script(&mut command, SCRIPT_WITHIN, "pip install anthropic").await;
    let checks = [
        "messages_create_answers_text_with_usage",
        "messages_stream_concatenates_to_its_final_message",
        "tool_use_forced",
        "tool_use_streamed_assembles_its_input",
        "count_tokens_answers_a_count",
        "sticky_split_keeps_each_user_on_one_upstream",
        "a_candidate_whose_stream_starts_with_an_error_event_falls_back_to_the_primary",
        "wrong_gateway_key_is_authentication_error",
        "model_without_route_is_not_found_error",
        "rate_limited_upstream_is_rate_limit_error",
        "overloaded_upstream_is_overloaded_error",
        "broken_stream_raises_an_error_not_a_truncated_message",
    ];
    let what = format!("anthropic {} through the gateway", run.report["anthropic_version"]);
    run.assert_passed(&checks, &what, &world.gateway.process.log());
}

#[tokio::test]
async fn anthropic_node_sdk_works_through_the_gateway_passed_through() {
    anthropic_node_sdk_works_through_the_gateway("anthropic-node", Others::Anthropic).await;
}

#[tokio::test]
async fn anthropic_node_sdk_works_through_the_gateway_translated_to_openai_format_relays() {
    anthropic_node_sdk_works_through_the_gateway("anthropic-node-relayed", Others::OpenAi).await;
}

async fn anthropic_node_sdk_works_through_the_gateway(tag: &str, others: Others) {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients/node");
    assert!(
        project.join("node_modules/@anthropic-ai/sdk").is_dir(),
        "{} lacks @anthropic-ai/sdk: run `npm ci` there (or .ci/deps/clients.sh)",
        project.display()
    );
    let world = World::start(tag, others).await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(project.join("anthropic_sdk.mjs"))
        .current_dir(&project)
        .env("CUTOVER_BASE_URL", format!("http://{}", world.gateway.proxy))
        .env("CUTOVER_KEY", GATEWAY_KEY)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let run = run_script(&mut command, SCRIPT_WITHIN, "run `npm ci` in tests/e2e/clients/node").await;
    let checks = [
        "create_answers_text_named_in_headers",
        "stream_helper_assembles_the_final_message",
        "forced_tool_use_streamed_parses_its_input",
        "wrong_gateway_key_is_authentication_error",
    ];
    let what = format!("@anthropic-ai/sdk {} through the gateway", run.report["version"]);
    run.assert_passed(&checks, &what, &world.gateway.process.log());
}

/// The nano-dollar value of a `cutover_cost_usd_total` series for `upstream` (the page
/// writes every decimal, so this is exact).
fn cost_nanos(page: &str, upstream: &str, role: &str) -> u64 {
    let series = format!(
        "cutover_cost_usd_total{{route=\"claude\",upstream=\"{upstream}\",model=\"{MODEL}\",role=\"{role}\"}} "
    );
    let Some(value) = page.lines().find_map(|line| line.strip_prefix(series.as_str())) else { return 0 };
    let (whole, fraction) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    whole.parse::<u64>().unwrap() * 1_000_000_000 + format!("{fraction:0<9}").parse::<u64>().unwrap()
}

fn tokens(page: &str, upstream: &str, kind: &str) -> u64 {
    let series =
        format!("cutover_tokens_total{{route=\"claude\",upstream=\"{upstream}\",model=\"{MODEL}\",kind=\"{kind}\"}} ");
    page.lines().find_map(|line| line.strip_prefix(series.as_str())).map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn each_arm_is_charged_exactly_what_its_answers_report_at_its_own_price_whole_and_streamed() {
    each_arm_is_charged_exactly("anthropic-cost", Others::Anthropic).await;
}

#[tokio::test]
async fn a_translated_arm_is_charged_exactly_what_its_relay_reports_whole_and_streamed() {
    each_arm_is_charged_exactly("anthropic-cost-relayed", Others::OpenAi).await;
}

async fn each_arm_is_charged_exactly(tag: &str, others: Others) {
    let world = World::start(tag, others).await;
    let mut answered = [0u64; 2];
    for number in 0..24 {
        let reply = world.message(&format!("cost-user-{number}"), number % 2 == 1).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let upstream = reply.headers["x-cutover-upstream"].to_str().unwrap().to_owned();
        answered[usize::from(upstream == "claude-b")] += 1;
        if number % 2 == 1 {
            let text = reply.text();
            assert!(text.trim_end().ends_with("data: {\"type\":\"message_stop\"}"), "{text}");
        }
    }
    assert!(answered.iter().all(|count| *count > 0), "a 50% split of 24 users used one arm only: {answered:?}");
    let page = get(&world.gateway.admin_url("/metrics"), &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))]).await;
    let page = page.text();
    let [on_a, on_b] = answered;
    assert_eq!(cost_nanos(&page, "claude-a", "primary"), on_a * A_NANOS, "{on_a} answers of claude-a");
    assert_eq!(cost_nanos(&page, "claude-b", "candidate"), on_b * B_NANOS, "{on_b} answers of claude-b");
    // Input as OpenAI counts it: Anthropic's input_tokens (500) plus the cache's 400 + 100.
    assert_eq!(tokens(&page, "claude-a", "input"), on_a * 1000);
    assert_eq!(tokens(&page, "claude-a", "cached_input"), on_a * 400);
    assert_eq!(tokens(&page, "claude-a", "cache_write"), on_a * 100);
    assert_eq!(tokens(&page, "claude-a", "output"), on_a * 50);
    assert_eq!(tokens(&page, "claude-b", "input"), on_b * 1000);
    assert_eq!(tokens(&page, "claude-b", "cached_input"), on_b * 300);
    assert_eq!(tokens(&page, "claude-b", "output"), on_b * 40);
}

#[tokio::test]
async fn the_gateways_own_errors_on_the_messages_paths_have_anthropics_shape() {
    let world = World::start("anthropic-errors", Others::Anthropic).await;
    let url = world.gateway.url("/v1/messages");
    let body = r#"{"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": ["#;
    let bad = send(http::Method::POST, &url, &[("x-api-key", GATEWAY_KEY)], body).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let error = bad.json();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("JSON"), "{error}");
    let request_id = bad.headers["x-request-id"].to_str().unwrap();
    assert_eq!(error["request_id"], request_id, "the body names the request as its header does: {error}");
    let unauthorized = send(http::Method::POST, &url, &[("x-api-key", "sk-wrong")], "{}").await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.json()["error"]["type"], "authentication_error");
    // The OpenAI paths keep OpenAI's shape.
    let openai =
        send(http::Method::POST, &world.gateway.url("/v1/chat/completions"), &[("x-api-key", "sk-wrong")], "{}").await;
    assert_eq!(openai.status, 401);
    assert_eq!(openai.json()["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn an_endpoint_the_gateway_does_not_translate_is_refused_not_forwarded() {
    let world = World::start("anthropic-mismatch", Others::Anthropic).await;
    let body = json!({"model": MODEL, "input": "Hi"});
    let reply = post_json(&world.gateway.url("/v1/embeddings"), &[("x-api-key", GATEWAY_KEY)], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let error = reply.json();
    assert_eq!(error["error"]["code"], "api_not_translated", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("`claude-"), "{error}");
}

#[tokio::test]
async fn a_chat_request_carrying_what_messages_cannot_is_refused_naming_the_field() {
    let world = World::start("anthropic-untranslatable", Others::Anthropic).await;
    let body = json!({"model": MODEL, "n": 2, "messages": [{"role": "user", "content": "Hi"}]});
    let reply = post_json(&world.gateway.url("/v1/chat/completions"), &[("x-api-key", GATEWAY_KEY)], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let error = reply.json();
    assert_eq!(error["error"]["code"], "untranslatable_field", "{error}");
    assert_eq!(error["error"]["param"], "n", "{error}");
    // The same request in a shape Messages can carry is translated and answered.
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let reply = post_json(&world.gateway.url("/v1/chat/completions"), &[("x-api-key", GATEWAY_KEY)], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["object"], "chat.completion", "{}", reply.text());
    assert_eq!(reply.json()["usage"]["prompt_tokens"], 1000, "{}", reply.text());
}

#[tokio::test]
async fn a_request_the_relay_cannot_be_given_is_served_by_the_primary_that_speaks_it() {
    let world = World::start("anthropic-thinking", Others::OpenAi).await;
    let headers =
        |user: &'static str| [("x-api-key", GATEWAY_KEY), ("anthropic-version", "2023-06-01"), ("x-user-id", user)];
    let body = json!({"model": MODEL, "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Think, then say hello."}]});
    let users = ["u-0", "u-1", "u-2", "u-3", "u-4", "u-5", "u-6", "u-7", "u-8", "u-9", "u-10", "u-11"];
    for user in users {
        let reply = post_json(&world.gateway.url("/v1/messages"), &headers(user), &body).await;
        assert_eq!(reply.status, 200, "{user}: {}", reply.text());
        assert_eq!(reply.headers["x-cutover-upstream"], "claude-a", "{user}");
    }
    // Without `thinking`, the split sends some of the same users to the relay.
    let plain = json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello."}]});
    let mut relayed = 0;
    for user in users {
        let reply = post_json(&world.gateway.url("/v1/messages"), &headers(user), &plain).await;
        assert_eq!(reply.status, 200, "{user}: {}", reply.text());
        relayed += usize::from(reply.headers["x-cutover-upstream"] == "claude-b");
    }
    assert!(relayed > 0, "a 50% split of 12 users sent none to the relay");
}

#[tokio::test]
async fn mirrored_messages_are_compared_dimension_by_dimension_passed_through() {
    mirrored_messages_are_compared("anthropic-shadow", Others::Anthropic).await;
}

#[tokio::test]
async fn mirrored_messages_are_compared_dimension_by_dimension_translated_for_the_relay() {
    mirrored_messages_are_compared("anthropic-shadow-relayed", Others::OpenAi).await;
}

/// Route `mirrored` keeps every user on `claude-a` and mirrors each request to `claude-b`:
/// whole, streamed and forced-tool Messages requests are all compared, and two mocks that
/// answer alike agree on every dimension judged, the tool call's input against its schema.
/// Route `quirky` mirrors the same requests to a mock that calls the wrong tool and names
/// another model: exactly those dimensions disagree.
async fn mirrored_messages_are_compared(tag: &str, others: Others) {
    let world = World::start(tag, others).await;
    let agreement = world.mirror_all("mirrored", "mirror-1").await;
    let ratio = |dimension: &str| agreement["dimensions"][dimension]["ratio"].as_f64();
    for dimension in ["outcome", "finish_reason", "model", "prompt_tokens"] {
        assert_eq!(ratio(dimension), Some(1.0), "{dimension}: {agreement}");
    }
    for dimension in ["tool_calls", "tool_arguments_json", "tool_arguments_schema"] {
        assert_eq!(ratio(dimension), Some(1.0), "{dimension}, judged on the two tool requests: {agreement}");
    }
    let quirky = world.mirror_all("quirky", "quirky-1").await;
    let ratio = |dimension: &str| quirky["dimensions"][dimension]["ratio"].as_f64();
    assert_eq!(ratio("outcome"), Some(1.0), "{quirky}");
    assert_eq!(ratio("model"), Some(0.0), "every answer names another model: {quirky}");
    assert_eq!(ratio("tool_calls"), Some(0.0), "both tool requests called the wrong tool: {quirky}");
}

impl World {
    /// Sends whole, streamed and forced-tool Messages requests for `model`, which the
    /// mirroring `route` serves, and returns its agreement once every pair is compared.
    async fn mirror_all(&self, route: &str, model: &str) -> serde_json::Value {
        let tool = json!({"name": "get_weather", "description": "Current weather for a city.",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}});
        let hello = json!([{"role": "user", "content": "Say hello in five words."}]);
        let weather = json!([{"role": "user", "content": "Weather in Hanoi? Use get_weather."}]);
        let bodies = [
            json!({"model": model, "max_tokens": 64, "messages": hello}),
            json!({"model": model, "max_tokens": 64, "messages": hello, "stream": true}),
            json!({"model": model, "max_tokens": 64, "messages": weather, "tools": [tool],
                   "tool_choice": {"type": "tool", "name": "get_weather"}}),
            json!({"model": model, "max_tokens": 64, "messages": weather, "tools": [tool],
                   "tool_choice": {"type": "tool", "name": "get_weather"}, "stream": true}),
        ];
        for (number, body) in bodies.iter().enumerate() {
            let user = format!("mirrored-{number}");
            let headers =
                [("x-api-key", GATEWAY_KEY), ("anthropic-version", "2023-06-01"), ("x-user-id", user.as_str())];
            let reply = post_json(&self.gateway.url("/v1/messages"), &headers, body).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            assert_eq!(reply.headers["x-cutover-upstream"], "claude-a");
        }
        self.agreement(route, bodies.len() as u64).await
    }
}
