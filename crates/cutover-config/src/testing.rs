//! Configurations for unit tests (this crate's, and other crates' through the `testing`
//! feature): one route `default` from upstream `primary`
//! to `candidate` (both unreachable: unit tests never send a request), so that no test
//! module carries its own copy of the common sections.

use std::path::Path;

use super::{Config, load_str};

/// The TOML of route `default` between two upstreams; `sections` go before the upstreams
/// (e.g. `[admin]`), `route_extra` after the route (its keys, then e.g. `[routes.rollout]`).
pub fn two_upstreams_toml(sections: &str, route_extra: &str) -> String {
    format!(
        r#"{sections}
[upstreams.primary]
base_url = "http://127.0.0.1:9/v1"
[upstreams.candidate]
base_url = "http://127.0.0.1:9/v1"

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
{route_extra}
"#
    )
}

/// `toml` loaded from `dir` with `env` as the environment; a test config that does not
/// load fails the test with every problem.
pub fn load(toml: &str, dir: &Path, env: impl Fn(&str) -> Option<String>) -> Config {
    load_str(toml, dir, env).unwrap_or_else(|problems| panic!("{problems:#?}"))
}
