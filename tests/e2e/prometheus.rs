//! cutover's alert rules in a real Prometheus: Debian's `prometheus` runs as a child
//! process, scrapes the gateway's admin `/metrics` every second and evaluates the rule
//! file `cutover alerts export --format prometheus` wrote for the test's config. For the
//! same fault (a candidate whose error rate is raised at run time) Prometheus's
//! `/api/v1/alerts` and cutover's own `GET /admin/alerts` both report the rule firing,
//! and both let it go once the fault ends.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use cutover::mock::{FaultKind, FaultRule, MockConfig, UsagePlacement, UsagePlan};
use http::{Method, StatusCode};
use serde_json::Value;

use crate::alerts::{alert, keep_traffic, prometheus_tool_available};
use crate::support::{ADMIN_TOKEN, GATEWAY_KEY, Setup, TempDir, UPSTREAM_KEY, send, two_upstreams};
use crate::wait::until;

/// The rule under test: the candidate's error rate above 20% over 5 s, for 2 s. The
/// window spans five scrapes, so that `increase()` always has samples to work with.
const RULE: &str = r#"fallback = false
retries = 0

[health]
enabled = false

[[alerts]]
name = "candidate_errors"
metric = "error_rate"
upstream = "candidate"
op = ">"
threshold = 20.0
for = "2s"
window = "5s"
severity = "critical"
"#;

/// A `prometheus` child process, killed and reaped on drop (even when the test panics).
struct Prometheus {
    child: Child,
    address: String,
    url: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts Prometheus in `dir` (its TSDB there too) on a free loopback port, scraping
    /// `target` (host:port) every second and evaluating `rules` every second.
    fn start(dir: &Path, target: &str, rules: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: cutover\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                rules = rules.display()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        let address = format!("127.0.0.1:{port}");
        Prometheus { child, url: format!("http://{address}"), address, log }
    }

    /// Fails the test with Prometheus's log if it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("prometheus exited ({status}):\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }

    /// The JSON of a `GET` on its HTTP API; `None` until it listens or while it refuses.
    async fn api(&mut self, path: &str) -> Option<Value> {
        self.assert_running();
        tokio::net::TcpStream::connect(&self.address).await.ok()?;
        let reply = send(Method::GET, &format!("{}{path}", self.url), &[], "").await;
        (reply.status == StatusCode::OK).then(|| reply.json())
    }

    /// The state (`pending`, `firing`) of alert `name` in `/api/v1/alerts`, `None` when
    /// Prometheus does not list it (inactive).
    async fn alert_state(&mut self, name: &str) -> Option<String> {
        let alerts = self.api("/api/v1/alerts").await?;
        alerts["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|alert| alert["labels"]["alertname"] == name)
            .and_then(|alert| alert["state"].as_str().map(str::to_owned))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rule file as an operator gets it: `cutover alerts export --format prometheus`.
fn export_rules(dir: &Path, config_text: &str) -> std::path::PathBuf {
    let config = dir.join("cutover.toml");
    std::fs::write(&config, config_text).unwrap();
    let rules = dir.join("cutover.rules.yml");
    let out = Command::new(crate::binary::BIN)
        .args(["alerts", "export", "--format", "prometheus", "-o"])
        .arg(&rules)
        .arg("-c")
        .arg(&config)
        .env_clear()
        .envs([("ADMIN_TOKEN", ADMIN_TOKEN), ("GATEWAY_KEY", GATEWAY_KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)])
        .output()
        .unwrap();
    assert!(out.status.success(), "alerts export failed: {}", String::from_utf8_lossy(&out.stderr));
    rules
}

/// cutover's own state of the rule in `GET /admin/alerts`.
async fn cutover_state(setup: &Setup) -> String {
    alert(setup).await["state"].as_str().unwrap_or("absent").to_owned()
}

#[tokio::test]
async fn prometheus_fires_and_resolves_the_exported_rule_with_cutover() {
    if !prometheus_tool_available("prometheus") {
        return;
    }
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), RULE).await;
    setup.set_weight(100.0).await;
    let dir = TempDir::new("prometheus");
    let config_text = two_upstreams(&setup.primary.base_url(), &setup.candidate.base_url(), RULE);
    let rules = export_rules(&dir.0, &config_text);
    let mut prometheus = Prometheus::start(&dir.0, &setup.gateway.admin_addr.to_string(), &rules);
    let traffic = keep_traffic(&setup);

    // Prometheus has loaded the rule, scraped the gateway and evaluated the rule on its
    // series without error; nothing fires on a healthy candidate, here or in cutover.
    until("prometheus scraping the gateway", async || {
        let targets = prometheus.api("/api/v1/targets").await?;
        let target = targets["data"]["activeTargets"].as_array()?.first()?.clone();
        (target["health"] == "up").then_some(())
    })
    .await;
    until("the exported rule evaluated on a series", async || {
        let query = "/api/v1/query?query=cutover_requests_total%7Bupstream%3D%22candidate%22%7D";
        let counted = prometheus.api(query).await?;
        let rules = prometheus.api("/api/v1/rules").await?;
        let rule = rules["data"]["groups"][0]["rules"].as_array()?.first()?.clone();
        assert_eq!(rule["name"], "candidate_errors", "{rule}");
        assert_eq!(rule["health"], "ok", "prometheus cannot evaluate the exported rule: {rule}");
        let evaluated = rule["lastEvaluation"].as_str().is_some_and(|at| !at.starts_with("0001"));
        let has_series = counted["data"]["result"].as_array().is_some_and(|result| !result.is_empty());
        (evaluated && has_series).then_some(())
    })
    .await;
    assert_eq!(prometheus.alert_state("candidate_errors").await, None, "a healthy candidate fires nothing");
    assert_eq!(cutover_state(&setup).await, "ok");

    // The fault: six requests in ten fail on the candidate.
    setup.candidate.set_faults(vec![FaultRule::new(FaultKind::Status500, 0.6)]);
    until("cutover firing", async || (cutover_state(&setup).await == "firing").then_some(())).await;
    until("prometheus firing the same rule", async || {
        (prometheus.alert_state("candidate_errors").await.as_deref() == Some("firing")).then_some(())
    })
    .await;
    let alerts = prometheus.api("/api/v1/alerts").await.unwrap();
    let fired = alerts["data"]["alerts"].as_array().unwrap();
    assert_eq!(fired.len(), 1, "only the candidate's rule: {alerts}");
    assert_eq!(fired[0]["labels"]["severity"], "critical");
    let value: f64 = fired[0]["value"].as_str().unwrap().parse().unwrap();
    assert!(value > 20.0, "prometheus's error rate {value}");

    // The fault ends: both let the alert go once the window holds only good requests.
    setup.candidate.set_faults(Vec::new());
    until("cutover resolving", async || (cutover_state(&setup).await == "resolved").then_some(())).await;
    until("prometheus no longer listing the alert", async || {
        prometheus.alert_state("candidate_errors").await.is_none().then_some(())
    })
    .await;
    traffic.abort();
    setup.gateway.shutdown().await;
}

/// A model name with every character the text format escapes: a configured model is a
/// `model` label of the cost series, and no rule on names covers it.
const ODD_MODEL: &str = "odd \"model\" \\ name\nline two";

/// The whole `/metrics` page, with a label value that must be escaped, as Prometheus's
/// own linter reads it (`promtool check metrics`): it parses, and nothing is found.
#[tokio::test]
async fn the_metrics_page_parses_with_promtool_even_with_quotes_and_newlines_in_a_label() {
    if !prometheus_tool_available("promtool") {
        return;
    }
    let usage =
        UsagePlan { prompt: Some(10), completion: Some(5), cached: 0, reasoning: 0, placement: UsagePlacement::Alone };
    let mock = || MockConfig::default().with_usage(usage);
    let odd_model = serde_json::to_string(ODD_MODEL).unwrap();
    let extra = format!(
        "[prices.primary]\n{odd_model} = {{ input = 1.0, output = 2.0 }}\n\n\
         [[notify]]\nname = \"oncall\"\nurl = \"http://127.0.0.1:9/hook\"\n"
    );
    let setup = Setup::new(mock(), mock(), &extra).await;
    let body = format!(r#"{{"model":{odd_model},"messages":[{{"role":"user","content":"Hello there"}}]}}"#);
    let reply = send(Method::POST, &setup.url("/v1/chat/completions"), &[("x-user-id", "u")], body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let page = setup.metrics().await;
    let escaped = "odd \\\"model\\\" \\\\ name\\nline two";
    assert!(page.contains(&format!("model=\"{escaped}\",kind=\"input\"}} 10")), "{page}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // promtool exits 1 when the page does not parse, 3 when it parses with lint findings.
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n{page}");
    setup.gateway.shutdown().await;
}
