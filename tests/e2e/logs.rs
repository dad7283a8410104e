//! What the binary writes to stderr, as a log collector reads it: with
//! `CUTOVER_LOG_FORMAT=json` one JSON object per line, with timestamp, level, target and
//! the event's fields (a refusal's `request_id` is the `x-request-id` its client got);
//! text without ANSI codes when stderr is not a terminal; and a filter that does not
//! parse refused at start, naming the variable.

use std::process::Command;

use http::Method;
use serde_json::Value;

use crate::binary::{BIN, Gateway, Mock, Scratch, send};
use crate::configs::GatewayToml;

async fn gateway_with(scratch: &Scratch, env: &[(&str, &str)]) -> (Gateway, Mock) {
    let mock = Mock::start(scratch, "primary", &[], &[]).await;
    let config = GatewayToml::new().upstream("primary", &mock.base_url()).route("default", "primary", None).build();
    (Gateway::start(scratch, &config, env).await, mock)
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_name_the_request_id_of_a_refusal() {
    let scratch = Scratch::new("logs-json");
    let (gateway, _mock) = gateway_with(&scratch, &[("CUTOVER_LOG_FORMAT", "json")]).await;
    let refused = send(Method::POST, &gateway.url("/v1/chat/completions"), &[], "{\"model\": ").await;
    let request_id = refused.header("x-request-id").unwrap_or_else(|| panic!("no x-request-id: {:?}", refused.headers));
    let log = crate::wait::until("the refusal in the log", async || {
        let log = gateway.process.log();
        log.contains(request_id).then_some(log)
    })
    .await;
    let events: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line:?}\n{log}")))
        .collect();
    for event in &events {
        for key in ["timestamp", "level", "target"] {
            assert!(event[key].is_string(), "no {key}: {event}");
        }
        assert!(event["fields"]["message"].is_string(), "no message: {event}");
    }
    let refusal = events
        .iter()
        .find(|event| event["fields"]["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no event with request_id {request_id}:\n{log}"));
    assert_eq!(refusal["fields"]["status"], refused.status.as_u16(), "{refusal}");
}

#[tokio::test]
async fn text_logs_into_a_file_carry_no_colour_codes_even_without_no_color() {
    let scratch = Scratch::new("logs-text");
    let file = scratch.path().join("mock.log");
    // Not through the harness, which sets NO_COLOR: stderr being a file must be enough.
    let mut mock = std::process::Command::new(BIN)
        .args(["mock", "--listen", "127.0.0.1:0"])
        .env_clear()
        .stderr(std::fs::File::create(&file).unwrap())
        .spawn()
        .unwrap();
    let log = crate::wait::until("the mock's first log line", async || {
        let log = std::fs::read_to_string(&file).unwrap_or_default();
        log.contains("serving").then_some(log)
    })
    .await;
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file:\n{log}");
}

#[test]
fn a_log_filter_or_format_that_does_not_parse_is_refused_at_start_naming_the_variable() {
    for (variable, value) in [("CUTOVER_LOG", "verbose"), ("RUST_LOG", "cutover=loud"), ("CUTOVER_LOG_FORMAT", "yaml")]
    {
        let output = Command::new(BIN)
            .args(["mock", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(&format!("{variable}=\"{value}\"")), "{variable}={value}: {stderr}");
    }
}
