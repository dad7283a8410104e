//! Upstream abuse, as a suite: a raw TCP upstream that reads each request and answers
//! with scripted bytes (exactly the attack: endless streams, oversized events and
//! headers, broken chunking, absurd usage numbers, a 1 GiB answer, one-byte chunks, an
//! early close, floods of interim responses), a gateway in front, and for each what the
//! client receives, that the gateway survives, and that the metrics stay true.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::binary::{Gateway, Scratch, client, sse_data};
use crate::configs::GatewayToml;
use crate::support::{ADMIN_TOKEN, FAULT_DEADLINE, Reply, TempDir, metric, send, start_gateway};

/// A whole chat answer with `usage` as given.
fn answer_with_usage(usage: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4.1","choices":[{{"index":0,"message":{{"role":"assistant","content":"hi"}},"finish_reason":"stop"}}],"usage":{usage}}}"#
    )
}

/// One streamed chunk of a chat completion.
const CHUNK_EVENT: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";

/// The upstream's price, so that answers of `gpt-4.1` are priced.
const PRICES: &str = "[prices.primary]\n\"gpt-4.1\" = { input = 2.0, output = 8.0 }\n";

/// A raw upstream on loopback: every connection's request is read (head and
/// `content-length` body) and then `script` writes whatever it likes on the socket.
struct Hostile {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start<F, Fut>(script: F) -> Hostile
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hostile upstream");
        let addr = listener.local_addr().expect("hostile address");
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    if read_request(&mut stream).await.is_ok() {
                        let _ = script(stream).await;
                    }
                });
            }
        });
        Hostile { addr, connections, task }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: its head up to the blank line, then `content-length` bytes.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buffer[..n]);
        if let Some(at) = seen.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = seen.len() - head_end;
    while body < length {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body += n;
    }
    Ok(())
}

/// Writes `data` as one chunk of a chunked body.
async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
    stream.write_all(data).await?;
    stream.write_all(b"\r\n").await
}

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

/// A priced, single-upstream gateway in process in front of `upstream`, with the short
/// fault deadlines.
async fn gateway_before(upstream: &Hostile, dir: &TempDir) -> cutover::server::Running {
    let config = GatewayToml::new()
        .upstream("primary", &upstream.base_url())
        .route("default", "primary", None)
        .server("max_body_mb = 1")
        .admin_token_env("ADMIN_TOKEN")
        .every_upstream(&format!("first_byte_timeout = \"{FAULT_DEADLINE}\""))
        .every_upstream(&format!("first_token_timeout = \"{FAULT_DEADLINE}\""))
        .every_upstream(&format!("idle_timeout = \"{FAULT_DEADLINE}\""))
        .section(PRICES)
        .build();
    start_gateway(&config, dir).await
}

fn chat_body(stream: bool) -> String {
    format!(r#"{{"model":"gpt-4.1","stream":{stream},"messages":[{{"role":"user","content":"Hello"}}]}}"#)
}

async fn chat(gateway: &cutover::server::Running, stream: bool) -> Reply {
    send(Method::POST, &format!("http://{}/v1/chat/completions", gateway.proxy_addr), &[], chat_body(stream)).await
}

/// What a client that reads to the end sees: the status, and the body or how it broke.
async fn chat_outcome(gateway: &cutover::server::Running, stream: bool) -> (StatusCode, Result<Bytes, String>) {
    let request = Request::post(format!("http://{}/v1/chat/completions", gateway.proxy_addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body(stream))))
        .expect("request");
    let exchange = async {
        let response = client().request(request).await.expect("the gateway answers");
        let status = response.status();
        let body =
            response.into_body().collect().await.map(|body| body.to_bytes()).map_err(|error| format!("{error:?}"));
        (status, body)
    };
    tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("an outcome within 30s")
}

/// Asserts the gateway still serves: its health check answers.
async fn assert_alive(gateway: &cutover::server::Running) {
    let reply = send(Method::GET, &format!("http://{}/healthz", gateway.admin_addr), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "the gateway is not healthy after the attack: {}", reply.text());
}

/// Asserts a clean OpenAI-shaped 502 or 504, before anything was committed.
fn assert_clean_gateway_error(reply: &Reply) {
    assert!(
        matches!(reply.status, StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT),
        "expected a 502/504, got {}: {}",
        reply.status,
        reply.text()
    );
    reply.openai_error();
}

/// A whole chat request through a gateway before `upstream` gets a clean 502 or 504,
/// and the gateway still serves after it.
async fn assert_a_clean_gateway_error_from(upstream: &Hostile) {
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(upstream, &dir).await;
    let reply = chat(&gateway, false).await;
    assert_clean_gateway_error(&reply);
    assert_alive(&gateway).await;
}

/// The last `data:` payload of an SSE body, parsed: the terminal error event.
fn terminal_sse_error(body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body);
    let last = sse_data(&text).pop().unwrap_or_else(|| panic!("no SSE event at all: {text}"));
    let event: serde_json::Value =
        serde_json::from_str(&last).unwrap_or_else(|_| panic!("the last event is not JSON: {last}"));
    assert!(event["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no terminal error event: {last}");
    event
}

#[tokio::test]
async fn an_endless_stream_is_relayed_until_the_client_leaves_and_then_the_upstream_is_hung_up_on() {
    let (hung_up, mut hung_up_seen) = mpsc::unbounded_channel();
    let upstream = Hostile::start(move |mut stream| {
        let hung_up = hung_up.clone();
        async move {
            stream.write_all(SSE_HEAD).await?;
            loop {
                if let Err(error) = write_chunk(&mut stream, CHUNK_EVENT.as_bytes()).await {
                    let _ = hung_up.send(());
                    return Err(error);
                }
            }
        }
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let request = Request::post(format!("http://{}/v1/chat/completions", gateway.proxy_addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body(true))))
        .expect("request");
    let response = client().request(request).await.expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut read = 0usize;
    while read < 4 << 20 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the stream keeps flowing")
            .expect("the stream does not end")
            .expect("the stream does not break");
        read += frame.into_data().map(|data| data.len()).unwrap_or(0);
    }
    drop(body);
    tokio::time::timeout(Duration::from_secs(10), hung_up_seen.recv())
        .await
        .expect("the gateway closes the upstream once the client has left");
    assert_alive(&gateway).await;
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_the_upstreams_total_timeout_with_an_error_event() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(SSE_HEAD).await?;
        loop {
            write_chunk(&mut stream, CHUNK_EVENT.as_bytes()).await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let dir = TempDir::new("hostile");
    let config = GatewayToml::new()
        .upstream("primary", &upstream.base_url())
        .route("default", "primary", None)
        .admin_token_env("ADMIN_TOKEN")
        .every_upstream("timeout = \"2s\"")
        .build();
    let gateway = start_gateway(&config, &dir).await;

    let (status, body) = chat_outcome(&gateway, true).await;
    assert_eq!(status, StatusCode::OK);
    let body = body.expect("the stream ends cleanly, with an error event");
    assert!(sse_data(&String::from_utf8_lossy(&body)).len() > 1, "the stream was relayed until cut");
    terminal_sse_error(&body);
    assert_alive(&gateway).await;
}

#[tokio::test]
async fn a_single_event_larger_than_the_limit_ends_the_stream_with_an_error_event() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(SSE_HEAD).await?;
        write_chunk(&mut stream, CHUNK_EVENT.as_bytes()).await?;
        write_chunk(&mut stream, b"data: {\"junk\":\"").await?;
        // 8 MiB of one event, twice the 4 MiB limit, and never its end.
        let piece = vec![b'a'; 64 << 10];
        for _ in 0..128 {
            write_chunk(&mut stream, &piece).await?;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let (status, body) = chat_outcome(&gateway, true).await;
    assert_eq!(status, StatusCode::OK, "the first event committed the stream");
    let body = body.expect("the stream ends cleanly, with an error event");
    assert!(body.len() < 5 << 20, "the oversized event was not relayed: {} bytes", body.len());
    let error = terminal_sse_error(&body);
    assert!(error.to_string().contains("larger than"), "{error}");
    assert_alive(&gateway).await;
}

#[tokio::test]
async fn a_thousand_response_headers_a_megabyte_long_are_a_clean_502() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n").await?;
        let header = format!("x-junk: {}\r\n", "j".repeat(1000));
        for _ in 0..1024 {
            stream.write_all(header.as_bytes()).await?;
        }
        stream.write_all(b"content-length: 2\r\n\r\n{}").await?;
        Ok(())
    })
    .await;
    assert_a_clean_gateway_error_from(&upstream).await;
}

#[tokio::test]
async fn a_single_megabyte_response_header_is_a_clean_502() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-junk: ").await?;
        let piece = vec![b'j'; 64 << 10];
        for _ in 0..16 {
            stream.write_all(&piece).await?;
        }
        stream.write_all(b"\r\ncontent-length: 2\r\n\r\n{}").await?;
        Ok(())
    })
    .await;
    assert_a_clean_gateway_error_from(&upstream).await;
}

#[tokio::test]
async fn more_than_a_hundred_small_response_headers_are_a_clean_502() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n").await?;
        for n in 0..200 {
            stream.write_all(format!("x-junk-{n}: j\r\n").as_bytes()).await?;
        }
        stream.write_all(b"content-length: 2\r\n\r\n{}").await?;
        Ok(())
    })
    .await;
    assert_a_clean_gateway_error_from(&upstream).await;
}

#[tokio::test]
async fn an_invalid_chunk_size_mid_answer_never_passes_as_a_whole_answer() {
    let upstream = Hostile::start(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .await?;
        write_chunk(&mut stream, br#"{"id":"chatcmpl-1","choices":[{"#).await?;
        stream.write_all(b"zz-not-a-size\r\nmore\r\n").await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    // The answer is relayed as it comes, so the break comes after the commit: the client's
    // connection is cut (here before even the head was flushed), never ended cleanly.
    let request = Request::post(format!("http://{}/v1/chat/completions", gateway.proxy_addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body(false))))
        .expect("request");
    let exchange = async {
        let response = client().request(request).await.map_err(|error| format!("{error:?}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|error| format!("{error:?}"))?.to_bytes();
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("an outcome within 30s") {
        Err(_cut) => {}
        Ok((status @ (StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT), body)) => {
            let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
            assert!(json["error"]["message"].is_string(), "{status}: {json}");
        }
        Ok((status, body)) => panic!("a broken answer passed as whole: {status} {body:?}"),
    }
    let page = send(Method::GET, &format!("http://{}/metrics", gateway.admin_addr), &[], "").await.text();
    let succeeded = "cutover_requests_total{route=\"default\",upstream=\"primary\",role=\"primary\",outcome=\"ok\"}";
    assert_eq!(metric(&page, succeeded), 0.0, "a broken answer was counted a success:\n{page}");
    assert_alive(&gateway).await;
}

#[tokio::test]
async fn an_invalid_chunk_size_mid_stream_ends_it_with_an_error_event() {
    let upstream = Hostile::start(|mut stream| async move {
        stream.write_all(SSE_HEAD).await?;
        write_chunk(&mut stream, CHUNK_EVENT.as_bytes()).await?;
        stream.write_all(b"zz-not-a-size\r\nmore\r\n").await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let (status, body) = chat_outcome(&gateway, true).await;
    assert_eq!(status, StatusCode::OK);
    terminal_sse_error(&body.expect("the stream ends cleanly, with an error event"));
    assert_alive(&gateway).await;
}

/// Usage objects no upstream can honestly report: each must leave the token and cost
/// counters untouched, while the answer itself is still relayed.
#[tokio::test]
async fn absurd_usage_numbers_never_reach_the_token_or_cost_counters() {
    const ABSURD: [&str; 7] = [
        r#"{"prompt_tokens":-5,"completion_tokens":-7,"total_tokens":-12}"#,
        r#"{"prompt_tokens":1e308,"completion_tokens":1e308,"total_tokens":1e308}"#,
        r#"{"prompt_tokens":18446744073709551616,"completion_tokens":18446744073709551616}"#,
        r#"{"prompt_tokens":2.5,"completion_tokens":0.5}"#,
        r#"{"prompt_tokens":"100","completion_tokens":"200"}"#,
        r#"{"prompt_tokens":1.8446744073709552e19,"completion_tokens":null}"#,
        // u64::MAX itself: a whole number, but no answer holds that many tokens.
        r#"{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615}"#,
    ];
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    let upstream = Hostile::start(move |mut stream| {
        let case = counter.fetch_add(1, Ordering::SeqCst) % ABSURD.len();
        async move {
            let body = answer_with_usage(ABSURD[case]);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        }
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    for usage in ABSURD {
        let reply = chat(&gateway, false).await;
        assert_eq!(reply.status, StatusCode::OK, "{usage}: {}", reply.text());
        assert_eq!(reply.json()["usage"], serde_json::from_str::<serde_json::Value>(usage).unwrap());
    }
    let admin = |path: &str| format!("http://{}{path}", gateway.admin_addr);
    let page = send(Method::GET, &admin("/metrics"), &[], "").await.text();
    for line in page
        .lines()
        .filter(|line| line.starts_with("cutover_tokens_total") || line.starts_with("cutover_cost_usd_total"))
    {
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap_or(f64::NAN);
        assert_eq!(value, 0.0, "an absurd usage reached the counters: {line}\n{page}");
    }
    let report =
        send(Method::GET, &admin("/admin/cost"), &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))], "").await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text());
    let text = report.text();
    assert!(
        !text.contains("e+") && !text.contains("inf") && !text.contains("NaN"),
        "garbage in the cost report: {text}"
    );
    assert_eq!(upstream.connections.load(Ordering::SeqCst), ABSURD.len(), "one upstream call per request");
    assert_alive(&gateway).await;
}

#[tokio::test]
async fn an_answer_in_one_byte_chunks_arrives_whole_and_is_metered() {
    let body = answer_with_usage(r#"{"prompt_tokens":11,"completion_tokens":13,"total_tokens":24}"#);
    let sent = body.clone();
    let upstream = Hostile::start(move |mut stream| {
        let body = sent.clone();
        async move {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            for byte in body.as_bytes() {
                write_chunk(&mut stream, &[*byte]).await?;
            }
            stream.write_all(b"0\r\n\r\n").await
        }
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let reply = chat(&gateway, false).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), body);
    let page = send(Method::GET, &format!("http://{}/metrics", gateway.admin_addr), &[], "").await.text();
    let series = |kind: &str| {
        format!("cutover_tokens_total{{route=\"default\",upstream=\"primary\",model=\"gpt-4.1\",kind=\"{kind}\"}}")
    };
    assert_eq!(metric(&page, &series("input")), 11.0, "{page}");
    assert_eq!(metric(&page, &series("output")), 13.0, "{page}");
}

#[tokio::test]
async fn a_stream_in_one_byte_chunks_arrives_event_for_event() {
    let events: String = (0..20).map(|_| CHUNK_EVENT).collect::<String>() + "data: [DONE]\n\n";
    let sent = events.clone();
    let upstream = Hostile::start(move |mut stream| {
        let events = sent.clone();
        async move {
            stream.write_all(SSE_HEAD).await?;
            for byte in events.as_bytes() {
                write_chunk(&mut stream, &[*byte]).await?;
            }
            stream.write_all(b"0\r\n\r\n").await
        }
    })
    .await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let (status, body) = chat_outcome(&gateway, true).await;
    assert_eq!(status, StatusCode::OK);
    let body = body.expect("the stream ends cleanly");
    assert_eq!(sse_data(&String::from_utf8_lossy(&body)), sse_data(&events));
}

#[tokio::test]
async fn an_upstream_that_closes_mid_status_line_is_a_clean_502() {
    let upstream = Hostile::start(|mut stream| async move { stream.write_all(b"HTTP/1.1 20").await }).await;
    assert_a_clean_gateway_error_from(&upstream).await;
}

/// `count` interim responses of `status_line`, then a whole answer.
async fn interim_then_answer(mut stream: TcpStream, status_line: &str, count: usize) -> std::io::Result<()> {
    let interim = format!("{status_line}\r\nlink: </style.css>; rel=preload\r\n\r\n");
    for _ in 0..count {
        stream.write_all(interim.as_bytes()).await?;
    }
    let body = answer_with_usage(r#"{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}"#);
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}

#[tokio::test]
async fn a_flood_of_100_continue_before_the_answer_is_skipped_and_the_answer_relayed() {
    let upstream = Hostile::start(|stream| interim_then_answer(stream, "HTTP/1.1 100 Continue", 10_000)).await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let reply = chat(&gateway, false).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["usage"]["total_tokens"], 7);
}

#[tokio::test]
async fn a_103_early_hints_before_the_answer_is_skipped_and_the_answer_relayed() {
    let upstream = Hostile::start(|stream| interim_then_answer(stream, "HTTP/1.1 103 Early Hints", 1)).await;
    let dir = TempDir::new("hostile");
    let gateway = gateway_before(&upstream, &dir).await;

    let reply = chat(&gateway, false).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["usage"]["total_tokens"], 7);
    assert!(reply.header("link").is_none(), "the hint's headers are not the answer's: {:?}", reply.headers);
}

/// The peak and current resident memory of a process, in KiB, from `/proc`.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The bound the gateway's peak resident memory stays under while relaying 1 GiB.
const PEAK_RSS_BOUND_KIB: u64 = 200 << 10;

#[tokio::test]
async fn a_one_gibibyte_answer_is_relayed_in_bounded_memory_and_still_metered() {
    const CONTENT: usize = 1 << 30;
    let upstream = Hostile::start(|mut stream| async move {
        let head = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":""#;
        let tail = br#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1000000,"total_tokens":1000005}}"#;
        let length = head.len() + CONTENT + tail.len();
        let status = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n");
        stream.write_all(status.as_bytes()).await?;
        stream.write_all(head).await?;
        let piece = vec![b'a'; 1 << 20];
        for _ in 0..CONTENT >> 20 {
            stream.write_all(&piece).await?;
        }
        stream.write_all(tail).await
    })
    .await;
    let scratch = Scratch::new("hostile-gib");
    let config = GatewayToml::new()
        .upstream("primary", &upstream.base_url())
        .route("default", "primary", None)
        .admin_token_env("CUTOVER_ADMIN_TOKEN")
        .every_upstream("first_byte_timeout = \"5s\"")
        .every_upstream("idle_timeout = \"5s\"")
        .section(PRICES)
        .build();
    let gateway = Gateway::start(&scratch, &config, &[("CUTOVER_ADMIN_TOKEN", "t")]).await;
    let (before, _) = memory_kib(gateway.process.pid());

    let request = Request::post(gateway.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body(false))))
        .expect("request");
    let response = client().request(request).await.expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let (mut read, mut last) = (0usize, Vec::new());
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(30), body.frame()).await.expect("the body flows") {
        if let Ok(data) = frame.expect("the body does not break").into_data() {
            read += data.len();
            last = data[data.len().saturating_sub(64)..].to_vec();
        }
    }
    assert!(read > CONTENT, "the whole answer arrived: {read} bytes");
    assert!(String::from_utf8_lossy(&last).ends_with("\"total_tokens\":1000005}}"), "its end intact");
    let (peak, now) = memory_kib(gateway.process.pid());
    println!("gateway memory relaying 1 GiB: VmHWM {peak} KiB (before {before} KiB), VmRSS {now} KiB");
    assert!(peak < PEAK_RSS_BOUND_KIB, "the gateway's peak RSS {peak} KiB exceeds {PEAK_RSS_BOUND_KIB} KiB");

    let page = crate::binary::get(&gateway.admin_url("/metrics"), &[]).await.text();
    let output = "cutover_tokens_total{route=\"default\",upstream=\"primary\",model=\"gpt-4.1\",kind=\"output\"}";
    assert_eq!(metric(&page, output), 1_000_000.0, "the usage at the end of 1 GiB was read:\n{page}");
}
