//! A real browser for the dashboard's tests: Debian's `chromium`, headless with a fresh
//! profile and no background networking, driven by Debian's `chromedriver` over the W3C
//! WebDriver protocol (plain JSON over HTTP on loopback, through the tests' own client).
//! Driving it, rather than `--dump-dom`, lets a test type the admin token into the page's
//! prompt as a person does: the token never has to travel in a URL.

use std::process::Stdio;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::binary::send;
use crate::support::TempDir;
use crate::wait::until;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key of an element reference in a WebDriver answer.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    base: String,
    driver: tokio::process::Child,
    _profile: TempDir,
}

/// Chromium outlives a killed chromedriver (it is re-parented to init, one browser and its
/// helpers per test left running): the driver leads a process group of its own, which
/// the browser it starts joins, and the whole group is killed.
impl Drop for Browser {
    fn drop(&mut self) {
        let group = self.driver.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Browser {
    /// A headless Chromium `width` × `height` pixels wide, with one WebDriver session.
    pub async fn start(width: u32, height: u32) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the dashboard tests need Debian's chromium and chromium-driver (`.ci/run` installs them)"
        );
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).unwrap().port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let server = format!("http://127.0.0.1:{port}");
        until("chromedriver ready", async || {
            let probe = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                let reply = crate::binary::client()
                    .request(
                        http::Request::get(format!("{server}/status"))
                            .body(http_body_util::Full::new(bytes::Bytes::new()))
                            .unwrap(),
                    )
                    .await
                    .ok()?;
                Some(reply.status() == StatusCode::OK)
            })
            .await;
            probe.ok().flatten().filter(|ready| *ready)
        })
        .await;
        let profile = TempDir::new("chromium-profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|flag| flag.to_string())
        .chain([format!("--user-data-dir={}", profile.0.display()), format!("--window-size={width},{height}")])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let reply = send(Method::POST, &format!("{server}/session"), &[], capabilities.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "new session: {}", reply.text());
        let session = reply.json()["value"]["sessionId"].as_str().expect("a session id").to_owned();
        Browser { base: format!("{server}/session/{session}"), driver, _profile: profile }
    }

    async fn command(&self, method: Method, path: &str, body: Value) -> Value {
        let body = if method == Method::GET { String::new() } else { body.to_string() };
        let reply = send(method.clone(), &format!("{}{path}", self.base), &[], body).await;
        assert_eq!(reply.status, StatusCode::OK, "WebDriver {method} {path}: {}", reply.text());
        reply.json()["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.command(Method::GET, "/url", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// The element matching the CSS `selector` (the test fails without one).
    pub async fn find(&self, selector: &str) -> String {
        let found = self.command(Method::POST, "/element", json!({"using": "css selector", "value": selector})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {selector}: {found}")).to_owned()
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        self.command(Method::POST, &format!("/element/{element}/value"), json!({ "text": text })).await;
    }

    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.command(Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.command(Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// The viewport as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command(Method::GET, "/screenshot", Value::Null).await;
        base64_decode(encoded.as_str().expect("a base64 screenshot"))
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        other => panic!("not base64: {other}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|byte| *byte != b'=' && !byte.is_ascii_whitespace()).map(value).collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut group = 0u32;
        for (index, digit) in chunk.iter().enumerate() {
            group |= u32::from(*digit) << (18 - 6 * index);
        }
        bytes.extend_from_slice(&group.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}

#[test]
fn base64_decodes_as_the_standard_says() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
