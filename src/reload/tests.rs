//! The reload decision: what applies, what takes a restart and why, and what the new
//! gateway carries over from the old one.

use std::path::Path;
use std::sync::Arc;

use cutover_config::{Config, load_str};
use cutover_metrics::Metrics;

use super::{Changes, Refusal, assess};
use crate::proxy::Gateway;
use cutover_live::LiveState;
use cutover_model::RouteState;

const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"

[auth]
keys = [{ name = "web", key_env = "KEY_WEB" }]

[upstreams.official]
base_url = "http://127.0.0.1:8001/v1"

[upstreams.relay]
base_url = "http://127.0.0.1:8002/v1"

[[routes]]
name = "default"
primary = "official"
candidate = "relay"
fallback = true

[[routes]]
name = "embeddings"
models = ["text-embedding-*"]
primary = "official"
"#;

fn load(text: &str) -> Config {
    let env = |name: &str| Some(format!("secret-of-{name}"));
    load_str(text, Path::new("/etc/cutover"), env).unwrap()
}

/// `BASE` with `from` replaced by `to` (which must be found).
fn edited(from: &str, to: &str) -> Config {
    assert!(BASE.contains(from), "{from:?} is not in the base config");
    load(&BASE.replacen(from, to, 1))
}

fn refusals(next: &Config) -> Vec<Refusal> {
    assess(&load(BASE), next).unwrap_err().0
}

#[test]
fn the_same_file_again_applies_and_changes_nothing() {
    let changes = assess(&load(BASE), &load(BASE)).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(changes.to_string(), "nothing changed");
}

#[test]
fn a_gateway_key_added_a_fallback_changed_and_an_alias_added_all_apply() {
    let next = load(
        &BASE
            .replace(
                r#"keys = [{ name = "web", key_env = "KEY_WEB" }]"#,
                r#"keys = [{ name = "web", key_env = "KEY_WEB" }, { name = "batch", key_env = "KEY_BATCH" }]"#,
            )
            .replace("fallback = true", "fallback = false")
            .replace(
                "base_url = \"http://127.0.0.1:8002/v1\"",
                "base_url = \"http://127.0.0.1:8002/v1\"\nmodels = { \"gpt-4.1\" = \"relay-4.1\" }",
            ),
    );
    let changes = assess(&load(BASE), &next).unwrap();
    let expected = Changes {
        upstreams_changed: 1,
        routes: 2,
        routes_changed: 1,
        gateway_keys: (1, 2),
        gateway_keys_changed: true,
        ..Changes::default()
    };
    assert_eq!(changes, expected);
    let line = changes.to_string();
    assert!(line.contains("upstreams: 1 changed, 0 added, 0 removed"), "{line}");
    assert!(line.contains("routes: 1 of 2 changed (0 plans)"), "{line}");
    assert!(line.contains("gateway keys: 1 → 2 (changed)"), "{line}");
}

#[test]
fn an_upstream_added_and_its_base_url_changed_count_as_upstream_changes() {
    let next = edited(
        "[upstreams.relay]\nbase_url = \"http://127.0.0.1:8002/v1\"",
        "[upstreams.relay]\nbase_url = \"http://127.0.0.1:8003/v1\"\n\n[upstreams.spare]\nbase_url = \"http://127.0.0.1:8004/v1\"",
    );
    let changes = assess(&load(BASE), &next).unwrap();
    assert_eq!((changes.upstreams_changed, changes.upstreams_added, changes.upstreams_removed), (1, 1, 0));
}

#[test]
fn a_plan_added_to_a_route_applies_and_is_counted_as_a_plan_change() {
    let plan = "fallback = true\n\n[routes.rollout]\ninterval = \"1m\"\nsteps = [{ weight = 10, min_duration = \"1m\", min_requests = 10 }]";
    let changes = assess(&load(BASE), &edited("fallback = true", plan)).unwrap();
    assert_eq!((changes.routes_changed, changes.plans_changed), (1, 1));
}

#[test]
fn a_route_added_is_refused_naming_both_lists() {
    let next = load(&format!("{BASE}\n[[routes]]\nname = \"beta\"\nmodels = [\"beta-*\"]\nprimary = \"relay\"\n"));
    let refused = refusals(&next);
    assert_eq!(
        refused,
        vec![Refusal::Routes {
            before: vec!["default".into(), "embeddings".into()],
            after: vec!["default".into(), "embeddings".into(), "beta".into()],
        }]
    );
    assert_eq!(
        refused[0].to_string(),
        "routes changed ([default, embeddings] → [default, embeddings, beta]): restart to apply"
    );
}

#[test]
fn a_route_renamed_or_removed_is_refused() {
    let renamed = refusals(&edited("name = \"embeddings\"", "name = \"vectors\""));
    assert!(matches!(&renamed[..], [Refusal::Routes { .. }]), "{renamed:?}");
    let first_route_only = &BASE[..BASE.find("[[routes]]\nname = \"embeddings\"").unwrap()];
    let removed = refusals(&load(first_route_only));
    assert!(matches!(&removed[..], [Refusal::Routes { .. }]), "{removed:?}");
}

#[test]
fn routes_reordered_are_refused_since_route_ids_would_point_at_other_routes() {
    let split_at = BASE.find("[[routes]]").unwrap();
    let (head, routes) = BASE.split_at(split_at);
    let second = routes.rfind("[[routes]]").unwrap();
    let reordered = format!("{head}{}\n{}", &routes[second..], &routes[..second]);
    let refused = refusals(&load(&reordered));
    assert!(
        matches!(&refused[..], [Refusal::Routes { after, .. }] if after == &["embeddings".to_owned(), "default".to_owned()]),
        "{refused:?}"
    );
}

#[test]
fn a_route_given_another_candidate_is_refused_since_its_rollout_is_about_the_old_one() {
    let spare = "\n[upstreams.spare]\nbase_url = \"http://127.0.0.1:8004/v1\"\n";
    let next = load(&format!("{}{spare}", BASE.replace("candidate = \"relay\"", "candidate = \"spare\"")));
    let refused = refusals(&next);
    let expected = Refusal::Arm {
        route: "default".into(),
        arm: "candidate",
        before: Some("relay".into()),
        after: Some("spare".into()),
    };
    assert_eq!(refused, vec![expected]);
    assert_eq!(refused[0].to_string(), "route default: candidate changed (relay → spare): restart to apply");
}

#[test]
fn a_candidate_removed_or_a_primary_renamed_is_refused() {
    let removed = refusals(&edited("candidate = \"relay\"\n", ""));
    assert!(matches!(&removed[..], [Refusal::Arm { arm: "candidate", after: None, .. }]), "{removed:?}");
    let renamed = load(&BASE.replace("official", "openai"));
    let refused = refusals(&renamed);
    assert_eq!(refused.len(), 2, "both routes' primaries: {refused:?}");
    assert!(refused.iter().all(|refusal| matches!(refusal, Refusal::Arm { arm: "primary", .. })), "{refused:?}");
}

#[test]
fn listener_addresses_and_the_state_file_take_a_restart() {
    let next = load(
        &BASE
            .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8081\"")
            .replace("[auth]", "max_connections = 100\n\n[state]\npath = \"other.db\"\n\n[auth]"),
    );
    let keys: Vec<&str> = refusals(&next)
        .iter()
        .map(|refusal| match refusal {
            Refusal::Fixed { key, .. } => *key,
            other => panic!("not a fixed setting: {other}"),
        })
        .collect();
    assert_eq!(keys, ["server.listen", "server connection settings (proxy)", "state.path"]);
}

#[test]
fn every_reason_is_reported_at_once() {
    let next = load(
        &BASE
            .replace("admin_listen = \"127.0.0.1:9090\"", "admin_listen = \"127.0.0.1:9091\"")
            .replace("name = \"embeddings\"", "name = \"vectors\""),
    );
    let refused = assess(&load(BASE), &next).unwrap_err();
    assert_eq!(refused.0.len(), 2, "{refused}");
    let text = refused.to_string();
    assert!(text.starts_with("routes changed"), "{text}");
    assert!(
        text.contains("; server.admin_listen changed (127.0.0.1:9090 → 127.0.0.1:9091): restart to apply"),
        "{text}"
    );
}

/// A gateway over `config` with fresh metrics and live state.
fn gateway(config: Config) -> Gateway {
    let states = config.routes.map(|_, route| RouteState::initial(&route.name, 0));
    let metrics = Arc::new(Metrics::new(&config));
    Gateway::new(Arc::new(config), metrics, Arc::new(LiveState::new(&states)))
}

#[tokio::test]
async fn a_reload_keeps_the_open_breaker_of_an_unchanged_upstream_and_resets_a_changed_one() {
    let before = gateway(load(BASE));
    before.open_every_breaker();
    let next = edited("http://127.0.0.1:8002/v1", "http://127.0.0.1:8003/v1");
    let after = before.reloaded(Arc::new(next));
    assert_eq!(after.breakers_open(), [true, false], "official unchanged, relay moved");
    assert!(Arc::ptr_eq(&before.metrics, &after.metrics), "the metrics are carried over");
    assert!(Arc::ptr_eq(&before.live, &after.live), "the live rollout state is carried over");
}

#[tokio::test]
async fn a_reload_that_only_adds_an_alias_keeps_the_breaker() {
    let before = gateway(load(BASE));
    before.open_every_breaker();
    let next = edited(
        "base_url = \"http://127.0.0.1:8002/v1\"",
        "base_url = \"http://127.0.0.1:8002/v1\"\nmodels = { \"gpt-4.1\" = \"relay-4.1\" }",
    );
    assert_eq!(before.reloaded(Arc::new(next)).breakers_open(), [true, true]);
}
