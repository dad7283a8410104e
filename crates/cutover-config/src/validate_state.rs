//! Validating `[state]`: the SQLite file of one gateway (the default), or the PostgreSQL
//! database a fleet of gateways shares (`backend = "postgres"`), with its connection
//! string read from the environment (a secret, never printed), this gateway's instance
//! name and the leader's lease.

use std::time::Duration;

use cutover_model::duration::format_duration;

use super::Secret;
use super::name::{MAX_NAME_LEN, is_instance_name};
use super::raw::RawState;
use super::validate::Validator;

/// How long a dead leader goes unreplaced at most, unless `[state] lease` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The shortest lease: below it, a busy database or a slow renewal would depose a live leader.
const MIN_LEASE: Duration = Duration::from_secs(3);
/// The longest lease: a rollout without a controller for longer than this is unguarded.
const MAX_LEASE: Duration = Duration::from_secs(300);

/// `[state] backend = "postgres"`: the database a fleet shares.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The connection string (`postgres://…` or `host=… user=…`); `Debug` shows `***`.
    pub url: Secret,
    /// The variable it was read from, for messages.
    pub url_env: String,
    /// This gateway's name in the fleet: its evidence rows, its report, its lease.
    pub instance: String,
    /// The longest a dead leader goes unreplaced.
    pub lease: Duration,
}

impl Validator<'_> {
    /// `None` for SQLite (the default); the fleet's settings for PostgreSQL.
    pub(super) fn fleet(&mut self, raw: &RawState) -> Option<FleetConfig> {
        match raw.backend.as_deref().unwrap_or("sqlite") {
            "sqlite" => {
                for (key, value) in [("url_env", &raw.url_env), ("instance", &raw.instance), ("lease", &raw.lease)] {
                    if value.is_some() {
                        self.problem(format!("state.{key}"), "only used with backend = \"postgres\"");
                    }
                }
                None
            }
            "postgres" => {
                if raw.path.is_some() {
                    self.problem("state.path", "only used with backend = \"sqlite\" (postgres keeps no file)");
                }
                let lease = self.duration(raw.lease.as_deref(), "state.lease", DEFAULT_LEASE);
                if !(MIN_LEASE..=MAX_LEASE).contains(&lease) {
                    let (min, max) = (format_duration(MIN_LEASE), format_duration(MAX_LEASE));
                    self.problem("state.lease", format!("{} is not between {min} and {max}", format_duration(lease)));
                }
                let instance = raw.instance.clone().unwrap_or_else(default_instance);
                if !is_instance_name(&instance) {
                    self.problem(
                        "state.instance",
                        format!("{instance:?} is not 1 to {MAX_NAME_LEN} letters, digits, '-', '_', '.' or ':'"),
                    );
                }
                let Some(url_env) = raw.url_env.clone() else {
                    self.problem(
                        "state.url_env",
                        "required with backend = \"postgres\": the environment variable holding the connection string",
                    );
                    return None;
                };
                let url = self.secret(&url_env, "state.url_env")?;
                // The parser's message may quote the string: name the variable, never the value.
                if url.expose().parse::<tokio_postgres::Config>().is_err() {
                    self.problem(
                        "state.url_env",
                        format!(
                            "environment variable {url_env} does not hold a PostgreSQL connection string \
                                 (postgres://user@host:port/database or key=value pairs)"
                        ),
                    );
                    return None;
                }
                Some(FleetConfig { url, url_env, instance, lease })
            }
            other => {
                self.problem(
                    "state.backend",
                    format!("{other:?} is not a state backend (expected \"sqlite\" or \"postgres\")"),
                );
                None
            }
        }
    }
}

/// The host's name and this process's id: unique among the instances running now, and
/// new after a restart (a restarted gateway's earlier evidence stays counted under its
/// old name). Set `[state] instance` for a name that survives restarts.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let host: String =
        host.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(MAX_NAME_LEN - 11).collect();
    let host = if host.is_empty() { "cutover".to_owned() } else { host };
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load_str;
    use crate::testing::two_upstreams_toml;

    const URL: &str = "postgres://cutover:s3cret@db.internal:5432/cutover";

    fn env(name: &str) -> Option<String> {
        (name == "FLEET_DB").then(|| URL.to_owned())
    }

    fn problems(state: &str) -> Vec<String> {
        let text = two_upstreams_toml(state, "");
        match load_str(&text, Path::new("/tmp"), env) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(|problem| format!("{}: {}", problem.path, problem.message)).collect(),
        }
    }

    #[test]
    fn without_a_backend_the_state_is_the_sqlite_file() {
        let config = load_str(&two_upstreams_toml("", ""), Path::new("/tmp"), env).unwrap();
        assert!(config.fleet.is_none());
        assert_eq!(config.state_path, Path::new("/tmp/cutover.db"));
    }

    #[test]
    fn postgres_takes_its_url_from_the_environment_and_never_prints_it() {
        let text = two_upstreams_toml(
            "[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"\ninstance = \"gw-1\"\nlease = \"15s\"",
            "",
        );
        let config = load_str(&text, Path::new("/tmp"), env).unwrap();
        let fleet = config.fleet.as_ref().unwrap();
        assert_eq!(fleet.url.expose(), URL);
        assert_eq!((fleet.instance.as_str(), fleet.lease), ("gw-1", Duration::from_secs(15)));
        let shown = format!("{config}\n{config:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("db.internal"), "{shown}");
        assert!(shown.contains("state: postgres (connection string from $FLEET_DB), instance \"gw-1\""), "{shown}");
    }

    #[test]
    fn a_default_instance_name_is_the_host_and_the_process() {
        let text = two_upstreams_toml("[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"", "");
        let config = load_str(&text, Path::new("/tmp"), env).unwrap();
        let fleet = config.fleet.unwrap();
        assert!(fleet.instance.ends_with(&format!("-{}", std::process::id())), "{}", fleet.instance);
        assert_eq!(fleet.lease, DEFAULT_LEASE);
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases = [
            ("[state]\nbackend = \"mysql\"", "state.backend: \"mysql\" is not a state backend"),
            ("[state]\nbackend = \"postgres\"", "state.url_env: required with backend = \"postgres\""),
            (
                "[state]\nbackend = \"postgres\"\nurl_env = \"NOPE\"",
                "state.url_env: environment variable NOPE is not set",
            ),
            (
                "[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"\npath = \"x.db\"",
                "state.path: only used with backend = \"sqlite\"",
            ),
            (
                "[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"\nlease = \"1s\"",
                "state.lease: 1s is not between 3s and 5m",
            ),
            (
                "[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"\ninstance = \"a b\"",
                "state.instance: \"a b\" is not",
            ),
            ("[state]\ninstance = \"gw-1\"", "state.instance: only used with backend = \"postgres\""),
        ];
        for (state, expected) in cases {
            let found = problems(state);
            assert!(found.iter().any(|problem| problem.starts_with(expected)), "{state}: {found:?}");
        }
    }

    #[test]
    fn a_variable_that_holds_no_connection_string_is_named_not_quoted() {
        let env = |name: &str| (name == "FLEET_DB").then(|| "host=a port=notaport".to_owned());
        let text = two_upstreams_toml("[state]\nbackend = \"postgres\"\nurl_env = \"FLEET_DB\"", "");
        let problems = load_str(&text, Path::new("/tmp"), env).err().unwrap();
        let message = format!("{problems:?}");
        assert!(message.contains("FLEET_DB does not hold a PostgreSQL connection string"), "{message}");
        assert!(!message.contains("notaport"), "{message}");
    }
}
