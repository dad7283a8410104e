//! The gateway's edges under a hostile or careless client: memory follows the bytes that
//! arrive, not the lengths declared; every connection has a clock and a budget, and the
//! budgets fit under the descriptor limit; a full admin port admits a probe in the place
//! of its longest-idle connection; idle connections are closed; SIGTERM does not
//! wait on idle HTTP/2 clients; dot-segment paths are never forwarded. (The burst of new
//! streams on paced upstream connections has a test binary of its own, `tests/burst.rs`.)

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cutover::mock::{MockConfig, MockServer};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::binary::{Gateway, Process, Reply, Scratch, Streaming, get, raw_exchange};
use crate::configs::GatewayToml;
use crate::served::{GATEWAY_ENV, serve_config, two_mocks, upstream_for};
use crate::support::{Setup, TempDir, in_process_config, send, start_gateway};
use crate::wait::{EVENTUALLY, until};

/// What a connection received until the server closed it; fails the test if the server
/// keeps it open past [`EVENTUALLY`].
async fn until_closed(mut stream: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(EVENTUALLY, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept the connection open for {EVENTUALLY:?}");
    received
}

/// A connection to `addr` that has sent `bytes` and nothing more.
async fn connect_sending(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream
}

/// Two mocks and an in-process gateway between them with `server` lines added.
async fn setup_with(server: &[&str]) -> Setup {
    let primary = MockServer::start(MockConfig::default().with_name("primary")).await.expect("primary mock");
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.expect("candidate mock");
    let config = server
        .iter()
        .fold(in_process_config(&primary.base_url(), &candidate.base_url()), |config, line| config.server(line))
        .build();
    let dir = TempDir::new("edges");
    let gateway = start_gateway(&config, &dir).await;
    Setup { primary, candidate, gateway, _dir: dir }
}

#[tokio::test]
async fn declared_lengths_reserve_no_memory_so_100_slow_bodies_fit_under_an_address_space_limit() {
    let scratch = Scratch::new("declared-length");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).server("body_idle_timeout = \"2s\"").build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    // One more GiB of address space than the gateway uses now: 100 bodies declaring
    // 32 MiB (3.2 GiB) do not fit if the declaration is reserved; 100 × 64 KiB do.
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.process.pid())).expect("status");
    let used_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    let limit = (used_kib << 10) + (1 << 30);
    let prlimit = std::process::Command::new("prlimit")
        .args([format!("--pid={}", gateway.process.pid()), format!("--as={limit}")])
        .status()
        .expect("run prlimit");
    assert!(prlimit.success(), "prlimit failed");

    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        gateway.proxy,
        32 << 20
    );
    let proxy = gateway.proxy;
    let mut slow: Vec<_> = (0..100)
        .map(|_| {
            let head = head.clone();
            tokio::spawn(async move { raw_exchange(proxy, &head, b"{").await })
        })
        .collect();
    for (index, answer) in slow.iter_mut().enumerate() {
        let answer = answer.await.expect("slow client");
        assert!(answer.starts_with("HTTP/1.1 408"), "slow body {index} got {answer:?}\n{}", gateway.process.log());
    }
    assert!(gateway.process.exited().is_none(), "the gateway died:\n{}", gateway.process.log());
    assert_eq!(upstream_for(&gateway, "after-the-flood").await, "primary");
    assert_eq!(get(&gateway.admin_url("/healthz"), &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn silent_and_half_preface_connections_are_closed_within_the_header_timeout_on_both_ports() {
    let setup = setup_with(&["header_timeout = \"1s\""]).await;
    let http2_preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for addr in [setup.gateway.proxy_addr, setup.gateway.admin_addr] {
        let silent = connect_sending(addr, b"").await;
        let half_preface = connect_sending(addr, b"P").await;
        let preface_only = connect_sending(addr, http2_preface).await;
        let half_request_line = connect_sending(addr, b"GET /v1/mod").await;
        let (silent, half_preface, preface_only, half_request_line) = tokio::join!(
            until_closed(silent),
            until_closed(half_preface),
            until_closed(preface_only),
            until_closed(half_request_line)
        );
        assert!(silent.is_empty(), "{addr}: {silent:?}");
        assert!(half_preface.is_empty(), "{addr}: {half_preface:?}");
        // The preface may be answered with the server's SETTINGS before the close.
        assert!(!String::from_utf8_lossy(&preface_only).contains("HTTP/1.1 200"), "{addr}");
        let half_request_line = String::from_utf8_lossy(&half_request_line);
        assert!(half_request_line.is_empty() || half_request_line.starts_with("HTTP/1.1 408"), "{half_request_line}");
    }
}

#[tokio::test]
async fn a_kept_alive_http1_connection_that_stalls_in_its_next_request_head_is_closed_within_the_header_timeout() {
    let setup = setup_with(&["header_timeout = \"1s\""]).await;
    let mut connection =
        connect_sending(setup.gateway.proxy_addr, b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n").await;
    let mut answered = Vec::new();
    while !answered.windows(6).any(|window| window == b"\"data\"") {
        let mut chunk = [0u8; 4096];
        let read =
            tokio::time::timeout(EVENTUALLY, connection.read(&mut chunk)).await.expect("an answer").expect("read");
        assert!(read > 0, "closed before answering: {}", String::from_utf8_lossy(&answered));
        answered.extend_from_slice(&chunk[..read]);
    }
    connection.write_all(b"GET /v1/mod").await.expect("half a request line");
    let after = until_closed(connection).await;
    let after = String::from_utf8_lossy(&after);
    assert!(after.is_empty() || after.starts_with("HTTP/1.1 408"), "{after}");
}

#[tokio::test]
async fn a_kept_alive_http2_connection_outlives_the_header_timeout_between_its_requests() {
    let setup = setup_with(&["header_timeout = \"1s\""]).await;
    let addr = setup.gateway.proxy_addr;
    let (mut sender, connection) = http2_connection(addr).await;
    for _ in 0..2 {
        let models = Request::get(format!("http://{addr}/v1/models")).body(Full::default()).expect("request");
        assert_eq!(sender.send_request(models).await.expect("models over h2").status(), StatusCode::OK);
        // Silent for longer than the header clock: only the idle clock closes HTTP/2.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert!(!connection.is_finished(), "the connection was closed between its requests");
}

#[tokio::test]
async fn a_saturated_proxy_port_leaves_healthz_answering_and_serves_again_once_idle_connections_time_out() {
    let setup = setup_with(&["header_timeout = \"1s\"", "max_connections = 8"]).await;
    let idle: Vec<TcpStream> = {
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(connect_sending(setup.gateway.proxy_addr, b"").await);
        }
        idle
    };
    let healthz = send(Method::GET, &setup.admin_url("/healthz"), &[], "").await;
    assert_eq!(healthz.status, StatusCode::OK, "the admin port has a budget of its own");
    // Waits in the backlog until an idle connection's clock runs out, then is served.
    let chat = setup.chat("after-the-idle-ones", false).await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text());
    for connection in idle {
        assert!(until_closed(connection).await.is_empty());
    }
}

/// Whether the server still holds `stream` open, having sent nothing on it.
fn held_open_silently(stream: &TcpStream) -> bool {
    let mut byte = [0; 1];
    matches!(stream.try_read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn an_admin_budget_full_of_idle_and_half_open_connections_still_answers_probes_by_closing_the_oldest() {
    // The clocks are set far off, so only admitting the probes in idle ones' places lets them in.
    let setup = setup_with(&["admin_max_connections = 8", "header_timeout = \"1h\"", "idle_timeout = \"1h\""]).await;
    let mut flood = Vec::new();
    for n in 0..16 {
        let sent: &[u8] = if n % 2 == 0 { b"" } else { b"GET /healthz HT" };
        flood.push(connect_sending(setup.gateway.admin_addr, sent).await);
    }
    for path in ["/healthz", "/readyz"] {
        let probe = send(Method::GET, &setup.admin_url(path), &[], "").await;
        assert_eq!(probe.status, StatusCode::OK, "{path}: {}", probe.text());
    }
    // The probes took the places of at most two of the eight newest; those were admitted
    // in the places of the eight oldest, which were closed without an answer.
    let newest = flood.split_off(10);
    assert!(newest.iter().all(held_open_silently), "a newer connection was closed before an older one");
    for oldest in flood.drain(..8) {
        assert!(until_closed(oldest).await.is_empty());
    }
    let proxied = setup.chat("beside-the-flood", false).await;
    assert_eq!(proxied.status, StatusCode::OK, "{}", proxied.text());
}

#[tokio::test]
async fn a_stream_that_outlives_the_drain_timeout_is_cut_by_the_time_shutdown_returns() {
    // A minute of stream (600 chunks, 100 ms apart) against a drain of one second.
    let slow = MockConfig { chunk_gap: Duration::from_millis(100), answer_tokens: 600, ..MockConfig::default() };
    let primary = MockServer::start(slow.with_name("primary")).await.expect("primary mock");
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.expect("candidate mock");
    let config = in_process_config(&primary.base_url(), &candidate.base_url()).server("drain_timeout = \"1s\"").build();
    let dir = TempDir::new("drain-cut");
    let gateway = start_gateway(&config, &dir).await;
    let body = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "Go on"}]});
    let url = format!("http://{}/v1/chat/completions", gateway.proxy_addr);
    let mut stream = Streaming::open(&url, &[], &body).await;
    assert_eq!(stream.status, StatusCode::OK);
    stream.next().await.expect("a first chunk");

    gateway.shutdown().await;
    let (rest, whole) = stream.rest_or_cut().await;
    let text = String::from_utf8_lossy(&rest);
    assert!(!whole && !text.contains("[DONE]"), "the stream went on after the drain gave up on it:\n{text}");
}

#[tokio::test]
async fn sigterm_closes_an_idle_http2_connection_at_once_instead_of_waiting_the_drain_timeout() {
    let scratch = Scratch::new("h2-idle-sigterm");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    // `serve_config` drains for 120 s: an exit within 60 s did not wait for the idle client.
    let mut gateway = Gateway::start(&scratch, &serve_config(&primary, &candidate).build(), &GATEWAY_ENV).await;
    let stream = TcpStream::connect(gateway.proxy).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let request = Request::get(gateway.url("/v1/models")).body(Empty::<Bytes>::new()).expect("request");
    let response = sender.send_request(request).await.expect("an answer over HTTP/2");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.expect("the whole body");

    gateway.process.signal("TERM");
    let status = gateway.process.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gateway.process.log());
    let ended = tokio::time::timeout(EVENTUALLY, connection).await;
    assert!(ended.is_ok(), "the client's connection outlived the gateway");
    drop(sender);
}

/// An HTTP/2 client that makes one request by hand, then never answers again (no
/// SETTINGS or PING acknowledgement): the graceful GOAWAY waits on a PING it never gets.
async fn mute_http2_client(addr: SocketAddr) -> TcpStream {
    let mut stream = connect_sending(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    // HPACK: GET, http, :path and :authority as literals of indexed names.
    let mut block = vec![0x82, 0x86, 0x44, 10];
    block.extend_from_slice(b"/v1/models");
    block.extend_from_slice(&[0x41, 7]);
    block.extend_from_slice(b"gateway");
    let mut headers = vec![0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1];
    headers.extend_from_slice(&block);
    stream.write_all(&[&settings[..], &headers].concat()).await.expect("write");
    let mut received = Vec::new();
    let answered = tokio::time::timeout(EVENTUALLY, async {
        while !received.windows(6).any(|window| window == b"\"list\"") {
            let mut buffer = [0; 4096];
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(n > 0, "closed before the answer: {received:?}");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer over HTTP/2: {received:?}");
    stream
}

#[tokio::test]
async fn sigterm_does_not_wait_the_drain_timeout_on_an_idle_http2_client_that_stopped_answering() {
    let scratch = Scratch::new("h2-mute-sigterm");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).server("http2_keepalive = \"1s\"").build();
    let mut gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let mute = mute_http2_client(gateway.proxy).await;

    gateway.process.signal("TERM");
    // The drain timeout is 120 s: the unanswered keep-alive ping ends the connection.
    let status = gateway.process.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gateway.process.log());
    drop(mute);
}

#[tokio::test]
async fn dot_segment_paths_raw_or_encoded_are_refused_with_400_and_never_forwarded() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), "").await;
    for path in [
        "/v1/../../internal/secret",
        "/v1/%2e%2e/x",
        "/v1/%2E%2e/%2e%2E/internal",
        "/v1/./models",
        "/v1/models/..",
        "/v1/a/..%2f..%2finternal",
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n");
        let answer = raw_exchange(setup.gateway.proxy_addr, &head, b"").await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        let reply = Reply {
            status: StatusCode::BAD_REQUEST,
            headers: [(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"))]
                .into_iter()
                .collect(),
            body: Bytes::from(body.to_owned()),
        };
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{path}: {head}");
        assert_eq!(reply.openai_error()["code"], "invalid_path", "{path}");
    }
    assert_eq!(setup.primary.calls() + setup.candidate.calls(), 0, "a dot-segment path reached an upstream");
    let models = send(Method::GET, &setup.url("/v1/models"), &[], "").await;
    assert_eq!(models.status, StatusCode::OK, "ordinary paths still pass");
}

/// `prlimit` giving the command after it a descriptor limit of 256, soft and hard.
const NOFILE_256: [&str; 2] = ["prlimit", "--nofile=256:256"];

#[tokio::test]
async fn under_a_256_descriptor_limit_300_idle_connections_leave_healthz_answering_and_the_proxy_serves_once_they_close()
 {
    let scratch = Scratch::new("nofile");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    // 48 client connections, 64 upstream ones for mirrors, 8 admin and 64 in reserve
    // leave 72 of 256 for the requests in flight: at least one per client connection.
    // The clocks are set far off, so that only the clients' close frees a place.
    let config = serve_config(&primary, &candidate)
        .server("max_connections = 48")
        .server("admin_max_connections = 8")
        .server("header_timeout = \"1h\"")
        .server("idle_timeout = \"1h\"")
        .build();
    let mut gateway = Gateway::start_under(&scratch, &NOFILE_256, &config, &GATEWAY_ENV).await;
    assert!(gateway.process.log().contains("file descriptors: limit 256"), "{}", gateway.process.log());
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(gateway.proxy).await.expect("connect (accepted or in the backlog)"));
    }
    for _ in 0..3 {
        assert_eq!(get(&gateway.admin_url("/healthz"), &[]).await.status, StatusCode::OK);
    }
    drop(idle);
    assert_eq!(upstream_for(&gateway, "after-the-idle-ones").await, "primary");
    assert!(gateway.process.exited().is_none(), "the gateway died:\n{}", gateway.process.log());
    assert!(!gateway.process.log().contains("Too many open files"), "{}", gateway.process.log());
}

#[tokio::test]
async fn a_gateway_whose_connection_budgets_exceed_the_descriptor_limit_refuses_to_start_naming_keys_and_limit() {
    let scratch = Scratch::new("nofile-refused");
    // The default budgets (1024 + 64) need 2176 descriptors. Port 0: were it to start
    // anyway, it would take no port another test uses.
    let config = GatewayToml::two_upstreams("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
        .server("listen = \"127.0.0.1:0\"")
        .server("admin_listen = \"127.0.0.1:0\"")
        .state("state.db")
        .build();
    let file = scratch.write("cutover.toml", &config);
    let file = file.display().to_string();
    let mut gateway = Process::start_under(&scratch, "gateway", &NOFILE_256, &["serve", "-c", &file], &[]);
    let status = gateway.wait_exit(EVENTUALLY).await;
    let log = gateway.log();
    assert_eq!(status.code(), Some(1), "{log}");
    for part in ["server.max_connections = 1024", "server.admin_max_connections = 64", "limit of 256"] {
        assert!(log.contains(part), "{part:?} not in:\n{log}");
    }
}

/// An HTTP/2 (prior knowledge) connection to `addr`, and the task driving it, which ends
/// when the server closes the connection.
async fn http2_connection(
    addr: SocketAddr,
) -> (hyper::client::conn::http2::SendRequest<Full<Bytes>>, tokio::task::JoinHandle<Result<(), hyper::Error>>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2 handshake");
    (sender, tokio::spawn(connection))
}

fn chat_request(addr: SocketAddr, user: &str, stream: bool) -> Request<Full<Bytes>> {
    let body = format!(r#"{{"model":"gpt-4.1","stream":{stream},"messages":[{{"role":"user","content":"Hi"}}]}}"#);
    Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-user-id", user)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

#[tokio::test]
async fn idle_http2_and_http1_connections_are_closed_after_the_idle_timeout_but_not_one_with_a_stream_in_flight() {
    // 30 chunks 100 ms apart: a stream in flight for three idle timeouts at least.
    let slow = MockConfig::default().with_name("primary").with_chunk_gap(Duration::from_millis(100));
    let primary = MockServer::start(slow.with_answer_tokens(30)).await.expect("primary mock");
    let candidate = MockServer::start(MockConfig::default().with_name("candidate")).await.expect("candidate mock");
    // The header clock, which also bounds an HTTP/1 connection's silence between two
    // requests, is set far off: only the idle clock can close these connections.
    let config = GatewayToml::two_upstreams(&primary.base_url(), &candidate.base_url())
        .server("header_timeout = \"1h\"")
        .server("idle_timeout = \"1s\"")
        .build();
    let dir = TempDir::new("idle");
    let gateway = start_gateway(&config, &dir).await;
    let addr = gateway.proxy_addr;

    let (mut streaming, streaming_connection) = http2_connection(addr).await;
    let response = streaming.send_request(chat_request(addr, "streamer", true)).await.expect("stream headers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body();

    let (mut idle_h2, idle_h2_connection) = http2_connection(addr).await;
    let models = Request::get(format!("http://{addr}/v1/models")).body(Full::default()).expect("request");
    assert_eq!(idle_h2.send_request(models).await.expect("models over h2").status(), StatusCode::OK);
    let idle_h1 = connect_sending(addr, b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n").await;

    let (h1_received, h2_ended) =
        tokio::join!(until_closed(idle_h1), tokio::time::timeout(EVENTUALLY, idle_h2_connection));
    let h1_received = String::from_utf8_lossy(&h1_received);
    assert!(h1_received.starts_with("HTTP/1.1 200"), "the request was answered before the close: {h1_received}");
    assert!(h2_ended.is_ok(), "the idle HTTP/2 connection was kept open for {EVENTUALLY:?}");

    // Half the stream has arrived: it has been in flight for more than the idle timeout.
    let mut received = Vec::new();
    while received.windows(b"data:".len()).filter(|window| *window == b"data:").count() < 15 {
        let frame = stream.frame().await.expect("a frame").expect("an intact stream");
        received.extend_from_slice(&frame.into_data().unwrap_or_default());
    }
    // The busy connection was never told to go away: it takes a new request…
    let second = streaming.send_request(chat_request(addr, "second", false)).await.expect("a second request");
    assert_eq!(second.status(), StatusCode::OK);
    // …and the stream ends whole.
    let rest = stream.collect().await.expect("the rest of the stream").to_bytes();
    received.extend_from_slice(&rest);
    assert!(String::from_utf8_lossy(&received).trim_end().ends_with("data: [DONE]"), "{received:?}");
    drop((streaming, idle_h2));
    let _ = streaming_connection.await;
}

/// hyper answers requests it cannot parse itself, before the service, with no hook for a
/// body (docs/architecture.md, "hyper's own rejections"): this pins what clients get.
#[tokio::test]
async fn hypers_own_rejections_431_400_414_carry_an_empty_body_and_close_the_connection() {
    let setup = Setup::new(MockConfig::default(), MockConfig::default(), "").await;
    let many_headers: String = (0..200).map(|n| format!("x-h{n}: v\r\n")).collect();
    let cases = [
        (format!("GET /v1/models HTTP/1.1\r\nhost: gateway\r\n{many_headers}\r\n"), "431"),
        ("G(T /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n".to_owned(), "400"),
        (format!("GET /v1/{} HTTP/1.1\r\nhost: gateway\r\n\r\n", "a".repeat(70_000)), "414"),
    ];
    for (request, status) in cases {
        let answer = raw_exchange(setup.gateway.proxy_addr, &request, b"").await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.contains("content-length: 0") && head.contains("connection: close"), "{head}");
        assert_eq!(body, "", "hyper gives its own rejections no body");
    }
    assert_eq!(setup.primary.calls() + setup.candidate.calls(), 0);
}

/// The gateway's open descriptors, from `/proc`.
fn open_descriptors(gateway: &Gateway) -> usize {
    let dir = format!("/proc/{}/fd", gateway.process.pid());
    std::fs::read_dir(&dir).map_or(0, Iterator::count)
}

#[tokio::test]
async fn one_client_multiplexing_hundreds_of_streams_is_refused_past_its_share_and_bystanders_are_served() {
    let scratch = Scratch::new("h2-flood");
    // A slow but healthy upstream: every admitted request holds an upstream connection for 2 s.
    let (primary, candidate) = two_mocks(&scratch, &["--latency", "2000"]).await;
    // 400 descriptors: 64 client connections, 64 for mirrors, 8 admin and 64 in reserve
    // leave 200 for requests in flight (the derived `max_inflight`), 32 per connection.
    let config = serve_config(&primary, &candidate)
        .server("max_connections = 64")
        .server("admin_max_connections = 8")
        .server("max_inflight_per_connection = 32")
        .build();
    let nofile = ["prlimit", "--nofile=400:400"];
    let gateway = Gateway::start_under(&scratch, &nofile, &config, &GATEWAY_ENV).await;
    assert!(gateway.process.log().contains("200 requests in flight"), "{}", gateway.process.log());
    // 5 connections × 64 streams: 320 requests at once, each connection 32 past its share.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/h2_flood.py");
    let port = gateway.proxy.port().to_string();
    let flood = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg(script).args(["127.0.0.1", &port, "5", "64"]).output()
    });
    // Once the flood's share is in flight, bystanders on connections of their own are served.
    until("the flood's admitted requests in flight", async || {
        let page = get(&gateway.admin_url("/metrics"), &[]).await.text();
        (crate::support::metric(&page, "cutover_inflight_requests") >= 160.0).then_some(())
    })
    .await;
    let descriptors_under_flood = open_descriptors(&gateway);
    let bystanders = tokio::join!(
        upstream_for(&gateway, "bystander-0"),
        upstream_for(&gateway, "bystander-1"),
        upstream_for(&gateway, "bystander-2"),
    );
    assert_eq!(bystanders, ("primary".to_owned(), "primary".to_owned(), "primary".to_owned()));
    let output = flood.await.expect("join").expect("python3 with `pip install h2` is required");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "h2_flood.py failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("the flood's report");
    println!("h2 flood: {report}; {descriptors_under_flood} descriptors under the flood");
    assert_eq!(report["statuses"], serde_json::json!({"200": 160, "503": 160}), "{report:#}");
    assert_eq!(report["refusals_well_formed"], true, "{report:#}");
    let message = report["refusals"][0]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("server.max_inflight_per_connection"), "{message}");
    assert!(descriptors_under_flood < 400, "{descriptors_under_flood} descriptors open at a limit of 400");
    let page = get(&gateway.admin_url("/metrics"), &[]).await.text();
    let refused = r#"cutover_admission_refused_total{limit="max_inflight_per_connection"}"#;
    assert_eq!(crate::support::metric(&page, refused), 160.0);
    let log = gateway.process.log();
    assert!(!log.contains("Too many open files"), "{log}");
}
