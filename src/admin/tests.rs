//! The admin service driven without a socket: a `Request<String>` in, the response out,
//! over a real controller and state file in a scratch directory.

use std::path::PathBuf;
use std::sync::Arc;

use cutover_config::testing;
use cutover_metrics::Metrics;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::service::Service;
use serde_json::Value;

use super::AdminService;
use crate::proxy::Gateway;
use crate::server::open_rollouts;
use cutover_state::StateMode;

const TOKEN: &str = "admin-test-token";

/// An admin service over a route `default` (with `route_extra` appended to it) and a
/// state file that is removed on drop.
struct Admin {
    service: AdminService,
    dir: PathBuf,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Admin {
    fn new(route_extra: &str) -> Admin {
        let dir = std::env::temp_dir().join(format!("cutover-admin-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let text = testing::two_upstreams_toml("[admin]\ntoken_env = \"ADMIN_TOKEN\"", route_extra);
        let env = |name: &str| (name == "ADMIN_TOKEN").then(|| TOKEN.to_owned());
        let config = Arc::new(testing::load(&text, &dir, env));
        let metrics = Arc::new(Metrics::new(&config));
        let (live, control) = open_rollouts(&config, &metrics, None, StateMode::Keep).unwrap();
        let gateway = Arc::new(arc_swap::ArcSwap::from_pointee(Gateway::new(config, metrics, live)));
        Admin { service: AdminService::new(gateway, Arc::new(control)), dir }
    }

    /// Sends one request; the answer's status and body (JSON, or a string for text).
    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self.service.call(request.body(body.to_owned()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn admin(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(method, path, Some(TOKEN), body).await
    }
}

const PLAN: &str = r#"
[routes.rollout]
interval = "1h"
steps = [{ weight = 10, min_duration = "1h", min_requests = 10 }, { weight = 100, min_duration = "1h", min_requests = 10 }]
"#;

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let admin = Admin::new("");
    let (status, body) = admin.send(Method::GET, "/healthz", None, "").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn the_admin_api_refuses_a_missing_or_wrong_token() {
    let admin = Admin::new("");
    for token in [None, Some("nope")] {
        let (status, body) = admin.send(Method::GET, "/admin/rollouts", token, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"]["message"], "missing or wrong admin bearer token");
    }
}

#[tokio::test]
async fn a_weight_set_is_read_back_in_the_views_the_event_log_and_the_metrics() {
    let admin = Admin::new("");
    let (status, set) = admin.admin(Method::POST, "/admin/rollouts/default/weight", r#"{"weight": 12.5}"#).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, view) = admin.admin(Method::GET, "/admin/rollouts/default", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((view["weight"].as_f64(), view["phase"].as_str()), (Some(12.5), Some("paused")));
    assert_eq!(view["events"][0]["kind"], "set_weight");
    assert_eq!(view["events"][0]["reason"], "weight set by hand from 0% to 12.5%");
    let (_, list) = admin.admin(Method::GET, "/admin/rollouts", "").await;
    assert_eq!(list[0]["weight"], view["weight"]);
    assert_eq!(list[0]["events"], view["events"]);
    let (_, events) = admin.admin(Method::GET, "/admin/events", "").await;
    assert_eq!(events, view["events"], "the view's recent events are the state file's");
    let (_, page) = admin.send(Method::GET, "/metrics", None, "").await;
    let page = page.as_str().unwrap_or_default();
    assert!(page.contains(r#"cutover_rollout_transitions_total{route="default",kind="set_weight"} 1"#), "{page}");
    assert!(page.contains(r#"cutover_rollout_weight_percent{route="default"} 12.5"#), "{page}");
}

#[tokio::test]
async fn resuming_a_promoted_rollout_is_a_conflict() {
    let admin = Admin::new(PLAN);
    let (status, view) = admin.admin(Method::POST, "/admin/rollouts/default/promote?full=true", "").await;
    assert_eq!((status, view["phase"].as_str()), (StatusCode::OK, Some("promoted")), "{view}");
    assert_eq!(view["events"][0]["kind"], "promote_full");
    let (status, refused) = admin.admin(Method::POST, "/admin/rollouts/default/resume", "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["message"], "cannot resume route \"default\": its rollout is promoted");
}

#[tokio::test]
async fn unknown_routes_and_commands_are_not_found() {
    let admin = Admin::new(PLAN);
    let (status, _) = admin.admin(Method::GET, "/admin/rollouts/nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin.admin(Method::POST, "/admin/rollouts/default/rewind", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_admin_token_is_accepted_after_bearer_spelled_as_the_proxy_accepts_it() {
    let admin = Admin::new("");
    for scheme in ["Bearer", "bearer"] {
        let request = Request::get("/admin/rollouts").header("authorization", format!("{scheme} {TOKEN}"));
        let response = admin.service.call(request.body(String::new()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn a_claimed_actor_is_recorded_as_a_claim_and_one_outside_the_charset_is_refused() {
    let admin = Admin::new("");
    let weight = |actor: &'static str| {
        Request::post("/admin/rollouts/default/weight")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("x-cutover-actor", actor)
            .body(r#"{"weight": 1}"#.to_owned())
            .unwrap()
    };
    let response = admin.service.call(weight("alice@cli")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, view) = admin.admin(Method::GET, "/admin/rollouts/default", "").await;
    assert_eq!(view["events"][0]["actor"], "admin-api (claimed: alice@cli)");
    let response = admin.service.call(weight("controller; forged=1")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("x-cutover-actor must be"), "{body}");
}

#[tokio::test]
async fn a_weight_of_minus_zero_is_zero_everywhere_it_is_shown() {
    let admin = Admin::new("");
    let (status, view) = admin.admin(Method::POST, "/admin/rollouts/default/weight", r#"{"weight": -0}"#).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["weight"].to_string(), "0.0");
    assert_eq!(view["events"][0]["reason"], "weight set by hand from 0% to 0%");
    assert_eq!(view["events"][0]["weight_percent"].to_string(), "0.0");
}
