//! Reloading the configuration while serving (SIGHUP): the file is validated, checked
//! against the running configuration (`assess`: same routes, same arms, same listeners),
//! then applied whole. The controller switches under its lock (a running step whose plan
//! changed is paused, as at start-up), then a new `Gateway` is swapped in: new requests
//! see it, requests in flight finish on the one they started with. A refused reload
//! changes nothing. Each outcome is logged once, here, and counted in
//! `cutover_config_reloads_total{result}`.

mod assess;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use assess::{Changes, Refusal, Refused, assess};
use cutover_config::{self as config, Config, ConfigErrors};
use cutover_metrics::ReloadResult;

use crate::proxy::SharedGateway;
use cutover_control::RolloutControl;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the configuration file is not valid: {0}")]
    Invalid(#[from] ConfigErrors),
    #[error("{0}")]
    Refused(#[from] Refused),
    /// Reading the file did not finish (its blocking task panicked or was cancelled).
    #[error("reading {path} did not finish: {source}")]
    Task { path: PathBuf, source: tokio::task::JoinError },
}

/// Applies new configurations to a running gateway; cloning shares it.
#[derive(Clone)]
pub struct Reloader {
    gateway: SharedGateway,
    control: Arc<RolloutControl>,
    /// One reload at a time, so that each is assessed against what the previous one left.
    serial: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub fn new(gateway: SharedGateway, control: Arc<RolloutControl>) -> Reloader {
        Reloader { gateway, control, serial: Arc::default() }
    }

    /// Reads, validates and applies the configuration file at `path`; logs and counts
    /// the outcome.
    pub async fn reload_file(&self, path: &Path) -> Result<Changes, ReloadError> {
        let owned = path.to_owned();
        // Reading the file and the environment is blocking I/O: off the async workers.
        let loaded = match tokio::task::spawn_blocking(move || config::load_file(&owned)).await {
            Ok(loaded) => loaded.map_err(ReloadError::from),
            Err(source) => Err(ReloadError::Task { path: path.to_owned(), source }),
        };
        let outcome = match loaded {
            Ok(next) => self.apply(next).await,
            Err(error) => Err(error),
        };
        self.record(&path.display().to_string(), outcome)
    }

    /// Applies an already validated configuration; logs and counts the outcome.
    pub async fn reload(&self, next: Config) -> Result<Changes, ReloadError> {
        let outcome = self.apply(next).await;
        self.record("(given in-process)", outcome)
    }

    async fn apply(&self, next: Config) -> Result<Changes, ReloadError> {
        let _serial = self.serial.lock().await;
        let current = self.gateway.load_full();
        let changes = assess(&current.config, &next)?;
        let next = Arc::new(next);
        let control = self.control.clone();
        let switched = {
            let next = next.clone();
            tokio::task::spawn_blocking(move || control.reload(next)).await
        };
        // The controller holds the new configuration whatever happened after it stored it
        // (its first step): a pause the state file refused is logged where
        // it failed and tried again by the next tick, so the reload still goes ahead.
        match switched {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "reload: a plan change is in effect but not saved yet"),
            Err(error) => tracing::error!(%error, "reload: the controller's reconciliation did not finish"),
        }
        self.gateway.store(Arc::new(current.reloaded(next)));
        Ok(changes)
    }

    /// Logs and counts the outcome of reloading from `source` (a file's path).
    fn record(&self, source: &str, outcome: Result<Changes, ReloadError>) -> Result<Changes, ReloadError> {
        let metrics = self.gateway.load().metrics.clone();
        match &outcome {
            Ok(changes) => {
                metrics.record_reload(ReloadResult::Applied);
                tracing::info!(source, %changes, "configuration reloaded");
            }
            Err(error) => {
                metrics.record_reload(ReloadResult::Refused);
                tracing::error!(source, "reload refused, the running configuration stays: {error}");
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests;
