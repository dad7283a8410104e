//! `cutover check`: a configuration is accepted with its plan printed, or refused with
//! exit status 2 and a message naming the key path, file or line of every problem.

use std::path::Path;
use std::process::{Command, Output};

use crate::binary::{BIN, Scratch};

/// Runs `cutover check -c CONFIG` with exactly `env` as environment.
pub fn check(config: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(["check", "-c"])
        .arg(config)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {BIN}: {error}"))
}

/// Everything a finished command said, for failure messages and leak checks.
pub fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_the_shipped_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local.toml");
    let output = check(&example, &[("CUTOVER_ADMIN_TOKEN", "dev-admin")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn check_accepts_the_holysheep_example_with_its_prices() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/holysheep.toml");
    let env = [
        ("CUTOVER_ADMIN_TOKEN", "dev-admin"),
        ("OPENAI_API_KEY", "sk-a"),
        ("HOLYSHEEP_API_KEY", "sk-b"),
        ("ANTHROPIC_API_KEY", "sk-ant-c"),
    ];
    let output = check(&example, &env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("warning:"), "{}", describe(&output));
}

#[test]
fn check_warns_of_a_model_without_a_price_and_still_accepts_the_config() {
    let scratch = Scratch::new("check-unpriced");
    let config = scratch.write(
        "cutover.toml",
        r#"
[upstreams.primary]
base_url = "http://127.0.0.1:8001/v1"
[upstreams.candidate]
base_url = "http://127.0.0.1:8002/v1"

[prices.primary]
"gpt-4.1" = { input = 2.0, output = 8.0 }
[prices.candidate]
"gpt-4.1-mini" = { input = 0.4, output = 1.6 }

[[routes]]
name = "default"
models = ["gpt-4.1", "gpt-4.1-mini"]
primary = "primary"
candidate = "candidate"
"#,
    );
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let warnings: Vec<&str> = stdout.lines().filter(|line| line.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{all}");
    assert!(warnings.iter().any(|line| line.contains("\"gpt-4.1-mini\"") && line.contains("\"primary\"")), "{all}");
    assert!(warnings.iter().any(|line| line.contains("\"gpt-4.1\"") && line.contains("\"candidate\"")), "{all}");
    assert!(warnings.iter().all(|line| line.contains("unknown")), "{all}");
}

#[test]
fn check_names_the_key_path_of_every_problem_and_exits_2() {
    let scratch = Scratch::new("check-bad");
    let config = scratch.write(
        "cutover.toml",
        r#"
[server]
listen = "127.0.0.1:8080"
lisen_port = 9000

[auth]
keys = [{ name = "web-app", key_env = "CUTOVER_E2E_UNSET_GATEWAY_KEY" }]

[upstreams.primary]
base_url = "http://127.0.0.1:8001/v1"
timeout = "30 parsecs"

[upstreams.candidate]
base_url = "http://127.0.0.1:8002/v1"
api_key_env = "CUTOVER_E2E_UNSET_UPSTREAM_KEY"

[[routes]]
name = "default"
primary = "primary"
candidate = "nowhere"
"#,
    );
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Each problem: its key path, then a message that names the offending value.
    let expected = [
        ("server.lisen_port", "lisen_port"),
        ("auth.keys[0].key_env", "CUTOVER_E2E_UNSET_GATEWAY_KEY"),
        ("upstreams.primary.timeout", "30 parsecs"),
        ("upstreams.candidate.api_key_env", "CUTOVER_E2E_UNSET_UPSTREAM_KEY"),
        ("routes[0].candidate", "nowhere"),
    ];
    for (path, mention) in expected {
        assert!(
            stderr.lines().any(|line| line.contains(&format!("{path}: ")) && line.contains(mention)),
            "no `{path}: …{mention}…` line:\n{all}"
        );
    }
    assert!(output.stdout.is_empty(), "a failed check printed a plan:\n{all}");
}

#[test]
fn check_on_a_missing_file_exits_2_naming_the_file() {
    let scratch = Scratch::new("check-missing");
    let missing = scratch.path().join("no-such-cutover.toml");
    let output = check(&missing, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(stderr.contains("no-such-cutover.toml"), "the message does not name the file:\n{all}");
    assert!(
        ["no such file", "not found", "does not exist", "cannot read"].iter().any(|reason| stderr.contains(reason)),
        "the message does not say the file is missing:\n{all}"
    );
}

#[test]
fn check_points_at_the_line_of_a_toml_syntax_error() {
    let scratch = Scratch::new("check-syntax");
    let config = scratch.write("cutover.toml", "[server]\nlisten = \"127.0.0.1:8080\"\nmax_body_mb = = 3\n");
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3"), "the message does not point at line 3:\n{all}");
}

#[test]
fn check_refuses_names_that_cannot_be_labels_headers_or_paths_naming_file_key_and_value() {
    let scratch = Scratch::new("check-names");
    let config = scratch.write(
        "cutover.toml",
        r#"
[upstreams."relay one"]
base_url = "http://127.0.0.1:8001/v1"
[upstreams.candidate]
base_url = "http://127.0.0.1:8002/v1"

[[routes]]
name = "web\"app"
primary = "relay one"
candidate = "candidate"

[[alerts]]
name = "errors\nhigh"
metric = "error_rate"
op = ">"
threshold = 5.0

[[notify]]
name = "on\\call"
url = "http://127.0.0.1:9/hook"
"#,
    );
    let output = check(&config, &[]);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&config.display().to_string()), "the file is not named:\n{all}");
    let expected = [
        r#"upstreams."relay one": "relay one" cannot be a name"#,
        r#"routes[0].name: "web\"app" cannot be a name"#,
        r#"alerts[0].name: "errors\nhigh" cannot be a name"#,
        r#"notify[0].name: "on\\call" cannot be a name"#,
    ];
    for expected in expected {
        assert!(stderr.lines().any(|line| line.trim_start().starts_with(expected)), "no `{expected}` line:\n{all}");
    }
}
