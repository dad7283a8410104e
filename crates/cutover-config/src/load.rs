//! Reading `cutover.toml`: TOML syntax, then each section deserialized on its own so
//! that one bad section does not hide the problems of the others, then `validate`.

use std::path::Path;

use cutover_model::Criterion;
use serde::de::DeserializeOwned;

use super::Config;
use super::problem::{ConfigErrors, ConfigProblem};
use super::raw::{ROLLOUT_KEYS, STEP_KEYS, Sections};
use super::validate::Validator;

/// Loads and validates `path`, reading secrets from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |message: String| ConfigErrors {
        file: path.to_owned(),
        problems: vec![ConfigProblem { path: String::new(), message }],
    };
    let text = std::fs::read_to_string(path).map_err(|error| fail(format!("cannot read the file: {error}")))?;
    let base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
    load_str(&text, &base_dir, |name| std::env::var(name).ok())
        .map_err(|problems| ConfigErrors { file: path.to_owned(), problems })
}

/// Parses and validates configuration `text`; relative paths resolve against `base_dir`
/// and `env` looks up the environment variables that hold secrets.
pub fn load_str(
    text: &str,
    base_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let message = error.message().to_owned();
            let at = error.span().map(|span| line_col(text, span.start)).unwrap_or_default();
            return Err(vec![ConfigProblem { path: String::new(), message: format!("invalid TOML{at}: {message}") }]);
        }
    };
    let sections = split_sections(table, &mut problems);
    let config = Validator::new(base_dir, &env, &mut problems).build(sections);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(problems),
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |newline| before.len() - newline - 1) + 1;
    format!(" at line {line}, column {column}")
}

fn split_sections(table: toml::Table, problems: &mut Vec<ConfigProblem>) -> Sections {
    let mut sections = Sections::default();
    for (key, value) in table {
        match key.as_str() {
            "server" => sections.server = section(value, &key, problems).unwrap_or_default(),
            "auth" => sections.auth = section(value, &key, problems).unwrap_or_default(),
            "admin" => sections.admin = section(value, &key, problems).unwrap_or_default(),
            "state" => sections.state = section(value, &key, problems).unwrap_or_default(),
            "upstreams" => sections.upstreams = named_sections(value, &key, problems),
            "prices" => sections.prices = named_sections(value, &key, problems),
            "routes" => {
                check_rollout_keys(&value, problems);
                sections.routes = listed_sections(value, &key, problems);
            }
            "alerts" => sections.alerts = listed_sections(value, &key, problems),
            "notify" => sections.notify = listed_sections(value, &key, problems),
            "health" => sections.health = section(value, &key, problems).unwrap_or_default(),
            _ => problems.push(ConfigProblem {
                path: key.clone(),
                message:
                    "unknown section (expected server, auth, admin, state, upstreams, prices, routes, health, alerts or notify)"
                        .to_owned(),
            }),
        }
    }
    sections
}

/// Deserializes one section, reporting a failure with the key path inside it.
fn section<T: DeserializeOwned>(value: toml::Value, path: &str, problems: &mut Vec<ConfigProblem>) -> Option<T> {
    match serde_path_to_error::deserialize(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let inner = error.path().to_string();
            let path = if inner == "." { path.to_owned() } else { format!("{path}.{inner}") };
            problems.push(ConfigProblem { path, message: error.into_inner().to_string() });
            None
        }
    }
}

/// `[name.*]` tables, each deserialized on its own.
fn named_sections<T: DeserializeOwned>(
    value: toml::Value,
    path: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<(String, T)> {
    let toml::Value::Table(table) = value else {
        problems.push(ConfigProblem { path: path.to_owned(), message: "expected a table".to_owned() });
        return Vec::new();
    };
    table
        .into_iter()
        .filter_map(|(name, value)| section(value, &format!("{path}.{name}"), problems).map(|parsed| (name, parsed)))
        .collect()
}

/// `[[name]]` arrays of tables, each deserialized on its own.
fn listed_sections<T: DeserializeOwned>(value: toml::Value, path: &str, problems: &mut Vec<ConfigProblem>) -> Vec<T> {
    let toml::Value::Array(items) = value else {
        problems.push(ConfigProblem { path: path.to_owned(), message: "expected an array of tables".to_owned() });
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(index, value)| section(value, &format!("{path}[{index}]"), problems))
        .collect()
}

/// Rollouts and steps flatten their criteria, which makes serde ignore unknown keys
/// there; check them by hand so that a misspelt criterion is not silently unchecked.
fn check_rollout_keys(routes: &toml::Value, problems: &mut Vec<ConfigProblem>) {
    let Some(routes) = routes.as_array() else { return };
    for (index, route) in routes.iter().enumerate() {
        let Some(rollout) = route.get("rollout").and_then(toml::Value::as_table) else { continue };
        let path = format!("routes[{index}].rollout");
        check_keys(rollout, &[ROLLOUT_KEYS, Criterion::KEYS], &path, problems);
        let steps = rollout.get("steps").and_then(toml::Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (step_index, step) in steps.iter().enumerate() {
            if let Some(step) = step.as_table() {
                check_keys(step, &[STEP_KEYS, Criterion::KEYS], &format!("{path}.steps[{step_index}]"), problems);
            }
        }
    }
}

fn check_keys(table: &toml::Table, known: &[&[&str]], path: &str, problems: &mut Vec<ConfigProblem>) {
    for key in table.keys() {
        if !known.iter().any(|keys| keys.contains(&key.as_str())) {
            let expected = known.concat().join(", ");
            problems.push(ConfigProblem {
                path: format!("{path}.{key}"),
                message: format!("unknown key (expected one of {expected})"),
            });
        }
    }
}
