//! The state file as an operator meets it: owned by one gateway at a time, refused with
//! its name and the problem when it is not what it should be, started over only on
//! request (`--reset-state`), and a write it refuses counted and answered in OpenAI's
//! error shape while a rollback takes effect at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use cutover_model::EventKind;
use cutover_model::Phase;
use cutover_state::{StateMode, Store};
use http::{Method, StatusCode};
use serde_json::Value;

use crate::binary::{Gateway, Process, Scratch, get, send};
use crate::configs::GatewayToml;
use crate::support::{ADMIN_TOKEN, TempDir, metric, start_gateway, two_upstreams};
use crate::wait::EVENTUALLY;

/// A gateway whose state is `state.db` beside its config, with a two-step plan; no
/// `[server]` section, so that the harness (or `listening`) adds the listeners.
fn config() -> String {
    GatewayToml::two_upstreams("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
        .admin_token_env("ADMIN_TOKEN")
        .state("state.db")
        .section(
            "[routes.rollout]\ninterval = \"1h\"\nsteps = [{ weight = 10, min_duration = \"1h\", min_requests = 10 }, \
             { weight = 100, min_duration = \"1h\", min_requests = 10 }]",
        )
        .build()
}

const ENV: [(&str, &str); 1] = [("ADMIN_TOKEN", ADMIN_TOKEN)];

/// How long a gateway may take to start or to refuse to.
const WITHIN: Duration = EVENTUALLY;

fn state_file(scratch: &Scratch) -> PathBuf {
    scratch.path().join("state.db")
}

/// `config()` written to `name` in the scratch directory, listening on `proxy` and `admin`.
fn listening(scratch: &Scratch, name: &str, proxy: SocketAddr, admin: SocketAddr) -> PathBuf {
    let listeners = format!("[server]\nlisten = \"{proxy}\"\nadmin_listen = \"{admin}\"\n");
    scratch.write(name, &format!("{listeners}{}", config()))
}

/// Runs `cutover serve` on `config()` (ephemeral ports) with `flags`, expecting it to
/// refuse to start: its exit status and what it wrote to stderr.
async fn refused_start(scratch: &Scratch, flags: &[&str]) -> (ExitStatus, String) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = listening(scratch, "refused.toml", any, any);
    let mut args = vec!["serve", "-c", config.to_str().unwrap()];
    args.extend(flags);
    let mut process = Process::start(scratch, "refused", &args, &ENV);
    let status = process.wait_exit(WITHIN).await;
    (status, process.log())
}

/// Runs `cutover serve --reset-state` on `config()` and waits until `/healthz` answers.
async fn serve_resetting(scratch: &Scratch) -> (Process, SocketAddr) {
    let ports: Vec<std::net::TcpListener> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let (proxy, admin) = (ports[0].local_addr().unwrap(), ports[1].local_addr().unwrap());
    drop(ports);
    let config = listening(scratch, "reset.toml", proxy, admin);
    let mut process =
        Process::start(scratch, "reset", &["serve", "-c", config.to_str().unwrap(), "--reset-state"], &ENV);
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(status) = process.exited() {
            panic!("the gateway exited with {status}:\n{}", process.log());
        }
        let answered = tokio::time::timeout(Duration::from_secs(1), async {
            crate::binary::client().get(format!("http://{admin}/healthz").parse().unwrap()).await
        });
        if matches!(answered.await, Ok(Ok(response)) if response.status() == StatusCode::OK) {
            return (process, admin);
        }
        assert!(Instant::now() < deadline, "not serving within {WITHIN:?}:\n{}", process.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A state file at `path` in which route `default` is paused at 12.5%.
fn saved_state(path: &Path) {
    let store = Store::open(path, StateMode::Keep).unwrap();
    let mut state = store.load_or_init(&["default"], 1_000).unwrap().remove(0);
    (state.phase, state.weight_bp) = (Phase::Paused, 1250);
    store.transition(&state, Phase::Pending, EventKind::SetWeight, "test", "by hand", 2_000).unwrap();
}

/// Runs `sql` on the state file at `path`, as an operator with `sqlite3` might.
fn sql(path: &Path, sql: &str) {
    rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

#[tokio::test]
async fn a_second_gateway_on_the_same_state_file_refuses_to_start_and_names_the_file() {
    let scratch = Scratch::new("two-gateways");
    let first = Gateway::start(&scratch, &config(), &ENV).await;
    let (status, log) = refused_start(&scratch, &[]).await;
    assert!(!status.success(), "{status}");
    let named = format!(
        "state file {} is in use by another cutover process (pid {})",
        state_file(&scratch).display(),
        first.process.pid()
    );
    assert!(log.contains(&named), "{log}");
    assert!(log.contains("PostgreSQL backend"), "{log}");
    let (status, log) = refused_start(&scratch, &["--reset-state"]).await;
    assert!(!status.success() && log.contains("is in use by another cutover process"), "{log}");
    assert_eq!(get(&first.admin_url("/healthz"), &[]).await.status, StatusCode::OK, "the first one goes on");
    assert!(state_file(&scratch).exists(), "a refused reset moved nothing");
}

#[tokio::test]
async fn a_state_file_that_is_empty_not_a_database_or_without_schema_is_refused_by_name() {
    /// What the case is, how to make its file, the problem its refusal names.
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 3] = [
        ("empty", |path| std::fs::write(path, "").unwrap(), "is empty (0 bytes)"),
        (
            "not a database",
            |path| std::fs::write(path, "hello").unwrap(),
            "is not a cutover state file: not a SQLite database",
        ),
        (
            "another database",
            |path| sql(path, "CREATE TABLE notes (text TEXT);"),
            "is not a cutover state file: a SQLite database without cutover's tables",
        ),
    ];
    for (case, make, problem) in cases {
        let scratch = Scratch::new("bad-state");
        make(&state_file(&scratch));
        let (status, log) = refused_start(&scratch, &[]).await;
        assert_eq!(status.code(), Some(1), "{case}: {log}");
        let named = format!("state file {} {problem}", state_file(&scratch).display());
        assert!(log.contains(&named), "{case}: {log}");
        assert!(log.contains("--reset-state"), "{case}: {log}");
    }
}

#[tokio::test]
async fn a_state_file_with_out_of_range_values_is_refused_with_each_problem() {
    for (update, problem) in [
        ("weight_bp = 999999", "weight_bp 999999 is not between 0 and 10000"),
        ("weight_bp = -5", "weight_bp -5 is not between 0 and 10000"),
        ("phase = 'rewinding'", "unknown phase \"rewinding\""),
    ] {
        let scratch = Scratch::new("out-of-range");
        saved_state(&state_file(&scratch));
        sql(&state_file(&scratch), &format!("UPDATE rollout_state SET {update};"));
        let (status, log) = refused_start(&scratch, &[]).await;
        assert_eq!(status.code(), Some(1), "{update}: {log}");
        let named = format!("state file {} holds values this gateway cannot run with", state_file(&scratch).display());
        assert!(log.contains(&named) && log.contains(problem), "{update}: {log}");
    }
}

#[tokio::test]
async fn reset_state_moves_the_old_file_aside_and_starts_over_at_pending() {
    let scratch = Scratch::new("reset");
    saved_state(&state_file(&scratch));
    let (mut gateway, admin) = serve_resetting(&scratch).await;
    let view = get(&format!("http://{admin}/admin/rollouts/default"), &[("authorization", &auth())]).await.json();
    assert_eq!((view["phase"].as_str(), view["weight"].as_f64()), (Some("pending"), Some(0.0)), "{view}");
    assert!(gateway.log().contains("moved the state file"), "{}", gateway.log());
    let aside: Vec<PathBuf> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("state.db.reset-"))
        .filter(|path| !path.to_string_lossy().ends_with("-wal") && !path.to_string_lossy().ends_with("-shm"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let old = rusqlite::Connection::open(&aside[0]).unwrap();
    let weight: i64 = old.query_row("SELECT weight_bp FROM rollout_state", [], |row| row.get(0)).unwrap();
    assert_eq!(weight, 1250, "the old file is kept as it was");
    gateway.signal("TERM");
    assert!(gateway.wait_exit(WITHIN).await.success());
}

#[tokio::test]
async fn a_refused_write_is_a_500_and_counted_while_an_abort_takes_effect_at_once_and_is_saved_later() {
    let dir = TempDir::new("locked-state");
    let plan =
        "[routes.rollout]\ninterval = \"1h\"\nsteps = [{ weight = 10, min_duration = \"1h\", min_requests = 10 }]\n";
    let gateway = start_gateway(&two_upstreams("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", plan), &dir).await;
    let admin = |path: &str| format!("http://{}{path}", gateway.admin_addr);
    let auth = auth();
    let headers = [("authorization", auth.as_str())];
    let set = send(Method::POST, &admin("/admin/rollouts/default/weight"), &headers, r#"{"weight": 50}"#).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());

    // Another process holding SQLite's write lock, as `sqlite3` in a transaction would.
    let holder = rusqlite::Connection::open(dir.0.join("cutover.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let abort = send(Method::POST, &admin("/admin/rollouts/default/abort"), &headers, "").await;
    assert_eq!(abort.status, StatusCode::INTERNAL_SERVER_ERROR);
    let error = abort.openai_error();
    assert!(
        error["message"].as_str().unwrap().starts_with("abort is in effect (candidate weight 0%) but not saved"),
        "{error}"
    );
    let view = get(&admin("/admin/rollouts/default"), &headers).await.json();
    assert_eq!((view["weight"].as_f64(), view["unsaved_transitions"].as_u64()), (Some(0.0), Some(1)), "{view}");
    let page = get(&admin("/metrics"), &[]).await.text();
    assert!(metric(&page, r#"cutover_state_write_failures_total{route="default"}"#) >= 1.0, "{page}");
    assert_eq!(metric(&page, r#"cutover_rollout_weight_percent{route="default"}"#), 0.0);

    holder.execute_batch("ROLLBACK;").unwrap();
    // The view says when the unsaved abort is saved (the event row lands just before).
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let view = get(&admin("/admin/rollouts/default"), &headers).await.json();
        if view["unsaved_transitions"] == 0 {
            assert_eq!(
                (view["phase"].as_str(), view["events"][0]["kind"].as_str()),
                (Some("rolled_back"), Some("abort"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "the abort never reached the state file: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Value = get(&admin("/admin/events?limit=1"), &headers).await.json();
    assert_eq!(events[0]["kind"], "abort", "{events}");
    gateway.shutdown().await;
}
