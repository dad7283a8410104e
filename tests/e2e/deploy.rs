//! `deploy/systemd/cutover.service`, checked as far as this machine allows (no systemd
//! runs here): `systemd-analyze verify` accepts it without a warning (an unknown or
//! misspelt key is only a warning there, so any output fails), with its binary path
//! pointing at the binary under test; and what it promises matches the gateway: the
//! config path `serve` reads, SIGHUP for reload, a stop timeout above the drain, and a
//! descriptor limit above what the default budgets need.

use std::path::Path;
use std::process::Command;

use crate::binary::{BIN, Scratch};

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/cutover.service");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The value of `key=` in the unit (the first one).
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines().find_map(|line| line.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        panic!("systemd-analyze is missing: apt-get install systemd (.ci/deps/deploy.sh)");
    }
    let scratch = Scratch::new("systemd");
    let file = scratch.write("cutover.service", &unit().replace("/usr/local/bin/cutover", BIN));
    let output = Command::new("systemd-analyze").arg("verify").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify ({}):\n{said}", output.status);
}

#[test]
fn the_systemd_unit_starts_reloads_and_stops_the_gateway_as_it_expects() {
    let unit = unit();
    assert_eq!(value(&unit, "ExecStart"), "/usr/local/bin/cutover serve -c /etc/cutover/cutover.toml");
    assert_eq!(value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&unit, "KillSignal"), "SIGTERM");
    let stop: u64 = value(&unit, "TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(stop > 30, "TimeoutStopSec={stop}s must exceed the default drain_timeout (30 s)");
    let files: u64 = value(&unit, "LimitNOFILE").parse().unwrap();
    assert!(files >= 2 * 1024 + 64 + 64, "LimitNOFILE={files} is under what the default budgets need");
    // The config path is the one `serve` is given: the binary takes the flags as written.
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"), "serve has no --config");
}
