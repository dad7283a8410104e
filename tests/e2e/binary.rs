//! Harness for tests of the real `cutover` binary: a scratch directory per test, child
//! processes (`cutover mock`, `cutover serve`) started on free loopback ports and killed
//! on drop, their stderr kept in the scratch directory and printed when a test fails, and
//! a small HTTP client for talking to them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_cutover");

/// How long a child may take to answer its readiness probe: only a hang fails it.
const READY_WITHIN: Duration = crate::wait::EVENTUALLY;
/// Attempts at starting a child when the port picked for it was taken in the meantime.
const START_ATTEMPTS: usize = 5;
/// Longest wait for one HTTP exchange in these tests.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A unique directory under the system temp dir for one test's files (configs, state,
/// logs). Removed on drop when the test passed; kept and named when it failed.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!("cutover-e2e-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let file = self.path.join(name);
        std::fs::write(&file, text).unwrap_or_else(|error| panic!("cannot write {}: {error}", file.display()));
        file
    }

    /// A log file name not used yet in this directory: `gateway.log`, `gateway-2.log`, …
    fn fresh_log(&self, name: &str) -> PathBuf {
        (1..)
            .map(
                |n| {
                    if n == 1 {
                        self.path.join(format!("{name}.log"))
                    } else {
                        self.path.join(format!("{name}-{n}.log"))
                    }
                },
            )
            .find(|path| !path.exists())
            .unwrap_or_else(|| self.path.join(format!("{name}.log")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the test's files in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A `cutover` child process. Dropping it kills it (SIGKILL) and reaps it, so no test
/// leaks processes, even when it panics; a failing test also gets its stderr printed.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Runs `cutover ARGS` in the background with exactly `env` as environment (plus log
    /// settings `env` may override), stdout discarded, stderr kept in `NAME.log` in the
    /// scratch directory. `Mock::start` and `Gateway::start` wait for readiness too.
    pub fn start(scratch: &Scratch, name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        Process::start_under(scratch, name, &[], args, env)
    }

    /// [`Process::start`] with the binary run by `wrapper` (e.g. `prlimit --nofile=256:256`).
    pub fn start_under(
        scratch: &Scratch,
        name: &str,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Process::spawn(name, wrapper, &args, env, scratch.fresh_log(name))
    }

    fn spawn(name: &str, wrapper: &[&str], args: &[String], env: &[(&str, &str)], log: PathBuf) -> Process {
        let stderr =
            std::fs::File::create(&log).unwrap_or_else(|error| panic!("cannot create {}: {error}", log.display()));
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(args)
            .env_clear()
            .env("CUTOVER_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            // Relative paths in a config resolve against the config file, not the cwd.
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {BIN}: {error}"));
        Process { name: name.to_owned(), child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, …) with `kill(1)`, as an operator would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill: {error}"));
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap_or_else(|error| panic!("cannot wait for {}: {error}", self.name))
    }

    /// Waits for the process to end, at most `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} (pid {}) still running after {within:?}", self.name, self.pid());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- stderr of {} ({}) -----\n{}----- end of {} -----",
                self.name,
                self.log.display(),
                self.log(),
                self.name
            );
        }
    }
}

/// What proves that a freshly started child is the one serving its port.
enum Probe {
    /// `GET /v1/models` answers (any status) with `x-mock-name: NAME`.
    MockNamed(String),
    /// `GET /healthz` answers 200 on the admin listener, and the log says `cutover is
    /// serving`: `/healthz` answers as soon as the admin listener is up, before `main`
    /// has finished starting (its signal handlers, say), and a test that signals the
    /// gateway or reads its start-up log needs the whole start done.
    Healthz,
}

/// What `main` logs once the gateway has started.
const SERVING: &str = "cutover is serving";

impl Probe {
    async fn passes(&self, addr: SocketAddr) -> bool {
        let path = match self {
            Probe::MockNamed(_) => "/v1/models",
            Probe::Healthz => "/healthz",
        };
        let request = Request::get(format!("http://{addr}{path}")).body(Full::new(Bytes::new()));
        let Ok(request) = request else { return false };
        let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(1), client().request(request)).await else {
            return false;
        };
        match self {
            Probe::MockNamed(name) => response.headers().get("x-mock-name").is_some_and(|value| value == name.as_str()),
            Probe::Healthz => response.status() == StatusCode::OK,
        }
    }

    /// Whether the child's log says its start is done, as far as this probe needs.
    fn start_logged(&self, process: &Process) -> bool {
        match self {
            Probe::MockNamed(_) => true,
            Probe::Healthz => process.log().contains(SERVING),
        }
    }
}

/// `count` loopback addresses whose ports were free a moment ago.
fn free_addrs(count: usize) -> Vec<SocketAddr> {
    // Hold every listener until all are picked, so the ports are distinct.
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("bind: {error}"))).collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap_or_else(|error| panic!("local_addr: {error}")))
        .collect()
}

/// Starts a child on fresh ports until it passes `probe` on `addrs[probe_at]`. A child
/// that dies at startup because a port was taken meanwhile is retried on new ports;
/// any other early death fails the test with the child's log.
async fn launch(
    scratch: &Scratch,
    name: &str,
    ports: usize,
    probe: Probe,
    probe_at: usize,
    (wrapper, mut args_for): (&[&str], impl FnMut(&[SocketAddr]) -> Vec<String>),
    env: &[(&str, &str)],
) -> (Process, Vec<SocketAddr>) {
    for _attempt in 0..START_ATTEMPTS {
        let addrs = free_addrs(ports);
        let mut process = Process::spawn(name, wrapper, &args_for(&addrs), env, scratch.fresh_log(name));
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = process.exited() {
                let log = process.log();
                if log.contains("Address already in use") || log.contains("cannot listen") {
                    break;
                }
                panic!("{name} exited at startup with {status}:\n{log}");
            }
            // Still alive after answering: the answer was not another server's on a port
            // this child failed to bind and is about to exit for.
            if probe.passes(addrs[probe_at]).await && process.exited().is_none() && probe.start_logged(&process) {
                return (process, addrs);
            }
            assert!(Instant::now() < deadline, "{name} not ready within {READY_WITHIN:?}:\n{}", process.log());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    panic!("{name}: no free ports after {START_ATTEMPTS} attempts");
}

/// A simulated upstream: `cutover mock` as a child process.
pub struct Mock {
    /// Held for its `Drop`: the mock lives as long as this handle.
    _process: Process,
    pub addr: SocketAddr,
}

impl Mock {
    /// Starts `cutover mock --name NAME FLAGS…` on a free port.
    pub async fn start(scratch: &Scratch, name: &str, flags: &[&str], env: &[(&str, &str)]) -> Mock {
        let args_for = |addrs: &[SocketAddr]| {
            let mut args: Vec<String> =
                ["mock", "--listen", &addrs[0].to_string(), "--name", name].map(str::to_owned).into();
            args.extend(flags.iter().map(|flag| (*flag).to_owned()));
            args
        };
        let probe = Probe::MockNamed(name.to_owned());
        let (process, addrs) = launch(scratch, name, 1, probe, 0, (&[], args_for), env).await;
        Mock { _process: process, addr: addrs[0] }
    }

    /// `http://127.0.0.1:PORT/v1`, the `base_url` of an upstream.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// `cutover serve` as a child process.
pub struct Gateway {
    pub process: Process,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
}

impl Gateway {
    /// Writes `config` to `cutover.toml` in the scratch directory, with the listeners
    /// added to its `[server]` section (the harness picks the ports), and serves it with
    /// exactly `env` as environment. Starting again on the same scratch directory is a
    /// restart: same file, same state, new ports.
    pub async fn start(scratch: &Scratch, config: &str, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_under(scratch, &[], config, env).await
    }

    /// [`Gateway::start`] with the binary run by `wrapper` (e.g. `prlimit --nofile=256:256`).
    pub async fn start_under(scratch: &Scratch, wrapper: &[&str], config: &str, env: &[(&str, &str)]) -> Gateway {
        let args_for = |addrs: &[SocketAddr]| {
            let file = scratch.write("cutover.toml", &with_listeners(config, addrs[0], addrs[1]));
            vec!["serve".to_owned(), "-c".to_owned(), file.display().to_string()]
        };
        let (process, addrs) = launch(scratch, "gateway", 2, Probe::Healthz, 1, (wrapper, args_for), env).await;
        Gateway { process, proxy: addrs[0], admin: addrs[1] }
    }

    /// A URL on the proxy listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }
}

/// `config` with `listen` and `admin_listen` set in its `[server]` section.
fn with_listeners(config: &str, proxy: SocketAddr, admin: SocketAddr) -> String {
    let listeners = format!("listen = \"{proxy}\"\nadmin_listen = \"{admin}\"\n");
    match config.find("[server]\n") {
        Some(at) => {
            let (head, tail) = config.split_at(at + "[server]\n".len());
            format!("{head}{listeners}{tail}")
        }
        None => format!("[server]\n{listeners}\n{config}"),
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}` with
    /// a non-empty message and type, and returns the error object.
    pub fn openai_error(&self) -> Value {
        let json = self.json();
        let error = json.get("error").unwrap_or_else(|| panic!("no `error` object: {json}"));
        for key in ["message", "type", "param", "code"] {
            assert!(error.get(key).is_some(), "the error object lacks `{key}`: {json}");
        }
        for key in ["message", "type"] {
            assert!(
                error[key].as_str().is_some_and(|text| !text.is_empty()),
                "`error.{key}` is not a non-empty string: {json}"
            );
        }
        assert!(
            self.header("content-type").is_some_and(|value| value.starts_with("application/json")),
            "error without a JSON content type: {:?}",
            self.headers
        );
        error.clone()
    }
}

/// A client that keeps no idle connections, so nothing outlives the exchange (a gateway
/// being restarted or drained sees only the connections a test means to have).
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http()
}

fn build(method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::builder().method(method).uri(url);
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(body)).unwrap_or_else(|error| panic!("bad request for {url}: {error}"))
}

/// Sends one request and reads the whole response.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let exchange = async {
        let response = client()
            .request(build(method.clone(), url, headers, body.into()))
            .await
            .unwrap_or_else(|error| panic!("{method} {url}: {error:?}"));
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap_or_else(|error| panic!("{method} {url}: body: {error}")).to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{url}: no complete answer within {HTTP_TIMEOUT:?}"))
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(Method::GET, url, headers, Bytes::new()).await
}

pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(Method::POST, url, headers, body.to_string()).await
}

/// A response whose body is read frame by frame, for streams.
pub struct Streaming {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
}

impl Streaming {
    pub async fn open(url: &str, headers: &[(&str, &str)], body: &Value) -> Streaming {
        let request = build(Method::POST, url, headers, Bytes::from(body.to_string()));
        let response = tokio::time::timeout(HTTP_TIMEOUT, client().request(request))
            .await
            .unwrap_or_else(|_| panic!("{url}: no response headers within {HTTP_TIMEOUT:?}"))
            .unwrap_or_else(|error| panic!("{url}: {error:?}"));
        let (parts, body) = response.into_parts();
        Streaming { status: parts.status, headers: parts.headers, body }
    }

    /// The next data frame; `None` at the end of the body. A body that breaks fails the test.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(HTTP_TIMEOUT, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no frame within {HTTP_TIMEOUT:?}"))?
                .unwrap_or_else(|error| panic!("the response body broke: {error:?}"));
            if let Ok(data) = frame.into_data() {
                return Some(data);
            }
        }
    }

    /// Everything left in the body until it ends or breaks, and whether it ended whole.
    pub async fn rest_or_cut(&mut self) -> (Vec<u8>, bool) {
        let mut all = Vec::new();
        loop {
            let frame = tokio::time::timeout(HTTP_TIMEOUT, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no frame within {HTTP_TIMEOUT:?}"));
            match frame {
                None => return (all, true),
                Some(Err(_)) => return (all, false),
                Some(Ok(frame)) => all.extend_from_slice(frame.data_ref().map_or(&[][..], |data| &data[..])),
            }
        }
    }

    /// Everything left in the body.
    pub async fn rest(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(data) = self.next().await {
            all.extend_from_slice(&data);
        }
        all
    }
}

/// The `data:` payloads of an SSE body, in order (`[DONE]` included); the mocks put one
/// `data:` line in each event.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|line| line.strip_prefix("data:")).map(|data| data.trim().to_owned()).collect()
}

/// Writes `head` and then `body` to a raw TCP connection while reading the answer, and
/// returns everything the server sent until it closed or fell silent for
/// `HTTP_TIMEOUT`. Writing and reading run together: a server may answer (e.g. 413)
/// before the body is sent and close; what it sent is kept even if the upload fails.
pub async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|error| panic!("connect {addr}: {error}"));
    let (mut reader, mut writer) = stream.into_split();
    let upload = async {
        writer.write_all(head.as_bytes()).await?;
        for piece in body.chunks(64 * 1024) {
            writer.write_all(piece).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    // A server that stops reading without closing would block the upload forever.
    let write = async {
        let _ = tokio::time::timeout(HTTP_TIMEOUT, upload).await;
    };
    let read = async {
        let mut answer = Vec::new();
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout(HTTP_TIMEOUT, reader.read(&mut buffer)).await {
            answer.extend_from_slice(&buffer[..n]);
        }
        answer
    };
    let ((), answer) = tokio::join!(write, read);
    String::from_utf8_lossy(&answer).into_owned()
}
