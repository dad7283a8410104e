//! Alert rules end to end: a candidate whose error rate crosses its threshold makes the
//! rule pending, then firing, then resolved when it recrosses; a webhook receiver on
//! loopback gets exactly one firing and one resolved notification (none while pending),
//! in the generic JSON and the Slack format; a receiver that hangs or fails blocks
//! nothing.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cutover::mock::{FaultKind, FaultRule, MockConfig, Quirk};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::support::{ADMIN_TOKEN, Setup, held_to, metric, send};
use crate::wait::until;

/// How the test receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Ok,
    Status500,
    /// Reads the request and never answers.
    Hang,
}

/// A webhook receiver on loopback that keeps every `(path, JSON body)` it is sent.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let store = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let store = store.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let store = store.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let body =
                                request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
                            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            store.lock().unwrap().push((path, json));
                            match behaviour {
                                Behaviour::Hang => std::future::pending::<()>().await,
                                Behaviour::Status500 | Behaviour::Ok => {}
                            }
                            let status = if behaviour == Behaviour::Ok {
                                StatusCode::OK
                            } else {
                                StatusCode::INTERNAL_SERVER_ERROR
                            };
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, received }
    }

    fn received(&self) -> Vec<(String, Value)> {
        self.received.lock().unwrap().clone()
    }

    fn on(&self, path: &str) -> Vec<Value> {
        self.received().into_iter().filter(|(at, _)| at == path).map(|(_, body)| body).collect()
    }

    /// What reached `path` about the alert (the rollout's own events, e.g. the weight set
    /// by hand, go to the same notifiers).
    fn alerts_on(&self, path: &str) -> Vec<Value> {
        let about_the_alert = |body: &Value| {
            body["type"] == "alert" || body["text"].as_str().is_some_and(|text| text.contains("candidate_errors"))
        };
        self.on(path).into_iter().filter(about_the_alert).collect()
    }
}

/// The candidate gets every user (weight 100), errors are not retried nor hidden by a
/// fallback, its breaker never opens and probes are off: the rule sees the candidate's
/// own error rate. The rule: error rate above 20% over 2 s, for 1 s.
fn config_extra(receiver: &Receiver) -> String {
    format!(
        r#"fallback = false
retries = 0

[health]
enabled = false

[[alerts]]
name = "candidate_errors"
metric = "error_rate"
upstream = "candidate"
op = ">"
threshold = 20.0
for = "1s"
window = "2s"
severity = "critical"

[[notify]]
name = "hook"
url = "{url}/json"
min_severity = "warning"

[[notify]]
name = "chat"
url = "{url}/slack"
format = "slack"
min_severity = "critical"
"#,
        url = receiver.url
    )
}

async fn setup_with(receiver: &Receiver) -> Setup {
    let extra = config_extra(receiver);
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), &extra).await;
    setup.set_weight(100.0).await;
    setup
}

/// The rule `candidate_errors`'s entry in `GET /admin/alerts` (`null` when absent).
pub async fn alert(setup: &Setup) -> Value {
    alert_named(setup, "candidate_errors").await
}

/// The entry of the rule `name` in `GET /admin/alerts` (`null` when absent).
async fn alert_named(setup: &Setup, name: &str) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = send(Method::GET, &setup.admin_url("/admin/alerts"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let all = reply.json();
    held_to::<cutover_model::view::AlertsView>(&all);
    all["alerts"]
        .as_array()
        .and_then(|alerts| alerts.iter().find(|alert| alert["alert"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_for_state(setup: &Setup, state: &str) -> Value {
    until(&format!("candidate_errors {state}"), async || {
        let alert = alert(setup).await;
        (alert["state"] == state).then_some(alert)
    })
    .await
}

/// Sends requests from rotating users until aborted, so that every window has traffic.
pub fn keep_traffic(setup: &Setup) -> tokio::task::JoinHandle<()> {
    let url = setup.url("/v1/chat/completions");
    tokio::spawn(async move {
        for user in 0u64.. {
            let body = r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}"#;
            send(Method::POST, &url, &[("x-user-id", &format!("user-{}", user % 50))], body).await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test]
async fn a_rule_goes_pending_then_firing_then_resolved_and_notifies_once_each() {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let setup = setup_with(&receiver).await;
    let traffic = keep_traffic(&setup);
    let ok = wait_for_state(&setup, "ok").await;
    assert_eq!(ok["scope"], "upstream=candidate");

    setup.candidate.set_faults(vec![FaultRule::new(FaultKind::Status500, 0.6)]);
    let pending = wait_for_state(&setup, "pending").await;
    assert!(pending["value"].as_f64().unwrap() > 20.0, "{pending}");
    assert!(receiver.alerts_on("/json").is_empty(), "nothing is sent while only pending: {:?}", receiver.received());
    assert!(receiver.alerts_on("/slack").is_empty());
    let rollout_event = &receiver.on("/json")[0];
    assert_eq!(rollout_event["type"], "rollout", "the weight set by hand went to the same notifier");
    assert_eq!(rollout_event["event"]["kind"], "set_weight");
    let firing = wait_for_state(&setup, "firing").await;
    assert!(firing["fired_at"].as_i64().is_some(), "{firing}");
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, "cutover_alert_state{alert=\"candidate_errors\",severity=\"critical\",upstream=\"candidate\"}"),
        2.0
    );

    let fired = until("the firing notification", async || {
        let json = receiver.alerts_on("/json");
        (!json.is_empty()).then_some(json)
    })
    .await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let notification = &fired[0];
    assert_eq!(notification["alert"], "candidate_errors");
    assert_eq!(notification["state"], "firing");
    assert_eq!(notification["severity"], "critical");
    assert_eq!(notification["scope"], "upstream=candidate");
    assert_eq!(notification["threshold"], 20.0);
    assert!(notification["value"].as_f64().unwrap() > 20.0);
    assert!(notification["started_at"].as_i64().is_some());
    assert!(notification["dashboard"].as_str().unwrap().ends_with("/dashboard"));

    setup.candidate.set_faults(Vec::new());
    let resolved = wait_for_state(&setup, "resolved").await;
    assert!(resolved["resolved_at"].as_i64().is_some());
    let json = until("the resolved notification", async || {
        let json = receiver.alerts_on("/json");
        (json.len() >= 2).then_some(json)
    })
    .await;
    assert_eq!(json.len(), 2, "one firing, one resolved: {json:?}");
    assert_eq!(json[1]["state"], "resolved");
    assert!(json[1]["resolved_at"].as_i64().is_some());

    let slack = until("both Slack messages", async || {
        let slack = receiver.alerts_on("/slack");
        (slack.len() >= 2).then_some(slack)
    })
    .await;
    assert_eq!(slack.len(), 2);
    let text = slack[0]["text"].as_str().unwrap();
    assert!(text.starts_with("[critical] FIRING candidate_errors (upstream=candidate): error_rate = "), "{text}");
    assert_eq!(slack[0]["attachments"][0]["color"], "#d62728");
    assert!(slack[1]["text"].as_str().unwrap().starts_with("[critical] RESOLVED candidate_errors"));
    let page = setup.metrics().await;
    // Two alerts and the rollout's `set_weight` event.
    assert_eq!(metric(&page, "cutover_notifications_total{notifier=\"hook\",outcome=\"sent\"}"), 3.0);
    assert_eq!(
        metric(&page, "cutover_alert_state{alert=\"candidate_errors\",severity=\"critical\",upstream=\"candidate\"}"),
        0.0
    );
    traffic.abort();
    setup.gateway.shutdown().await;
}

/// Both upstreams serve half the users; only the candidate has prices. Each rule adds up
/// its upstream's spend over 2 s and scales it to an hour.
const SPEND_RULES: &str = r#"
[health]
enabled = false

[prices.candidate]
"gpt-4.1" = { input = 2.0, output = 8.0 }

[[alerts]]
name = "candidate_spend"
metric = "cost_per_hour"
upstream = "candidate"
op = ">"
threshold = 0.5
for = "1s"
window = "2s"
severity = "warning"

[[alerts]]
name = "primary_spend"
metric = "cost_per_hour"
upstream = "primary"
op = ">"
threshold = 0.5
for = "1s"
window = "2s"
severity = "warning"
"#;

#[tokio::test]
async fn a_cost_per_hour_rule_fires_on_priced_spend_and_has_no_data_without_a_price() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), SPEND_RULES).await;
    setup.set_weight(50.0).await;
    let traffic = keep_traffic(&setup);
    let firing = until("candidate_spend firing", async || {
        let alert = alert_named(&setup, "candidate_spend").await;
        (alert["state"] == "firing").then_some(alert)
    })
    .await;
    // ~50 answers a second of 16 output tokens at $8/M and a few prompt tokens at $2/M:
    // several dollars an hour, whatever the machine's pace within a factor of ten.
    let per_hour = firing["value"].as_f64().unwrap();
    assert!(per_hour > 0.5 && per_hour < 1_000.0, "{firing}");
    let unpriced = alert_named(&setup, "primary_spend").await;
    assert_eq!(unpriced["state"], "no_data", "an unpriced upstream's spend is unknown, not $0: {unpriced}");
    assert_eq!(unpriced["no_data"], "no priced answers in the last 2s", "{unpriced}");
    traffic.abort();
    setup.gateway.shutdown().await;
}

/// Every primary request mirrored to a candidate that reports another model: no pair
/// agrees on every dimension.
const AGREEMENT_RULE: &str = r#"shadow = 1.0

[health]
enabled = false

[[alerts]]
name = "shadow_disagrees"
metric = "shadow_agreement"
route = "default"
op = "<"
threshold = 90.0
for = "1s"
window = "2s"
severity = "warning"
"#;

#[tokio::test]
async fn a_shadow_agreement_rule_fires_on_a_candidate_that_disagrees() {
    let lying = MockConfig::default().with_quirk(Quirk::parse("echo-model=gpt-4o-mini").unwrap());
    let setup = Setup::new(MockConfig::default(), lying, AGREEMENT_RULE).await;
    let before = alert_named(&setup, "shadow_disagrees").await;
    assert_eq!(before["state"], "no_data", "{before}");
    assert_eq!(before["no_data"], "no mirrored pairs compared in this step", "{before}");
    let traffic = keep_traffic(&setup);
    let firing = until("shadow_disagrees firing", async || {
        let alert = alert_named(&setup, "shadow_disagrees").await;
        (alert["state"] == "firing").then_some(alert)
    })
    .await;
    assert_eq!(firing["value"], 0.0, "no pair agrees on the model: {firing}");
    assert_eq!(firing["scope"], "route=default", "{firing}");
    traffic.abort();
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_or_fails_blocks_no_request() {
    for behaviour in [Behaviour::Hang, Behaviour::Status500] {
        let receiver = Receiver::start(behaviour).await;
        let setup = setup_with(&receiver).await;
        let traffic = keep_traffic(&setup);
        setup.candidate.set_faults(vec![FaultRule::always(FaultKind::Status500)]);
        wait_for_state(&setup, "firing").await;
        until("the notification reaching the receiver", async || {
            (!receiver.alerts_on("/json").is_empty()).then_some(())
        })
        .await;
        // The receiver holds (or refused) the post; requests are answered all the same.
        setup.candidate.set_faults(Vec::new());
        for user in 0..10 {
            let reply = setup.chat(&format!("after-{user}"), user % 2 == 0).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        }
        if behaviour == Behaviour::Status500 {
            // The rollout's `set_weight` event failed first, then the alert.
            until("the failed deliveries counted after their retries", async || {
                let page = setup.metrics().await;
                (metric(&page, "cutover_notifications_total{notifier=\"hook\",outcome=\"failed\"}") >= 2.0)
                    .then_some(())
            })
            .await;
            let posts = receiver.alerts_on("/json").len();
            assert!(posts >= 3, "three attempts on a 500: {posts}");
        }
        traffic.abort();
        setup.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn alerts_test_posts_to_a_notifier_and_reports_its_answer() {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let setup = setup_with(&receiver).await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply =
        send(Method::POST, &setup.admin_url("/admin/alerts/test?notifier=hook"), &[("authorization", &auth)], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let results = reply.json();
    held_to::<cutover_model::view::NotifierTests>(&results);
    assert_eq!(results["results"][0], serde_json::json!({"notifier": "hook", "ok": true, "status": 200}));
    assert!(!reply.text().contains(&receiver.url), "the URL is a secret: {}", reply.text());
    assert!(receiver.on("/json").iter().any(|body| body["type"] == "test"), "{:?}", receiver.received());
    setup.gateway.shutdown().await;
}

/// Whether `tool` (of Debian's `prometheus` package: `promtool`, `prometheus`) is here;
/// CI installs it, so only a developer's machine without it skips, saying so.
pub fn prometheus_tool_available(tool: &str) -> bool {
    let found = std::process::Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is missing in CI: .ci/run installs Debian's prometheus");
        println!("SKIPPED: {tool} not installed (apt-get install prometheus)");
    }
    found
}

#[tokio::test]
async fn the_exported_rules_pass_promtool_check_rules() {
    if !prometheus_tool_available("promtool") {
        return;
    }
    let dir = crate::support::TempDir::new("promtool");
    let scoped = r#"
[[alerts]]
name = "candidate_ttft"
metric = "ttft_p95_ms"
route = "default"
role = "candidate"
op = ">"
threshold = 800
for = "2m"
severity = "warning"

[[alerts]]
name = "fallbacks"
metric = "fallback_rate"
op = ">="
threshold = 10
window = "10m"

[[alerts]]
name = "candidate_down"
metric = "upstream_up"
upstream = "candidate"
op = "=="
threshold = 0
for = "30s"
severity = "critical"

[[alerts]]
name = "shadow_disagrees"
metric = "shadow_agreement"
route = "default"
op = "<"
threshold = 95
"#;
    // The defaults (with prices: the cost rule too), then rules of every scope.
    let prices = "[prices.candidate]\n\"gpt-4.1\" = { input = 2.0, output = 8.0 }\n";
    for (name, extra) in [("defaults", prices), ("scoped", scoped)] {
        let text = crate::support::two_upstreams("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", extra);
        let config = cutover_config::load_str(&text, &dir.0, crate::support::env).unwrap();
        let path = dir.0.join(format!("{name}.rules.yml"));
        std::fs::write(&path, cutover_alerts::prometheus_rules(&config)).unwrap();
        let out = std::process::Command::new("promtool").arg("check").arg("rules").arg(&path).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool refused the {name} rules:\n{said}");
        let expected = if name == "defaults" { "SUCCESS: 6 rules found" } else { "SUCCESS: 4 rules found" };
        assert!(said.contains(expected), "{said}");
    }
}

/// Every `datasource.uid` anywhere in a dashboard.
fn collect_datasource_uids(value: &Value, uids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(uid) = map.get("datasource").and_then(|source| source["uid"].as_str()) {
                uids.push(uid.to_owned());
            }
            map.values().for_each(|inner| collect_datasource_uids(inner, uids));
        }
        Value::Array(items) => items.iter().for_each(|inner| collect_datasource_uids(inner, uids)),
        _ => {}
    }
}

/// Series the dashboard shows that this test's gateway does not serve: the agreement
/// gauge needs a share mirrored (tested in `shadow.rs`).
const DASHBOARD_SERIES_NOT_YET_SERVED: &[&str] = &["cutover_shadow_agreement_ratio"];

#[tokio::test]
async fn the_grafana_dashboard_parses_and_uses_only_metrics_the_gateway_serves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/cutover.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "cutover");
    // Provisioned from a file, a dashboard gets no import prompt: `${DS_…}` inputs would stay
    // unresolved, so every query names the dashboard's own `datasource` variable.
    let text = dashboard.to_string();
    assert!(!text.contains("${DS_") && dashboard.get("__inputs").is_none(), "import-only datasource inputs");
    let variables = dashboard["templating"]["list"].as_array().expect("templating");
    assert!(variables.iter().any(|var| var["name"] == "datasource" && var["type"] == "datasource"), "{variables:?}");
    let mut uids = Vec::new();
    collect_datasource_uids(&dashboard, &mut uids);
    assert!(uids.len() >= 12 && uids.iter().all(|uid| uid == "${datasource}"), "{uids:?}");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries: Vec<String> = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("every target has an expr").to_owned())
        .collect();
    queries.extend(dashboard["templating"]["list"].as_array().unwrap().iter().map(|var| var["definition"].to_string()));
    let mut used: Vec<String> = Vec::new();
    for query in &queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("cutover_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            if !used.contains(&name) {
                used.push(name);
            }
        }
    }
    assert!(used.len() >= 12, "{used:?}");

    // A gateway with a notifier, a rule and prices, so that every family has series.
    let receiver = Receiver::start(Behaviour::Ok).await;
    let priced =
        format!("{}\n[prices.candidate]\n\"gpt-4.1\" = {{ input = 2.0, output = 8.0 }}\n", config_extra(&receiver));
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), &priced).await;
    setup.set_weight(100.0).await;
    setup.chat("user-1", true).await;
    wait_for_state(&setup, "ok").await;
    let page = setup.metrics().await;
    let served: Vec<&str> =
        page.lines().filter(|line| !line.starts_with('#')).filter_map(|line| line.split(['{', ' ']).next()).collect();
    for name in used {
        if DASHBOARD_SERIES_NOT_YET_SERVED.contains(&name.as_str()) {
            continue;
        }
        assert!(served.contains(&name.as_str()), "the dashboard uses {name}, which /metrics does not serve");
    }
    setup.gateway.shutdown().await;
}
