//! The SQLite state file (WAL): each route's rollout state and an append-only event log.
//! A state change and its event are written in one transaction, so a `kill -9` leaves
//! either both or neither. One process owns the file (`lock.rs`); an existing file is
//! checked before it is trusted (`check.rs`) and only replaced on request (`reset.rs`).
//! Event kinds are stored by their wire name; a row of a kind this build does not know is
//! reported by its id when read, never a crash. Calls block: async callers use
//! `spawn_blocking`.

mod check;
mod lock;
mod reset;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cutover_model::EventKind;
use rusqlite::{Connection, OptionalExtension, params};

use cutover_live::stats::{ArmSnapshot, StepSnapshot};
use cutover_model::{Phase, RouteState};

use crate::{Event, FileError, StateStore, StoreError, Write, evidence};
use check::{Found, RawRow};
use lock::StateLock;

/// How `Store::open` treats what is already at the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StateMode {
    /// Take over an existing file (checked first), or create a new one.
    #[default]
    Keep,
    /// `--reset-state`: move an existing file aside and start over with a new one.
    Reset,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollout_state (
    route TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    step INTEGER NOT NULL,
    weight_bp INTEGER NOT NULL,
    step_started_at INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    active_ms INTEGER NOT NULL DEFAULT 0,
    step_backs INTEGER NOT NULL DEFAULT 0
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
    path: PathBuf,
    /// Declared after the connection, so dropped after it: no write happens unlocked.
    _lock: StateLock,
}

impl Store {
    /// Takes the file's lock, then opens it: a new path is created; an existing file must
    /// be a cutover state file (`check.rs`); with `StateMode::Reset` it is moved aside
    /// first (`reset.rs`).
    pub fn open(path: &Path, mode: StateMode) -> Result<Store, StoreError> {
        let lock = lock::acquire(path)?;
        if mode == StateMode::Reset {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |now| now.as_secs());
            match reset::move_aside(path, now)? {
                Some(aside) => tracing::warn!(
                    "--reset-state: moved the state file {} aside to {}; every route starts over at pending 0%",
                    path.display(),
                    aside.display()
                ),
                None => tracing::info!("--reset-state: no state file at {} yet; starting fresh", path.display()),
            }
        }
        let found = check::inspect(path)?;
        let open_error = |source| FileError::Open { path: path.display().to_string(), source };
        let connection = Connection::open(path).map_err(open_error)?;
        if found == Found::Existing {
            check::schema(&connection, path)?;
        }
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(open_error)?;
        connection.execute_batch(SCHEMA).map_err(open_error)?;
        migrate(&connection, cutover_model::unix_millis()).map_err(open_error)?;
        Ok(Store { connection: Mutex::new(connection), path: path.to_owned(), _lock: lock })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the transaction
        // rolls back), so a poisoned lock is safe to take over.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of each route, creating `pending` rows for routes seen for the first time.
    /// A stored row out of range refuses the whole file, naming every problem.
    pub fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError> {
        let connection = self.lock();
        let mut rows = Vec::with_capacity(routes.len());
        let mut problems = Vec::new();
        for route in routes {
            let raw = connection.query_row(SELECT_STATE, params![route], raw_row).optional()?;
            match raw.map(|raw| check::row(route, raw)) {
                Some(Ok(state)) => rows.push(Some(state)),
                Some(Err(found)) => problems.extend(found),
                None => rows.push(None),
            }
        }
        if !problems.is_empty() {
            return Err(FileError::Invalid { path: self.path.display().to_string(), problems }.into());
        }
        let mut states = Vec::with_capacity(routes.len());
        for (route, row) in routes.iter().zip(rows) {
            let state = match row {
                Some(state) => state,
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

    /// The shadow share an operator set for `route` at run time (`None`: the config's).
    /// A value outside 0–1 (a hand-edited file) is ignored, with a warning.
    pub fn shadow_share(&self, route: &str) -> Result<Option<f64>, StoreError> {
        let connection = self.lock();
        let share: Option<Option<f64>> = connection
            .query_row("SELECT shadow_share FROM rollout_state WHERE route = ?1", params![route], |row| row.get(0))
            .optional()?;
        let share = share.flatten();
        if let Some(bad) = share.filter(|share| !(0.0..=1.0).contains(share)) {
            tracing::warn!(route, share = bad, "stored shadow share is not between 0 and 1: ignored");
            return Ok(None);
        }
        Ok(share)
    }

    /// Saves (or, with `None`, clears) the run-time shadow share of `route`.
    pub fn save_shadow_share(&self, route: &str, share: Option<f64>) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute("UPDATE rollout_state SET shadow_share = ?2 WHERE route = ?1", params![route, share])?;
        Ok(())
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
    /// 100% step), replacing what was saved before, and the step's running time as of
    /// `state` (brought up to now by the caller).
    pub fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError> {
        let snapshot = evidence::encode(&state.route, "step evidence", snapshot)?;
        let baseline = baseline.map(|baseline| evidence::encode(&state.route, "baseline", baseline)).transpose()?;
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "INSERT INTO step_stats (route, step, step_started_at, snapshot, baseline) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (route) DO UPDATE SET step = ?2, step_started_at = ?3, snapshot = ?4, baseline = ?5",
            params![state.route, state.step, state.step_started_at, snapshot, baseline],
        )?;
        // The step's running time goes with its evidence: a restart resumes both from here.
        transaction.execute(
            "UPDATE rollout_state SET active_ms = ?4 WHERE route = ?1 AND step = ?2 AND step_started_at = ?3",
            params![state.route, state.step, state.step_started_at, state.active_ms as i64],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// The saved evidence of `state`'s step, if it is the step that was saved, and the
    /// baseline. A saved row that does not parse is an error (`EvidenceCorrupt`), never
    /// an empty step.
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
        let route = &state.route;
        let place = |column: &'static str| move || format!("state file {}, step_stats.{column}", self.path.display());
        let baseline = baseline.map(|baseline| evidence::decode(place("baseline"), route, &baseline)).transpose()?;
        let same_step = step == state.step && started_at == state.step_started_at;
        let snapshot = same_step.then(|| evidence::decode(place("snapshot"), route, &snapshot)).transpose()?;
        Ok((snapshot, baseline))
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

const SELECT_STATE: &str = "SELECT phase, step, weight_bp, step_started_at, consecutive_failures, active_ms, step_backs
     FROM rollout_state WHERE route = ?1";

/// Brings a state file written by an older version up to this schema without losing
/// anything: columns are only ever added. A step running when the file was written gets
/// its wall-clock age as its running time (all an older version knew of it).
fn migrate(connection: &Connection, now_ms: i64) -> Result<(), rusqlite::Error> {
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('rollout_state')")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let has = |name: &str| columns.iter().any(|column| column == name);
    if !has("active_ms") {
        connection.execute_batch("ALTER TABLE rollout_state ADD COLUMN active_ms INTEGER NOT NULL DEFAULT 0")?;
        connection.execute(
            "UPDATE rollout_state SET active_ms = MAX(0, ?1 - step_started_at)
             WHERE phase IN ('shadowing', 'progressing', 'paused')",
            params![now_ms],
        )?;
    }
    if !has("step_backs") {
        connection.execute_batch("ALTER TABLE rollout_state ADD COLUMN step_backs INTEGER NOT NULL DEFAULT 0")?;
    }
    if !has("shadow_share") {
        // NULL: the configuration's share applies; a value: the operator's (`set-shadow`).
        connection.execute_batch("ALTER TABLE rollout_state ADD COLUMN shadow_share REAL")?;
    }
    Ok(())
}

fn raw_row(row: &rusqlite::Row<'_>) -> Result<RawRow, rusqlite::Error> {
    Ok(RawRow {
        phase: row.get(0)?,
        step: row.get(1)?,
        weight_bp: row.get(2)?,
        step_started_at: row.get(3)?,
        consecutive_failures: row.get(4)?,
        active_ms: row.get(5)?,
        step_backs: row.get(6)?,
    })
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
        "INSERT INTO rollout_state
             (route, phase, step, weight_bp, step_started_at, consecutive_failures, active_ms, step_backs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (route) DO UPDATE SET phase = ?2, step = ?3, weight_bp = ?4, step_started_at = ?5,
             consecutive_failures = ?6, active_ms = ?7, step_backs = ?8",
        params![
            state.route,
            state.phase.as_str(),
            state.step,
            state.weight_bp,
            state.step_started_at,
            state.consecutive_failures,
            state.active_ms as i64,
            state.step_backs
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// The SQLite file: one process, always the controller, nothing changed behind its back.
impl StateStore for Store {
    fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError> {
        Store::load_or_init(self, routes, now_ms)
    }

    fn record(&self, write: Write<'_>) -> Result<Event, StoreError> {
        self.transition(write.state, write.from, write.kind, write.actor, write.reason, write.now_ms)
    }

    fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError> {
        Store::save_stats(self, state, snapshot, baseline)
    }

    fn load_stats(&self, state: &RouteState) -> Result<(Option<StepSnapshot>, Option<ArmSnapshot>), StoreError> {
        Store::load_stats(self, state)
    }

    fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError> {
        Store::events(self, route, limit)
    }

    fn shadow_share(&self, route: &str) -> Result<Option<f64>, StoreError> {
        Store::shadow_share(self, route)
    }

    fn save_shadow_share(&self, route: &str, share: Option<f64>) -> Result<(), StoreError> {
        Store::save_shadow_share(self, route, share)
    }
}
