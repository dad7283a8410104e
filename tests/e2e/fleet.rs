//! A fleet: three `cutover serve` processes on one throwaway PostgreSQL cluster
//! (`fleet_db`), with load over all three. One rollout on the summed evidence; a weight
//! set on one applied by the others; a leader killed mid-step replaced within its lease;
//! the database stopped under load; a deposed leader's write refused. Skipped, saying
//! so, only where PostgreSQL's binaries are missing (`.ci/run` installs them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover::fleet::{Lease, PgStore};
use cutover::rollout::{Authority, EventKind, Phase, RouteState, StateStore, StoreError, Write};
use http::Method;
use serde_json::{Value, json};

use crate::binary::{Gateway, Mock, Scratch, get, post_json, send};
use crate::configs::GatewayToml;
use crate::fleet_db::Cluster;
use crate::wait::until;

const ADMIN_TOKEN: &str = "fleet-admin-token";

/// Route `default` sticky on `x-user-id`, its state in the cluster as `instance`; the
/// first step (50%) needs `first_step_requests` candidate and control requests, the
/// second (100%) more than any test sends.
fn fleet_config(primary: &Mock, candidate: &Mock, instance: &str, first_step_requests: u32) -> String {
    GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url())
        .admin_token_env("ADMIN_TOKEN")
        .section(&format!(
            "[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DATABASE_URL\"\ninstance = \"{instance}\"\n"
        ))
        .route_line("default", "sticky = \"header:x-user-id\"\nretries = 0")
        .section(&format!(
            "[routes.rollout]\ninterval = \"300ms\"\nsteps = [\n  {{ weight = 50, min_duration = \"1s\", min_requests = {first_step_requests} }},\n  \
             {{ weight = 100, min_duration = \"1h\", min_requests = 1000000 }},\n]\n"
        ))
        .build()
}

struct Fleet {
    scratches: Vec<Scratch>,
    gateways: Vec<Gateway>,
    mocks: (Mock, Mock),
}

/// Three gateways named a, b and c on `cluster`, started one after the other (a leads).
async fn three_gateways(tag: &str, cluster: &Cluster, first_step_requests: u32) -> Fleet {
    let mocks_dir = Scratch::new(&format!("{tag}-mocks"));
    let primary = Mock::start(&mocks_dir, "primary", &[], &[]).await;
    let candidate = Mock::start(&mocks_dir, "candidate", &[], &[]).await;
    let url = cluster.url();
    let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("FLEET_DATABASE_URL", url.as_str())];
    let mut scratches = vec![mocks_dir];
    let mut gateways = Vec::new();
    for instance in ["a", "b", "c"] {
        let scratch = Scratch::new(&format!("{tag}-{instance}"));
        let config = fleet_config(&primary, &candidate, instance, first_step_requests);
        gateways.push(Gateway::start(&scratch, &config, &env).await);
        scratches.push(scratch);
    }
    Fleet { scratches, gateways, mocks: (primary, candidate) }
}

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

async fn admin_json(gateway: &Gateway, path: &str) -> Value {
    let reply = get(&gateway.admin_url(path), &[("authorization", &auth())]).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.json()
}

async fn view(gateway: &Gateway) -> Value {
    admin_json(gateway, "/admin/rollouts/default").await
}

async fn fleet_status(gateway: &Gateway) -> Value {
    admin_json(gateway, "/admin/fleet").await
}

/// One chat completion for `user` through `gateway`; answers its status.
async fn chat(gateway: &Gateway, user: &str) -> u16 {
    let body = r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"Hello there"}]}"#;
    send(Method::POST, &gateway.url("/v1/chat/completions"), &[("x-user-id", user)], body).await.status.as_u16()
}

/// `count` requests on each gateway, users `{tag}-{n}`; answers the statuses that were not 200.
async fn load(gateways: &[&Gateway], tag: &str, count: usize) -> Vec<u16> {
    let mut failed = Vec::new();
    for n in 0..count {
        for (index, gateway) in gateways.iter().enumerate() {
            let status = chat(gateway, &format!("{tag}-{index}-{n}")).await;
            if status != 200 {
                failed.push(status);
            }
        }
    }
    failed
}

/// Attempts on route `default` this gateway's `/metrics` counts, all upstreams and outcomes.
async fn attempts(gateway: &Gateway) -> f64 {
    let page = get(&gateway.admin_url("/metrics"), &[("authorization", &auth())]).await.text();
    page.lines()
        .filter(|line| line.starts_with("cutover_requests_total{route=\"default\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The requests (primary and candidate) of the leader's summed evidence, once it has judged it.
fn fleet_requests(view: &Value) -> Option<u64> {
    let arms = view.get("fleet_arms")?;
    Some(arms["primary"]["requests"].as_u64()? + arms["candidate"]["requests"].as_u64()?)
}

async fn leader_index(gateways: &[&Gateway]) -> Option<usize> {
    for (index, gateway) in gateways.iter().enumerate() {
        if fleet_status(gateway).await["this"]["leads"] == json!(true) {
            return Some(index);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_run_one_rollout_on_their_summed_evidence_and_share_its_weights() {
    let Some(cluster) = Cluster::start("summed") else { return };
    // 30 candidate (and control) requests to pass the first step: each gateway alone
    // gets about 20 of the 120 sent, so only the sum can pass it.
    let fleet = three_gateways("fleet-summed", &cluster, 30).await;
    let all: Vec<&Gateway> = fleet.gateways.iter().collect();
    for gateway in &all {
        until("every gateway at the first step (50%)", async || {
            let view = view(gateway).await;
            (view["phase"] == "progressing" && view["weight"] == json!(50.0)).then_some(())
        })
        .await;
    }
    assert_eq!(leader_index(&all).await, Some(0), "the first gateway started leads");

    // Paused (from a follower) while the evidence comes in, so that the step cannot
    // advance before all of it is in; resumed from the other follower.
    command(all[1], "pause").await;
    for gateway in &all {
        until("every gateway sees the pause", async || (view(gateway).await["phase"] == "paused").then_some(())).await;
    }
    assert!(load(&all, "first", 40).await.is_empty(), "every request answered");
    for gateway in &all {
        let alone = view(gateway).await["arms"]["candidate"]["requests"].as_u64().unwrap();
        assert!(alone < 30, "no gateway alone has the evidence the step needs: {alone}");
    }
    command(all[2], "resume").await;
    let advanced = until("the rollout advances on the summed evidence", async || {
        let view = view(all[0]).await;
        (view["step"] == json!(1)).then_some(view)
    })
    .await;
    assert_eq!(advanced["weight"], json!(100.0));
    let events = admin_json(all[0], "/admin/events?route=default").await;
    assert!(events.as_array().unwrap().iter().any(|event| event["kind"] == "advance"), "{events}");
    for gateway in &all[1..] {
        until("the others apply the new step", async || (view(gateway).await["weight"] == json!(100.0)).then_some(()))
            .await;
    }

    // The second step's evidence, summed by the leader, is what the three served.
    let before: Vec<f64> = attempts_of(&all).await;
    assert!(load(&all, "second", 15).await.is_empty(), "every request answered");
    let after: Vec<f64> = attempts_of(&all).await;
    let served: u64 = after.iter().zip(&before).map(|(after, before)| (after - before) as u64).sum();
    assert_eq!(served, 45);
    until("the leader's summed evidence counts every request of the step", async || {
        (fleet_requests(&view(all[0]).await) == Some(served)).then_some(())
    })
    .await;

    // A weight set on b is applied by a and c.
    let set_at = Instant::now();
    let reply = post_json(
        &all[1].admin_url("/admin/rollouts/default/weight"),
        &[("authorization", &auth())],
        &json!({"weight": 30}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for (name, gateway) in [("a", all[0]), ("c", all[2])] {
        until("the weight set on b applied", async || (view(gateway).await["weight"] == json!(30.0)).then_some(()))
            .await;
        println!("MEASURED weight set on b applied by {name} after {:?}", set_at.elapsed());
    }
    let status = fleet_status(all[2]).await;
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3, "{status}");
    assert_eq!(status["leader"]["instance"], "a", "{status}");
}

async fn command(gateway: &Gateway, verb: &str) {
    let path = format!("/admin/rollouts/default/{verb}");
    let reply = send(Method::POST, &gateway.admin_url(&path), &[("authorization", &auth())], "").await;
    assert_eq!(reply.status, 200, "{verb}: {}", reply.text());
}

async fn attempts_of(gateways: &[&Gateway]) -> Vec<f64> {
    let mut counts = Vec::new();
    for gateway in gateways {
        counts.push(attempts(gateway).await);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_its_lease_and_the_step_keeps_its_start_and_evidence() {
    let Some(cluster) = Cluster::start("kill") else { return };
    let mut fleet = three_gateways("fleet-kill", &cluster, 1_000_000).await;
    {
        let all: Vec<&Gateway> = fleet.gateways.iter().collect();
        for gateway in &all {
            until("every gateway at the first step", async || {
                (view(gateway).await["weight"] == json!(50.0)).then_some(())
            })
            .await;
        }
    }
    let started_at = view(&fleet.gateways[0]).await["step_started_at"].clone();
    // Load over the three for several flush periods, then SIGKILL the leader (a).
    let mut rounds = 0u64;
    {
        let all: Vec<&Gateway> = fleet.gateways.iter().collect();
        let began = Instant::now();
        while began.elapsed() < cutover::fleet::FLUSH_PERIOD * 4 {
            assert!(load(&all, &format!("before-{rounds}"), 1).await.is_empty());
            rounds += 1;
        }
    }
    let leader = fleet.gateways.remove(0);
    leader.process.signal("KILL");
    let killed_at = Instant::now();
    let rest: Vec<&Gateway> = fleet.gateways.iter().collect();
    let new_leader = until("another gateway leads", async || leader_index(&rest).await).await;
    let failover = killed_at.elapsed();
    println!("MEASURED leader failover after SIGKILL: {failover:?}");
    let view_after = view(rest[new_leader]).await;
    assert_eq!(view_after["step_started_at"], started_at, "the step keeps its start");
    assert_eq!(view_after["step"], json!(0));
    // The survivors' evidence is whole; the killed one's is what it flushed last.
    let counted = until("the new leader judges the survivors' whole evidence", async || {
        fleet_requests(&view(rest[new_leader]).await).filter(|counted| *counted >= 2 * rounds)
    })
    .await;
    let lost = (3 * rounds).saturating_sub(counted);
    println!(
        "MEASURED evidence lost with the killed leader: {lost} of its {rounds} requests, sent over {:?} \
         (the flush period is {:?})",
        cutover::fleet::FLUSH_PERIOD * 4,
        cutover::fleet::FLUSH_PERIOD
    );
    assert!(lost < rounds, "the killed gateway's flushed evidence is kept: counted {counted} of {}", 3 * rounds);
    assert!(load(&rest, "after", 5).await.is_empty(), "the others serve on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_fails_no_request_changes_no_weight_and_the_evidence_arrives_after() {
    let Some(cluster) = Cluster::start("outage") else { return };
    // The first step needs 10 candidate requests: the load during the outage brings far
    // more, but no decision is taken without the database.
    let fleet = three_gateways("fleet-outage", &cluster, 10).await;
    let all: Vec<&Gateway> = fleet.gateways.iter().collect();
    for gateway in &all {
        until("every gateway at the first step", async || (view(gateway).await["weight"] == json!(50.0)).then_some(()))
            .await;
    }
    cluster.stop_server();
    let stopped = Instant::now();
    let mut failed = Vec::new();
    let mut sent = 0u64;
    let mut round = 0;
    while stopped.elapsed() < Duration::from_secs(20) {
        failed.extend(load(&all, &format!("outage-{round}"), 1).await);
        sent += 3;
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed.is_empty(), "requests failed while the database was away: {failed:?}");
    for gateway in &all {
        let view = view(gateway).await;
        assert_eq!((view["step"].clone(), view["weight"].clone()), (json!(0), json!(50.0)), "the last weights stay");
        let status = fleet_status(gateway).await;
        assert_eq!(status["this"]["database_reachable"], json!(false), "{status}");
        assert!(status["this"]["buffered_requests"].as_u64().unwrap() > 0, "{status}");
        assert!(status["this"]["decisions"].as_str().unwrap().starts_with("held"), "{status}");
    }
    cluster.start_server();
    // Back: the rollout advances on the evidence of the outage, all of it flushed.
    for gateway in &all {
        until("the step advances once the database is back", async || {
            (view(gateway).await["weight"] == json!(100.0)).then_some(())
        })
        .await;
    }
    let flushed: u64 = until("the outage's evidence in the database", async || {
        let sum = cluster.sql("SELECT COALESCE(sum(requests), 0) FROM step_evidence WHERE step = 0");
        sum.parse::<u64>().ok().filter(|sum| *sum == sent)
    })
    .await;
    assert_eq!(flushed, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_write_is_refused() {
    let Some(cluster) = Cluster::start("fencing") else { return };
    let url = cluster.url();
    let first = Arc::new(PgStore::open(&url, "first", Lease::new(Duration::from_secs(10))).await.unwrap());
    let second = Arc::new(PgStore::open(&url, "second", Lease::new(Duration::from_secs(10))).await.unwrap());
    assert!(first.campaign().await.unwrap(), "the first leads");
    assert!(!second.campaign().await.unwrap(), "one leader at a time");
    let states = blocking(&first, |store| store.load_or_init(&["default"], 0)).await.unwrap();
    // The first stalls (a pause, a partition): its lease runs out in the database while
    // its own clock has not noticed yet, and the second takes over.
    cluster.sql("UPDATE fleet_lease SET expires_at = now()");
    assert!(second.campaign().await.unwrap(), "the second leads once the lease ran out");
    assert!(first.lease().leads(), "the first still believes it leads");
    let state = RouteState { phase: Phase::Progressing, weight_bp: 1000, ..states[0].clone() };
    let refused = blocking(&first, move |store| {
        store.record(Write {
            state: &state,
            from: Phase::Pending,
            kind: EventKind::Start,
            actor: "controller",
            reason: "a late decision",
            now_ms: 1,
            authority: Authority::Controller,
        })
    })
    .await;
    assert!(matches!(refused, Err(StoreError::Fenced { .. })), "{refused:?}");
    assert_eq!(cluster.sql("SELECT phase || ' ' || weight_bp FROM rollout_state"), "pending 0");
    assert_eq!(cluster.sql("SELECT count(*) FROM events"), "0");
}

async fn blocking<T: Send + 'static>(
    store: &Arc<PgStore>,
    call: impl FnOnce(&PgStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_under_its_name_continues_its_evidence_of_the_step() {
    let Some(cluster) = Cluster::start("restart") else { return };
    let mut fleet = three_gateways("fleet-restart", &cluster, 1_000_000).await;
    for gateway in &fleet.gateways {
        until("every gateway at the first step", async || (view(gateway).await["weight"] == json!(50.0)).then_some(()))
            .await;
    }
    {
        let all: Vec<&Gateway> = fleet.gateways.iter().collect();
        assert!(load(&all, "before", 10).await.is_empty());
        until("the leader sums the three", async || (fleet_requests(&view(all[0]).await) == Some(30)).then_some(()))
            .await;
    }
    let step_started_at = view(&fleet.gateways[0]).await["step_started_at"].clone();
    // c stops (SIGTERM: drained, evidence flushed) and comes back under the same name.
    let mut stopped = fleet.gateways.pop().unwrap();
    stopped.process.signal("TERM");
    stopped.process.wait_exit(crate::wait::EVENTUALLY).await;
    let config = fleet_config(&fleet.mocks.0, &fleet.mocks.1, "c", 1_000_000);
    let url = cluster.url();
    let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("FLEET_DATABASE_URL", url.as_str())];
    let restarted = Gateway::start(&fleet.scratches[3], &config, &env).await;
    let resumed = view(&restarted).await;
    assert_eq!(resumed["step_started_at"], step_started_at);
    assert_eq!(
        resumed["arms"]["primary"]["requests"].as_u64().unwrap()
            + resumed["arms"]["candidate"]["requests"].as_u64().unwrap(),
        10,
        "its evidence of the step is back: {resumed}"
    );
    assert!(load(&[&restarted], "after", 5).await.is_empty());
    until("the leader sums the restarted gateway's whole evidence", async || {
        (fleet_requests(&view(&fleet.gateways[0]).await) == Some(35)).then_some(())
    })
    .await;
}
