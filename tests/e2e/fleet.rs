//! A fleet: three `cutover serve` processes on one throwaway PostgreSQL cluster
//! (`fleet_db`), with load over all three. One rollout on the summed evidence; a weight
//! set on one applied by the others; a leader killed mid-step replaced within its lease;
//! the database stopped under load; a deposed leader's write refused. Skipped, saying
//! so, only where PostgreSQL's binaries are missing (`.ci/run` installs them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_live::stats::{Arm, Sample, StepSnapshot, StepStats};
use cutover_model::{EventKind, Outcome};
use cutover_model::{Phase, RouteState};
use cutover_state::pg::{DEPARTED, EXPIRY_LEASES, EvidenceRow, Flushed, Lease, PgStore, Pruned};
use cutover_state::{Authority, Coordination, StateStore, StoreError, Write};
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
            "[routes.rollout]\ninterval = \"300ms\"\nsteps = [\n  {{ weight = 50, min_duration = \"1s\", max_duration = \"1h\", min_requests = {first_step_requests} }},\n  \
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
        while began.elapsed() < cutover_control::fleet::FLUSH_PERIOD * 4 {
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
        cutover_control::fleet::FLUSH_PERIOD * 4,
        cutover_control::fleet::FLUSH_PERIOD
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

/// `requests` candidate requests of `state`'s step, as an instance flushes them.
fn evidence_row(state: &RouteState, requests: u64) -> EvidenceRow {
    let stats = StepStats::default();
    let ok = Sample { outcome: Outcome::Ok, duration: Duration::from_millis(5), ttft: None, user: None };
    (0..requests).for_each(|_| stats.record(Arm::Candidate, ok));
    EvidenceRow {
        route: state.route.clone(),
        step: state.step,
        step_started_at: state.step_started_at,
        requests: requests as i64,
        snapshot: serde_json::to_string(&stats.snapshot()).unwrap(),
    }
}

fn summed_requests(snapshot: &StepSnapshot) -> u64 {
    snapshot.arm(Arm::Primary).requests() + snapshot.arm(Arm::Candidate).requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_instance_is_expired_its_evidence_of_the_step_kept_and_old_rows_of_finished_steps_deleted() {
    let Some(cluster) = Cluster::start("retention") else { return };
    let url = cluster.url();
    let lease = || Lease::new(Duration::from_secs(10));
    let leader = Arc::new(PgStore::open(&url, "leader", lease()).await.unwrap());
    let gone = PgStore::open(&url, "gone", lease()).await.unwrap();
    let back = PgStore::open(&url, "back", lease()).await.unwrap();
    assert!(leader.campaign().await.unwrap(), "the first leads");
    let state = blocking(&leader, |store| store.load_or_init(&["default"], 0)).await.unwrap().remove(0);
    assert_eq!(gone.flush(vec![evidence_row(&state, 3)], "{}".into(), 0, false).await.unwrap(), Flushed::Taken);
    assert_eq!(back.flush(vec![evidence_row(&state, 4)], "{}".into(), 0, false).await.unwrap(), Flushed::Taken);
    // Two rows of a step that no longer runs: one flushed long ago, one just now.
    cluster.sql(
        "INSERT INTO step_evidence (route, step, step_started_at, instance, requests, snapshot, flushed_at) VALUES
         ('default', 7, 1, 'old', 1, '{}', now() - interval '1 hour'), ('default', 8, 1, 'recent', 1, '{}', now())",
    );
    // Both fall silent for longer than the expiry (the leader keeps reporting).
    cluster.sql("UPDATE fleet_instances SET last_report = now() - interval '1 hour'");
    leader.flush(Vec::new(), "{}".into(), 0, false).await.unwrap();

    assert!(matches!(gone.prune().await, Err(StoreError::Fenced { .. })), "only the leader prunes");
    let pruned = leader.prune().await.unwrap();
    assert_eq!(pruned, Pruned { instances: 2, folded: 2, finished: 1 });
    assert_eq!(cluster.sql("SELECT string_agg(instance, ',' ORDER BY instance) FROM fleet_instances"), "leader");
    assert_eq!(
        cluster.sql("SELECT string_agg(instance || ' ' || requests, ',' ORDER BY instance) FROM step_evidence"),
        format!("recent 1,{DEPARTED} 7"),
        "the expired instances' rows of the step are one departed row; the old finished step's row is gone"
    );
    let merged = blocking(&leader, move |store| store.merged_evidence(&state, StepSnapshot::default())).await.unwrap();
    assert_eq!(summed_requests(&merged), 7, "the step keeps every request the expired instances counted");

    // `back` was only cut off: its next flush finds it expired and writes no evidence of
    // the step (its running total would count the folded requests twice).
    let state = blocking(&leader, |store| store.load_or_init(&["default"], 0)).await.unwrap().remove(0);
    let again = evidence_row(&state, 5);
    assert_eq!(back.flush(vec![again], "{}".into(), 0, true).await.unwrap(), Flushed::Expired);
    assert_eq!(cluster.sql("SELECT count(*) FROM step_evidence WHERE instance = 'back'"), "0");
    assert_eq!(cluster.sql("SELECT count(*) FROM fleet_instances WHERE instance = 'back'"), "1", "it reports again");
    assert_eq!(leader.prune().await.unwrap(), Pruned::default(), "nothing more to remove");
}

/// A gateway of `fleet_config` leading with a 3 s lease (so that an instance is expired
/// after `EXPIRY_LEASES` of them), named `instance`.
fn short_lease_config(primary: &Mock, candidate: &Mock, instance: &str) -> String {
    fleet_config(primary, candidate, instance, 1_000_000).replace("[state]\n", "[state]\nlease = \"3s\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_gateway_leaves_the_fleet_tables_after_its_expiry_and_fleet_status_shows_their_sizes() {
    let Some(cluster) = Cluster::start("expiry") else { return };
    let scratch = Scratch::new("fleet-expiry");
    let primary = Mock::start(&scratch, "primary", &[], &[]).await;
    let candidate = Mock::start(&scratch, "candidate", &[], &[]).await;
    let url = cluster.url();
    let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("FLEET_DATABASE_URL", url.as_str())];
    let (scratch_a, scratch_b) = (Scratch::new("fleet-expiry-a"), Scratch::new("fleet-expiry-b"));
    let a = Gateway::start(&scratch_a, &short_lease_config(&primary, &candidate, "a"), &env).await;
    let mut b = Gateway::start(&scratch_b, &short_lease_config(&primary, &candidate, "b"), &env).await;
    for gateway in [&a, &b] {
        until("both at the first step", async || (view(gateway).await["weight"] == json!(50.0)).then_some(())).await;
    }
    assert!(load(&[&a, &b], "before", 5).await.is_empty());
    until("the leader sums both", async || (fleet_requests(&view(&a).await) == Some(10)).then_some(())).await;

    b.process.signal("TERM");
    b.process.wait_exit(crate::wait::EVENTUALLY).await;
    until("the stopped gateway's report row is expired", async || {
        (cluster.sql("SELECT string_agg(instance, ',') FROM fleet_instances") == "a").then_some(())
    })
    .await;
    assert_eq!(
        cluster.sql("SELECT string_agg(instance || ' ' || requests, ',' ORDER BY instance) FROM step_evidence"),
        format!("a 5,{DEPARTED} 5"),
        "its evidence of the step is kept in the departed row"
    );
    assert!(load(&[&a], "after", 2).await.is_empty());
    until("the leader still sums the stopped gateway's evidence", async || {
        (fleet_requests(&view(&a).await) == Some(12)).then_some(())
    })
    .await;

    let config = scratch_a.path().join("cutover.toml").display().to_string();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["fleet", "status", "-c", &config])
        .env_clear()
        .envs(env)
        .output()
        .expect("cutover fleet status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{}", String::from_utf8_lossy(&status.stderr));
    assert!(text.contains("table rows: cutover_schema_version 2, events "), "{text}");
    assert!(text.contains("fleet_instances 1, fleet_lease 1, rollout_state 1, step_evidence 2, step_stats "), "{text}");
    let expiry = Lease::new(Duration::from_secs(3)).ttl.as_secs_f64() * f64::from(EXPIRY_LEASES);
    assert!(text.contains(&format!("(an instance silent for {expiry:.0}s is expired)")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_row_that_does_not_parse_is_an_error_naming_the_route_and_instance_not_an_empty_step() {
    let Some(cluster) = Cluster::start("corrupt") else { return };
    let url = cluster.url();
    let store = Arc::new(PgStore::open(&url, "me", Lease::new(Duration::from_secs(10))).await.unwrap());
    assert!(store.campaign().await.unwrap());
    let state = blocking(&store, |store| store.load_or_init(&["default"], 0)).await.unwrap().remove(0);
    store.flush(vec![evidence_row(&state, 2)], "{}".into(), 0, false).await.unwrap();
    let other = PgStore::open(&url, "other", Lease::new(Duration::from_secs(10))).await.unwrap();
    other.flush(vec![evidence_row(&state, 3)], "{}".into(), 0, false).await.unwrap();
    cluster.sql("UPDATE step_evidence SET snapshot = '{\"arms\": tru'");

    // Restarting under its name: its own row is refused, not restored as an empty step.
    let own = state.clone();
    let refused = blocking(&store, move |store| store.load_stats(&own)).await.unwrap_err();
    let message = refused.to_string();
    assert!(matches!(&refused, StoreError::EvidenceCorrupt { route, .. } if route == "default"), "{message}");
    assert!(message.contains("step_evidence row of instance \"me\""), "{message}");
    // The leader's sum: refused rather than judged without the other's requests.
    let summed = blocking(&store, move |store| store.merged_evidence(&state, StepSnapshot::default())).await;
    let message = summed.unwrap_err().to_string();
    assert!(
        message.contains("instance \"other\"") && message.contains("route \"default\" does not parse"),
        "{message}"
    );
}
