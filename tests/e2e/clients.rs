//! Third-party client libraries through the real gateway binary at a 50% split between
//! two `cutover mock` upstreams: the official `openai` SDKs for Python (sync and async,
//! structured output into pydantic models, raw responses) and Node, LangChain's
//! `ChatOpenAI`, `litellm` and the Vercel AI SDK. Each library runs a script in
//! `clients/` that prints a JSON report of named checks (`clients/report.py`,
//! `clients/node/report.mjs`); every check listed here must have run and passed. A
//! library that is not installed fails the test with what to install (`.ci/deps/clients.sh`
//! installs them all), never skips it. The official Node SDK runs a second time against a
//! candidate that speaks Anthropic's Messages API, to which the gateway translates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::binary::{Gateway, Mock, Scratch, post_json};
use crate::configs::GatewayToml;
use crate::script_report::run_script;

const GATEWAY_KEY: &str = "sk-cutover-clients-test-key";
const ADMIN_TOKEN: &str = "admin-token-clients";
const PRIMARY_KEY: &str = "sk-upstream-primary";
const CANDIDATE_KEY: &str = "sk-upstream-candidate";
/// A whole script: a few requests, plus a slow import (litellm takes seconds) on a busy
/// machine. Only a hang reaches it.
const SCRIPT_WITHIN: Duration = Duration::from_secs(240);

/// The API the candidate speaks (the primary speaks OpenAI's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CandidateApi {
    OpenAi,
    /// Anthropic's Messages: the gateway translates the client's chat completions.
    Anthropic,
}

/// The gateway every client script expects: route `default` for `gpt-4.1` between mocks
/// `primary` and `candidate` (each requiring its own upstream key) at weight 50, sticky on
/// `x-user-id`, gateway keys required.
struct World {
    gateway: Gateway,
    _mocks: [Mock; 2],
    _scratch: Scratch,
}

impl World {
    async fn start(tag: &str, candidate_api: CandidateApi) -> World {
        let scratch = Scratch::new(tag);
        let keys = [("PRIMARY_KEY", PRIMARY_KEY), ("CANDIDATE_KEY", CANDIDATE_KEY)];
        let primary = Mock::start(&scratch, "primary", &["--api-key-env", "PRIMARY_KEY"], &keys).await;
        let candidate_flags: &[&str] = match candidate_api {
            CandidateApi::OpenAi => &["--api-key-env", "CANDIDATE_KEY"],
            CandidateApi::Anthropic => &["--api-key-env", "CANDIDATE_KEY", "--api", "anthropic"],
        };
        let candidate = Mock::start(&scratch, "candidate", candidate_flags, &keys).await;
        let mut config = GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url());
        if candidate_api == CandidateApi::Anthropic {
            config = config.upstream_line("candidate", "api = \"anthropic\"");
        }
        let config = config
            .gateway_key("client-tests", "GATEWAY_KEY")
            .admin_token_env("ADMIN_TOKEN")
            .upstream_line("primary", "api_key_env = \"PRIMARY_KEY\"")
            .upstream_line("candidate", "api_key_env = \"CANDIDATE_KEY\"")
            .route_line("default", "models = [\"gpt-4.1\"]")
            .route_line("default", "sticky = \"header:x-user-id\"")
            .build();
        let env = [
            ("GATEWAY_KEY", GATEWAY_KEY),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("PRIMARY_KEY", PRIMARY_KEY),
            ("CANDIDATE_KEY", CANDIDATE_KEY),
        ];
        let gateway = Gateway::start(&scratch, &config, &env).await;
        let weight = post_json(
            &gateway.admin_url("/admin/rollouts/default/weight"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            &json!({"weight": 50}),
        )
        .await;
        assert_eq!(weight.status, 200, "setting the weight to 50: {}", weight.text());
        World { gateway, _mocks: [primary, candidate], _scratch: scratch }
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients")
}

/// How to install what a script needs, for failure messages.
const PYTHON_HINT: &str = "install Python 3 and `pip install openai pydantic langchain-openai litellm` \
                           (or run `.ci/deps/clients.sh` from .ci/run)";
const NODE_HINT: &str = "install Node.js 20+ and run `npm ci` in tests/e2e/clients/node \
                         (or run `.ci/deps/clients.sh` from .ci/run)";

/// Runs `program script` against a fresh gateway at weight 50, asserts that every check
/// in `expected` ran and passed, and prints the library's version.
async fn run_client(tag: &str, program: &str, script: &Path, hint: &str, expected: &[&str]) {
    run_client_against(tag, CandidateApi::OpenAi, program, script, hint, expected).await;
}

async fn run_client_against(
    tag: &str,
    candidate_api: CandidateApi,
    program: &str,
    script: &Path,
    hint: &str,
    expected: &[&str],
) {
    let world = World::start(tag, candidate_api).await;
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .current_dir(script.parent().unwrap_or(Path::new(".")))
        .env("CUTOVER_BASE_URL", world.gateway.url("/v1"))
        .env("CUTOVER_KEY", GATEWAY_KEY)
        // Only the gateway is talked to: no key or base URL of the user's own, no proxy
        // in the way of loopback, and no library phoning home.
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .env("LANGCHAIN_TRACING_V2", "false")
        .env("LANGSMITH_TRACING", "false")
        .env("DO_NOT_TRACK", "1");
    let run = run_script(&mut command, SCRIPT_WITHIN, hint).await;
    let library = run.report["library"].as_str().unwrap_or("?");
    let version = run.report["version"].as_str().unwrap_or("?");
    println!("client library: {library} {version}");
    run.assert_passed(expected, &format!("{library} {version} through the gateway"), "");
}

async fn run_python(tag: &str, script: &str, expected: &[&str]) {
    run_client(tag, "python3", &clients_dir().join(script), PYTHON_HINT, expected).await;
}

async fn run_node(tag: &str, script: &str, expected: &[&str]) {
    run_node_against(tag, CandidateApi::OpenAi, script, expected).await;
}

async fn run_node_against(tag: &str, candidate_api: CandidateApi, script: &str, expected: &[&str]) {
    let project = clients_dir().join("node");
    assert!(project.join("node_modules").is_dir(), "{} has no node_modules: {NODE_HINT}", project.display());
    run_client_against(tag, candidate_api, "node", &project.join(script), NODE_HINT, expected).await;
}

#[tokio::test]
async fn openai_python_sdk_parses_into_pydantic_and_reads_the_split_headers_sync_and_async() {
    let checks = [
        "sync_parse_fills_the_pydantic_model",
        "async_parse_fills_the_pydantic_model",
        "sync_raw_response_names_the_route_and_both_arms",
        "async_raw_response_names_the_route_and_both_arms",
        "async_stream_concatenates_to_an_answer_from_one_arm",
    ];
    run_python("client-openai-py", "openai_sdk.py", &checks).await;
}

#[tokio::test]
async fn langchain_chat_openai_invokes_streams_and_calls_tools_across_both_arms() {
    let checks = [
        "invoke_answers_from_both_arms",
        "stream_concatenates_to_the_invoked_answer",
        "bind_tools_returns_a_tool_call",
        "streamed_tool_call_chunks_add_up_to_one_call",
    ];
    run_python("client-langchain", "langchain_client.py", &checks).await;
}

#[tokio::test]
async fn litellm_completion_answers_whole_and_streamed_across_both_arms() {
    let checks = ["completion_answers_from_both_arms", "streamed_completion_concatenates_to_the_whole_answer"];
    run_python("client-litellm", "litellm_client.py", &checks).await;
}

#[tokio::test]
async fn openai_node_sdk_answers_streams_and_calls_tools_across_both_arms() {
    let checks = [
        "whole_answers_come_from_both_arms_named_in_headers",
        "stream_concatenates_to_the_whole_answer",
        "tool_call_whole",
        "tool_call_streamed_through_the_stream_helper",
    ];
    run_node("client-openai-node", "openai_sdk.mjs", &checks).await;
}

#[tokio::test]
async fn openai_node_sdk_answers_streams_and_calls_tools_with_a_candidate_translated_to_messages() {
    let checks = [
        "whole_answers_come_from_both_arms_named_in_headers",
        "stream_concatenates_to_the_whole_answer",
        "tool_call_whole",
        "tool_call_streamed_through_the_stream_helper",
    ];
    run_node_against("client-openai-node-messages", CandidateApi::Anthropic, "openai_sdk.mjs", &checks).await;
}

#[tokio::test]
async fn vercel_ai_sdk_generates_streams_and_calls_a_zod_tool_across_both_arms() {
    let checks = [
        "generate_text_answers_from_both_arms",
        "stream_text_concatenates_to_the_generated_text",
        "tool_with_a_zod_schema_is_called_and_executed",
        "streamed_tool_call_is_parsed_against_the_zod_schema",
    ];
    run_node("client-vercel-ai", "vercel_ai.mjs", &checks).await;
}
