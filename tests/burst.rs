//! A burst of 1,000 new concurrent streams through a fresh gateway to a mock upstream:
//! every one succeeds, on upstream connections opened at most `max_connecting` at a time,
//! and with `max_connections` on at most that many connections.
//!
//! A test binary of its own because cargo runs test binaries one after another: the
//! burst saturates the cores for seconds, and beside the parallel e2e tests it would
//! push their 500 ms upstream deadlines over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cutover::mock::{MockConfig, MockServer};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

const STREAMS: usize = 1000;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_1000_new_streams_through_a_fresh_gateway_all_succeed_on_paced_upstream_connections() {
    let Burst { connections, open, waits } = burst("").await;
    eprintln!("{STREAMS} streams opened {connections} upstream connections");
    // At most one each: none was opened, failed and opened again.
    assert!(connections <= STREAMS as u64, "{connections} upstream connections for {STREAMS} streams");
    assert!(open <= connections as f64 && waits == 0.0, "metrics: {open} open, {waits} waits");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_1000_new_streams_to_an_upstream_capped_at_32_connections_all_succeed_on_32() {
    let Burst { connections, open, waits } = burst("max_connections = 32\n").await;
    eprintln!("{STREAMS} streams opened {connections} upstream connections under a cap of 32, {waits} waited");
    assert!((1..=32).contains(&connections), "{connections} upstream connections for a cap of 32");
    // The idle connections stay open after the burst; most of the streams waited for one.
    assert_eq!(open, connections as f64, "cutover_upstream_connections");
    assert!(waits > 0.0, "cutover_upstream_connection_waits_total is {waits}");
}

/// What a burst left behind.
struct Burst {
    /// Connections the primary mock accepted.
    connections: u64,
    /// The gateway's `cutover_upstream_connections` and
    /// `cutover_upstream_connection_waits_total` for the primary afterwards.
    open: f64,
    waits: f64,
}

/// Sends the burst through a gateway whose primary upstream's section also holds
/// `primary_settings`; every stream must succeed.
async fn burst(primary_settings: &str) -> Burst {
    let tiny = MockConfig::default().with_name("primary").with_answer_tokens(2);
    let primary = MockServer::start(tiny).await.expect("primary mock");
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.expect("candidate mock");
    let config = format!(
        "[upstreams.primary]\nbase_url = \"{}\"\n{primary_settings}\n[upstreams.candidate]\nbase_url = \"{}\"\n\n\
         [[routes]]\nname = \"default\"\nprimary = \"primary\"\ncandidate = \"candidate\"\n",
        primary.base_url(),
        candidate.base_url()
    );
    let dir = std::env::temp_dir().join(format!("cutover-burst-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = cutover_config::load_str(&config, &dir, |_| None).expect("a valid config");
    let (proxy, admin) =
        (TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap());
    let gateway = cutover::server::start_on(config, proxy, admin).await.expect("gateway starts");

    // New connections to the gateway, none reused: each stream is a new client.
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http::<Full<Bytes>>();
    let url = format!("http://{}/v1/chat/completions", gateway.proxy_addr);
    let body = r#"{"model":"gpt-4.1","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let burst: Vec<_> = (0..STREAMS)
        .map(|n| {
            let request = Request::post(&url)
                .header("content-type", "application/json")
                .header("x-user-id", format!("user-{n}"))
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let client = client.clone();
            tokio::spawn(async move {
                let response = client.request(request).await.expect("response headers");
                let status = response.status();
                let body = response.into_body().collect().await.expect("the whole stream").to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            })
        })
        .collect();
    for (n, stream) in burst.into_iter().enumerate() {
        let (status, body) = stream.await.expect("client task");
        assert_eq!(status, StatusCode::OK, "stream {n}: {body}");
        assert!(body.trim_end().ends_with("data: [DONE]"), "stream {n}: {body}");
    }
    let connections = primary.connections();
    let metrics = Request::get(format!("http://{}/metrics", gateway.admin_addr)).body(Full::new(Bytes::new())).unwrap();
    let page = client.request(metrics).await.expect("the metrics page").into_body().collect().await.unwrap();
    let page = String::from_utf8_lossy(&page.to_bytes()).into_owned();
    let sample = |name: &str| {
        let series = format!("{name}{{upstream=\"primary\"}} ");
        let line = page.lines().find_map(|line| line.strip_prefix(series.as_str()));
        line.and_then(|value| value.parse::<f64>().ok()).unwrap_or_else(|| panic!("no {series}in:\n{page}"))
    };
    let burst = Burst {
        connections,
        open: sample("cutover_upstream_connections"),
        waits: sample("cutover_upstream_connection_waits_total"),
    };
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    burst
}
