//! The gateway binary in front of upstream servers this project did not write, with the
//! official `openai` Python SDK as the client (`upstreams/check_through_gateway.py`):
//! FastAPI under uvicorn (h11), aiohttp, Node's `http`, Go's `net/http` (each serving
//! the small OpenAI-compatible app in `upstreams/`), nginx's `proxy_pass` unbuffered in
//! front of `cutover mock` (`upstreams/nginx.rs`), and that nginx over TLS with a
//! certificate from a private CA made at test time (`upstreams/pki.rs`), over HTTP/2 and
//! HTTP/1.1, trusted through `ca_file` and refused with a 502 without it. Each run checks
//! whole and streamed answers, a tool call whole and streamed, the upstream's own 400
//! passed through, and what the server saw: its own `Host`, origin-form targets, its own
//! key only, none of the client's other credentials, cookies or account identity, the
//! HTTP version; and that neither its key nor its `set-cookie` reaches the client. Each
//! test prints the server and version that answered. A server that is not installed
//! fails its test with what to install (`.ci/deps/upstreams.sh` installs them); only Go
//! may be absent, with the reason printed.

mod nginx;
mod pki;
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::binary::{Gateway, Mock, Scratch, post_json};
use crate::configs::GatewayToml;
use crate::script_report::run_script;
use nginx::proxy_location;
use pki::PrivateCa;
use server::{Server, free_addr, free_addrs};

const GATEWAY_KEY: &str = "sk-cutover-wire-gateway-key";
const UPSTREAM_KEY: &str = "sk-wire-upstream-key";
/// The SDK's whole run: a dozen requests. Only a hang reaches it.
const CHECK_WITHIN: Duration = Duration::from_secs(120);
/// Every check the script must have run and passed.
const CHECKS: [&str; 12] = [
    "chat_non_streamed",
    "chat_streamed_concatenates_to_the_whole_answer",
    "tool_call_non_streamed",
    "tool_call_streamed",
    "upstream_400_is_bad_request_error_with_its_message",
    "upstream_saw_host_header_with_its_own_address",
    "upstream_saw_origin_form_targets",
    "upstream_got_its_own_key_never_the_gateway_key",
    "no_client_credential_cookie_or_account_identity_reached_the_upstream",
    "the_upstreams_cookie_did_not_reach_the_client",
    "the_client_never_saw_the_upstreams_key",
    "upstream_saw_the_expected_http_version",
];
const PYTHON_HINT: &str = "install Python 3 with `pip install openai uvicorn fastapi aiohttp` (.ci/deps/upstreams.sh)";

fn upstreams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/upstreams")
}

/// The app in `upstreams/` on a third-party server: `program ARGS… PORT`, with the
/// upstream's key and the gateway's (which the app reports if it ever arrives).
async fn start_app(scratch: &Scratch, name: &str, program: &str, args: &[&str], hint: &str) -> (Server, SocketAddr) {
    let addr = free_addr();
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(addr.port().to_string())
        .current_dir(upstreams_dir())
        .env("UPSTREAM_KEY", UPSTREAM_KEY)
        .env("GATEWAY_KEY", GATEWAY_KEY);
    let server = Server::spawn(scratch, name, &mut command, hint).ready(addr, hint).await;
    (server, addr)
}

/// What the check script must find at the upstream.
struct Expected<'a> {
    /// `echo` for the apps in `upstreams/`, `mock` for `cutover mock` behind nginx.
    answers: &'a str,
    /// The `Host` the server must have seen.
    host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    proto: &'a str,
}

/// A gateway whose route `default` leads to upstream `thirdparty` at `base_url`
/// (`extra` lines added to it), with gateway keys required and the upstream's own key.
/// With `errors_at`, model `ctx-too-long` goes to upstream `thirdparty-errors` there.
fn gateway_config(base_url: &str, errors_at: Option<&str>, extra: &[&str]) -> String {
    let mut config = GatewayToml::new().gateway_key("wire", "GATEWAY_KEY");
    let mut upstreams = vec![("thirdparty", base_url)];
    if let Some(errors) = errors_at {
        upstreams.push(("thirdparty-errors", errors));
        config = config.route("errors", "thirdparty-errors", None).route_line("errors", "models = [\"ctx-too-long\"]");
    }
    for (name, url) in upstreams {
        config = config.upstream(name, url).upstream_line(name, "api_key_env = \"UPSTREAM_KEY\"");
        for line in extra {
            config = config.upstream_line(name, line);
        }
    }
    config.route("default", "thirdparty", None).build()
}

async fn start_gateway(scratch: &Scratch, config: &str) -> Gateway {
    Gateway::start(scratch, config, &[("GATEWAY_KEY", GATEWAY_KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)]).await
}

/// Runs the official SDK through `gateway` and asserts every check; returns the
/// server's name and version as its answers gave them.
async fn check_through(gateway: &Gateway, expected: &Expected<'_>) -> String {
    let script = upstreams_dir().join("check_through_gateway.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .env("CHECK_BASE_URL", gateway.url("/v1"))
        .env("CHECK_KEY", GATEWAY_KEY)
        .env("CHECK_ANSWERS", expected.answers)
        .env("CHECK_UPSTREAM_HOST", &expected.host)
        .env("CHECK_UPSTREAM_PROTO", expected.proto)
        .env("CHECK_UPSTREAM_KEY", UPSTREAM_KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let run = run_script(&mut command, CHECK_WITHIN, PYTHON_HINT).await;
    let server = run.report["upstream_server"].as_str().unwrap_or("?").to_owned();
    let what = format!("{server} ({}) behind the gateway", expected.proto);
    run.assert_passed(&CHECKS, &what, &format!("gateway log:\n{}", gateway.process.log()));
    println!("upstream server: {server} over {}; client: openai {}", expected.proto, run.report["openai_version"]);
    server
}

/// One of the apps in `upstreams/` behind the gateway, over plain HTTP/1.1.
async fn app_behind_the_gateway(tag: &str, program: &str, args: &[&str], hint: &str) {
    let scratch = Scratch::new(tag);
    let (_server, addr) = start_app(&scratch, tag, program, args, hint).await;
    let gateway = start_gateway(&scratch, &gateway_config(&format!("http://{addr}/v1"), None, &[])).await;
    let expected = Expected { answers: "echo", host: addr.to_string(), proto: "HTTP/1.1" };
    check_through(&gateway, &expected).await;
}

#[tokio::test]
async fn fastapi_under_uvicorn_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("uvicorn", "python3", &["openai_app.py", "uvicorn"], PYTHON_HINT).await;
}

#[tokio::test]
async fn aiohttp_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("aiohttp", "python3", &["openai_app.py", "aiohttp"], PYTHON_HINT).await;
}

#[tokio::test]
async fn node_http_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("node", "node", &["openai_app.mjs"], "install Node.js 20+").await;
}

#[tokio::test]
async fn go_net_http_serves_every_request_through_the_gateway() {
    if Command::new("go").arg("version").output().is_err() {
        println!("SKIPPED: Go is not installed (`apt-get install golang-go`; .ci/deps/upstreams.sh tries it)");
        return;
    }
    let scratch = Scratch::new("go");
    let binary = scratch.path().join("openai-app");
    // The build cache lives in cargo's target, kept between runs; no module is fetched.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("main.go")
        .current_dir(upstreams_dir())
        .env("GOCACHE", &cache)
        .env("GOPATH", cache.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .unwrap();
    assert!(build.status.success(), "go build main.go: {}", String::from_utf8_lossy(&build.stderr));
    app_behind_the_gateway("go", binary.to_str().unwrap(), &[], "the Go build above").await;
}

/// Two mocks: `answers` (normal) and `errors` (every answer 400 context_length_exceeded).
async fn mocks(scratch: &Scratch) -> (Mock, Mock) {
    mocks_with(scratch, &[]).await
}

/// The two mocks, `answers` started with `answers_args` besides.
async fn mocks_with(scratch: &Scratch, answers_args: &[&str]) -> (Mock, Mock) {
    let answers = Mock::start(scratch, "answers", answers_args, &[]).await;
    let errors = Mock::start(scratch, "errors", &["--fault", "context-length"], &[]).await;
    (answers, errors)
}

#[tokio::test]
async fn nginx_proxy_pass_unbuffered_in_front_of_the_mock_serves_every_request_through_the_gateway() {
    let scratch = Scratch::new("nginx");
    let (answers, errors) = mocks(&scratch).await;
    let addr = free_addr();
    let locations = proxy_location("", answers.addr) + &proxy_location("errors/", errors.addr);
    let _nginx = nginx::start(&scratch, &format!("  server {{\n    listen {addr};\n{locations}  }}"), &[addr]).await;
    let config = gateway_config(&format!("http://{addr}/v1"), Some(&format!("http://{addr}/errors/v1")), &[]);
    let gateway = start_gateway(&scratch, &config).await;
    let expected = Expected { answers: "mock", host: addr.to_string(), proto: "HTTP/1.1" };
    check_through(&gateway, &expected).await;
}

/// nginx over TLS with a certificate from a private CA, in front of the mocks: `h2` offers
/// HTTP/2 by ALPN (`listen … ssl http2`, as 1.22 spells it), `http1` only HTTP/1.1.
struct TlsRelay {
    ca: PrivateCa,
    h2: SocketAddr,
    http1: SocketAddr,
    _nginx: Server,
    _mocks: (Mock, Mock),
}

impl TlsRelay {
    async fn start(scratch: &Scratch) -> TlsRelay {
        TlsRelay::start_with(scratch, &[]).await
    }

    /// The relay, its `answers` mock started with `answers_args` besides.
    async fn start_with(scratch: &Scratch, answers_args: &[&str]) -> TlsRelay {
        let ca = PrivateCa::new(scratch);
        let mocks = mocks_with(scratch, answers_args).await;
        let [h2, http1] = free_addrs();
        let locations = proxy_location("", mocks.0.addr) + &proxy_location("errors/", mocks.1.addr);
        let tls =
            format!("    ssl_certificate {};\n    ssl_certificate_key {};\n", ca.cert.display(), ca.key.display());
        let server = |listen: String| format!("  server {{\n    listen {listen};\n{tls}{locations}  }}\n");
        let servers = server(format!("{h2} ssl http2")) + &server(format!("{http1} ssl"));
        let nginx = nginx::start(scratch, &servers, &[h2, http1]).await;
        TlsRelay { ca, h2, http1, _nginx: nginx, _mocks: mocks }
    }

    fn ca_file(&self) -> String {
        format!("ca_file = \"{}\"", self.ca.ca.display())
    }
}

/// The SDK through a gateway whose upstream is `https://{authority}/v1` on the relay,
/// trusted by `ca_file`, answered over `proto`.
async fn check_over_tls(scratch: &Scratch, relay: &TlsRelay, authority: &str, proto: &str) {
    let config = gateway_config(
        &format!("https://{authority}/v1"),
        Some(&format!("https://{authority}/errors/v1")),
        &[&relay.ca_file()],
    );
    let gateway = start_gateway(scratch, &config).await;
    // `Host` (`:authority` on HTTP/2) is the upstream's authority, port included.
    let expected = Expected { answers: "mock", host: authority.to_owned(), proto };
    let server = check_through(&gateway, &expected).await;
    assert!(server.starts_with("nginx/"), "answered by {server}, not by nginx");
}

#[tokio::test]
async fn nginx_over_tls_from_a_private_ca_in_ca_file_serves_every_request_over_h2() {
    let scratch = Scratch::new("nginx-h2");
    let relay = TlsRelay::start(&scratch).await;
    check_over_tls(&scratch, &relay, &relay.h2.to_string(), "HTTP/2.0").await;
}

#[tokio::test]
async fn nginx_over_tls_from_a_private_ca_in_ca_file_serves_every_request_over_http1_by_name() {
    let scratch = Scratch::new("nginx-http1");
    let relay = TlsRelay::start(&scratch).await;
    // By name: the certificate's DNS name is checked (and sent as SNI), `Host` is the name.
    check_over_tls(&scratch, &relay, &format!("localhost:{}", relay.http1.port()), "HTTP/1.1").await;
}

/// The connections nginx saw `requests` concurrent streamed chat requests arrive on
/// through a gateway whose upstream is the relay's HTTP/1.1 listener with `extra` lines:
/// the distinct serial numbers (`$connection`) its answers carry. Every request must
/// succeed.
async fn connections_seen(scratch: &Scratch, relay: &TlsRelay, requests: usize, extra: &[&str]) -> usize {
    let authority = format!("localhost:{}", relay.http1.port());
    let ca_file = relay.ca_file();
    let lines: Vec<&str> = [ca_file.as_str()].into_iter().chain(extra.iter().copied()).collect();
    let gateway = start_gateway(scratch, &gateway_config(&format!("https://{authority}/v1"), None, &lines)).await;
    let (url, auth) = (gateway.url("/v1/chat/completions"), format!("Bearer {GATEWAY_KEY}"));
    let body = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let (url, auth, body) = (url.clone(), auth.clone(), body.clone());
        tasks.spawn(async move { post_json(&url, &[("authorization", &auth)], &body).await });
    }
    let mut seen = std::collections::BTreeSet::new();
    for reply in tasks.join_all().await {
        assert_eq!(reply.status, 200, "{}", reply.text());
        seen.insert(reply.header("x-upstream-connection").expect("nginx numbers its connections").to_owned());
    }
    seen.len()
}

#[tokio::test]
async fn nginx_over_tls_http1_is_reached_on_at_most_max_connections_however_many_requests_are_in_flight() {
    let scratch = Scratch::new("nginx-capped");
    // The mock's streams take a while (ten chunks 20 ms apart), so requests overlap.
    let relay = TlsRelay::start_with(&scratch, &["--chunk-gap", "20", "--tokens", "10"]).await;
    let uncapped = connections_seen(&scratch, &relay, 24, &[]).await;
    let capped = connections_seen(&scratch, &relay, 24, &["max_connections = 2"]).await;
    println!(
        "24 concurrent streams over TLS HTTP/1.1: {uncapped} connections uncapped, {capped} with max_connections = 2"
    );
    assert!(uncapped > 2, "the requests did not overlap ({uncapped} connections), so the cap proves nothing");
    assert!((1..=2).contains(&capped), "{capped} connections for max_connections = 2");
}

#[tokio::test]
async fn an_upstream_behind_a_private_ca_without_ca_file_is_a_502_naming_the_upstream_not_its_address() {
    let scratch = Scratch::new("nginx-untrusted");
    let relay = TlsRelay::start(&scratch).await;
    let gateway = start_gateway(&scratch, &gateway_config(&format!("https://{}/v1", relay.h2), None, &[])).await;
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let auth = format!("Bearer {GATEWAY_KEY}");
    let reply = post_json(&gateway.url("/v1/chat/completions"), &[("authorization", &auth)], &body).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let message = reply.openai_error()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("`thirdparty`"), "the 502 does not name the upstream: {message}");
    // For the right reason: the certificate, not a refused connection or a timeout.
    assert!(message.contains("certificate"), "the 502 does not say the certificate was refused: {message}");
    let everything = format!("{:?}\n{}", reply.headers, reply.text());
    let port = format!(":{}", relay.h2.port());
    for secret in ["127.0.0.1", "localhost", port.as_str(), UPSTREAM_KEY] {
        assert!(!everything.contains(secret), "the 502 shows {secret:?}:\n{everything}");
    }
    println!("without ca_file: 502 {message}");
}
