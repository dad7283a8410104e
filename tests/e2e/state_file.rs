//! The gateway's SQLite state file read as a witness: a test waits until what it needs
//! is saved there, rather than for a time after which it should be.

use std::path::Path;

use serde_json::Value;

/// The candidate's requests in the evidence last saved to `state_file` for the route
/// `default`, when what is saved belongs to `step` started at `step_started_at` (the
/// fields of an admin view); `None` while nothing is saved for that step.
///
/// Reads the `step_stats` table the gateway writes at every analysis interval
/// (`crates/cutover-state/src/sqlite.rs`): the JSON `{"arms": [primary, control, candidate, shadow]}`.
pub fn saved_candidate_requests(state_file: &Path, step: &Value, step_started_at: &Value) -> Option<u64> {
    let connection = rusqlite::Connection::open(state_file)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", state_file.display()));
    connection.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    let row = connection.query_row(
        "SELECT step, step_started_at, snapshot FROM step_stats WHERE route = 'default'",
        [],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?)),
    );
    let (saved_step, saved_started_at, snapshot) = match row {
        Ok(row) => row,
        Err(rusqlite::Error::QueryReturnedNoRows) => return None,
        Err(error) => panic!("cannot read the saved evidence in {}: {error}", state_file.display()),
    };
    if step.as_i64() != Some(saved_step) || step_started_at.as_i64() != Some(saved_started_at) {
        return None;
    }
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap_or_else(|_| panic!("saved evidence: {snapshot}"));
    let candidate = &snapshot["arms"][2];
    let count = |field: &str| candidate[field].as_u64().unwrap_or(0);
    Some(count("ok") + count("client_errors") + count("upstream_errors"))
}
