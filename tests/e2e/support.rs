//! In-process harness: mock upstreams and a gateway on port 0 in the test's runtime, a
//! state file in a temp dir, and a small HTTP client.

use std::path::PathBuf;

use bytes::Bytes;
use cutover::mock::{MockConfig, MockServer};
use cutover::server::{Running, start_on};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const GATEWAY_KEY: &str = "sk-gateway-test";
pub const UPSTREAM_KEY: &str = "sk-upstream-candidate";

/// A unique scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("cutover-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The environment the test configs read their secrets from.
pub fn env(name: &str) -> Option<String> {
    match name {
        "ADMIN_TOKEN" => Some(ADMIN_TOKEN.to_owned()),
        "GATEWAY_KEY" => Some(GATEWAY_KEY.to_owned()),
        "UPSTREAM_KEY" => Some(UPSTREAM_KEY.to_owned()),
        _ => None,
    }
}

/// A config with a `primary` and a `candidate` upstream and one route `default` between
/// them; `extra` is appended (more keys for the route, or more sections).
pub fn two_upstreams(primary: &str, candidate: &str, route_extra: &str) -> String {
    format!(
        r#"
[server]
max_body_mb = 1

[admin]
token_env = "ADMIN_TOKEN"

[upstreams.primary]
base_url = "{primary}"
first_byte_timeout = "500ms"
first_token_timeout = "500ms"
idle_timeout = "500ms"

[upstreams.candidate]
base_url = "{candidate}"
first_byte_timeout = "500ms"
first_token_timeout = "500ms"
idle_timeout = "500ms"

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
{route_extra}
"#
    )
}

/// A gateway serving `config_text` on port 0 with its state in `dir`.
pub async fn start_gateway(config_text: &str, dir: &TempDir) -> Running {
    let config = cutover::config::load_str(config_text, &dir.0, env).unwrap_or_else(|problems| {
        panic!("test config is invalid: {problems:#?}");
    });
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    start_on(config, proxy, admin).await.expect("gateway starts")
}

/// Two mocks named `primary` and `candidate` and a gateway between them.
pub struct Setup {
    pub primary: MockServer,
    pub candidate: MockServer,
    pub gateway: Running,
    /// Holds the state file until the test ends.
    pub _dir: TempDir,
}

impl Setup {
    pub async fn new(primary: MockConfig, candidate: MockConfig, route_extra: &str) -> Setup {
        let primary = MockServer::start(primary.with_name("primary")).await.expect("primary mock");
        let candidate = MockServer::start(candidate.with_name("candidate")).await.expect("candidate mock");
        let dir = TempDir::new("proxy");
        let gateway =
            start_gateway(&two_upstreams(&primary.base_url(), &candidate.base_url(), route_extra), &dir).await;
        Setup { primary, candidate, gateway, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.proxy_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.admin_addr)
    }

    pub async fn set_weight(&self, weight: f64) {
        let response = send(
            Method::POST,
            &self.admin_url("/admin/rollouts/default/weight"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            format!(r#"{{"weight": {weight}}}"#),
        )
        .await;
        assert_eq!(response.status, StatusCode::OK, "set weight: {}", response.text());
    }

    pub async fn metrics(&self) -> String {
        send(Method::GET, &self.admin_url("/metrics"), &[], "").await.text()
    }

    /// A chat completion for `user`, optionally streamed.
    pub async fn chat(&self, user: &str, stream: bool) -> Reply {
        let body = format!(
            r#"{{"model":"gpt-4.1","stream":{stream},"messages":[{{"role":"user","content":"Hello there"}}]}}"#
        );
        send(Method::POST, &self.url("/v1/chat/completions"), &[("x-user-id", user)], body).await
    }
}

/// A complete response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts OpenAI's error shape and returns the error object.
    pub fn openai_error(&self) -> serde_json::Value {
        let json = self.json();
        let error = &json["error"];
        for key in ["message", "type", "param", "code"] {
            assert!(error.get(key).is_some(), "error object lacks {key}: {json}");
        }
        assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()));
        error.clone()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut request = Request::builder().method(method).uri(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).expect("request");
    let response = client().request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// The value of one series in a Prometheus text page (0 when absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
