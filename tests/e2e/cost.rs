//! Usage and cost, to the token and the nano-dollar: against mocks that report known
//! usage, the totals in `/metrics` equal the reported usage × the configured price, the
//! client's stream is the one it asked for (with or without usage), and what cannot be
//! priced is shown as unknown, never as $0.

use cutover::mock::{FaultKind, FaultRule, MockConfig, MockServer, UsagePlacement, UsagePlan};
use http::{Method, StatusCode};
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, Setup, metric, send};
use crate::wait;

/// Usage every mock answer reports in these tests.
const PROMPT: u64 = 1200;
const COMPLETION: u64 = 300;
const CACHED: u64 = 200;
const REASONING: u64 = 50;

/// The primary's and the candidate's prices (USD per million tokens).
const PRICES: &str = r#"
[prices.primary]
"gpt-4.1" = { input = 2.0, cached_input = 0.5, output = 8.0 }
"text-embedding-3-small" = { input = 0.02, output = 0.0 }
[prices.candidate]
"gpt-4.1" = { input = 1.5, output = 6.0, reasoning = 9.0 }
"#;

/// What one answer costs on the primary and on the candidate, in nano-dollars.
const PRIMARY_NANOS: u64 = (PROMPT - CACHED) * 2000 + CACHED * 500 + COMPLETION * 8000;
const CANDIDATE_NANOS: u64 = PROMPT * 1500 + (COMPLETION - REASONING) * 6000 + REASONING * 9000;

fn plan(placement: UsagePlacement) -> UsagePlan {
    UsagePlan { prompt: Some(PROMPT), completion: Some(COMPLETION), cached: CACHED, reasoning: REASONING, placement }
}

fn mock(placement: UsagePlacement) -> MockConfig {
    MockConfig::default().with_usage(plan(placement))
}

async fn setup(placement: UsagePlacement, route_extra: &str) -> Setup {
    Setup::new(mock(placement), mock(placement), &format!("{route_extra}\n{PRICES}")).await
}

/// The cost series of `upstream` for `gpt-4.1` in `role`, in nano-dollars (exact: the
/// page writes every decimal).
fn cost_nanos(page: &str, upstream: &str, model: &str, role: &str) -> Option<u64> {
    let series = format!(
        "cutover_cost_usd_total{{route=\"default\",upstream=\"{upstream}\",model=\"{model}\",role=\"{role}\"}} "
    );
    let value = page.lines().find_map(|line| line.strip_prefix(series.as_str()))?;
    let (whole, fraction) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    let fraction = format!("{fraction:0<9}");
    Some(whole.parse::<u64>().unwrap() * 1_000_000_000 + fraction.parse::<u64>().unwrap())
}

fn tokens(page: &str, upstream: &str, model: &str, kind: &str) -> f64 {
    metric(
        page,
        &format!("cutover_tokens_total{{route=\"default\",upstream=\"{upstream}\",model=\"{model}\",kind=\"{kind}\"}}"),
    )
}

fn chat_body(stream: bool, include_usage: bool) -> String {
    let options = if include_usage { r#","stream_options":{"include_usage":true}"# } else { "" };
    format!(
        r#"{{"model":"gpt-4.1","stream":{stream}{options},"messages":[{{"role":"user","content":"Hello there"}}]}}"#
    )
}

/// A stream's bytes with each chunk's `id` and `created` blanked: they differ between two
/// requests, everything else must not.
fn normalized(stream: &str) -> String {
    let mut out = stream.to_owned();
    for (key, end) in [("\"id\":\"", '"'), ("\"created\":", ',')] {
        let mut from = 0;
        while let Some(at) = out[from..].find(key) {
            let start = from + at + key.len();
            let stop = start + out[start..].find(end).unwrap();
            out.replace_range(start..stop, "_");
            from = start + 1;
        }
    }
    out
}

async fn direct(mock: &MockServer, body: &str) -> String {
    let reply = send(Method::POST, &format!("{}/chat/completions", mock.base_url()), &[], body.to_owned()).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.text()
}

async fn chat(setup: &Setup, user: &str, body: &str) -> String {
    let reply = send(Method::POST, &setup.url("/v1/chat/completions"), &[("x-user-id", user)], body.to_owned()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.text()
}

async fn cost_report(setup: &Setup, query: &str) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply =
        send(Method::GET, &setup.admin_url(&format!("/admin/cost{query}")), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn whole_answers_are_priced_exactly_with_cached_and_reasoning_tokens() {
    let setup = setup(UsagePlacement::Alone, "").await;
    for user in 0..5 {
        chat(&setup, &format!("u{user}"), &chat_body(false, false)).await;
    }
    let page = setup.metrics().await;
    assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(5 * PRIMARY_NANOS), "{page}");
    assert_eq!(tokens(&page, "primary", "gpt-4.1", "input"), (5 * PROMPT) as f64);
    assert_eq!(tokens(&page, "primary", "gpt-4.1", "cached_input"), (5 * CACHED) as f64);
    assert_eq!(tokens(&page, "primary", "gpt-4.1", "output"), (5 * COMPLETION) as f64);
    assert_eq!(tokens(&page, "primary", "gpt-4.1", "reasoning"), (5 * REASONING) as f64);
    assert_eq!(metric(&page, "cutover_usage_missing_total{route=\"default\",upstream=\"primary\"}"), 0.0);
}

#[tokio::test]
async fn a_stream_whose_client_asked_for_usage_passes_byte_for_byte_and_is_priced() {
    for placement in [UsagePlacement::Alone, UsagePlacement::OnLastChunk] {
        let setup = setup(placement, "").await;
        let body = chat_body(true, true);
        let through = chat(&setup, "u1", &body).await;
        assert_eq!(normalized(&through), normalized(&direct(&setup.primary, &body).await), "{placement:?}");
        assert!(through.contains("\"prompt_tokens\":1200"), "{through}");
        let page = setup.metrics().await;
        assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(PRIMARY_NANOS), "{placement:?}\n{page}");
    }
}

#[tokio::test]
async fn a_stream_whose_client_did_not_ask_gets_no_usage_yet_is_priced() {
    for placement in [UsagePlacement::Alone, UsagePlacement::OnLastChunk] {
        let setup = setup(placement, "").await;
        let body = chat_body(true, false);
        let through = chat(&setup, "u1", &body).await;
        // The upstream was asked for usage on the client's behalf…
        let asked = setup.primary.last_request().unwrap().json().unwrap();
        assert_eq!(asked["stream_options"]["include_usage"], true);
        // …yet the client got exactly the stream the upstream sends one that does not ask.
        assert_eq!(normalized(&through), normalized(&direct(&setup.primary, &body).await), "{placement:?}");
        assert!(!through.contains("usage"), "{through}");
        let page = setup.metrics().await;
        assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(PRIMARY_NANOS), "{placement:?}\n{page}");
    }
}

#[tokio::test]
async fn a_route_that_does_not_inject_forwards_the_body_untouched_and_counts_the_usage_missing() {
    let setup = setup(UsagePlacement::Alone, "inject_stream_usage = false").await;
    let body = chat_body(true, false);
    chat(&setup, "u1", &body).await;
    assert_eq!(setup.primary.last_request().unwrap().body, body.as_bytes());
    let page = setup.metrics().await;
    assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), None, "{page}");
    assert_eq!(metric(&page, "cutover_usage_missing_total{route=\"default\",upstream=\"primary\"}"), 1.0);
    let report = cost_report(&setup, "?route=default&since=1h").await;
    assert_eq!(report["routes"][0]["unknown_cost_share"], 1.0, "{report}");
}

#[tokio::test]
async fn embeddings_and_responses_whole_and_streamed_are_priced() {
    let setup = setup(UsagePlacement::Alone, "").await;
    let reply =
        send(Method::POST, &setup.url("/v1/embeddings"), &[], r#"{"model":"text-embedding-3-small","input":"hello"}"#)
            .await;
    assert_eq!(reply.status, StatusCode::OK);
    let page = setup.metrics().await;
    // Embeddings report prompt tokens only.
    assert_eq!(cost_nanos(&page, "primary", "text-embedding-3-small", "primary"), Some(PROMPT * 20), "{page}");
    for stream in [false, true] {
        let body = format!(r#"{{"model":"gpt-4.1","input":"Hello there","stream":{stream}}}"#);
        let reply = send(Method::POST, &setup.url("/v1/responses"), &[], body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        if stream {
            assert!(reply.text().contains("event: response.completed"), "{}", reply.text());
        }
    }
    let page = setup.metrics().await;
    assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(2 * PRIMARY_NANOS), "{page}");
}

#[tokio::test]
async fn a_fallback_is_charged_to_the_primary_and_to_the_candidate_arms_requests() {
    let failing = mock(UsagePlacement::Alone).with_fault(FaultRule::new(FaultKind::Status500, 1.0));
    let setup = Setup::new(mock(UsagePlacement::Alone), failing, &format!("retries = 0\n{PRICES}")).await;
    setup.set_weight(100.0).await;
    for user in 0..3 {
        let reply = send(
            Method::POST,
            &setup.url("/v1/chat/completions"),
            &[("x-user-id", &format!("u{user}"))],
            chat_body(true, false),
        )
        .await;
        assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
    }
    let page = setup.metrics().await;
    assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(3 * PRIMARY_NANOS), "{page}");
    assert_eq!(cost_nanos(&page, "candidate", "gpt-4.1", "candidate"), None, "failed attempts cost nothing\n{page}");
    let report = cost_report(&setup, "").await;
    let arms = report["routes"][0]["arms"].as_array().unwrap();
    let candidate_arm = arms.iter().find(|arm| arm["arm"] == "candidate").unwrap();
    assert_eq!(candidate_arm["totals"]["requests"], 3, "{report}");
    assert_eq!(candidate_arm["totals"]["cost"], 3 * PRIMARY_NANOS, "{report}");
    // In the rollout's evidence too: the candidate arm's requests cost what the primary
    // charged for them (for `max_cost_ratio`), and the primary arm served no one.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let view = send(Method::GET, &setup.admin_url("/admin/rollouts/default"), &[("authorization", &auth)], "").await;
    let arms = &view.json()["arms"];
    assert_eq!(arms["candidate"]["cost"]["priced_requests"], 3, "{arms:#}");
    let per_1000 = arms["candidate"]["cost"]["usd_per_1000_requests"].as_f64().unwrap();
    assert!((per_1000 - PRIMARY_NANOS as f64 / 1e6).abs() < 1e-9, "{arms:#}");
    assert_eq!(arms["primary"]["cost"]["priced_requests"], 0, "{arms:#}");
}

#[tokio::test]
async fn shadow_copies_are_charged_as_shadow_to_the_candidate() {
    let setup = setup(UsagePlacement::Alone, "shadow = 1.0").await;
    for user in 0..4 {
        chat(&setup, &format!("u{user}"), &chat_body(false, false)).await;
    }
    let page = wait::until("the four shadow copies are charged", async || {
        let page = setup.metrics().await;
        (cost_nanos(&page, "candidate", "gpt-4.1", "shadow") == Some(4 * CANDIDATE_NANOS)).then_some(page)
    })
    .await;
    assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(4 * PRIMARY_NANOS), "{page}");
    // The shadow's measured cost per request projects the move to the candidate.
    let report = cost_report(&setup, "?since=24h").await;
    let projection = &report["routes"][0]["projection"];
    assert_eq!(projection["candidate_measured_on"], "shadow", "{report}");
    let saves = projection["saves_percent"].as_f64().unwrap();
    let expected = (PRIMARY_NANOS as f64 - CANDIDATE_NANOS as f64) / PRIMARY_NANOS as f64 * 100.0;
    assert!((saves - expected).abs() < 1e-9, "{saves} vs {expected}");
}

#[tokio::test]
async fn a_model_without_a_price_is_counted_in_tokens_and_shown_unknown_not_zero() {
    let setup = setup(UsagePlacement::Alone, "").await;
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    chat(&setup, "u1", body).await;
    let page = setup.metrics().await;
    assert_eq!(tokens(&page, "primary", "other", "input"), PROMPT as f64, "{page}");
    assert!(!page.contains("model=\"other\",role="), "an unpriced model has no cost series:\n{page}");
    let report = cost_report(&setup, "").await;
    let primary = &report["routes"][0]["arms"][0];
    assert_eq!(primary["totals"]["unknown"], 1, "{report}");
    assert_eq!(primary["cost_per_1k_requests_usd"], Value::Null, "{report}");
}

#[tokio::test]
async fn admin_cost_refuses_an_unknown_route_and_a_span_beyond_a_day() {
    let setup = setup(UsagePlacement::Alone, "").await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let url = |query: &str| setup.admin_url(&format!("/admin/cost{query}"));
    let reply = send(Method::GET, &url("?route=nope"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = send(Method::GET, &url("?since=2d"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.openai_error()["message"].as_str().unwrap().contains("24 h"));
}

#[tokio::test]
async fn the_openai_sdk_sees_no_usage_unless_it_asked_and_the_upstreams_when_it_did() {
    let probe = std::process::Command::new("python3").args(["-c", "import openai"]).output();
    assert!(probe.is_ok_and(|output| output.status.success()), "python3 with `pip install openai` is required");
    for placement in [UsagePlacement::Alone, UsagePlacement::OnLastChunk] {
        let setup = setup(placement, "").await;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/sdk_usage.py");
        let base_url = setup.url("/v1");
        // Blocking, on its own thread: the gateway serves on this test's runtime meanwhile.
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3").arg(script).env("CUTOVER_BASE_URL", base_url).output()
        })
        .await
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("no report: {stderr}"));
        let (not_asked, asked) = (&report["not_asked"], &report["asked"]);
        assert_eq!(not_asked["usages"], serde_json::json!([]), "{placement:?}: {report}");
        assert_eq!(asked["usages"].as_array().unwrap().len(), 1, "{placement:?}: {report}");
        let usage = &asked["usages"][0];
        assert_eq!(
            (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()),
            (Some(PROMPT), Some(COMPLETION))
        );
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], CACHED);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], REASONING);
        assert_eq!(not_asked["text"], asked["text"], "{report}");
        // A usage-only chunk is one chunk fewer for the client that did not ask.
        let extra = if placement == UsagePlacement::Alone { 1 } else { 0 };
        assert_eq!(asked["chunks"].as_u64().unwrap(), not_asked["chunks"].as_u64().unwrap() + extra, "{report}");
        let page = setup.metrics().await;
        assert_eq!(cost_nanos(&page, "primary", "gpt-4.1", "primary"), Some(2 * PRIMARY_NANOS), "{page}");
    }
}

#[tokio::test]
async fn cutover_cost_prints_each_arm_and_the_monthly_projection() {
    let setup = setup(UsagePlacement::Alone, "").await;
    setup.set_weight(50.0).await;
    for user in 0..40 {
        chat(&setup, &format!("user-{user}"), &chat_body(user % 2 == 0, false)).await;
    }
    // The CLI reads the admin address and token from a config, as `cutover cost -c` does.
    let cli_config = crate::configs::GatewayToml::two_upstreams(&setup.primary.base_url(), &setup.candidate.base_url())
        .server(&format!("admin_listen = \"{}\"", setup.gateway.admin_addr))
        .admin_token_env("ADMIN_TOKEN")
        .build();
    let dir = crate::support::TempDir::new("cost-cli");
    let config = cutover_config::load_str(&cli_config, &dir.0, crate::support::env).unwrap();
    let report = cutover::cli::cost::fetch(&config, Some("default"), "1h").await.unwrap();
    let text = cutover_cost::render(&report);
    let arms = &report.routes[0].arms;
    let (primary, candidate) = (&arms[0], &arms[1]);
    assert_eq!(primary.totals.requests + candidate.totals.requests, 40, "{text}");
    assert!(candidate.totals.requests > 0 && primary.totals.requests > 0, "{text}");
    assert_eq!(primary.totals.cost.0, primary.totals.requests * PRIMARY_NANOS);
    assert_eq!(candidate.totals.cost.0, candidate.totals.requests * CANDIDATE_NANOS);
    let per_1k = candidate.cost_per_1k_requests_usd.unwrap();
    assert!((per_1k - CANDIDATE_NANOS as f64 * 1000.0 / 1e9).abs() < 1e-9, "{text}");
    let projection = report.routes[0].projection.as_ref().unwrap();
    let expected = (PRIMARY_NANOS as f64 - CANDIDATE_NANOS as f64) / PRIMARY_NANOS as f64 * 100.0;
    assert!((projection.saves_percent - expected).abs() < 1e-9, "{text}");
    assert!(text.contains("all on the candidate:") && text.contains(&format!("(saves {expected:.1}%)")), "{text}");
    let refused = cutover::cli::cost::fetch(&config, Some("nope"), "1h").await.unwrap_err();
    assert!(refused.to_string().contains("unknown route"), "{refused}");
}
