//! `cutover serve`: builds the runtime from a validated configuration, opens the state
//! file, binds the proxy and admin listeners, and runs both until shutdown, then drains.
//! A failure to start is a `StartError` that says which part could not start. A running
//! gateway takes new configurations through its `Reloader`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cutover_alerts::{self as alerts, AlertBoard};
use cutover_config::{Config, RouteId};
use cutover_health as health;
use cutover_metrics::Metrics;
use cutover_model::unix_millis;
use cutover_net::{
    descriptors::{self, OverBudget},
    serve::serve,
};
use cutover_notify::Notifications;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::admin::{AdminService, Readiness};
use crate::proxy::{Admission, Gateway, ProxyService, SharedGateway};
use crate::reload::Reloader;
use cutover_control::fleet::Fleet;
use cutover_control::supervise::supervise;
use cutover_control::{ControlError, RolloutControl, driver, notify};
use cutover_live::LiveState;
use cutover_state::pg::{Lease, PgStore};
use cutover_state::{Event, StateMode, StateStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection budgets do not fit under the process's descriptor limit.
    #[error(transparent)]
    Descriptors(#[from] OverBudget),
    /// Taking over the persisted state needed a transition the state file refused.
    #[error("taking over the rollout state: {0}")]
    Control(#[from] ControlError),
    /// The state file answered for other routes than the configuration has: a bug, not a
    /// corrupt file, so it is not reported as one.
    #[error("the state file returned {states} route states for the {routes} routes of the configuration")]
    RouteCount { routes: usize, states: usize },
    /// The blocking task that opens the state file panicked or was cancelled.
    #[error("opening the state file and the rollout controller did not finish: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// A running gateway; dropping it does not stop it, `shutdown` does.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The gateway in force; a reload swaps another in.
    pub gateway: SharedGateway,
    pub control: Arc<RolloutControl>,
    /// This gateway's part in a fleet (`[state] backend = "postgres"`).
    pub fleet: Option<Arc<Fleet>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests and streams, and returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.wait().await;
    }

    /// Returns when both listeners have stopped, and each step's evidence is saved.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        // Drained: what the last requests added to each step's evidence is saved, so a
        // restart after SIGTERM loses none of it (a `kill -9` loses at most an interval).
        let control = self.control.clone();
        match tokio::task::spawn_blocking(move || control.save_evidence()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the rollout evidence was not saved at shutdown"),
            Err(error) => tracing::error!(%error, "saving the rollout evidence at shutdown failed"),
        }
        if let Some(fleet) = &self.fleet {
            fleet.finish(&self.control).await;
        }
    }

    /// Applies new configurations to this gateway while it serves.
    pub fn reloader(&self) -> Reloader {
        Reloader::new(self.gateway.clone(), self.control.clone())
    }

    /// Stops both listeners when `signal` resolves.
    pub fn stop_on(&self, signal: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
    }
}

/// Binds the listeners the configuration names and starts serving; `state` says whether
/// to take over the state file or move it aside and start over (`--reset-state`). The
/// process's descriptor limit is raised to its hard limit first, and the connection
/// budgets must fit under it.
pub async fn start(config: Config, state: StateMode) -> Result<Running, StartError> {
    claim_descriptors(&config)?;
    let proxy = bind(config.server.listen)?;
    let admin = bind(config.server.admin_listen)?;
    start_on_with(config, proxy, admin, state).await
}

/// The rollout side of a gateway: the state file the configuration names (locked for
/// this process, checked, or moved aside first with `StateMode::Reset`), each route's
/// state from it (a new `pending` one for a route seen for the first time) published to
/// the request path, and the controller over them. Blocking: call from a blocking thread.
pub(crate) fn open_rollouts(
    config: &Arc<Config>,
    metrics: &Arc<Metrics>,
    events: Option<mpsc::Sender<Event>>,
    mode: StateMode,
) -> Result<(Arc<LiveState>, RolloutControl), StartError> {
    let store = Store::open(&config.state_path, mode)?;
    open_rollouts_on(config, metrics, events, Arc::new(store))
}

/// `open_rollouts` on a store already open (a fleet's database).
fn open_rollouts_on(
    config: &Arc<Config>,
    metrics: &Arc<Metrics>,
    events: Option<mpsc::Sender<Event>>,
    store: Arc<dyn StateStore>,
) -> Result<(Arc<LiveState>, RolloutControl), StartError> {
    let names: Vec<&str> = config.routes.values().map(|route| route.name.as_str()).collect();
    let loaded = store.load_or_init(&names, unix_millis())?;
    let states_len = loaded.len();
    let states = config
        .routes
        .zip_ordered(loaded)
        .ok_or(StartError::RouteCount { routes: config.routes.len(), states: states_len })?;
    let live = Arc::new(LiveState::new(&states));
    for state in states.values() {
        tracing::info!(route = %state.route, phase = %state.phase, weight = f64::from(state.weight_bp) / 100.0, "route state restored");
    }
    let control = RolloutControl::new(config.clone(), metrics.clone(), live.clone(), store, &states, events)?;
    Ok((live, control))
}

/// Starts serving on listeners the caller bound (tests bind port 0), taking over the
/// state file the configuration names.
pub async fn start_on(config: Config, proxy: TcpListener, admin: TcpListener) -> Result<Running, StartError> {
    start_on_with(config, proxy, admin, StateMode::Keep).await
}

/// `start_on`, saying what to do with an existing state file.
pub async fn start_on_with(
    config: Config,
    proxy: TcpListener,
    admin: TcpListener,
    state: StateMode,
) -> Result<Running, StartError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new(&config));
    let (events, notifications) = mpsc::channel(256);
    let has_notifiers = !config.notifiers.is_empty();
    // A fleet's database is opened (and migrated) here, on the runtime its calls use.
    let fleet_store = match &config.fleet {
        Some(fleet) => {
            let store = PgStore::open(fleet.url.expose(), &fleet.instance, Lease::new(fleet.lease)).await?;
            tracing::info!(instance = %fleet.instance, schema_version = cutover_state::pg::SCHEMA_VERSION, "state on PostgreSQL: this gateway is one of a fleet");
            Some(Arc::new(store))
        }
        None => None,
    };
    let (live, control) = {
        let (config, metrics, fleet_store) = (config.clone(), metrics.clone(), fleet_store.clone());
        let events = has_notifiers.then_some(events);
        tokio::task::spawn_blocking(move || match fleet_store {
            Some(store) => open_rollouts_on(&config, &metrics, events, store),
            None => open_rollouts(&config, &metrics, events, state),
        })
        .await
        .map_err(StartError::Task)??
    };
    let control = Arc::new(control);
    // The validation gate (`require_validation`): its queue, and the pending routes' first asks.
    let (validator, validations) = mpsc::channel(cutover_control::gate::QUEUE);
    {
        let control = control.clone();
        tokio::task::spawn_blocking(move || control.attach_validator(validator)).await.map_err(StartError::Task)?;
    }
    let gateway: SharedGateway = Arc::new(ArcSwap::from_pointee(Gateway::new(config.clone(), metrics.clone(), live)));
    let proxy_addr = local_addr(&proxy)?;
    let admin_addr = local_addr(&admin)?;
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let notifier = Notifications::start(&config.notifiers);
    let alert_board = Arc::new(AlertBoard::default());
    let fleet = fleet_store.map(|store| Fleet::new(store, metrics));
    if let Some(fleet) = &fleet {
        fleet.spawn(control.clone(), stopped.clone());
    }
    if has_notifiers {
        tokio::spawn(notify::forward(notifications, notifier.clone()));
    }
    // The drain: `/readyz` turns 503 and the proxy listener drains; the admin listener
    // keeps answering probes and scrapes until the proxy's drain has ended.
    let readiness = Arc::new(Readiness::default());
    let (admin_stop, admin_stopped) = watch::channel(false);
    let proxy_task = tokio::spawn(serve(
        proxy,
        ProxyService::new(
            gateway.clone(),
            Admission::new(max_inflight(&config), config.server.admission.per_connection),
        ),
        {
            let (stopped, readiness) = (stopped.clone(), readiness.clone());
            async move {
                until_stopped(stopped).await;
                readiness.begin_drain();
            }
        },
        config.server.proxy_connections,
    ));
    let tasks = vec![
        tokio::spawn(async move {
            let _ = proxy_task.await;
            let _ = admin_stop.send(true);
        }),
        tokio::spawn(serve(
            admin,
            AdminService::watching(gateway.clone(), control.clone(), alert_board.clone(), notifier.clone())
                .with_fleet(fleet.clone())
                .with_readiness(readiness),
            until_stopped(admin_stopped),
            config.server.admin_connections,
        )),
        tokio::spawn(supervise("rollout controller", stopped.clone(), {
            let control = control.clone();
            let stopped = stopped.clone();
            move || driver::run(control.clone(), stopped.clone())
        })),
        tokio::spawn(supervise("alert evaluator", stopped.clone(), {
            let (gateway, board, notifier, stopped) =
                (gateway.clone(), alert_board.clone(), notifier.clone(), stopped.clone());
            move || {
                let gateway = gateway.clone();
                alerts::run(move || AlertView(gateway.load_full()), board.clone(), notifier.clone(), stopped.clone())
            }
        })),
        tokio::spawn(cutover_control::gate::run(control.clone(), validations, stopped.clone())),
        tokio::spawn(supervise("health prober", stopped.clone(), {
            let (gateway, stopped) = (gateway.clone(), stopped.clone());
            let on_change = candidate_health_events(control.clone());
            move || health::run(gateway.clone(), gateway.load().health_log.clone(), on_change.clone(), stopped.clone())
        })),
    ];
    Ok(Running { proxy_addr, admin_addr, gateway, control, fleet, stop, tasks })
}

/// The prober's hook: a change of an upstream's verdict becomes a `candidate_down` /
/// `candidate_up` rollout event on the routes whose candidate it is, written on a blocking
/// thread (the state file is SQLite), off the prober's task.
fn candidate_health_events(control: Arc<RolloutControl>) -> health::OnChange {
    Arc::new(move |event: &health::HealthEvent| {
        let control = control.clone();
        let (upstream, up, reason) = (event.upstream.clone(), event.change == health::Change::Up, event.reason.clone());
        tokio::task::spawn_blocking(move || control.record_candidate_health(&upstream, up, &reason));
    })
}

/// Connections accepted by the kernel but not yet by the gateway, at most, per listener
/// (the kernel caps it at `net.core.somaxconn`): a listener at its connection budget
/// leaves further clients waiting here; with tokio's 128 they would soon see SYNs dropped
/// and connect timeouts.
const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `address` with [`LISTEN_BACKLOG`].
fn bind(address: SocketAddr) -> Result<TcpListener, StartError> {
    let listen = || {
        let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As `TcpListener::bind` does: a restart does not wait out TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| StartError::Bind { address, source })
}

/// Raises the descriptor limit and checks the connection and in-flight budgets against
/// it, logging both.
fn claim_descriptors(config: &Config) -> Result<(), OverBudget> {
    let limit = descriptors::raise_soft_limit();
    let budget = descriptor_budget(config, limit)?;
    let (needed, max_inflight) = (budget.needed, budget.max_inflight);
    tracing::info!(
        limit,
        needed,
        max_inflight,
        "file descriptors: limit {limit}, the connection budgets and \
        {max_inflight} requests in flight need at most {needed}"
    );
    Ok(())
}

/// The budgets of `config` under a descriptor `limit`.
fn descriptor_budget(config: &Config, limit: u64) -> Result<descriptors::Budget, OverBudget> {
    let server = &config.server;
    let (proxy, admin) = (server.proxy_connections.max_connections, server.admin_connections.max_connections);
    descriptors::check(limit, proxy, server.admission.max_inflight, admin)
}

/// The requests in flight the gateway admits: configured, or derived from the limit in
/// force (`start` has checked it; listeners a test bound get the same derivation, or the
/// connection budget when the limit is too low to derive one).
fn max_inflight(config: &Config) -> usize {
    descriptor_budget(config, descriptors::current_limit()).map_or_else(
        |_| config.server.admission.max_inflight.unwrap_or(config.server.proxy_connections.max_connections),
        |budget| budget.max_inflight,
    )
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind { address: SocketAddr::from(([0, 0, 0, 0], 0)), source })
}

/// The alert evaluator's view of the gateway in force: its configuration, metrics, the
/// routes' live rollouts and the upstreams' health, and nothing else of it.
struct AlertView(Arc<Gateway>);

impl alerts::Observed for AlertView {
    fn config(&self) -> &Arc<Config> {
        &self.0.config
    }

    fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    fn shadow_agreement(&self, route: RouteId) -> Option<f64> {
        self.0.live.route(route).stats().agreement().overall()
    }

    fn undecided(&self, route: RouteId) -> bool {
        self.0.live.route(route).undecided_since().is_some()
    }

    fn upstream_usable(&self, index: usize) -> bool {
        self.0.upstream_usable(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_count_mismatch_is_not_reported_as_a_corrupt_row() {
        let error = StartError::RouteCount { routes: 2, states: 1 };
        assert_eq!(error.to_string(), "the state file returned 1 route states for the 2 routes of the configuration");
    }

    /// What the controller does when a step's saved evidence is unreadable: it refuses to
    /// start, naming the file and the route, rather than run the step on from nothing.
    #[test]
    fn a_step_whose_saved_evidence_does_not_parse_refuses_the_start_naming_the_file_and_route() {
        let dir = std::env::temp_dir().join(format!("cutover-server-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = cutover_config::testing::two_upstreams_toml(
            "",
            "[routes.rollout]\ninterval = \"1h\"\nsteps = [{ weight = 10, min_duration = \"1h\", min_requests = 10 }]",
        );
        let config = Arc::new(cutover_config::testing::load(&toml, &dir, |_| None));
        let metrics = Arc::new(Metrics::new(&config));
        {
            let store = Store::open(&config.state_path, StateMode::Keep).unwrap();
            let state = store.load_or_init(&["default"], unix_millis()).unwrap().remove(0);
            store.save_stats(&state, &cutover_live::stats::StepStats::default().snapshot(), None).unwrap();
        }
        let raw = rusqlite::Connection::open(&config.state_path).unwrap();
        raw.execute("UPDATE step_stats SET snapshot = 'not json' WHERE route = 'default'", []).unwrap();
        drop(raw);

        let refused = open_rollouts(&config, &metrics, None, StateMode::Keep).err().map(|error| error.to_string());
        let message = refused.expect("the start is refused");
        assert!(message.contains(&config.state_path.display().to_string()), "{message}");
        assert!(message.contains("route \"default\" does not parse"), "{message}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
