//! In-process harness: mock upstreams and a gateway on port 0 in the test's runtime, and
//! a state file in a temp dir. HTTP goes through the client of `binary`.

use std::path::PathBuf;

use cutover::mock::{MockConfig, MockServer};
use cutover::server::{Running, start_on};
use http::{Method, StatusCode};
use tokio::net::TcpListener;

use crate::configs::GatewayToml;

// One HTTP client and one `Reply` for every test, in-process or against the binary.
pub use crate::binary::{Reply, client, send};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const GATEWAY_KEY: &str = "sk-gateway-test";
pub const UPSTREAM_KEY: &str = "sk-upstream-candidate";

/// The state file of an in-process gateway: the default name, in its [`TempDir`].
pub const STATE_FILE: &str = "cutover.db";

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

/// The upstream deadlines (first byte, first token, idle) of the in-process gateways:
/// short, so that the fault tests see a stalled or silent upstream fail fast.
pub const FAULT_DEADLINE: &str = "500ms";
/// The same deadlines for tests that are not about them (the rollout's): long enough that
/// a loaded machine cannot turn a healthy answer into a timeout and an error in the
/// evidence.
pub const UNHURRIED_DEADLINE: &str = "10s";

/// The in-process gateways' config: `primary` and `candidate` with [`FAULT_DEADLINE`]s
/// and a route `default` between them, the admin API on `ADMIN_TOKEN`, bodies up to 1 MiB.
pub fn in_process_config(primary: &str, candidate: &str) -> GatewayToml {
    config_with_deadlines(primary, candidate, FAULT_DEADLINE)
}

fn config_with_deadlines(primary: &str, candidate: &str, deadline: &str) -> GatewayToml {
    GatewayToml::two_upstreams(primary, candidate)
        .server("max_body_mb = 1")
        .admin_token_env("ADMIN_TOKEN")
        .every_upstream(&format!("first_byte_timeout = \"{deadline}\""))
        .every_upstream(&format!("first_token_timeout = \"{deadline}\""))
        .every_upstream(&format!("idle_timeout = \"{deadline}\""))
}

/// [`in_process_config`] with `route_extra` appended after the route `default`: more of
/// its keys, then any further sections (its `[routes.rollout]` plan, a breaker, …).
pub fn two_upstreams(primary: &str, candidate: &str, route_extra: &str) -> String {
    in_process_config(primary, candidate).section(route_extra).build()
}

/// [`two_upstreams`] with [`UNHURRIED_DEADLINE`]s.
pub fn unhurried_upstreams(primary: &str, candidate: &str, route_extra: &str) -> String {
    config_with_deadlines(primary, candidate, UNHURRIED_DEADLINE).section(route_extra).build()
}

/// A gateway serving `config_text` on port 0 with its state in `dir`.
pub async fn start_gateway(config_text: &str, dir: &TempDir) -> Running {
    let config = cutover_config::load_str(config_text, &dir.0, env).unwrap_or_else(|problems| {
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
        Setup::start(primary, candidate, route_extra, two_upstreams).await
    }

    /// [`Setup::new`] with [`UNHURRIED_DEADLINE`]s, for tests that are not about them.
    pub async fn unhurried(primary: MockConfig, candidate: MockConfig, route_extra: &str) -> Setup {
        Setup::start(primary, candidate, route_extra, unhurried_upstreams).await
    }

    async fn start(
        primary: MockConfig,
        candidate: MockConfig,
        route_extra: &str,
        config: fn(&str, &str, &str) -> String,
    ) -> Setup {
        let primary = MockServer::start(primary.with_name("primary")).await.expect("primary mock");
        let candidate = MockServer::start(candidate.with_name("candidate")).await.expect("candidate mock");
        let dir = TempDir::new("proxy");
        let gateway = start_gateway(&config(&primary.base_url(), &candidate.base_url(), route_extra), &dir).await;
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

/// The value of one series in a Prometheus text page (0 when absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `json`, an admin answer a CLI verb reads back into `T` (`cutover_model::view`), held to
/// that type: it reads into `T` and writes back as the same JSON, so the type has every
/// field the gateway shows, and nothing the CLI reads is missing from the answer.
pub fn held_to<T: serde::de::DeserializeOwned + serde::Serialize>(json: &serde_json::Value) -> T {
    let typed: T = serde_json::from_value(json.clone()).unwrap_or_else(|error| panic!("{error}: {json:#}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), json, "the answer and its type differ");
    typed
}
