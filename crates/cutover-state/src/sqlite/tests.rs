//! The state file as specifications: what survives a reopening, and what a gateway refuses
//! to start on.

use super::*;

#[test]
fn state_and_events_survive_reopening_the_file() {
    let dir = std::env::temp_dir().join(format!("cutover-store-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    {
        let store = Store::open(&path, StateMode::Keep).unwrap();
        let mut state = store.load_or_init(&["default"], 1000).unwrap().remove(0);
        assert_eq!(state.phase, Phase::Pending);
        state.weight_bp = 1250;
        state.phase = Phase::Paused;
        store.transition(&state, Phase::Pending, EventKind::SetWeight, "admin", "manual", 2000).unwrap();
    }
    let store = Store::open(&path, StateMode::Keep).unwrap();
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
    let store = Store::open(&path, StateMode::Keep).unwrap();
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
    let store = Store::open(&path, StateMode::Keep).unwrap();
    assert_eq!(store.load_or_init(&["default"], 9999).unwrap().remove(0), state);
    let error = store.events(Some("default"), 10).unwrap_err();
    assert!(matches!(&error, StoreError::UnknownEventKind { id: 2, kind, .. } if kind == "rewound"), "{error}");
    assert!(error.to_string().contains("event 2 of route \"default\""), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A scratch directory with a `state.db` path in it, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("cutover-store-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn state(&self) -> std::path::PathBuf {
        self.0.join("state.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why opening and loading route `default` from the file at `path` is refused.
fn refusal(path: &Path) -> String {
    let opened = Store::open(path, StateMode::Keep).and_then(|store| store.load_or_init(&["default"], 1000));
    match opened {
        Ok(states) => panic!("{} was accepted as {states:?}", path.display()),
        Err(error) => error.to_string(),
    }
}

/// A state file whose `default` row has `column` set to `value` (SQL).
fn tampered(scratch: &Scratch, column: &str, value: &str) -> std::path::PathBuf {
    let path = scratch.state();
    let store = Store::open(&path, StateMode::Keep).unwrap();
    store.load_or_init(&["default"], 1000).unwrap();
    store.lock().execute(&format!("UPDATE rollout_state SET {column} = {value}"), []).unwrap();
    path
}

#[test]
fn a_second_store_on_the_same_file_is_refused_while_the_first_is_open() {
    let scratch = Scratch::new();
    let first = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let refused = Store::open(&scratch.state(), StateMode::Keep).err().unwrap();
    let message = refused.to_string();
    assert!(
        matches!(refused, StoreError::File(FileError::Locked { holder: Some(pid), .. }) if pid == std::process::id()),
        "{message}"
    );
    assert!(message.contains(&scratch.state().display().to_string()), "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
    let reset = Store::open(&scratch.state(), StateMode::Reset).err().unwrap();
    assert!(
        matches!(reset, StoreError::File(FileError::Locked { .. })),
        "a reset cannot take a running gateway's file: {reset}"
    );
    drop(first);
    Store::open(&scratch.state(), StateMode::Keep).unwrap();
}

#[test]
fn an_empty_file_is_refused_not_started_over() {
    let scratch = Scratch::new();
    std::fs::write(scratch.state(), "").unwrap();
    let message = refusal(&scratch.state());
    assert!(message.starts_with(&format!("state file {} is empty (0 bytes)", scratch.state().display())), "{message}");
    assert!(message.contains("--reset-state"), "{message}");
    assert_eq!(std::fs::metadata(scratch.state()).unwrap().len(), 0, "the refused file is left as it was");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let scratch = Scratch::new();
    std::fs::write(scratch.state(), "[server]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let message = refusal(&scratch.state());
    assert!(message.contains("is not a cutover state file: not a SQLite database"), "{message}");
}

#[test]
fn another_sqlite_database_is_refused_naming_the_missing_tables() {
    let scratch = Scratch::new();
    Connection::open(scratch.state()).unwrap().execute_batch("CREATE TABLE users (id INTEGER);").unwrap();
    let message = refusal(&scratch.state());
    assert!(message.contains("without cutover's tables (missing rollout_state, events; found users)"), "{message}");
    Connection::open(scratch.state()).unwrap().execute_batch("DROP TABLE users; VACUUM;").unwrap();
    assert!(refusal(&scratch.state()).contains("a SQLite database without any table"));
}

#[test]
fn out_of_range_values_are_refused_with_every_problem_named() {
    for (column, value, problem) in [
        ("weight_bp", "999999", "route \"default\": weight_bp 999999 is not between 0 and 10000"),
        ("weight_bp", "-1", "weight_bp -1 is not between 0 and 10000"),
        ("step", "-2", "step -2 is not a step number"),
        ("consecutive_failures", "'many'", "consecutive_failures Text(\"many\") is not a count"),
        ("phase", "'rewinding'", "route \"default\": unknown phase \"rewinding\""),
    ] {
        let scratch = Scratch::new();
        let message = refusal(&tampered(&scratch, column, value));
        assert!(message.contains(&scratch.state().display().to_string()), "{message}");
        assert!(message.contains(problem), "{column} = {value}: {message}");
    }
}

#[test]
fn a_step_beyond_the_plan_is_not_a_problem_of_the_file() {
    let scratch = Scratch::new();
    let path = tampered(&scratch, "step", "40");
    let store = Store::open(&path, StateMode::Keep).unwrap();
    assert_eq!(store.load_or_init(&["default"], 1000).unwrap()[0].step, 40);
}

#[test]
fn a_reset_moves_the_file_and_its_wal_aside_and_starts_over() {
    let scratch = Scratch::new();
    let path = tampered(&scratch, "weight_bp", "1250");
    let store = Store::open(&path, StateMode::Reset).unwrap();
    assert_eq!(store.load_or_init(&["default"], 5000).unwrap()[0], RouteState::initial("default", 5000));
    let aside: Vec<String> = std::fs::read_dir(&scratch.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("state.db.reset-") && !name.ends_with("-wal") && !name.ends_with("-shm"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let old = Connection::open(scratch.0.join(&aside[0])).unwrap();
    let weight: i64 = old.query_row("SELECT weight_bp FROM rollout_state", [], |row| row.get(0)).unwrap();
    assert_eq!(weight, 1250, "the old file keeps what it held");
}

#[test]
fn a_new_path_is_created_as_before() {
    let scratch = Scratch::new();
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    assert_eq!(store.load_or_init(&["default"], 7).unwrap()[0], RouteState::initial("default", 7));
    assert!(scratch.state().exists());
}

#[test]
fn a_file_from_before_running_time_is_migrated_with_its_steps_wall_clock_age_and_nothing_lost() {
    let scratch = Scratch::new();
    {
        // The schema of the version before `active_ms` and `step_backs`.
        let old = Connection::open(scratch.state()).unwrap();
        old.execute_batch(
            "CREATE TABLE rollout_state (route TEXT PRIMARY KEY, phase TEXT NOT NULL, step INTEGER NOT NULL,
                 weight_bp INTEGER NOT NULL, step_started_at INTEGER NOT NULL, consecutive_failures INTEGER NOT NULL);
             CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, route TEXT NOT NULL,
                 kind TEXT NOT NULL, actor TEXT NOT NULL, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
                 weight_bp INTEGER NOT NULL, reason TEXT NOT NULL);
             INSERT INTO rollout_state VALUES ('running', 'progressing', 1, 500, 0, 2);
             INSERT INTO rollout_state VALUES ('done', 'promoted', 2, 10000, 0, 0);",
        )
        .unwrap();
    }
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let states = store.load_or_init(&["running", "done"], 9999).unwrap();
    let (running, done) = (&states[0], &states[1]);
    assert_eq!(
        (running.phase, running.step, running.weight_bp, running.consecutive_failures),
        (Phase::Progressing, 1, 500, 2)
    );
    assert!(running.active_ms > 1_700_000_000_000, "a running step keeps the age it had: {}", running.active_ms);
    assert_eq!((done.active_ms, done.step_backs), (0, 0));
    drop(store);
    // Reopened (migrated already), the new columns keep what is written into them.
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let moved = RouteState { active_ms: 42_000, step_backs: 2, ..running.clone() };
    store.transition(&moved, Phase::Progressing, EventKind::StepBack, "controller", "test", 1).unwrap();
    let later = RouteState { active_ms: 99_000, ..moved.clone() };
    store.save_stats(&later, &StepSnapshot::default(), None).unwrap();
    assert_eq!(store.load_or_init(&["running"], 9999).unwrap().remove(0), later);
}

/// Route `default`'s step with evidence and a baseline saved, then `column` of its
/// `step_stats` row overwritten with garbage by hand; answers the step's state.
fn saved_then_garbled(path: &Path, column: &str) -> RouteState {
    let store = Store::open(path, StateMode::Keep).unwrap();
    let state = store.load_or_init(&["default"], 1000).unwrap().remove(0);
    let stats = cutover_live::stats::StepStats::default();
    let baseline = stats.snapshot().arm(cutover_live::stats::Arm::Primary);
    store.save_stats(&state, &stats.snapshot(), Some(&baseline)).unwrap();
    drop(store);
    let raw = Connection::open(path).unwrap();
    raw.execute(&format!("UPDATE step_stats SET {column} = '{{\"arms\": tru' WHERE route = 'default'"), []).unwrap();
    state
}

#[test]
fn a_saved_snapshot_that_does_not_parse_is_an_error_naming_the_file_and_route_not_an_empty_step() {
    let scratch = Scratch::new();
    let state = saved_then_garbled(&scratch.state(), "snapshot");
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let error = store.load_stats(&state).unwrap_err();
    assert!(matches!(&error, StoreError::EvidenceCorrupt { route, .. } if route == "default"), "{error}");
    let message = error.to_string();
    let place = format!("state file {}, step_stats.snapshot", scratch.state().display());
    assert!(message.starts_with(&place), "{message}");
    assert!(message.contains("route \"default\" does not parse"), "{message}");
}

#[test]
fn a_saved_baseline_that_does_not_parse_is_an_error_too() {
    let scratch = Scratch::new();
    let state = saved_then_garbled(&scratch.state(), "baseline");
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let error = store.load_stats(&state).unwrap_err();
    assert!(error.to_string().contains("step_stats.baseline: the evidence saved for route \"default\""), "{error}");
}

#[test]
fn the_garbled_snapshot_of_a_step_no_longer_running_is_not_read() {
    let scratch = Scratch::new();
    let state = saved_then_garbled(&scratch.state(), "snapshot");
    let store = Store::open(&scratch.state(), StateMode::Keep).unwrap();
    let raw = Connection::open(scratch.state()).unwrap();
    raw.execute("UPDATE step_stats SET baseline = NULL", []).unwrap();
    let later = RouteState { step: 1, ..state };
    assert_eq!(store.load_stats(&later).unwrap(), (None, None));
}
