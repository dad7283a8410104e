//! The admin API: reading and setting the split by hand, its validation (in process and
//! as the served binary answers), its audit log, and the persistence of what it sets.

use cutover::mock::{MockConfig, MockServer};
use cutover::proxy::split;
use http::{Method, StatusCode};
use serde_json::json;

use crate::binary::{Gateway, Scratch, get, post_json};
use crate::served::{self, GATEWAY_ENV, admin_auth, serve_config, two_mocks};
use crate::support::{ADMIN_TOKEN, Setup, TempDir, metric, send, start_gateway, two_upstreams};

fn bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

#[tokio::test]
async fn the_admin_api_needs_the_bearer_token() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), "").await;
    for headers in [vec![], vec![("authorization", "Bearer nope")]] {
        let reply = send(Method::GET, &setup.admin_url("/admin/rollouts"), &headers, "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = send(Method::GET, &setup.admin_url("/healthz"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "health checks need no token");
}

#[tokio::test]
async fn set_weight_is_validated_applied_audited_and_exported() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), "").await;
    let auth = bearer();
    let weight_url = setup.admin_url("/admin/rollouts/default/weight");
    for bad in [r#"{"weight": 150}"#, r#"{"weight": -1}"#, r#"{"weight": 0.001}"#, r#"{"weight": "ten"}"#, "nope"] {
        let reply = send(Method::POST, &weight_url, &[("authorization", &auth)], bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let unknown = send(
        Method::POST,
        &setup.admin_url("/admin/rollouts/nope/weight"),
        &[("authorization", &auth)],
        r#"{"weight": 1}"#,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let reply = send(Method::POST, &weight_url, &[("authorization", &auth)], r#"{"weight": 0.05}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    let view =
        send(Method::GET, &setup.admin_url("/admin/rollouts/default"), &[("authorization", &auth)], "").await.json();
    assert_eq!((view["weight"].as_f64(), view["phase"].as_str()), (Some(0.05), Some("paused")));
    assert_eq!(view["candidate"], "candidate");
    let list = send(Method::GET, &setup.admin_url("/admin/rollouts"), &[("authorization", &auth)], "").await.json();
    assert_eq!(list[0]["route"], "default");
    let events = send(Method::GET, &setup.admin_url("/admin/events"), &[("authorization", &auth)], "").await.json();
    assert_eq!(events[0]["kind"], "set_weight");
    assert_eq!(events[0]["actor"], "admin-api");
    assert_eq!(events[0]["weight_percent"], 0.05);
    assert_eq!(metric(&setup.metrics().await, r#"cutover_rollout_weight_percent{route="default"}"#), 0.05);
}

#[tokio::test]
async fn a_five_hundredths_percent_weight_sends_exactly_the_users_of_the_five_lowest_buckets() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), "").await;
    setup.set_weight(0.05).await;
    let seed = split::seed_for("default");
    let users: Vec<String> = (0..200_000).map(|user| format!("u{user}")).collect();
    let inside: Vec<&String> = users.iter().filter(|user| split::bucket(seed, user.as_bytes()) < 5).take(3).collect();
    let outside: Vec<&String> =
        users.iter().filter(|user| split::bucket(seed, user.as_bytes()) >= 5).take(30).collect();
    assert_eq!(inside.len(), 3, "about 100 of 200,000 users fall in buckets 0-4");
    for user in inside {
        assert_eq!(setup.chat(user, false).await.header("x-cutover-upstream"), Some("candidate"), "{user}");
    }
    for user in outside {
        assert_eq!(setup.chat(user, false).await.header("x-cutover-upstream"), Some("primary"), "{user}");
    }
}

#[tokio::test]
async fn the_weight_survives_a_restart_of_the_gateway() {
    let primary = MockServer::start(MockConfig::default().with_name("primary")).await.unwrap();
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("restart");
    let config = two_upstreams(&primary.base_url(), &candidate.base_url(), "");
    let gateway = start_gateway(&config, &dir).await;
    let url = format!("http://{}/admin/rollouts/default/weight", gateway.admin_addr);
    let reply = send(Method::POST, &url, &[("authorization", &bearer())], r#"{"weight": 12.5}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    gateway.shutdown().await;
    let gateway = start_gateway(&config, &dir).await;
    let url = format!("http://{}/admin/rollouts/default", gateway.admin_addr);
    let view = send(Method::GET, &url, &[("authorization", &bearer())], "").await.json();
    assert_eq!((view["weight"].as_f64(), view["phase"].as_str()), (Some(12.5), Some("paused")));
    gateway.shutdown().await;
}

#[tokio::test]
async fn admin_refuses_weights_outside_0_to_100_and_requests_without_the_token() {
    let scratch = Scratch::new("admin-refusals");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate).build(), &GATEWAY_ENV).await;
    let weight_url = gateway.admin_url("/admin/rollouts/default/weight");
    let auth = admin_auth();

    for weight in [json!(150), json!(-1), json!(100.001), json!("50")] {
        let reply = post_json(&weight_url, &[("authorization", &auth)], &json!({ "weight": weight })).await;
        assert_eq!(reply.status, 400, "weight {weight}: {}", reply.text());
        reply.openai_error();
    }
    for headers in [vec![], vec![("authorization", "Bearer wrong-token")], vec![("authorization", served::ADMIN_TOKEN)]]
    {
        let reply = post_json(&weight_url, &headers, &json!({"weight": 50})).await;
        assert_eq!(reply.status, 401, "POST with {headers:?}: {}", reply.text());
        reply.openai_error();
        let reply = get(&gateway.admin_url("/admin/rollouts"), &headers).await;
        assert_eq!(reply.status, 401, "GET with {headers:?}: {}", reply.text());
    }
    let view = served::rollout(&gateway).await;
    assert_eq!(view["weight"], 0.0, "a refused change changed the weight: {view}");
    assert_eq!(view["phase"], "pending", "{view}");
}
