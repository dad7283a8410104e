//! The rollout controller end to end: plans compressed into fractions of a second, real
//! traffic from many users through the gateway, and the phases, events and verdicts that
//! follow. The controller looks every `interval` (200 ms here).

use std::time::Duration;

use cutover::mock::{FaultKind, FaultRule, MockConfig, UsagePlacement, UsagePlan};
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::state_file::saved_candidate_requests;
use crate::support::{
    ADMIN_TOKEN, Reply, STATE_FILE, Setup, TempDir, held_to, send, start_gateway, unhurried_upstreams,
};
use crate::wait::{EVENTUALLY, until};

fn plan(extra: &str, steps: &str) -> String {
    format!("retries = 0\n[routes.rollout]\ninterval = \"200ms\"\nfailure_limit = 3\n{extra}\nsteps = [\n{steps}\n]\n")
}

/// Each step's `max_duration` far beyond any test's patience: these tests are about the
/// verdicts, and 4 × 300 ms (the default) would end a slow machine's steps undecided.
const THREE_STEPS: &str = r#"
  { weight = 20,  min_duration = "300ms", max_duration = "1h", min_requests = 15 },
  { weight = 50,  min_duration = "300ms", max_duration = "1h", min_requests = 15 },
  { weight = 100, min_duration = "300ms", max_duration = "1h", min_requests = 15 },
"#;

async fn admin(setup: &Setup, method: Method, path: &str) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    send(method, &setup.admin_url(path), &[("authorization", &auth)], "").await
}

/// The route's rollout view, every one held to its type (`support::held_to`).
async fn view(setup: &Setup) -> Value {
    let json: Value = admin(setup, Method::GET, "/admin/rollouts/default").await.json();
    held_to::<cutover_model::view::RolloutView>(&json);
    json
}

/// The route's events, oldest first.
async fn event_log(setup: &Setup) -> Vec<Value> {
    let events = admin(setup, Method::GET, "/admin/events?route=default").await.json();
    let mut events = events.as_array().unwrap().clone();
    events.reverse();
    events
}

/// The kinds of the route's events, oldest first.
async fn events(setup: &Setup) -> Vec<String> {
    event_log(setup).await.iter().map(|event| event["kind"].as_str().unwrap().to_owned()).collect()
}

/// Sends traffic from 200 users, 20 requests between two looks, until `probe` returns
/// `Some` (or [`EVENTUALLY`] passes: then the test fails naming `what`).
async fn drive_until<T>(setup: &Setup, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EVENTUALLY;
    let mut user = 0;
    loop {
        for _ in 0..20 {
            user = (user + 1) % 200;
            let reply = setup.chat(&format!("user-{user}"), false).await;
            assert_eq!(reply.status, StatusCode::OK, "users never see the candidate's failures: {}", reply.text());
        }
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "still waiting after {EVENTUALLY:?} for {what}: {:#}", view(setup).await);
    }
}

/// Drives traffic until the rollout reaches `phase` or ends otherwise (promoted or rolled
/// back), and returns its view then.
async fn drive_to_phase(setup: &Setup, phase: &str) -> Value {
    drive_until(setup, &format!("phase {phase}"), async || {
        let view = view(setup).await;
        [phase, "promoted", "rolled_back"].contains(&view["phase"].as_str().unwrap_or_default()).then_some(view)
    })
    .await
}

#[tokio::test]
async fn a_healthy_candidate_is_promoted_through_every_step() {
    // Tight enough to need real comparisons at every step (each against the primary's
    // users of the same window, and at 100% against the previous step's primary).
    let route = plan("max_error_rate = 5.0\nmax_error_rate_increase = 10.0", THREE_STEPS);
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    let view = drive_to_phase(&setup, "promoted").await;
    assert_eq!(view["phase"], "promoted", "{view:#}");
    assert_eq!(view["weight"], 100.0);
    assert_eq!(events(&setup).await, ["start", "advance", "advance", "promoted"]);
}

#[tokio::test]
async fn an_error_rate_breach_rolls_back_after_failure_limit_checks_even_when_fallback_rescued_users() {
    // No breaker: its ejections count as candidate failures and would reach the hard
    // ceiling first; this test is about the interval analysis.
    let no_breaker = "\n[upstreams.candidate.breaker]\nconsecutive_failures = 1000000\nerror_rate = 100\n";
    let route = plan("max_error_rate = 5.0", THREE_STEPS) + no_breaker;
    // 15%: far past the 5% criterion, yet never near the 50% hard ceiling, so the
    // rollback comes from the interval analysis this test is about.
    let flaky = MockConfig::default().with_fault(FaultRule::new(FaultKind::Status500, 0.15));
    let setup = Setup::unhurried(MockConfig::default(), flaky, &route).await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
    assert_eq!(view["weight"], 0.0);
    let kinds = events(&setup).await;
    assert_eq!(kinds.first().map(String::as_str), Some("start"));
    assert_eq!(kinds.last().map(String::as_str), Some("rollback"));
    assert!(!kinds.contains(&"advance".to_owned()), "{kinds:?}");
    // Exactly `failure_limit` (3) failed checks in a row: two counted, the third rolls back.
    assert!(kinds.ends_with(&["check_failed", "check_failed", "rollback"].map(String::from)), "{kinds:?}");
    let log = event_log(&setup).await;
    let reason = log.last().unwrap()["reason"].as_str().unwrap();
    assert!(reason.starts_with("3 consecutive failed checks; last: fail: max_error_rate"), "{reason}");
}

#[tokio::test]
async fn an_error_increase_over_the_control_slice_rolls_back_on_that_criterion() {
    // A comparative criterion only: compared with anything but the primary's users (the
    // candidate itself, an empty arm) this candidate would pass or hold, not roll back.
    let no_breaker = "\n[upstreams.candidate.breaker]\nconsecutive_failures = 1000000\nerror_rate = 100\n";
    let route = plan("max_error_rate_increase = 5.0", THREE_STEPS) + no_breaker;
    // 15%, three times the margin. At 30% the hard ceiling (50% over 20 requests or more)
    // was crossed by chance first in about 6.5% of runs; at 15% in about 0.03%.
    let flaky = MockConfig::default().with_fault(FaultRule::new(FaultKind::Status500, 0.15));
    let setup = Setup::unhurried(MockConfig::default(), flaky, &route).await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
    let log = event_log(&setup).await;
    let reason = log.last().unwrap()["reason"].as_str().unwrap();
    assert!(reason.starts_with("3 consecutive failed checks; last: fail: max_error_rate_increase"), "{reason}");
}

#[tokio::test]
async fn a_candidate_failing_everything_is_rolled_back_at_once_by_the_hard_ceiling() {
    let route = plan("max_error_rate = 5.0\ninterval = \"1h\"", THREE_STEPS).replace("interval = \"200ms\"\n", "");
    let down = MockConfig::default().with_fault(FaultRule::always(FaultKind::Status503));
    let setup = Setup::unhurried(MockConfig::default(), down, &route).await;
    admin(&setup, Method::POST, "/admin/rollouts/default/resume").await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "the hourly analysis did not have to run: {view:#}");
    let events = admin(&setup, Method::GET, "/admin/events?route=default&limit=1").await.json();
    assert!(events[0]["reason"].as_str().unwrap().contains("hard ceiling"), "{events:#}");
}

#[tokio::test]
async fn a_candidate_answering_with_a_login_page_is_rolled_back_never_promoted() {
    // An expired relay account: every answer a 302 to its login page, or the page itself
    // with 200. Users are rescued by the primary; the candidate's evidence is failures.
    for fault in [FaultKind::Redirect, FaultKind::Html200] {
        let route = plan("max_error_rate = 5.0", THREE_STEPS);
        let login = MockConfig::default().with_fault(FaultRule::always(fault));
        let setup = Setup::unhurried(MockConfig::default(), login, &route).await;
        let view = drive_to_phase(&setup, "rolled_back").await;
        assert_eq!(view["phase"], "rolled_back", "{fault}: {view:#}");
        assert_eq!(view["weight"], 0.0);
        let kinds = events(&setup).await;
        assert!(!kinds.iter().any(|kind| kind == "advance" || kind == "promoted"), "{fault}: {kinds:?}");
    }
}

#[tokio::test]
async fn a_latency_regression_rolls_back() {
    let route = plan("max_latency_p50_ratio = 1.5", THREE_STEPS);
    let slow = MockConfig::default().with_latency(Duration::from_millis(60));
    let setup = Setup::unhurried(MockConfig::default().with_latency(Duration::from_millis(5)), slow, &route).await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
}

/// Waits for an analysis that counted every candidate request sent so far, and returns
/// the view that shows it.
async fn evaluated_with_all_candidate_requests(setup: &Setup) -> Value {
    until("an analysis of all the candidate's requests", async || {
        let view = view(setup).await;
        let gates = view["evaluation"]["gates"].as_array()?;
        let counted = gates.iter().find(|gate| gate["gate"] == "candidate_requests")?["have"].as_f64()?;
        let sent = view["arms"]["candidate"]["requests"].as_f64()?;
        (sent > 0.0 && counted == sent).then_some(view)
    })
    .await
}

#[tokio::test]
async fn low_traffic_stays_inconclusive_and_says_what_is_missing() {
    let route = plan(
        "max_error_rate = 5.0",
        "{ weight = 50, min_duration = \"100ms\", max_duration = \"1h\", min_requests = 1000 },",
    );
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    until("the rollout to start", async || (view(&setup).await["phase"] == "progressing").then_some(())).await;
    for user in 0..40 {
        setup.chat(&format!("user-{user}"), false).await;
    }
    evaluated_with_all_candidate_requests(&setup).await;
    for user in 0..40 {
        setup.chat(&format!("user-{user}"), false).await;
    }
    let view = evaluated_with_all_candidate_requests(&setup).await;
    assert_eq!(view["phase"], "progressing");
    assert_eq!(view["step"], 0);
    assert_eq!(view["evaluation"]["verdict"], "inconclusive", "{view:#}");
    let gates = view["evaluation"]["gates"].as_array().unwrap();
    let requests = gates.iter().find(|gate| gate["gate"] == "candidate_requests").unwrap();
    assert_eq!(requests["met"], false);
    assert!(requests["eta_seconds"].as_f64().is_some(), "an ETA at the current rate: {requests}");
}

#[tokio::test]
async fn a_doubled_candidate_with_too_few_users_ends_its_step_undecided_paused_and_alerting() {
    // A candidate failing twice as often as its margin allows, seen through four sticky
    // users: far too few for a 0.5 pp margin to be resolved either way, so the step can
    // only hold, and at its max_duration it pauses for an operator instead.
    let no_breaker = "\n[upstreams.candidate.breaker]\nconsecutive_failures = 1000000\nerror_rate = 100\n";
    let step = "{ weight = 50, min_duration = \"300ms\", max_duration = \"2s\", min_requests = 15 },";
    // A harm budget this large never binds: the undecided path alone (the derived budget is
    // specified in `decide`'s tests).
    let route = plan("max_error_rate_increase = 0.5\nmax_excess_failures = 1000000", step) + no_breaker;
    let flaky = MockConfig::default().with_fault(FaultRule::new(FaultKind::Status500, 0.02));
    let setup = Setup::unhurried(MockConfig::default(), flaky, &route).await;
    let deadline = Instant::now() + EVENTUALLY;
    let ended = loop {
        for user in 0..4 {
            let reply = setup.chat(&format!("user-{user}"), false).await;
            assert_eq!(reply.status, StatusCode::OK, "the primary rescues the candidate's failures: {}", reply.text());
        }
        let now = view(&setup).await;
        if now["phase"] != "progressing" && now["phase"] != "pending" {
            break now;
        }
        assert!(Instant::now() < deadline, "still running after {EVENTUALLY:?}: {now:#}");
    };
    assert_eq!((ended["phase"].as_str(), ended["weight"].as_f64()), (Some("paused"), Some(50.0)), "{ended:#}");
    assert_eq!(events(&setup).await.last().map(String::as_str), Some("undecided"));
    let reason = ended["undecided"]["reason"].as_str().unwrap_or_else(|| panic!("{ended:#}"));
    assert!(reason.starts_with("undecided after ") && reason.contains(" of step time (max_duration 2s): "), "{reason}");
    assert!(reason.contains("users and ") && reason.contains("cannot resolve 0.5 pp: detectable increase"), "{reason}");
    assert!(ended["undecided"]["since"].as_i64().is_some(), "{ended:#}");

    let page = setup.metrics().await;
    assert_eq!(crate::support::metric(&page, r#"cutover_rollout_undecided{route="default"}"#), 1.0);
    let firing = until("the default rollout_undecided alert to fire", async || {
        let alerts = admin(&setup, Method::GET, "/admin/alerts").await.json();
        let alerts = alerts["alerts"].as_array().cloned().unwrap_or_default();
        alerts.into_iter().find(|alert| alert["alert"] == "rollout_undecided" && alert["state"] == "firing")
    })
    .await;
    assert_eq!(firing["severity"], "warning", "{firing:#}");

    // An operator's decision ends it: the alert resolves and the gauge drops.
    admin(&setup, Method::POST, "/admin/rollouts/default/abort").await;
    assert_eq!(view(&setup).await["undecided"], Value::Null);
    until("the rollout_undecided alert to resolve", async || {
        let alerts = admin(&setup, Method::GET, "/admin/alerts").await.json();
        let alerts = alerts["alerts"].as_array().cloned().unwrap_or_default();
        let firing = alerts.iter().any(|alert| alert["alert"] == "rollout_undecided" && alert["state"] == "firing");
        (!firing).then_some(())
    })
    .await;
}

#[tokio::test]
async fn commands_follow_the_phase_rules_and_are_audited() {
    let route = plan("max_error_rate = 5.0\ncooldown = \"0s\"", THREE_STEPS)
        .replace("interval = \"200ms\"", "interval = \"1h\"");
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    let status = |reply: Reply| (reply.status, reply.json()["phase"].as_str().map(str::to_owned));
    let post = |verb: &'static str| {
        admin(&setup, Method::POST, Box::leak(format!("/admin/rollouts/default/{verb}").into_boxed_str()))
    };
    assert_eq!(post("pause").await.status, StatusCode::CONFLICT, "nothing to pause while pending");
    assert_eq!(status(post("resume").await), (StatusCode::OK, Some("progressing".to_owned())));
    assert_eq!(view(&setup).await["weight"], 20.0);
    assert_eq!(status(post("pause").await), (StatusCode::OK, Some("paused".to_owned())));
    let conflict = post("pause").await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert!(conflict.openai_error()["message"].as_str().unwrap().contains("paused"));
    assert_eq!(status(post("promote").await).0, StatusCode::OK);
    assert_eq!(view(&setup).await["weight"], 50.0);
    assert_eq!(status(post("promote?full=true").await), (StatusCode::OK, Some("promoted".to_owned())));
    assert_eq!(post("promote").await.status, StatusCode::CONFLICT);
    assert_eq!(status(post("abort").await), (StatusCode::OK, Some("rolled_back".to_owned())));
    assert_eq!(view(&setup).await["weight"], 0.0);
    assert_eq!(post("abort").await.status, StatusCode::CONFLICT);
    assert_eq!(status(post("retry").await), (StatusCode::OK, Some("progressing".to_owned())));
    assert_eq!(post("retry").await.status, StatusCode::CONFLICT);
    let audit = admin(&setup, Method::GET, "/admin/events?route=default").await.json();
    let kinds: Vec<&str> =
        audit.as_array().unwrap().iter().rev().map(|event| event["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["resume", "pause", "promote", "promote_full", "abort", "retry"]);
    assert!(audit.as_array().unwrap().iter().all(|event| event["actor"] == "admin-api"));
}

#[tokio::test]
async fn retry_waits_for_the_cooldown_after_a_rollback() {
    let route = plan("cooldown = \"1h\"", THREE_STEPS).replace("interval = \"200ms\"", "interval = \"1h\"");
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    admin(&setup, Method::POST, "/admin/rollouts/default/abort").await;
    let refused = admin(&setup, Method::POST, "/admin/rollouts/default/retry").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.openai_error()["message"].as_str().unwrap().contains("retry is possible in"));
}

#[tokio::test]
async fn a_route_without_a_plan_refuses_plan_commands() {
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), "").await;
    let refused = admin(&setup, Method::POST, "/admin/rollouts/default/promote").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.openai_error()["message"].as_str().unwrap().contains("no [routes.rollout] plan"));
}

#[tokio::test]
async fn dry_run_logs_verdicts_without_moving_the_weight() {
    let route = plan("mode = \"dry-run\"\nmax_error_rate = 50.0", THREE_STEPS);
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    // A passing verdict: what would have advanced the step outside a dry run.
    drive_until(&setup, "a passing dry-run verdict", async || {
        let log = event_log(&setup).await;
        log.iter()
            .any(|event| {
                event["kind"] == "dry_run_verdict"
                    && event["reason"].as_str().is_some_and(|why| why.starts_with("pass"))
            })
            .then_some(())
    })
    .await;
    let view = view(&setup).await;
    assert_eq!((view["step"].as_u64(), view["weight"].as_f64()), (Some(0), Some(20.0)), "{view:#}");
    assert!(events(&setup).await.contains(&"dry_run_verdict".to_owned()));
}

#[tokio::test]
async fn a_restarted_gateway_resumes_the_same_step_with_its_start_time_and_evidence() {
    let primary = cutover::mock::MockServer::start(MockConfig::default().with_name("primary")).await.unwrap();
    let candidate = cutover::mock::MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("resume");
    let route = plan("max_error_rate = 5.0", &THREE_STEPS.replace("min_requests = 15", "min_requests = 100000"));
    let config = unhurried_upstreams(&primary.base_url(), &candidate.base_url(), &route);
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    admin(&setup, Method::POST, "/admin/rollouts/default/promote").await;
    admin(&setup, Method::POST, "/admin/rollouts/default/promote").await;
    let state_file = setup._dir.0.join(STATE_FILE);
    let before = drive_until(&setup, "candidate evidence saved in the state file", async || {
        let view = view(&setup).await;
        let saved = saved_candidate_requests(&state_file, &view["step"], &view["step_started_at"]);
        saved.is_some_and(|requests| requests > 0).then_some(view)
    })
    .await;
    assert_eq!((before["step"].as_u64(), before["phase"].as_str()), (Some(1), Some("progressing")));
    let Setup { primary, candidate, gateway, _dir: dir } = setup;
    gateway.shutdown().await;
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    let after = view(&setup).await;
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["step_started_at"], before["step_started_at"]);
    assert_eq!(after["phase"], "progressing");
    let evidence = after["arms"]["candidate"]["requests"].as_u64().unwrap();
    assert!(evidence > 0, "the step's evidence survived the restart: {after:#}");
}

#[tokio::test]
async fn a_shadow_step_mirrors_primary_requests_to_the_candidate_and_compares_them() {
    let steps = r#"
  { weight = 0,  shadow = 1.0, min_duration = "300ms", max_duration = "1h", min_requests = 15 },
  { weight = 50, min_duration = "1h", min_requests = 15 },
"#;
    let setup =
        Setup::unhurried(MockConfig::default(), MockConfig::default(), &plan("max_error_rate_increase = 50.0", steps))
            .await;
    let view = drive_to_phase(&setup, "progressing").await;
    assert_eq!((view["phase"].as_str(), view["weight"].as_f64()), (Some("progressing"), Some(50.0)), "{view:#}");
    assert_eq!(events(&setup).await[..2], ["start".to_owned(), "advance".to_owned()]);
    assert!(setup.candidate.calls() >= 15, "mirrored copies reached the candidate");
    let page = setup.metrics().await;
    assert!(
        crate::support::metric(&page, r#"cutover_shadow_requests_total{route="default",outcome="mirrored"}"#) >= 15.0
    );
    assert!(
        crate::support::metric(
            &page,
            r#"cutover_requests_total{route="default",upstream="candidate",role="shadow",outcome="ok"}"#
        ) >= 15.0
    );
}

#[tokio::test]
async fn transitions_are_posted_to_webhooks_and_counted() {
    let hook = cutover::mock::MockServer::start(MockConfig::default().with_name("hook")).await.unwrap();
    let notify = format!(
        "\n[[notify]]\nname = \"ops\"\nurl = \"http://{}/hooks/cutover\"\nmin_severity = \"info\"\n",
        hook.addr()
    );
    let route =
        plan("max_error_rate = 50.0", THREE_STEPS).replace("interval = \"200ms\"", "interval = \"1h\"") + &notify;
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &route).await;
    admin(&setup, Method::POST, "/admin/rollouts/default/resume").await;
    let posted = until("the webhook to receive the event", async || hook.last_request()).await;
    assert_eq!(posted.path, "/hooks/cutover");
    let body = posted.json().unwrap();
    assert_eq!((body["event"]["kind"].as_str(), body["severity"].as_str()), (Some("resume"), Some("info")));
    let page = setup.metrics().await;
    assert_eq!(
        crate::support::metric(&page, r#"cutover_rollout_transitions_total{route="default",kind="resume"}"#),
        1.0
    );
}

#[tokio::test]
async fn editing_the_plan_under_a_running_step_pauses_it_with_an_event() {
    let primary = cutover::mock::MockServer::start(MockConfig::default().with_name("primary")).await.unwrap();
    let candidate = cutover::mock::MockServer::start(MockConfig::default().with_name("candidate")).await.unwrap();
    let dir = TempDir::new("plan-edit");
    let route = plan("max_error_rate = 5.0", THREE_STEPS).replace("interval = \"200ms\"", "interval = \"1h\"");
    let config = unhurried_upstreams(&primary.base_url(), &candidate.base_url(), &route);
    let gateway = start_gateway(&config, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    admin(&setup, Method::POST, "/admin/rollouts/default/resume").await;
    admin(&setup, Method::POST, "/admin/rollouts/default/promote").await;
    assert_eq!(view(&setup).await["weight"], 50.0);
    let Setup { primary, candidate, gateway, _dir: dir } = setup;
    gateway.shutdown().await;
    let edited = config.replace("weight = 50,", "weight = 40,");
    let gateway = start_gateway(&edited, &dir).await;
    let setup = Setup { primary, candidate, gateway, _dir: dir };
    let after = view(&setup).await;
    assert_eq!((after["phase"].as_str(), after["weight"].as_f64()), (Some("paused"), Some(50.0)), "{after:#}");
    assert_eq!(events(&setup).await.last().map(String::as_str), Some("plan_changed"));
    let resumed = admin(&setup, Method::POST, "/admin/rollouts/default/resume").await.json();
    assert_eq!(resumed["weight"], 40.0, "resuming applies the edited step");
}

/// The step's evidence of one arm, as the view shows it: (requests, upstream errors).
async fn arm(setup: &Setup, name: &str) -> (f64, f64) {
    let view = view(setup).await;
    let arm = &view["arms"][name];
    (arm["requests"].as_f64().unwrap_or_default(), arm["upstream_errors"].as_f64().unwrap_or_default())
}

#[tokio::test]
async fn the_evidence_counts_client_requests_on_the_chosen_arm_not_retries_or_rescues() {
    // The candidate fails everything; each request is tried twice on it, then answered
    // by the primary. No breaker, a budget for every retry: both attempts happen.
    let route = "retries = 1\nretry_budget = 1.0\nretry_budget_min_per_sec = 1000\n\
                 [upstreams.candidate.breaker]\nconsecutive_failures = 1000000\nerror_rate = 100\n";
    let down = MockConfig::default().with_fault(FaultRule::always(FaultKind::Status503));
    let setup = Setup::unhurried(MockConfig::default(), down, route).await;
    setup.set_weight(100.0).await;
    for user in 0..6 {
        let reply = setup.chat(&format!("user-{user}"), false).await;
        assert_eq!((reply.status, reply.header("x-cutover-fallback")), (StatusCode::OK, Some("true")));
    }
    let attempts = setup.candidate.calls();
    assert!(attempts > 6, "the candidate was retried: {attempts} attempts for 6 requests");
    let (requests, errors) = until("the six requests in the evidence", async || {
        let candidate = arm(&setup, "candidate").await;
        (candidate.0 >= 6.0).then_some(candidate)
    })
    .await;
    assert_eq!((requests, errors), (6.0, 6.0), "one failure per client request, not one per attempt");
    assert_eq!(arm(&setup, "primary").await, (0.0, 0.0), "the primary's rescues are not control evidence");
    let page = setup.metrics().await;
    let attempts_metric =
        r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="upstream_error"}"#;
    assert_eq!(crate::support::metric(&page, attempts_metric), attempts as f64, "the metrics still count attempts");
}

#[tokio::test]
async fn with_fallback_both_ways_the_candidates_rescues_are_not_its_evidence() {
    let down = MockConfig::default().with_fault(FaultRule::always(FaultKind::Status500));
    let setup = Setup::unhurried(down, MockConfig::default(), "retries = 0\nfallback = \"both\"").await;
    for user in 0..4 {
        let reply = setup.chat(&format!("user-{user}"), false).await;
        assert_eq!((reply.status, reply.header("x-cutover-upstream")), (StatusCode::OK, Some("candidate")));
    }
    let primary = until("the four requests in the evidence", async || {
        let primary = arm(&setup, "primary").await;
        (primary.0 >= 4.0).then_some(primary)
    })
    .await;
    assert_eq!(primary, (4.0, 4.0), "the primary's own failures are its evidence");
    assert_eq!(arm(&setup, "candidate").await, (0.0, 0.0), "answers for the primary's users are not the candidate's");
}

/// One price for both upstreams: what differs between them in the cost tests is the usage
/// they report, 1,000 prompt and 200 completion tokens on the primary.
const SAME_PRICES: &str = r#"
[prices.primary]
"gpt-4.1" = { input = 2.0, output = 8.0 }
[prices.candidate]
"gpt-4.1" = { input = 2.0, output = 8.0 }
"#;

/// A mock reporting `scale` × the primary's usage on every answer.
fn reporting(scale: f64) -> MockConfig {
    let tokens = |count: f64| Some((count * scale).round() as u64);
    MockConfig::default().with_usage(UsagePlan {
        prompt: tokens(1000.0),
        completion: tokens(200.0),
        placement: UsagePlacement::Alone,
        ..UsagePlan::default()
    })
}

/// The last published check of `max_cost_ratio`, from a rollout's view.
fn cost_check(view: &Value) -> Value {
    let checks = view["evaluation"]["checks"].as_array().cloned().unwrap_or_default();
    checks.into_iter().find(|check| check["criterion"] == "max_cost_ratio").unwrap_or(Value::Null)
}

#[tokio::test]
async fn max_cost_ratio_promotes_a_candidate_at_half_the_cost_per_request() {
    let route = plan("max_cost_ratio = 0.9", THREE_STEPS) + SAME_PRICES;
    let setup = Setup::unhurried(reporting(1.0), reporting(0.5), &route).await;
    let view = drive_to_phase(&setup, "promoted").await;
    assert_eq!(view["phase"], "promoted", "{view:#}");
    assert_eq!(events(&setup).await, ["start", "advance", "advance", "promoted"]);
    // Every successful answer of either upstream was priced, at 3,600 and 1,800 µ$: the
    // ratio is exactly a half, at every step.
    for event in event_log(&setup).await.iter().skip(1) {
        let reason = event["reason"].as_str().unwrap();
        assert!(reason.starts_with("pass: max_cost_ratio = 1.80 vs control 3.60, limit 0.9"), "{reason}");
        assert!(reason.contains("always-valid ratio 0.500–0.500"), "{reason}");
    }
}

#[tokio::test]
async fn max_cost_ratio_rolls_back_a_candidate_at_twice_the_cost_per_request() {
    let route = plan("max_cost_ratio = 0.9", THREE_STEPS) + SAME_PRICES;
    let setup = Setup::unhurried(reporting(1.0), reporting(2.0), &route).await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
    let kinds = events(&setup).await;
    assert!(!kinds.contains(&"advance".to_owned()), "{kinds:?}");
    let log = event_log(&setup).await;
    let reason = log.last().unwrap()["reason"].as_str().unwrap();
    assert!(reason.starts_with("3 consecutive failed checks; last: fail: max_cost_ratio"), "{reason}");
}

#[tokio::test]
async fn max_cost_ratio_holds_while_the_cost_of_too_many_requests_is_unknown() {
    // The candidate's answers carry no usage: its cost is unknown, so the criterion can
    // neither pass nor fail, and says why.
    let route = plan("max_cost_ratio = 0.9", THREE_STEPS) + SAME_PRICES;
    let silent =
        MockConfig::default().with_usage(UsagePlan { placement: UsagePlacement::Omitted, ..UsagePlan::default() });
    let setup = Setup::unhurried(reporting(1.0), silent, &route).await;
    let check = drive_until(&setup, "a cost check naming the unknown cost", async || {
        let view = view(&setup).await;
        let check = cost_check(&view);
        check["evidence"].as_str().is_some_and(|evidence| evidence.contains("not judged")).then_some(check)
    })
    .await;
    assert_eq!(check["verdict"], "inconclusive", "{check:#}");
    assert!(check["evidence"].as_str().unwrap().contains("cost unknown for 100.0% of the candidate's"), "{check:#}");
    let view = view(&setup).await;
    assert_eq!((view["phase"].as_str(), view["step"].as_u64()), (Some("progressing"), Some(0)), "{view:#}");
}

#[tokio::test]
async fn max_cost_ratio_judges_a_shadow_step_from_the_mirrored_answers() {
    // No candidate traffic at all: the mirrored copies' cost against the primary's.
    let steps = r#"
  { weight = 0,  shadow = 1.0, min_duration = "300ms", max_duration = "1h", min_requests = 15 },
  { weight = 50, min_duration = "1h", min_requests = 15 },
"#;
    let route = plan("max_cost_ratio = 0.9", steps) + SAME_PRICES;
    let setup = Setup::unhurried(reporting(1.0), reporting(2.0), &route).await;
    let view = drive_to_phase(&setup, "rolled_back").await;
    assert_eq!(view["phase"], "rolled_back", "{view:#}");
    let log = event_log(&setup).await;
    let reason = log.last().unwrap()["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("3 consecutive failed checks; last: fail: max_cost_ratio = 7.20 vs control 3.60"),
        "{reason}"
    );
}
