//! A gateway served by the real binary between two `cutover mock` upstreams, as an operator
//! runs it (state file beside the config, admin token from the environment), and the
//! calls the lifecycle, admin and rollout-CLI tests make on it.

use serde_json::{Value, json};

use crate::binary::{Gateway, Mock, Scratch, get, post_json};
use crate::configs::GatewayToml;

pub const ADMIN_TOKEN: &str = "admin-token-e2e";
pub const GATEWAY_ENV: [(&str, &str); 1] = [("CUTOVER_ADMIN_TOKEN", ADMIN_TOKEN)];

/// The state file's name, beside the config in the scratch directory.
pub const STATE_FILE: &str = "state.db";

/// A gateway between two mocks, route `default`, sticky on `x-user-id`, its state in
/// [`STATE_FILE`] beside the config. Its drain timeout is longer than any test waits for
/// an exit, so a gateway that exits after SIGTERM has drained rather than given up.
pub fn serve_config(primary: &Mock, candidate: &Mock) -> GatewayToml {
    GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url())
        .server("drain_timeout = \"120s\"")
        .admin_token_env("CUTOVER_ADMIN_TOKEN")
        .state(STATE_FILE)
        .route_line("default", "sticky = \"header:x-user-id\"")
}

/// A plan whose first step needs far more evidence than any test sends, so it stays put;
/// the controller looks every `interval`.
pub fn slow_plan(interval: &str) -> String {
    format!(
        r#"[routes.rollout]
interval = "{interval}"
max_error_rate = 5.0
steps = [
  {{ weight = 10,  min_duration = "1h", min_requests = 1000000 }},
  {{ weight = 100, min_duration = "1h", min_requests = 1000000 }},
]
"#
    )
}

/// Mocks `primary` (with `primary_flags`) and `candidate`.
pub async fn two_mocks(scratch: &Scratch, primary_flags: &[&str]) -> (Mock, Mock) {
    let primary = Mock::start(scratch, "primary", primary_flags, &[]).await;
    let candidate = Mock::start(scratch, "candidate", &[], &[]).await;
    (primary, candidate)
}

pub fn admin_auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

pub async fn set_weight(gateway: &Gateway, weight: f64) -> Value {
    let reply = post_json(
        &gateway.admin_url("/admin/rollouts/default/weight"),
        &[("authorization", &admin_auth())],
        &json!({ "weight": weight }),
    )
    .await;
    assert_eq!(reply.status, 200, "set weight {weight}: {}", reply.text());
    reply.json()
}

/// The admin view of the route `default`.
pub async fn rollout(gateway: &Gateway) -> Value {
    let reply = get(&gateway.admin_url("/admin/rollouts/default"), &[("authorization", &admin_auth())]).await;
    assert_eq!(reply.status, 200, "GET rollout: {}", reply.text());
    reply.json()
}

/// The upstream that answered a chat completion for `user`.
pub async fn upstream_for(gateway: &Gateway, user: &str) -> String {
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello"}]});
    let reply = post_json(&gateway.url("/v1/chat/completions"), &[("x-user-id", user)], &body).await;
    assert_eq!(reply.status, 200, "chat for {user}: {}", reply.text());
    assert_eq!(reply.header("x-cutover-route"), Some("default"));
    assert_eq!(reply.header("x-cutover-fallback"), None, "no upstream failed, yet: {:?}", reply.headers);
    reply
        .header("x-cutover-upstream")
        .unwrap_or_else(|| panic!("no x-cutover-upstream: {:?}", reply.headers))
        .to_owned()
}

/// The users among `user-0`..`user-{count}` that the split sends to the candidate.
pub async fn candidate_users(gateway: &Gateway, count: usize) -> Vec<String> {
    let mut on_candidate = Vec::new();
    for user in (0..count).map(|n| format!("user-{n}")) {
        if upstream_for(gateway, &user).await == "candidate" {
            on_candidate.push(user);
        }
    }
    on_candidate
}
