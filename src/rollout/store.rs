//! The SQLite state file (WAL): each route's rollout state and an append-only event log.
//! A state change and its event are written in one transaction, so a `kill -9` leaves
//! either both or neither. Event kinds are stored by their wire name; a row of a kind
//! this build does not know is reported by its id when read, never a crash. Calls block:
//! async callers use `spawn_blocking`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::stats::{ArmSnapshot, StepSnapshot};
use super::{EventKind, Phase, RouteState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state file {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("state file: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state file: corrupt row for route {route:?}: {reason}")]
    Corrupt { route: String, reason: String },
    /// An event row whose kind this build does not know (written by another version):
    /// the rest of the file stays usable, and the event log says which row it cannot show.
    #[error("state file: event {id} of route {route:?} has a kind this version does not know: {kind:?}")]
    UnknownEventKind { id: i64, route: String, kind: String },
}

/// One row of the audit log: what changed, who did it, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub route: String,
    /// Serialised as its wire name (`"rollback"`).
    pub kind: EventKind,
    pub actor: String,
    pub from_phase: String,
    pub to_phase: String,
    pub weight_percent: f64,
    pub reason: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollout_state (
    route TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    step INTEGER NOT NULL,
    weight_bp INTEGER NOT NULL,
    step_started_at INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    route TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_phase TEXT NOT NULL,
    to_phase TEXT NOT NULL,
    weight_bp INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_route ON events (route, id);
CREATE TABLE IF NOT EXISTS step_stats (
    route TEXT PRIMARY KEY,
    step INTEGER NOT NULL,
    step_started_at INTEGER NOT NULL,
    snapshot TEXT NOT NULL,
    baseline TEXT
);
";

/// The state file. A std mutex, not tokio's: every call is short, synchronous and made
/// from a blocking thread, never held across an await.
pub struct Store {
    connection: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open { path: path.display().to_string(), source };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(open_error)?;
        connection.execute_batch(SCHEMA).map_err(open_error)?;
        Ok(Store { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the transaction
        // rolls back), so a poisoned lock is safe to take over.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of each route, creating `pending` rows for routes seen for the first time.
    pub fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError> {
        let connection = self.lock();
        let mut states = Vec::with_capacity(routes.len());
        for route in routes {
            let row = connection
                .query_row(
                    "SELECT phase, step, weight_bp, step_started_at, consecutive_failures FROM rollout_state WHERE route = ?1",
                    params![route],
                    |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
                )
                .optional()?;
            let state = match row {
                Some((phase, step, weight_bp, step_started_at, consecutive_failures)) => RouteState {
                    route: (*route).to_owned(),
                    phase: phase
                        .parse()
                        .map_err(|reason| StoreError::Corrupt { route: (*route).to_owned(), reason })?,
                    step,
                    weight_bp,
                    step_started_at,
                    consecutive_failures,
                },
                None => {
                    let state = RouteState::initial(route, now_ms);
                    write_state(&connection, &state)?;
                    state
                }
            };
            states.push(state);
        }
        Ok(states)
    }

    /// Writes `state` and its event in one transaction; returns the event as stored.
    pub fn transition(
        &self,
        state: &RouteState,
        from: Phase,
        kind: EventKind,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Event, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        write_state(&transaction, state)?;
        transaction.execute(
            "INSERT INTO events (at, route, kind, actor, from_phase, to_phase, weight_bp, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now_ms,
                state.route,
                kind.as_str(),
                actor,
                from.as_str(),
                state.phase.as_str(),
                state.weight_bp,
                reason
            ],
        )?;
        let id = transaction.last_insert_rowid();
        transaction.commit()?;
        Ok(Event {
            id,
            at: now_ms,
            route: state.route.clone(),
            kind,
            actor: actor.to_owned(),
            from_phase: from.as_str().to_owned(),
            to_phase: state.phase.as_str().to_owned(),
            weight_percent: f64::from(state.weight_bp) / 100.0,
            reason: reason.to_owned(),
        })
    }

    /// Saves the evidence of a route's current step (and the primary baseline kept for a
    /// 100% step), replacing what was saved before.
    pub fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError> {
        let snapshot = serde_json::to_string(snapshot).unwrap_or_default();
        let baseline = baseline.and_then(|baseline| serde_json::to_string(baseline).ok());
        self.lock().execute(
            "INSERT INTO step_stats (route, step, step_started_at, snapshot, baseline) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (route) DO UPDATE SET step = ?2, step_started_at = ?3, snapshot = ?4, baseline = ?5",
            params![state.route, state.step, state.step_started_at, snapshot, baseline],
        )?;
        Ok(())
    }

    /// The saved evidence of `state`'s step, if it is the step that was saved.
    pub fn load_stats(&self, state: &RouteState) -> Result<(Option<StepSnapshot>, Option<ArmSnapshot>), StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT step, step_started_at, snapshot, baseline FROM step_stats WHERE route = ?1",
                params![state.route],
                |row| {
                    Ok((
                        row.get::<_, u32>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((step, started_at, snapshot, baseline)) = row else { return Ok((None, None)) };
        let baseline = baseline.and_then(|baseline| serde_json::from_str(&baseline).ok());
        let same_step = step == state.step && started_at == state.step_started_at;
        Ok((same_step.then(|| serde_json::from_str(&snapshot).ok()).flatten(), baseline))
    }

    /// The latest `limit` events, newest first, optionally of one route.
    pub fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, at, route, kind, actor, from_phase, to_phase, weight_bp, reason FROM events
             WHERE ?1 IS NULL OR route = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![route, limit], event_row)?;
        rows.map(|row| row.map_err(StoreError::from).and_then(|event| event)).collect()
    }
}

/// One row of `events`; a kind this build does not know is an error naming the row.
fn event_row(row: &rusqlite::Row<'_>) -> Result<Result<Event, StoreError>, rusqlite::Error> {
    let (id, route, kind) = (row.get(0)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?);
    let Ok(kind) = kind.parse() else { return Ok(Err(StoreError::UnknownEventKind { id, route, kind })) };
    Ok(Ok(Event {
        id,
        at: row.get(1)?,
        route,
        kind,
        actor: row.get(4)?,
        from_phase: row.get(5)?,
        to_phase: row.get(6)?,
        weight_percent: f64::from(row.get::<_, u32>(7)?) / 100.0,
        reason: row.get(8)?,
    }))
}

fn write_state(connection: &Connection, state: &RouteState) -> Result<(), rusqlite::Error> {
    connection.execute(
        "INSERT INTO rollout_state (route, phase, step, weight_bp, step_started_at, consecutive_failures)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (route) DO UPDATE SET phase = ?2, step = ?3, weight_bp = ?4, step_started_at = ?5,
             consecutive_failures = ?6",
        params![
            state.route,
            state.phase.as_str(),
            state.step,
            state.weight_bp,
            state.step_started_at,
            state.consecutive_failures
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_events_survive_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("cutover-store-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        {
            let store = Store::open(&path).unwrap();
            let mut state = store.load_or_init(&["default"], 1000).unwrap().remove(0);
            assert_eq!(state.phase, Phase::Pending);
            state.weight_bp = 1250;
            state.phase = Phase::Paused;
            store.transition(&state, Phase::Pending, EventKind::SetWeight, "admin", "manual", 2000).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let state = store.load_or_init(&["default"], 9999).unwrap().remove(0);
        assert_eq!((state.phase, state.weight_bp, state.step_started_at), (Phase::Paused, 1250, 1000));
        let events = store.events(Some("default"), 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].weight_percent, 12.5);
        assert_eq!(events[0].actor, "admin");
        assert_eq!(events[0].kind, EventKind::SetWeight);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_event_of_an_unknown_kind_is_reported_by_row_and_the_state_still_loads() {
        let dir = std::env::temp_dir().join(format!("cutover-store-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let store = Store::open(&path).unwrap();
        let state = store.load_or_init(&["default"], 1000).unwrap().remove(0);
        store.transition(&state, Phase::Pending, EventKind::Pause, "admin", "by hand", 2000).unwrap();
        store
            .lock()
            .execute(
                "INSERT INTO events (at, route, kind, actor, from_phase, to_phase, weight_bp, reason)
                 VALUES (3000, 'default', 'rewound', 'future', 'paused', 'paused', 0, 'a newer version')",
                [],
            )
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load_or_init(&["default"], 9999).unwrap().remove(0), state);
        let error = store.events(Some("default"), 10).unwrap_err();
        assert!(matches!(&error, StoreError::UnknownEventKind { id: 2, kind, .. } if kind == "rewound"), "{error}");
        assert!(error.to_string().contains("event 2 of route \"default\""), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
