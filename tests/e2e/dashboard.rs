//! `GET /dashboard` in a real headless Chromium against a gateway under load: the page
//! alone holds no data and no reference to anything outside the gateway, the JSON it
//! reads needs the admin token, and once the token is typed into its prompt it draws the
//! charts from live data, shows the admin API's phase and weight, and steers the rollout
//! with the audit actor `dashboard`.

mod webdriver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use cutover::mock::MockConfig;
use serde_json::Value;

use crate::binary::get;
use crate::served::slow_plan;
use crate::support::{ADMIN_TOKEN, Setup};
use crate::wait::until;
use webdriver::Browser;

/// Requests per load task at most, so that the load stops by itself whatever happens.
const MAX_REQUESTS_PER_TASK: u32 = 50_000;

/// A few clients sending chat completions for random users until `stop`.
fn start_load(setup: &Arc<Setup>, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let (setup, stop) = (setup.clone(), stop.clone());
            tokio::spawn(async move {
                for _ in 0..MAX_REQUESTS_PER_TASK {
                    if stop.load(Relaxed) {
                        return;
                    }
                    let _ = setup.chat(&format!("user-{}", fastrand::u32(..5000)), fastrand::bool()).await;
                }
            })
        })
        .collect()
}

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

async fn admin_json(setup: &Setup, path: &str) -> Value {
    let reply = get(&setup.admin_url(path), &[("authorization", &auth())]).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
    reply.json()
}

/// What the page shows for route `default`: phase, weight, and the points each chart drew.
const READ_PAGE: &str = r#"
    const route = document.querySelector('section.route[data-route="default"]');
    if (!route) return null;
    const charts = {};
    for (const chart of route.querySelectorAll('[data-chart]')) charts[chart.dataset.chart] = Number(chart.dataset.points ?? 0);
    return { phase: route.querySelector('[data-field="phase"]')?.textContent,
             weight: route.querySelector('[data-field="weight"]')?.textContent,
             charts, canvases: route.querySelectorAll('canvas').length };
"#;

#[tokio::test]
async fn the_page_alone_serves_no_data_and_no_outside_reference() {
    let setup = Setup::unhurried(MockConfig::default(), MockConfig::default(), &slow_plan("1s")).await;
    let page = get(&setup.admin_url("/dashboard"), &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some_and(|policy| policy.contains("default-src 'none'")));
    let html = page.text();
    assert!(html.contains(r#"id="token""#), "a token prompt: {html}");
    for asset in ["/dashboard", "/dashboard/app.js", "/dashboard/app.css", "/dashboard/vendor/uPlot.min.css"] {
        let text = get(&setup.admin_url(asset), &[]).await.text();
        assert!(!text.contains("http://") && !text.contains("https://"), "{asset} refers outside the gateway");
        assert!(!text.contains(ADMIN_TOKEN), "{asset} holds the token");
    }
    // The vendored library names its home in its licence banner only (a comment, not a request).
    let uplot = get(&setup.admin_url("/dashboard/vendor/uPlot.iife.min.js"), &[]).await.text();
    let code = uplot.split_once("*/").map_or(uplot.as_str(), |(_, code)| code);
    assert!(!code.contains("http://") && !code.contains("https://"));
    for endpoint in
        ["/admin/dashboard", "/admin/rollouts", "/admin/upstreams", "/admin/alerts", "/admin/events", "/admin/cost"]
    {
        let reply = get(&setup.admin_url(endpoint), &[]).await;
        assert_eq!(reply.status, 401, "{endpoint} without the token: {}", reply.text());
        let wrong = get(&setup.admin_url(endpoint), &[("authorization", "Bearer wrong")]).await;
        assert_eq!(wrong.status, 401, "{endpoint} with a wrong token");
    }
}

#[tokio::test]
async fn in_chromium_the_page_draws_live_charts_shows_the_apis_phase_and_weight_and_acts_as_dashboard() {
    let setup = Arc::new(Setup::unhurried(MockConfig::default(), MockConfig::default(), &slow_plan("1s")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&setup, &stop);
    let browser = Browser::start(1400, 2100).await;
    let dashboard = setup.admin_url("/dashboard");
    browser.goto(&dashboard).await;

    // Without the token: a prompt, and no route drawn.
    let before = browser.run("return document.querySelectorAll('section.route').length").await;
    assert_eq!(before, 0, "no data before the token");
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#sign-in").await;

    // The charts fill as the series grows; the phase and weight are the admin API's.
    let shown = until("every chart drawn with data points", async || {
        let shown = browser.run(READ_PAGE).await;
        let charts = shown["charts"].as_object()?;
        (charts.len() == 4 && charts.values().all(|points| points.as_u64().unwrap_or(0) >= 3)).then_some(shown)
    })
    .await;
    assert!(shown["canvases"].as_u64().unwrap_or(0) >= 4, "{shown}");
    let api = admin_json(&setup, "/admin/rollouts/default").await;
    assert_eq!(shown["phase"], api["phase"], "{shown} vs {api}");
    let weight: f64 = shown["weight"].as_str().unwrap_or_default().parse().unwrap_or(-1.0);
    assert_eq!(weight, api["weight"].as_f64().unwrap(), "{shown} vs {api}");
    assert_eq!(browser.url().await, dashboard, "the token never enters the address");

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let output = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&output, &png).unwrap();
    println!("dashboard screenshot: {}", output.display());

    // An operator action from the page, confirmed, lands as the admin API's own command.
    browser.click(r#"[data-action="pause"][data-route="default"]"#).await;
    browser.click("#confirm-yes").await;
    let event = until("the pause event by the dashboard", async || {
        let events = admin_json(&setup, "/admin/events?route=default&limit=20").await;
        events.as_array()?.iter().find(|event| event["kind"] == "pause").cloned()
    })
    .await;
    assert_eq!(event["actor"], "dashboard", "{event}");
    assert_eq!(admin_json(&setup, "/admin/rollouts/default").await["phase"], "paused");
    until("the page shows the pause", async || {
        let shown = browser.run(READ_PAGE).await;
        (shown["phase"] == "paused").then_some(())
    })
    .await;

    stop.store(true, Relaxed);
    for task in load {
        let _ = task.await;
    }
}
