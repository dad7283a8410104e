//! What an existing state file must be before a gateway runs on it: a non-empty SQLite
//! database with cutover's tables, whose rows hold values in range. Anything else is
//! refused with the file and the problem named, never silently started over at
//! `pending 0%` (that would throw away a rollout an operator thinks is running).

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::Value;

use cutover_model::{Phase, RouteState};

use crate::{FileError, StoreError};

/// The tables that make a SQLite file a cutover state file. (`step_stats` came later and
/// is created when missing.)
const REQUIRED_TABLES: [&str; 2] = ["rollout_state", "events"];

/// Whether the state file is new (to be created) or exists and must be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    New,
    Existing,
}

/// Looks at the path before SQLite does (SQLite takes a zero-byte file for an empty
/// database and would happily create a schema in it).
pub fn inspect(path: &Path) -> Result<Found, StoreError> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Found::New),
        Err(source) => return Err(FileError::Io { path: path.display().to_string(), source }.into()),
    };
    if !metadata.is_file() {
        return Err(not_cutover(path, "not a regular file"));
    }
    if metadata.len() == 0 {
        return Err(FileError::Empty { path: path.display().to_string() }.into());
    }
    Ok(Found::Existing)
}

/// Checks that an existing file is a SQLite database with cutover's tables. Runs before
/// any pragma: on a file that is not a database, the first statement is what fails.
pub fn schema(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .map_err(|error| not_cutover(path, &format!("not a SQLite database ({error})")))?;
    let missing: Vec<&str> =
        REQUIRED_TABLES.into_iter().filter(|table| !tables.iter().any(|found| found == table)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let reason = if tables.is_empty() {
        "a SQLite database without any table".to_owned()
    } else {
        format!(
            "a SQLite database without cutover's tables (missing {}; found {})",
            missing.join(", "),
            tables.join(", ")
        )
    };
    Err(not_cutover(path, &reason))
}

fn not_cutover(path: &Path, reason: &str) -> StoreError {
    FileError::NotCutover { path: path.display().to_string(), reason: reason.to_owned() }.into()
}

/// One `rollout_state` row as stored, before it is trusted: SQLite does not enforce
/// column types, so each value is taken as whatever the file holds.
#[derive(Debug)]
pub struct RawRow {
    pub phase: Value,
    pub step: Value,
    pub weight_bp: Value,
    pub step_started_at: Value,
    pub consecutive_failures: Value,
    pub active_ms: Value,
    pub step_backs: Value,
}

/// A row's values in range, or every problem with them. A step beyond the plan is fine:
/// the plan may have been edited, and the controller pauses such a rollout.
pub fn row(route: &str, raw: RawRow) -> Result<RouteState, Vec<String>> {
    let mut problems = Vec::new();
    let mut integer = |name: &str, value: &Value, max: i64, what: &str| match value {
        Value::Integer(number) if (0..=max).contains(number) => *number,
        Value::Integer(number) => {
            problems.push(format!("route {route:?}: {name} {number} is not {what}"));
            0
        }
        other => {
            problems.push(format!("route {route:?}: {name} {other:?} is not {what}"));
            0
        }
    };
    let count = i64::from(u32::MAX);
    let weight_bp = integer("weight_bp", &raw.weight_bp, 10_000, "between 0 and 10000 (0-100%)");
    let step = integer("step", &raw.step, count, "a step number");
    let consecutive_failures = integer("consecutive_failures", &raw.consecutive_failures, count, "a count");
    let active_ms = integer("active_ms", &raw.active_ms, i64::MAX, "a running time in milliseconds");
    let step_backs = integer("step_backs", &raw.step_backs, count, "a count");
    let step_started_at =
        integer("step_started_at", &raw.step_started_at, i64::MAX, "a time after 1970 in Unix milliseconds");
    let phase = match &raw.phase {
        Value::Text(text) => text.parse::<Phase>().map_err(|reason| format!("route {route:?}: {reason}")),
        other => Err(format!("route {route:?}: phase {other:?} is not a phase name")),
    };
    let phase = phase.map_err(|problem| problems.push(problem));
    match phase {
        Ok(phase) if problems.is_empty() => Ok(RouteState {
            route: route.to_owned(),
            phase,
            // In range, checked above.
            step: u32::try_from(step).unwrap_or_default(),
            weight_bp: u32::try_from(weight_bp).unwrap_or_default(),
            step_started_at,
            consecutive_failures: u32::try_from(consecutive_failures).unwrap_or_default(),
            active_ms: u64::try_from(active_ms).unwrap_or_default(),
            step_backs: u32::try_from(step_backs).unwrap_or_default(),
        }),
        _ => Err(problems),
    }
}
