//! The gateway binary as OpenAI clients see it: the official `openai` Python SDK
//! (`python/sdk_client.py`, one named check per behaviour) and raw HTTP for what the SDK
//! cannot send. Errors the gateway produces itself must have OpenAI's error shape.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::binary::{Gateway, Mock, Scratch, get, post_json, raw_exchange, send};
use crate::configs::GatewayToml;
use crate::script_report::run_script;

const GATEWAY_KEY: &str = "sk-cutover-sdk-test-key";
const ADMIN_TOKEN: &str = "admin-token-sdk";
const PRIMARY_KEY: &str = "sk-upstream-primary";
const CANDIDATE_KEY: &str = "sk-upstream-candidate";

/// Every check `sdk_client.py` must report, passed.
/// The whole script: a few dozen requests. Only a hang reaches it.
const SDK_WITHIN: std::time::Duration = std::time::Duration::from_secs(180);
const SDK_CHECKS: [&str; 15] = [
    "chat_non_streamed",
    "chat_streamed_concatenates_to_the_whole_answer",
    "tool_call_non_streamed",
    "tool_call_streamed",
    "json_mode_answers_a_json_object",
    "models_list",
    "embeddings_in_the_sdk_default_base64_encoding",
    "legacy_completions",
    "gateway_headers_name_route_and_upstream",
    "sticky_split_keeps_each_user_on_one_upstream",
    "wrong_gateway_key_is_authentication_error",
    "model_without_route_is_not_found_error",
    "upstream_400_is_bad_request_error",
    "oversized_body_is_413",
    "broken_stream_raises_api_error_not_a_truncated_answer",
];

/// The gateway `sdk_client.py` expects, with its mocks: route `default` between
/// `primary` and `candidate` (each requiring its own upstream key), route `strict` to a
/// mock that answers 400 context_length_exceeded, route `cutter` to a mock that cuts its
/// streams; gateway keys required; no catch-all route; bodies up to 1 MiB.
struct World {
    gateway: Gateway,
    _mocks: Vec<Mock>,
    _scratch: Scratch,
}

impl World {
    async fn start(tag: &str) -> World {
        let scratch = Scratch::new(tag);
        let keys = [("PRIMARY_KEY", PRIMARY_KEY), ("CANDIDATE_KEY", CANDIDATE_KEY)];
        let primary = Mock::start(&scratch, "primary", &["--api-key-env", "PRIMARY_KEY"], &keys).await;
        let candidate = Mock::start(&scratch, "candidate", &["--api-key-env", "CANDIDATE_KEY"], &keys).await;
        let strict = Mock::start(&scratch, "strict", &["--fault", "context-length"], &[]).await;
        let cutter = Mock::start(&scratch, "cutter", &["--fault", "stream-cut", "--chunk-gap", "5"], &[]).await;
        let config = GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url())
            .server("max_body_mb = 1")
            .gateway_key("sdk-tests", "GATEWAY_KEY")
            .admin_token_env("ADMIN_TOKEN")
            .upstream_line("primary", "api_key_env = \"PRIMARY_KEY\"")
            .upstream_line("candidate", "api_key_env = \"CANDIDATE_KEY\"")
            .upstream("strict", &strict.base_url())
            .upstream("cutter", &cutter.base_url())
            .route_line("default", "models = [\"gpt-4.1\", \"gpt-4.1-*\"]")
            .route_line("default", "sticky = \"header:x-user-id\"")
            .route("strict", "strict", None)
            .route_line("strict", "models = [\"ctx-*\"]")
            .route("cutter", "cutter", None)
            .route_line("cutter", "models = [\"cut-*\"]")
            .build();
        let env = [
            ("GATEWAY_KEY", GATEWAY_KEY),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("PRIMARY_KEY", PRIMARY_KEY),
            ("CANDIDATE_KEY", CANDIDATE_KEY),
        ];
        let gateway = Gateway::start(&scratch, &config, &env).await;
        World { gateway, _mocks: vec![primary, candidate, strict, cutter], _scratch: scratch }
    }

    fn auth() -> (&'static str, String) {
        ("authorization", format!("Bearer {GATEWAY_KEY}"))
    }
}

/// Fails (never skips) when the SDK cannot run: these tests are how we know users' code works.
fn require_python_openai() {
    let probe = Command::new("python3").args(["-c", "import openai; print(openai.__version__)"]).output();
    match probe {
        Err(error) => panic!(
            "python3 is required for the SDK tests and cannot be run ({error}); install Python 3, then `pip install openai`"
        ),
        Ok(output) if !output.status.success() => panic!(
            "the `openai` Python package is required for the SDK tests: `pip install openai`\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Ok(_) => {}
    }
}

#[tokio::test]
async fn openai_python_sdk_works_through_the_gateway() {
    require_python_openai();
    let world = World::start("sdk").await;
    let weight = post_json(
        &world.gateway.admin_url("/admin/rollouts/default/weight"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        &json!({"weight": 50}),
    )
    .await;
    assert_eq!(weight.status, 200, "{}", weight.text());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/sdk_client.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .env("CUTOVER_BASE_URL", world.gateway.url("/v1"))
        .env("CUTOVER_KEY", GATEWAY_KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    let run = run_script(&mut command, SDK_WITHIN, "pip install openai").await;
    let what = format!("openai {} through the gateway", run.report["openai_version"]);
    run.assert_passed(&SDK_CHECKS, &what, "");
}

#[tokio::test]
async fn invalid_json_body_is_400_in_openai_error_shape() {
    let world = World::start("bad-json").await;
    let (name, value) = World::auth();
    let reply = send(
        http::Method::POST,
        &world.gateway.url("/v1/chat/completions"),
        &[(name, &value)],
        r#"{"model": "gpt-4.1", "messages": [{"role": "user", "#,
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.openai_error()["type"], "invalid_request_error");
}

/// A raw upload of `length` body bytes, declared by content-length or sent chunked; the
/// answer is read while the body is sent.
async fn upload(world: &World, key: &str, length: usize, chunked: bool) -> String {
    let framing = if chunked { "transfer-encoding: chunked".to_owned() } else { format!("content-length: {length}") };
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\n{framing}\r\nconnection: close\r\n\r\n",
        world.gateway.proxy
    );
    let body = if chunked {
        let mut body = Vec::new();
        for piece in vec![b' '; length].chunks(64 << 10) {
            body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        body
    } else {
        vec![b' '; length]
    };
    raw_exchange(world.gateway.proxy, &head, &body).await
}

/// Asserts a raw HTTP/1.1 answer has `status` and an OpenAI error body.
fn assert_raw_error(answer: &str, status: u16) {
    assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "expected {status}, got:\n{answer}");
    let json = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    let json: Value = serde_json::from_str(json).unwrap_or_else(|_| panic!("not a JSON error body:\n{answer}"));
    let error = &json["error"];
    assert!(error["message"].is_string() && error["type"].is_string(), "{json}");
    assert!(error.get("param").is_some() && error.get("code").is_some(), "{json}");
}

#[tokio::test]
async fn body_over_max_body_mb_is_413_in_openai_error_shape() {
    let world = World::start("too-large").await;
    assert_raw_error(&upload(&world, GATEWAY_KEY, 2 << 20, false).await, 413);
}

#[tokio::test]
async fn chunked_body_over_max_body_mb_is_413_in_openai_error_shape() {
    let world = World::start("too-large-chunked").await;
    // No content-length: the limit must hold while the body is read.
    assert_raw_error(&upload(&world, GATEWAY_KEY, 2 << 20, true).await, 413);
}

/// A client that sends its whole body before reading the answer (hyper's client does;
/// reqwest is built on it) must still get an early refusal rather than a broken pipe.
/// The gateway refuses before reading the body, so it has to drain the body (bounded)
/// or close lingeringly (RFC 9112 §9.6), as nginx does; closing at once resets the
/// connection under the client's upload. One 8 MiB try fails most of the time when it
/// does not; twenty make the outcome certain.
const EARLY_REFUSAL_TRIES: usize = 20;

fn big_chat_body() -> String {
    format!(r#"{{"model":"gpt-4.1","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(8 << 20))
}

#[tokio::test]
async fn oversized_upload_gets_413_even_when_the_client_reads_only_after_sending() {
    let world = World::start("too-large-upload").await;
    let (name, value) = World::auth();
    let body = big_chat_body();
    for _ in 0..EARLY_REFUSAL_TRIES {
        let reply =
            send(http::Method::POST, &world.gateway.url("/v1/chat/completions"), &[(name, &value)], body.clone()).await;
        assert_eq!(reply.status, 413, "{}", reply.text());
        reply.openai_error();
    }
}

#[tokio::test]
async fn wrong_key_with_a_large_upload_gets_401_not_a_reset() {
    let world = World::start("large-unauthorized").await;
    let body = big_chat_body();
    for _ in 0..EARLY_REFUSAL_TRIES {
        let reply = send(
            http::Method::POST,
            &world.gateway.url("/v1/chat/completions"),
            &[("authorization", "Bearer sk-wrong")],
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.text());
        reply.openai_error();
    }
}

#[tokio::test]
async fn unknown_path_outside_v1_is_404_in_openai_error_shape() {
    let world = World::start("unknown-path").await;
    let (name, value) = World::auth();
    for path in ["/", "/chat/completions", "/v2/chat/completions", "/v1beta/models"] {
        let reply = get(&world.gateway.url(path), &[(name, &value)]).await;
        assert_eq!(reply.status, 404, "GET {path}: {}", reply.text());
        reply.openai_error();
    }
}

#[tokio::test]
async fn missing_or_wrong_gateway_key_is_401_in_openai_error_shape() {
    let world = World::start("no-key").await;
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello"}]});
    for headers in [vec![], vec![("authorization", "Bearer sk-wrong")], vec![("authorization", GATEWAY_KEY)]] {
        let reply = post_json(&world.gateway.url("/v1/chat/completions"), &headers, &body).await;
        assert_eq!(reply.status, 401, "with {headers:?}: {}", reply.text());
        let error = reply.openai_error();
        assert_eq!(error["code"], "invalid_api_key", "{error}");
    }
}
