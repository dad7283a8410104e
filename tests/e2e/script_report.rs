//! The scripts that drive real clients and servers (`python/`, `clients/`, `upstreams/`)
//! print one JSON report on stdout, `{"checks": [{"name", "ok", "detail"}], …}` plus
//! what they know of the library they ran (or `{"error": …}` when it is missing). This
//! runs such a script and holds its report to the checks a test requires: each must have
//! run and passed, and the script must have exited 0.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// A finished script: its report, and what it wrote to stderr for failure messages.
pub struct ScriptRun {
    pub report: Value,
    stderr: String,
    succeeded: bool,
    status: String,
}

/// Runs `command` (stdin closed, killed if it outlives `within`) and reads its report.
/// `hint` says what to install; it is in the failure when the script cannot run, prints
/// no report, or reports its library missing.
pub async fn run_script(command: &mut tokio::process::Command, within: Duration, hint: &str) -> ScriptRun {
    command.stdin(Stdio::null()).kill_on_drop(true);
    let what = format!("{:?}", command.as_std());
    let output = tokio::time::timeout(within, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {within:?}"))
        .unwrap_or_else(|error| panic!("cannot run {what} ({error}): {hint}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("{what} printed no JSON report ({}): {hint}\n{stdout}\n{stderr}", output.status));
    if let Some(error) = report["error"].as_str() {
        panic!("{error}\n{hint}");
    }
    ScriptRun { report, stderr, succeeded: output.status.success(), status: output.status.to_string() }
}

impl ScriptRun {
    /// Panics, naming `what` ran and `context` (e.g. a gateway's log), unless every check
    /// in `expected` ran, every check that ran passed, and the script exited 0.
    pub fn assert_passed(&self, expected: &[&str], what: &str, context: &str) {
        let checks = self.report["checks"].as_array().cloned().unwrap_or_default();
        let failed: Vec<String> = checks
            .iter()
            .filter(|check| check["ok"] != true)
            .map(|check| {
                format!("{}: {}", check["name"].as_str().unwrap_or("?"), check["detail"].as_str().unwrap_or(""))
            })
            .collect();
        let ran: Vec<&str> = checks.iter().filter_map(|check| check["name"].as_str()).collect();
        let missing: Vec<&str> = expected.iter().copied().filter(|name| !ran.contains(name)).collect();
        assert!(
            failed.is_empty() && missing.is_empty() && self.succeeded,
            "{what} ({}):\nfailed checks:\n{}\nchecks that did not run: {missing:?}\nstderr:\n{}\n{context}",
            self.status,
            failed.join("\n"),
            self.stderr
        );
    }
}
