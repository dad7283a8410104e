//! `cutover serve`: builds the runtime from a validated configuration, opens the state
//! file, binds the proxy and admin listeners, and runs both until shutdown, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::AdminService;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::serve::serve;
use crate::proxy::{Gateway, ProxyService};
use crate::rollout::{LiveState, RolloutControl, Store, StoreError, driver, notify, unix_millis};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running gateway; dropping it does not stop it, `shutdown` does.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub control: Arc<RolloutControl>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests and streams, and returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.wait().await;
    }

    /// Returns when both listeners have stopped.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
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

/// Binds the listeners the configuration names and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let bind = |address: SocketAddr| async move {
        TcpListener::bind(address).await.map_err(|source| StartError::Bind { address, source })
    };
    let proxy = bind(config.server.listen).await?;
    let admin = bind(config.server.admin_listen).await?;
    start_on(config, proxy, admin).await
}

/// Starts serving on listeners the caller bound (tests bind port 0).
pub async fn start_on(config: Config, proxy: TcpListener, admin: TcpListener) -> Result<Running, StartError> {
    let config = Arc::new(config);
    let store_path = config.state_path.clone();
    let route_names: Vec<String> = config.routes.values().map(|route| route.name.clone()).collect();
    let (store, states) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&store_path)?;
        let names: Vec<&str> = route_names.iter().map(String::as_str).collect();
        let states = store.load_or_init(&names, unix_millis())?;
        Ok::<_, StoreError>((store, states))
    })
    .await
    .map_err(|join| StoreError::Corrupt { route: String::new(), reason: join.to_string() })??;
    let states = config.routes.zip_ordered(states).ok_or_else(|| StoreError::Corrupt {
        route: String::new(),
        reason: "the state file returned another number of routes than the configuration has".to_owned(),
    })?;
    let metrics = Arc::new(Metrics::new(&config));
    let live = Arc::new(LiveState::new(&states));
    for state in states.values() {
        tracing::info!(route = %state.route, phase = %state.phase, weight = f64::from(state.weight_bp) / 100.0, "route state restored");
    }
    let (events, notifications) = tokio::sync::mpsc::channel(256);
    let has_notifiers = !config.notifiers.is_empty();
    let (control_config, control_metrics, control_live, store) =
        (config.clone(), metrics.clone(), live.clone(), Arc::new(store));
    let control = tokio::task::spawn_blocking(move || {
        RolloutControl::new(
            control_config,
            control_metrics,
            control_live,
            store,
            &states,
            has_notifiers.then_some(events),
        )
    })
    .await
    .map_err(|join| StoreError::Corrupt { route: String::new(), reason: join.to_string() })??;
    let control = Arc::new(control);
    let gateway = Arc::new(Gateway::new(config.clone(), metrics.clone(), live.clone()));
    let proxy_addr = local_addr(&proxy)?;
    let admin_addr = local_addr(&admin)?;
    let (stop, stopped) = watch::channel(false);
    let drain = config.server.drain_timeout;
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if has_notifiers {
        tokio::spawn(notify::run(config.notifiers.clone(), notifications));
    }
    let tasks = vec![
        tokio::spawn(serve(proxy, ProxyService::new(gateway.clone()), until_stopped(stopped.clone()), drain)),
        tokio::spawn(serve(
            admin,
            AdminService::new(gateway.clone(), control.clone()),
            until_stopped(stopped.clone()),
            drain,
        )),
        tokio::spawn(driver::run(control.clone(), stopped)),
    ];
    Ok(Running { proxy_addr, admin_addr, gateway, control, stop, tasks })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind { address: SocketAddr::from(([0, 0, 0, 0], 0)), source })
}
