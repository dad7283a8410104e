//! `PgStore`: the `StateStore` of a fleet, on PostgreSQL. The same rows as the SQLite
//! file (route states, events, judged evidence) plus what sharing needs: a version per
//! route row, compared and set by every write; the leader's epoch, checked in the same
//! transaction as every controller write; each instance's evidence of the step, summed
//! for the leader. A route state write sends `NOTIFY cutover_rollout` so the other
//! instances take it at once (their polling is the safety net).
//!
//! The controller calls it from blocking threads; each call runs on the runtime
//! (`Handle::block_on`) through the pool, within the pool's call timeout. A call made
//! from async code by mistake does not panic: it leaves its worker first
//! (`block_in_place`, `on_the_runtime`), which costs that worker's other tasks a move.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use cutover_model::EventKind;
use tokio::runtime::Handle;
use tokio_postgres::{Client, Row};

use cutover_live::stats::{ArmSnapshot, StepSnapshot, StepStats};
use cutover_model::RouteState;

use crate::{Authority, Coordination, DatabaseError, Event, StateStore, StoreError, Write, evidence};

mod lease;
mod migrate;
mod pool;
mod retention;

pub use lease::{CAMPAIGN_PERIOD, Lease};
pub use migrate::CURRENT as SCHEMA_VERSION;
use pool::{Pool, failed};
pub use retention::{DEPARTED, EXPIRY_LEASES, Pruned};

/// Runs `future` on `handle`'s runtime and waits for it. From a blocking thread (the
/// callers' place) that is `Handle::block_on`; from a worker of a multi-threaded runtime,
/// where `block_on` would panic, the worker is first handed over (`block_in_place`), so
/// a call from async code costs a stall of that thread, never the process.
fn on_the_runtime<F: std::future::Future>(handle: &Handle, future: F) -> F::Output {
    tokio::task::block_in_place(|| handle.block_on(future))
}

/// One instance's evidence of one step, written or replaced: by its flush, and by the
/// leader's retention for the step's `~departed` row.
const UPSERT_EVIDENCE: &str =
    "INSERT INTO step_evidence (route, step, step_started_at, instance, requests, snapshot, flushed_at)
     VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (route, step, step_started_at, instance)
     DO UPDATE SET requests = $5, snapshot = $6, flushed_at = now()";
/// The channel route state changes are announced on.
pub const CHANNEL: &str = "cutover_rollout";

/// The columns of a route state, in `state_of`'s order.
const STATE_COLUMNS: &str =
    "route, phase, step, weight_bp, step_started_at, consecutive_failures, active_ms, step_backs, version";

pub struct PgStore {
    pool: Pool,
    instance: String,
    lease: Lease,
    handle: Handle,
    /// The version of each route's row as this instance last read or wrote it.
    versions: Mutex<HashMap<String, i64>>,
    /// Whether the last call reached the database.
    reachable: AtomicBool,
    /// Set on taking the lead: the next `changed` answers every row.
    reread: AtomicBool,
    /// This instance holds evidence the database does not have (`Fleet::flush`).
    catching_up: AtomicBool,
    schema_version: i32,
}

impl PgStore {
    /// Connects (within the pool's timeouts) and brings the schema up to date. Call from
    /// async code; the store's `StateStore` calls then run on this runtime.
    pub async fn open(url: &str, instance: &str, lease: Lease) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| DatabaseError::Url)?;
        let pool = Pool::new(config);
        let applied = pool
            .call("migration", |mut client| async move {
                let applied = migrate::migrate(&mut client).await;
                (client, applied)
            })
            .await?;
        let schema_version = migrate::CURRENT;
        if applied.is_empty() {
            tracing::info!(schema_version, "state database schema is up to date");
        } else {
            tracing::info!(schema_version, ?applied, "state database schema migrated");
        }
        Ok(PgStore {
            pool,
            instance: instance.to_owned(),
            lease,
            handle: Handle::current(),
            versions: Mutex::new(HashMap::new()),
            reachable: AtomicBool::new(true),
            reread: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            schema_version,
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs `future` to completion from a blocking thread, noting whether it reached
    /// the database.
    fn block<T>(&self, future: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = on_the_runtime(&self.handle, future);
        self.note(&result);
        result
    }

    /// Records whether a call reached the database (a refusal by the server did).
    fn note<T>(&self, result: &Result<T, StoreError>) {
        let reached = match result {
            Err(StoreError::Database(DatabaseError::Unreachable { .. })) => false,
            Err(StoreError::Database(DatabaseError::Postgres { source, .. })) => source.as_db_error().is_some(),
            _ => true,
        };
        self.reachable.store(reached, Ordering::Relaxed);
    }

    /// Whether the last call to the database got an answer.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The schema version this build migrated the database to.
    pub fn schema_version(&self) -> i32 {
        self.schema_version
    }

    /// Notes whether this instance holds evidence the database does not have yet (the
    /// fleet's flush sets it on a failed flush and clears it on a taken one).
    pub fn set_catching_up(&self, catching_up: bool) {
        self.catching_up.store(catching_up, Ordering::Relaxed);
    }

    /// A connection of its own, for `LISTEN`: the caller drives it.
    pub async fn listener(
        &self,
    ) -> Result<
        (Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
        StoreError,
    > {
        self.pool.dedicated().await
    }

    fn version_of(&self, route: &str) -> Option<i64> {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner).get(route).copied()
    }

    fn saw(&self, route: &str, version: i64) {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner).insert(route.to_owned(), version);
    }

    /// One look at the lease: takes it if free, renews it if held. Answers whether this
    /// instance leads after it.
    pub async fn campaign(&self) -> Result<bool, StoreError> {
        let (instance, epoch, ttl) = (self.instance.clone(), self.lease.epoch(), self.lease.ttl.as_secs_f64());
        let sent = Instant::now();
        let answer = self
            .pool
            .call("lease", |client| async move {
                let row = client.query_opt(lease::TAKE_OR_RENEW, &[&instance, &epoch, &ttl]).await;
                (client, row.map_err(failed("lease")))
            })
            .await;
        self.note(&answer);
        match answer {
            Ok(row) => {
                let held = row.map(|row| row.get::<_, i64>(0));
                if self.lease.answered(sent, held) {
                    self.reread.store(true, Ordering::Release);
                    tracing::info!(instance = %self.instance, epoch = held, "this gateway now leads the fleet");
                }
                Ok(held.is_some())
            }
            Err(error) => Err(error),
        }
    }

    /// Gives the lease up (a clean shutdown), so another instance leads at once.
    pub async fn release(&self) {
        let (instance, epoch) = (self.instance.clone(), self.lease.epoch());
        if epoch == 0 {
            return;
        }
        self.lease.drop_lease();
        let _ = self
            .pool
            .call("lease release", |client| async move {
                let done = client.execute(lease::RELEASE, &[&instance, &epoch]).await;
                (client, done.map_err(failed("lease release")))
            })
            .await;
    }

    /// Saves this instance's evidence of a step (its running total) and its report.
    /// `reported`: this process's reports were taken before, so a missing report row
    /// means the leader expired this instance (`Flushed::Expired`, no evidence written).
    pub async fn flush(
        &self,
        rows: Vec<EvidenceRow>,
        applied: String,
        buffered: i64,
        reported: bool,
    ) -> Result<Flushed, StoreError> {
        let instance = self.instance.clone();
        let result = self
            .pool
            .call("evidence flush", |mut client| async move {
                let report = Report { instance: &instance, applied: &applied, buffered, reported };
                let done = flush_rows(&mut client, &report, &rows).await;
                (client, done)
            })
            .await;
        self.note(&result);
        result
    }

    /// How long an instance may stay silent before the leader expires it.
    pub fn expiry(&self) -> std::time::Duration {
        self.lease.ttl * retention::EXPIRY_LEASES
    }

    /// One retention pass (`retention::prune`), if this instance leads.
    pub async fn prune(&self) -> Result<Pruned, StoreError> {
        if !self.lease.leads() {
            return Err(StoreError::Fenced { epoch: self.lease.epoch() });
        }
        let (epoch, instance, expiry) = (self.lease.epoch(), self.instance.clone(), self.expiry().as_secs_f64());
        let result = self
            .pool
            .call("retention", |mut client| async move {
                let pruned = retention::prune(&mut client, epoch, &instance, expiry).await;
                (client, pruned)
            })
            .await;
        self.note(&result);
        result
    }

    /// The fleet as the database has it: the lease, each instance's last report, and the
    /// size of each table.
    pub async fn fleet_rows(&self) -> Result<FleetRows, StoreError> {
        let result = self
            .pool
            .call("fleet status", |client| async move {
                let lease = client
                    .query_opt(
                        "SELECT holder, epoch, EXTRACT(EPOCH FROM (expires_at - now()))::float8 FROM fleet_lease WHERE id = 1",
                        &[],
                    )
                    .await;
                let instances = client
                    .query(
                        "SELECT instance, (EXTRACT(EPOCH FROM started_at) * 1000)::int8,
                                (EXTRACT(EPOCH FROM last_report) * 1000)::int8,
                                EXTRACT(EPOCH FROM (now() - last_report))::float8, applied, buffered_requests
                         FROM fleet_instances ORDER BY instance",
                        &[],
                    )
                    .await;
                let sizes = client.query_one(TABLE_SIZES, &[]).await;
                let rows = lease.and_then(|lease| {
                    let (instances, sizes) = (instances?, sizes?);
                    let tables = TABLES.iter().enumerate().map(|(column, table)| (*table, sizes.get(column))).collect();
                    Ok(FleetRows { lease, instances, tables })
                });
                (client, rows.map_err(failed("fleet status")))
            })
            .await;
        self.note(&result);
        result
    }
}

/// The fleet's tables, in the order `fleet status` shows their sizes.
pub const TABLES: [&str; 7] = [
    "rollout_state",
    "events",
    "step_stats",
    "step_evidence",
    "fleet_lease",
    "fleet_instances",
    "cutover_schema_version",
];

/// The row count of each of `TABLES`, in one row. Exact counts: every table but `events`
/// is bounded (see `retention`), and `events` grows only with the rollouts' transitions.
const TABLE_SIZES: &str = "SELECT (SELECT count(*) FROM rollout_state), (SELECT count(*) FROM events),
    (SELECT count(*) FROM step_stats), (SELECT count(*) FROM step_evidence), (SELECT count(*) FROM fleet_lease),
    (SELECT count(*) FROM fleet_instances), (SELECT count(*) FROM cutover_schema_version)";

/// What `fleet status` reads in one call.
pub struct FleetRows {
    /// Holder, epoch, seconds to expiry.
    pub lease: Option<Row>,
    /// Each instance's last report.
    pub instances: Vec<Row>,
    /// Each table's row count.
    pub tables: Vec<(&'static str, i64)>,
}

/// Where an instance's evidence row is, for an error that names it.
fn evidence_row_place(instance: &str, step: u32) -> String {
    format!("state database, step_evidence row of instance {instance:?} (step {step})")
}

/// One instance's evidence of one step, as flushed.
pub struct EvidenceRow {
    pub route: String,
    pub step: u32,
    pub step_started_at: i64,
    pub requests: i64,
    pub snapshot: String,
}

/// What a flush did with this instance's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Written, with the report.
    Taken,
    /// Not written: the leader had expired this instance and folded its rows of the
    /// current steps into the departed ones, so its running totals of those steps would
    /// count twice. The report is written again (the instance is back in the fleet).
    Expired,
}

/// An instance's report, as a flush writes it.
struct Report<'a> {
    instance: &'a str,
    applied: &'a str,
    buffered: i64,
    reported: bool,
}

async fn flush_rows(client: &mut Client, report: &Report<'_>, rows: &[EvidenceRow]) -> Result<Flushed, StoreError> {
    let Report { instance, applied, buffered, reported } = *report;
    let transaction = client.transaction().await.map_err(failed("evidence flush"))?;
    // Locked first: the leader's retention deletes this row and folds the evidence in
    // one transaction, so it either waits for this flush or has finished before it.
    let known = transaction
        .query_opt("SELECT 1 FROM fleet_instances WHERE instance = $1 FOR UPDATE", &[&instance])
        .await
        .map_err(failed("instance report"))?
        .is_some();
    let expired = reported && !known;
    for row in rows.iter().filter(|_| !expired) {
        transaction
            .execute(
                UPSERT_EVIDENCE,
                &[&row.route, &(row.step as i32), &row.step_started_at, &instance, &row.requests, &row.snapshot],
            )
            .await
            .map_err(failed("evidence flush"))?;
    }
    transaction
        .execute(
            "INSERT INTO fleet_instances (instance, started_at, last_report, applied, buffered_requests)
             VALUES ($1, now(), now(), $2, $3)
             ON CONFLICT (instance) DO UPDATE SET last_report = now(), applied = $2, buffered_requests = $3",
            &[&instance, &applied, &buffered],
        )
        .await
        .map_err(failed("instance report"))?;
    transaction.commit().await.map_err(failed("evidence flush"))?;
    Ok(if expired { Flushed::Expired } else { Flushed::Taken })
}

/// A route state row (`STATE_COLUMNS`) and its version; a value out of range names the
/// route and the column.
fn state_of(row: &Row) -> Result<(RouteState, i64), StoreError> {
    let route: String = row.get(0);
    let phase: String = row.get(1);
    let unsigned = |column: usize, name: &str| -> Result<i64, StoreError> {
        let value: i64 = match row.columns()[column].type_() {
            &tokio_postgres::types::Type::INT4 => i64::from(row.get::<_, i32>(column)),
            _ => row.get::<_, i64>(column),
        };
        if value < 0 {
            return Err(DatabaseError::Schema(format!("route {route:?}: {name} is negative ({value})")).into());
        }
        Ok(value)
    };
    let weight_bp = unsigned(3, "weight_bp")?;
    if weight_bp > 10_000 {
        return Err(DatabaseError::Schema(format!("route {route:?}: weight_bp {weight_bp} is above 10000")).into());
    }
    let state = RouteState {
        phase: phase.parse().map_err(|problem| DatabaseError::Schema(format!("route {route:?}: {problem}")))?,
        step: unsigned(2, "step")? as u32,
        weight_bp: weight_bp as u32,
        step_started_at: row.get(4),
        consecutive_failures: unsigned(5, "consecutive_failures")? as u32,
        active_ms: unsigned(6, "active_ms")? as u64,
        step_backs: unsigned(7, "step_backs")? as u32,
        route,
    };
    Ok((state, row.get(8)))
}

fn event_of(row: &Row) -> Result<Event, StoreError> {
    let (id, route, kind): (i64, String, String) = (row.get(0), row.get(2), row.get(3));
    let Ok(kind) = kind.parse::<EventKind>() else { return Err(StoreError::UnknownEventKind { id, route, kind }) };
    Ok(Event {
        id,
        at: row.get(1),
        route,
        kind,
        actor: row.get(4),
        from_phase: row.get(5),
        to_phase: row.get(6),
        weight_percent: f64::from(row.get::<_, i32>(7)) / 100.0,
        reason: row.get(8),
    })
}

/// What a write needs besides the transition: the version it was decided on (`None`:
/// write whatever is there) and the epoch to check (`None`: not fenced).
struct Guard {
    expected: Option<i64>,
    epoch: Option<i64>,
}

async fn record(
    client: &mut Client,
    instance: &str,
    write: &Write<'_>,
    guard: Guard,
) -> Result<(Event, i64), StoreError> {
    let state = write.state;
    let transaction = client.transaction().await.map_err(failed("transition"))?;
    if let Some(epoch) = guard.epoch {
        fence(&transaction, epoch).await?;
    }
    let version: Option<i64> = transaction
        .query_opt(
            "UPDATE rollout_state SET phase = $2, step = $3, weight_bp = $4, step_started_at = $5,
                 consecutive_failures = $6, active_ms = $7, step_backs = $8, version = version + 1
             WHERE route = $1 AND ($9::int8 IS NULL OR version = $9)
             RETURNING version",
            &[
                &state.route,
                &state.phase.as_str(),
                &(state.step as i32),
                &(state.weight_bp as i32),
                &state.step_started_at,
                &(state.consecutive_failures as i32),
                &(state.active_ms as i64),
                &(state.step_backs as i32),
                &guard.expected,
            ],
        )
        .await
        .map_err(failed("transition"))?
        .map(|row| row.get(0));
    let Some(version) = version else { return Err(StoreError::Stale { route: state.route.clone() }) };
    let id: i64 = transaction
        .query_one(
            "INSERT INTO events (at, route, kind, actor, from_phase, to_phase, weight_bp, reason, instance)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &write.now_ms,
                &state.route,
                &write.kind.as_str(),
                &write.actor,
                &write.from.as_str(),
                &state.phase.as_str(),
                &(state.weight_bp as i32),
                &write.reason,
                &instance,
            ],
        )
        .await
        .map_err(failed("event"))?
        .get(0);
    transaction.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &state.route]).await.map_err(failed("notify"))?;
    transaction.commit().await.map_err(failed("transition commit"))?;
    let event = Event {
        id,
        at: write.now_ms,
        route: state.route.clone(),
        kind: write.kind,
        actor: write.actor.to_owned(),
        from_phase: write.from.as_str().to_owned(),
        to_phase: state.phase.as_str().to_owned(),
        weight_percent: f64::from(state.weight_bp) / 100.0,
        reason: write.reason.to_owned(),
    };
    Ok((event, version))
}

/// Refuses the transaction unless the lease is still at `epoch` (and locks the row
/// against a takeover until it commits).
async fn fence(transaction: &tokio_postgres::Transaction<'_>, epoch: i64) -> Result<(), StoreError> {
    let current: i64 = transaction
        .query_one("SELECT epoch FROM fleet_lease WHERE id = 1 FOR SHARE", &[])
        .await
        .map_err(failed("lease check"))?
        .get(0);
    if current == epoch { Ok(()) } else { Err(StoreError::Fenced { epoch }) }
}

impl StateStore for PgStore {
    fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError> {
        let routes: Vec<String> = routes.iter().map(|route| (*route).to_owned()).collect();
        let loaded = self.block(self.pool.call("load states", |client| async move {
            let result = async {
                for route in &routes {
                    let initial = RouteState::initial(route, now_ms);
                    client
                        .execute(
                            "INSERT INTO rollout_state
                                 (route, phase, step, weight_bp, step_started_at, consecutive_failures, active_ms, step_backs)
                             VALUES ($1, $2, 0, 0, $3, 0, 0, 0) ON CONFLICT (route) DO NOTHING",
                            &[route, &initial.phase.as_str(), &now_ms],
                        )
                        .await
                        .map_err(failed("create route state"))?;
                }
                let rows = client
                    .query(&format!("SELECT {STATE_COLUMNS} FROM rollout_state WHERE route = ANY($1)"), &[&routes])
                    .await
                    .map_err(failed("load states"))?;
                let mut by_route = HashMap::new();
                for row in &rows {
                    let (state, version) = state_of(row)?;
                    by_route.insert(state.route.clone(), (state, version));
                }
                routes
                    .iter()
                    .map(|route| {
                        by_route.remove(route).ok_or_else(|| DatabaseError::Schema(format!("route {route:?} has no row")).into())
                    })
                    .collect::<Result<Vec<_>, _>>()
            }
            .await;
            (client, result)
        }))?;
        Ok(loaded
            .into_iter()
            .map(|(state, version)| {
                self.saw(&state.route, version);
                state
            })
            .collect())
    }

    fn record(&self, write: Write<'_>) -> Result<Event, StoreError> {
        let guard = match write.authority {
            Authority::Controller if self.lease.leads() => {
                Guard { expected: self.version_of(&write.state.route), epoch: Some(self.lease.epoch()) }
            }
            Authority::Controller => return Err(StoreError::Fenced { epoch: self.lease.epoch() }),
            Authority::Operator => Guard { expected: self.version_of(&write.state.route), epoch: None },
            Authority::Late => Guard { expected: None, epoch: None },
        };
        let instance = self.instance.clone();
        let (event, version) = self.block(self.pool.call("transition", |mut client| async move {
            let result = record(&mut client, &instance, &write, guard).await;
            (client, result)
        }))?;
        self.saw(&write.state.route, version);
        Ok(event)
    }

    fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError> {
        if !self.lease.leads() {
            return Err(StoreError::Fenced { epoch: self.lease.epoch() });
        }
        let epoch = self.lease.epoch();
        let snapshot = evidence::encode(&state.route, "step evidence", snapshot)?;
        let baseline = baseline.map(|baseline| evidence::encode(&state.route, "baseline", baseline)).transpose()?;
        self.block(self.pool.call("evidence", |mut client| async move {
            let result = async {
                let transaction = client.transaction().await.map_err(failed("evidence"))?;
                fence(&transaction, epoch).await?;
                transaction
                    .execute(
                        "INSERT INTO step_stats (route, step, step_started_at, snapshot, baseline)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (route) DO UPDATE SET step = $2, step_started_at = $3, snapshot = $4, baseline = $5",
                        &[&state.route, &(state.step as i32), &state.step_started_at, &snapshot, &baseline],
                    )
                    .await
                    .map_err(failed("evidence"))?;
                // The step's running time goes with its evidence: the next leader resumes
                // both (it reads every row when it takes the lead). Not a new version: the
                // leader's bookkeeping must not make operators' commands conflict.
                transaction
                    .execute(
                        "UPDATE rollout_state SET active_ms = $4
                         WHERE route = $1 AND step = $2 AND step_started_at = $3",
                        &[&state.route, &(state.step as i32), &state.step_started_at, &(state.active_ms as i64)],
                    )
                    .await
                    .map_err(failed("evidence"))?;
                transaction.commit().await.map_err(failed("evidence commit"))
            }
            .await;
            (client, result)
        }))
    }

    fn load_stats(&self, state: &RouteState) -> Result<(Option<StepSnapshot>, Option<ArmSnapshot>), StoreError> {
        let instance = self.instance.clone();
        let (own, baseline) = self.block(self.pool.call("load evidence", |client| async move {
            let result = async {
                let own = client
                    .query_opt(
                        "SELECT snapshot FROM step_evidence
                         WHERE route = $1 AND step = $2 AND step_started_at = $3 AND instance = $4",
                        &[&state.route, &(state.step as i32), &state.step_started_at, &instance],
                    )
                    .await
                    .map_err(failed("load evidence"))?
                    .map(|row| row.get::<_, String>(0));
                let baseline = client
                    .query_opt("SELECT baseline FROM step_stats WHERE route = $1", &[&state.route])
                    .await
                    .map_err(failed("load evidence"))?
                    .and_then(|row| row.get::<_, Option<String>>(0));
                Ok((own, baseline))
            }
            .await;
            (client, result)
        }))?;
        let route = &state.route;
        let own_place = || evidence_row_place(&self.instance, state.step);
        let own = own.map(|own| evidence::decode(own_place, route, &own)).transpose()?;
        let baseline_place = || "state database, step_stats.baseline".to_owned();
        let baseline = baseline.map(|baseline| evidence::decode(baseline_place, route, &baseline)).transpose()?;
        Ok((own, baseline))
    }

    fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError> {
        let route = route.map(str::to_owned);
        let rows = self.block(self.pool.call("events", |client| async move {
            let rows = client
                .query(
                    "SELECT id, at, route, kind, actor, from_phase, to_phase, weight_bp, reason FROM events
                     WHERE $1::text IS NULL OR route = $1 ORDER BY id DESC LIMIT $2",
                    &[&route, &i64::from(limit)],
                )
                .await;
            (client, rows.map_err(failed("events")))
        }))?;
        rows.iter().map(event_of).collect()
    }

    fn shadow_share(&self, route: &str) -> Result<Option<f64>, StoreError> {
        let route = route.to_owned();
        let row = self.block(self.pool.call("shadow share", |client| async move {
            let row = client.query_opt("SELECT shadow_share FROM rollout_state WHERE route = $1", &[&route]).await;
            (client, row.map_err(failed("shadow share")))
        }))?;
        Ok(row.and_then(|row| row.get::<_, Option<f64>>(0)))
    }

    /// An operator's setting: written by any instance, the row's version raised and the
    /// others notified, so that each adopts it within a second (`RolloutControl::sync`).
    fn save_shadow_share(&self, route: &str, share: Option<f64>) -> Result<(), StoreError> {
        let route = route.to_owned();
        self.block(self.pool.call("set shadow share", |mut client| async move {
            let saved = async {
                let transaction = client.transaction().await.map_err(failed("set shadow share"))?;
                transaction
                    .execute(
                        "UPDATE rollout_state SET shadow_share = $2, version = version + 1 WHERE route = $1",
                        &[&route, &share],
                    )
                    .await
                    .map_err(failed("set shadow share"))?;
                transaction.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &route]).await.map_err(failed("notify"))?;
                transaction.commit().await.map_err(failed("set shadow share"))
            }
            .await;
            (client, saved)
        }))
    }

    fn fleet(&self) -> Option<&dyn Coordination> {
        Some(self)
    }
}

/// A fleet's answers: the lease says who leads, the version of each row what changed.
impl Coordination for PgStore {
    fn leads(&self) -> bool {
        self.lease.leads()
    }

    fn catching_up(&self) -> bool {
        self.catching_up.load(Ordering::Relaxed)
    }

    fn cut_off(&self) -> bool {
        !self.reachable()
    }

    fn changed(&self) -> Result<Vec<RouteState>, StoreError> {
        let rows = self.block(self.pool.call("poll states", |client| async move {
            let rows = client.query(&format!("SELECT {STATE_COLUMNS} FROM rollout_state"), &[]).await;
            (client, rows.map_err(failed("poll states")))
        }))?;
        // A new leader takes every row as it is (the running time its predecessor saved).
        let every_row = self.reread.swap(false, Ordering::AcqRel);
        let mut changed = Vec::new();
        for row in &rows {
            let (state, version) = state_of(row)?;
            if every_row || self.version_of(&state.route).is_none_or(|seen| version > seen) {
                self.saw(&state.route, version);
                changed.push(state);
            }
        }
        Ok(changed)
    }

    fn merged_evidence(&self, state: &RouteState, local: StepSnapshot) -> Result<StepSnapshot, StoreError> {
        let instance = self.instance.clone();
        let others = self.block(self.pool.call("fleet evidence", |client| async move {
            let rows = client
                .query(
                    "SELECT instance, snapshot FROM step_evidence
                     WHERE route = $1 AND step = $2 AND step_started_at = $3 AND instance <> $4",
                    &[&state.route, &(state.step as i32), &state.step_started_at, &instance],
                )
                .await;
            (client, rows.map_err(failed("fleet evidence")))
        }))?;
        // An unreadable row refuses the sum: judged without it, the step would be judged
        // on part of its evidence as if it were all of it.
        let merged = StepStats::default();
        merged.restore(&local);
        for row in &others {
            let place = || evidence_row_place(row.get(0), state.step);
            merged.restore(&evidence::decode::<StepSnapshot>(place, &state.route, row.get(1))?);
        }
        Ok(merged.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_call_runs_from_a_blocking_thread_and_from_async_code_alike() {
        let handle = Handle::current();
        let from_blocking = tokio::task::spawn_blocking({
            let handle = handle.clone();
            move || on_the_runtime(&handle, async { 1 })
        });
        assert_eq!(from_blocking.await.unwrap(), 1);
        // Where `Handle::block_on` panics ("Cannot start a runtime from within a runtime").
        assert_eq!(
            on_the_runtime(&handle, async {
                tokio::task::yield_now().await;
                2
            }),
            2
        );
    }
}
