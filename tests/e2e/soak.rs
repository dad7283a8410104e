//! Resources follow load, then return: the short form of `bench/soak.sh`. The gateway
//! (the real binary) takes 20,000 requests of the soak's mix (70% whole, 30% streamed, a
//! 50% split, a candidate that fails 5% of its requests and falls back), then the client's
//! connections and both upstreams go away, and its open descriptors and live tasks must
//! come back to what they were before the first request. A leak of one descriptor or one
//! task per thousand requests fails it; memory is left to the benchmark, where it is
//! measured rather than asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::binary::{Gateway, Mock, Scratch, get};
use crate::served::{GATEWAY_ENV, serve_config, set_weight};
use crate::support::metric;
use crate::wait::until;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;
/// What may differ from the baseline once everything has gone: the odd descriptor or task
/// in passing (a scrape's own connection), never one per thousand requests.
const SLACK: f64 = 1.0;
/// Tasks that may stay once an upstream has been used: the idle reaper of the probes'
/// pooled client, one per upstream (two here), not one per request. The requests' own
/// connections' reapers end when their pools are empty.
const POOL_REAPERS: f64 = 2.0;

/// Descriptors and live tasks of the gateway, from its own `/metrics`.
async fn resources(gateway: &Gateway) -> (f64, f64) {
    let page = get(&gateway.admin_url("/metrics"), &[]).await.text();
    (metric(&page, "process_open_fds"), metric(&page, "cutover_runtime_tasks"))
}

/// Sends `requests` requests over `CONCURRENCY` keep-alive connections; returns the
/// statuses that were not 200, with the request's kind.
async fn load(gateway: &Gateway, requests: usize) -> Vec<(StatusCode, bool)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(AtomicUsize::new(0));
    let url = gateway.url("/v1/chat/completions");
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                let mut unexpected = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return unexpected;
                    }
                    let stream = n % 10 < 3;
                    let body = format!(
                        r#"{{"model":"gpt-4.1","max_tokens":8,"stream":{stream},"messages":[{{"role":"user","content":"Say hi."}}]}}"#
                    );
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri(&url)
                        .header("content-type", "application/json")
                        .header("x-user-id", format!("user-{}", n % 5_000))
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    let response = client.request(request).await.unwrap_or_else(|error| panic!("request {n}: {error:?}"));
                    let status = response.status();
                    response.into_body().collect().await.unwrap_or_else(|error| panic!("request {n}: body: {error}"));
                    if status != StatusCode::OK {
                        unexpected.push((status, stream));
                    }
                }
            })
        })
        .collect();
    let mut unexpected = Vec::new();
    for worker in workers {
        unexpected.extend(worker.await.unwrap());
    }
    unexpected
}

#[tokio::test]
async fn after_20000_requests_descriptors_and_tasks_return_to_their_baseline() {
    let scratch = Scratch::new("soak");
    let primary = Mock::start(&scratch, "primary", &[], &[]).await;
    let candidate = Mock::start(&scratch, "candidate", &["--fault", "500:0.05"], &[]).await;
    // No retries: each candidate failure falls back to the primary at once.
    let config = serve_config(&primary, &candidate).route_line("default", "retries = 0").build();
    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    set_weight(&gateway, 50.0).await;
    let (fds_before, tasks_before) = resources(&gateway).await;
    assert!(fds_before > 0.0 && tasks_before > 0.0, "no process gauges on /metrics");

    let unexpected = load(&gateway, REQUESTS).await;
    assert!(unexpected.is_empty(), "{} requests not answered 200: {unexpected:?}", unexpected.len());
    let page = get(&gateway.admin_url("/metrics"), &[]).await.text();
    let fallbacks: f64 = page
        .lines()
        .filter(|line| line.starts_with("cutover_fallbacks_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(fallbacks > 0.0, "the candidate's faults never fell back: the mix is not the soak's");
    let (fds_loaded, tasks_loaded) = resources(&gateway).await;

    // The load's connections close: the client's now, the upstreams' when the mocks stop.
    drop((primary, candidate));
    let (fds_after, tasks_after) = until("descriptors and tasks back at their baseline", async || {
        let (fds, tasks) = resources(&gateway).await;
        (fds <= fds_before + SLACK && tasks <= tasks_before + POOL_REAPERS + SLACK).then_some((fds, tasks))
    })
    .await;
    println!(
        "soak: descriptors {fds_before} → {fds_loaded} under load → {fds_after}; \
         tasks {tasks_before} → {tasks_loaded} → {tasks_after}"
    );
}
