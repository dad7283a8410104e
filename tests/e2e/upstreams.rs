//! The gateway binary in front of upstream servers this project did not write, with the
//! official `openai` Python SDK as the client (`upstreams/check_through_gateway.py`):
//! FastAPI under uvicorn (h11), aiohttp, Node's `http`, Go's `net/http` (each serving
//! the small OpenAI-compatible app in `upstreams/`), nginx's `proxy_pass` unbuffered in
//! front of `cutover mock`, and nginx over TLS with a certificate from a private CA made
//! here, over HTTP/2 and HTTP/1.1, trusted through `ca_file`. Each run checks whole and
//! streamed answers, a tool call whole and streamed, the upstream's own 400 passed
//! through, and what the server saw: its own `Host`, its own key only, none of the
//! client's other credentials, cookies or account identity, the HTTP version; and that
//! its `set-cookie` never reaches the client. A server that is not installed fails its
//! test with what to install (`.ci/deps/upstreams.sh` installs them); only Go may be
//! absent, with the reason printed.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::binary::{Gateway, Mock, Scratch, post_json};
use crate::configs::GatewayToml;
use crate::script_report::run_script;

const GATEWAY_KEY: &str = "sk-cutover-wire-gateway-key";
const UPSTREAM_KEY: &str = "sk-wire-upstream-key";
/// The SDK's whole run: a dozen requests. Only a hang reaches it.
const CHECK_WITHIN: Duration = Duration::from_secs(120);
/// Every check the script must have run and passed.
const CHECKS: [&str; 10] = [
    "chat_non_streamed",
    "chat_streamed_concatenates_to_the_whole_answer",
    "tool_call_non_streamed",
    "tool_call_streamed",
    "upstream_400_is_bad_request_error_with_its_message",
    "upstream_saw_host_header_with_its_own_address",
    "upstream_got_its_own_key_never_the_gateway_key",
    "no_client_credential_cookie_or_account_identity_reached_the_upstream",
    "the_upstreams_cookie_did_not_reach_the_client",
    "upstream_saw_the_expected_http_version",
];
const PYTHON_HINT: &str = "install Python 3 with `pip install openai uvicorn fastapi aiohttp` (.ci/deps/upstreams.sh)";
const NGINX_HINT: &str = "install nginx (`apt-get install nginx`; .ci/deps/upstreams.sh)";

fn upstreams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/upstreams")
}

/// A loopback address whose port was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A server this project did not write, as a child process: its output goes to a log in
/// the scratch directory, printed when the test fails; dropping it kills it.
struct Server {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(scratch: &Scratch, name: &str, command: &mut Command, hint: &str) -> Server {
        let log = scratch.path().join(format!("{name}.log"));
        let output = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({error}): {hint}"));
        Server { name: name.to_owned(), child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` accepts connections, failing with the log if the server exits.
    async fn ready(mut self, addr: SocketAddr, hint: &str) -> Server {
        crate::wait::until(&format!("{} to listen on {addr}", self.name), async || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited at start with {status}: {hint}\n{}", self.name, self.log());
            }
            tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
        })
        .await;
        self
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}----- end of {} -----", self.name, self.log(), self.name);
        }
    }
}

/// The app in `upstreams/` on a third-party server: `program ARGS… PORT`, with the
/// upstream's key and the gateway's (which the app reports if it ever arrives).
async fn start_app(scratch: &Scratch, name: &str, program: &str, args: &[&str], hint: &str) -> (Server, SocketAddr) {
    let addr = free_addr();
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(addr.port().to_string())
        .current_dir(upstreams_dir())
        .env("UPSTREAM_KEY", UPSTREAM_KEY)
        .env("GATEWAY_KEY", GATEWAY_KEY);
    let server = Server::spawn(scratch, name, &mut command, hint).ready(addr, hint).await;
    (server, addr)
}

/// What the check script must find at the upstream.
struct Expected<'a> {
    /// `echo` for the apps in `upstreams/`, `mock` for `cutover mock` behind nginx.
    answers: &'a str,
    /// The `Host` the server must have seen.
    host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    proto: &'a str,
}

/// A gateway whose route `default` leads to upstream `thirdparty` at `base_url`
/// (`extra` lines added to it), with gateway keys required and the upstream's own key.
/// With `errors_at`, model `ctx-too-long` goes to upstream `thirdparty-errors` there.
fn gateway_config(base_url: &str, errors_at: Option<&str>, extra: &[&str]) -> String {
    let mut config = GatewayToml::new().gateway_key("wire", "GATEWAY_KEY");
    let mut upstreams = vec![("thirdparty", base_url)];
    if let Some(errors) = errors_at {
        upstreams.push(("thirdparty-errors", errors));
        config = config.route("errors", "thirdparty-errors", None).route_line("errors", "models = [\"ctx-too-long\"]");
    }
    for (name, url) in upstreams {
        config = config.upstream(name, url).upstream_line(name, "api_key_env = \"UPSTREAM_KEY\"");
        for line in extra {
            config = config.upstream_line(name, line);
        }
    }
    config.route("default", "thirdparty", None).build()
}

async fn start_gateway(scratch: &Scratch, config: &str) -> Gateway {
    Gateway::start(scratch, config, &[("GATEWAY_KEY", GATEWAY_KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)]).await
}

/// Runs the official SDK through `gateway` and asserts every check; returns the
/// server's name and version as its answers gave them.
async fn check_through(gateway: &Gateway, expected: &Expected<'_>) -> String {
    let script = upstreams_dir().join("check_through_gateway.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .env("CHECK_BASE_URL", gateway.url("/v1"))
        .env("CHECK_KEY", GATEWAY_KEY)
        .env("CHECK_ANSWERS", expected.answers)
        .env("CHECK_UPSTREAM_HOST", &expected.host)
        .env("CHECK_UPSTREAM_PROTO", expected.proto)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let run = run_script(&mut command, CHECK_WITHIN, PYTHON_HINT).await;
    let server = run.report["upstream_server"].as_str().unwrap_or("?").to_owned();
    let what = format!("{server} ({}) behind the gateway", expected.proto);
    run.assert_passed(&CHECKS, &what, &format!("gateway log:\n{}", gateway.process.log()));
    println!("upstream server: {server} over {}; client: openai {}", expected.proto, run.report["openai_version"]);
    server
}

/// One of the apps in `upstreams/` behind the gateway, over plain HTTP/1.1.
async fn app_behind_the_gateway(tag: &str, program: &str, args: &[&str], hint: &str) {
    let scratch = Scratch::new(tag);
    let (_server, addr) = start_app(&scratch, tag, program, args, hint).await;
    let gateway = start_gateway(&scratch, &gateway_config(&format!("http://{addr}/v1"), None, &[])).await;
    let expected = Expected { answers: "echo", host: addr.to_string(), proto: "HTTP/1.1" };
    check_through(&gateway, &expected).await;
}

#[tokio::test]
async fn fastapi_under_uvicorn_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("uvicorn", "python3", &["openai_app.py", "uvicorn"], PYTHON_HINT).await;
}

#[tokio::test]
async fn aiohttp_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("aiohttp", "python3", &["openai_app.py", "aiohttp"], PYTHON_HINT).await;
}

#[tokio::test]
async fn node_http_serves_every_request_through_the_gateway() {
    app_behind_the_gateway("node", "node", &["openai_app.mjs"], "install Node.js 20+").await;
}

#[tokio::test]
async fn go_net_http_serves_every_request_through_the_gateway() {
    if Command::new("go").arg("version").output().is_err() {
        println!("SKIPPED: Go is not installed (`apt-get install golang-go`; .ci/deps/upstreams.sh tries it)");
        return;
    }
    let scratch = Scratch::new("go");
    let binary = scratch.path().join("openai-app");
    // The build cache lives in cargo's target, kept between runs; no module is fetched.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("main.go")
        .current_dir(upstreams_dir())
        .env("GOCACHE", &cache)
        .env("GOPATH", cache.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .unwrap();
    assert!(build.status.success(), "go build main.go: {}", String::from_utf8_lossy(&build.stderr));
    app_behind_the_gateway("go", binary.to_str().unwrap(), &[], "the Go build above").await;
}

/// An nginx of the test's own: config and every path it writes in the scratch dir, in the
/// foreground as one process.
async fn start_nginx(scratch: &Scratch, servers: &str, ports: &[SocketAddr]) -> Server {
    let nginx = ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .find(|program| Command::new(program).arg("-v").output().is_ok())
        .unwrap_or_else(|| panic!("nginx is not installed: {NGINX_HINT}"));
    let prefix = scratch.path().join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let temp = |name: &str| format!("{name}_temp_path {}/{name};", prefix.display());
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n\
         error_log {prefix}/logs/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {prefix}/client_body;\n  {}\n  {}\n  {}\n  {}\n\
         {SEEN_MAPS}\n{servers}\n}}\n",
        temp("proxy"),
        temp("fastcgi"),
        temp("uwsgi"),
        temp("scgi"),
        prefix = prefix.display(),
    );
    let file = prefix.join("nginx.conf");
    std::fs::write(&file, config).unwrap();
    let mut command = Command::new(nginx);
    command.arg("-p").arg(&prefix).arg("-c").arg(&file).arg("-e").arg(prefix.join("logs/error.log"));
    let mut server = Server::spawn(scratch, "nginx", &mut command, NGINX_HINT);
    for addr in ports {
        server = server.ready(*addr, NGINX_HINT).await;
    }
    server
}

/// What nginx saw, in the headers the apps in `upstreams/` send: the key by what
/// `Authorization` held, and the client-only headers that arrived.
const SEEN_MAPS: &str = concat!(
    "  map $http_authorization $seen_key {\n",
    "    \"\" none;\n",
    "    \"Bearer sk-wire-upstream-key\" upstream;\n",
    "    \"~sk-cutover-wire-gateway-key\" gateway;\n",
    "    default other;\n",
    "  }\n",
    "  map \"$http_cookie$http_openai_organization$http_openai_project$http_x_api_key$http_x_goog_api_key\" ",
    "$seen_client_only {\n",
    "    \"\" \"[]\";\n",
    "    default \"[some]\";\n",
    "  }\n",
);

/// An nginx `location` proxying `/{prefix}v1/` to the mock at `mock`, unbuffered as a
/// streaming relay is, reporting what it saw and setting a cookie of its own.
fn proxy_location(prefix: &str, mock: SocketAddr) -> String {
    format!(
        "    location /{prefix}v1/ {{\n\
         \x20     proxy_pass http://{mock}/v1/;\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n\
         \x20     proxy_buffering off;\n\
         \x20     add_header x-seen-host $http_host always;\n\
         \x20     add_header x-seen-key $seen_key always;\n\
         \x20     add_header x-seen-client-only $seen_client_only always;\n\
         \x20     add_header x-upstream-proto $server_protocol always;\n\
         \x20     add_header x-upstream-server nginx/$nginx_version always;\n\
         \x20     add_header set-cookie \"upstream-session=1; Path=/\" always;\n\
         \x20   }}\n"
    )
}

/// Two mocks: `answers` (normal) and `errors` (every answer 400 context_length_exceeded).
async fn mocks(scratch: &Scratch) -> (Mock, Mock) {
    let answers = Mock::start(scratch, "answers", &[], &[]).await;
    let errors = Mock::start(scratch, "errors", &["--fault", "context-length"], &[]).await;
    (answers, errors)
}

#[tokio::test]
async fn nginx_proxy_pass_unbuffered_in_front_of_the_mock_serves_every_request_through_the_gateway() {
    let scratch = Scratch::new("nginx");
    let (answers, errors) = mocks(&scratch).await;
    let addr = free_addr();
    let locations = proxy_location("", answers.addr) + &proxy_location("errors/", errors.addr);
    let _nginx = start_nginx(&scratch, &format!("  server {{\n    listen {addr};\n{locations}  }}"), &[addr]).await;
    let config = gateway_config(&format!("http://{addr}/v1"), Some(&format!("http://{addr}/errors/v1")), &[]);
    let gateway = start_gateway(&scratch, &config).await;
    let expected = Expected { answers: "mock", host: addr.to_string(), proto: "HTTP/1.1" };
    check_through(&gateway, &expected).await;
}

/// A CA and a certificate it signed for 127.0.0.1, made with `openssl` in the scratch
/// dir: `(ca.pem, server.pem, server.key)`.
fn private_ca(scratch: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch.path().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|error| panic!("cannot run openssl ({error}): apt-get install openssl"));
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=cutover test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(&[&["req"], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[tokio::test]
async fn nginx_over_tls_from_a_private_ca_serves_through_the_gateway_over_h2_and_http1_with_ca_file() {
    let scratch = Scratch::new("nginx-tls");
    let (ca, cert, key) = private_ca(&scratch);
    let (answers, errors) = mocks(&scratch).await;
    let (h2, h1) = (free_addr(), free_addr());
    let locations = proxy_location("", answers.addr) + &proxy_location("errors/", errors.addr);
    let tls = format!("    ssl_certificate {};\n    ssl_certificate_key {};\n", cert.display(), key.display());
    let servers = format!(
        "  server {{\n    listen {h2} ssl http2;\n{tls}{locations}  }}\n  server {{\n    listen {h1} ssl;\n{tls}{locations}  }}"
    );
    let _nginx = start_nginx(&scratch, &servers, &[h2, h1]).await;
    let ca_file = format!("ca_file = \"{}\"", ca.display());
    let mut servers_seen = Vec::new();
    for (addr, proto) in [(h2, "HTTP/2.0"), (h1, "HTTP/1.1")] {
        let base = format!("https://{addr}/v1");
        let config = gateway_config(&base, Some(&format!("https://{addr}/errors/v1")), &[&ca_file]);
        let gateway = start_gateway(&scratch, &config).await;
        // TLS strips nothing of the port: `Host` (`:authority` on HTTP/2) is the authority.
        let expected = Expected { answers: "mock", host: addr.to_string(), proto };
        servers_seen.push(check_through(&gateway, &expected).await);
    }
    assert!(servers_seen.iter().all(|server| server.starts_with("nginx/")), "{servers_seen:?}");

    // Without `ca_file` the private CA is not trusted: a 502 that names the upstream.
    let gateway = start_gateway(&scratch, &gateway_config(&format!("https://{h2}/v1"), None, &[])).await;
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let reply =
        post_json(&gateway.url("/v1/chat/completions"), &[("authorization", &format!("Bearer {GATEWAY_KEY}"))], &body)
            .await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let message = reply.openai_error()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("`thirdparty`") && !message.contains("127.0.0.1"), "{message}");
}
