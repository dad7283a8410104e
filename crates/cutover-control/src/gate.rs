//! The gateway's own validator for `require_validation = true`: it receives the routes
//! whose candidate must be validated (at start for pending routes, on `rollout retry`),
//! runs the suite against the candidate with the default requirement, one route at a
//! time, and hands the verdict and the table to the controller, which records them as an
//! event and lets the next tick start a rollout that passed.

use std::sync::Arc;

use cutover_config::{ModelPattern, RouteId};
use cutover_validate::{Requirement, default_model, render, run_one};
use tokio::sync::{mpsc, watch};

use super::RolloutControl;

/// Validations waiting to run, at most (one per route is enough).
pub const QUEUE: usize = 64;

/// Runs validations as they are asked for, until `stop`.
pub async fn run(control: Arc<RolloutControl>, mut requests: mpsc::Receiver<RouteId>, mut stop: watch::Receiver<bool>) {
    loop {
        let id = tokio::select! {
            id = requests.recv() => match id { Some(id) => id, None => return },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (passed, summary, table) = tokio::select! {
            verdict = validate_route(&control, id) => verdict,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let control = control.clone();
        let recorded =
            tokio::task::spawn_blocking(move || control.record_validation(id, passed, &summary, &table)).await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "validation result not recorded"),
            Err(error) => tracing::error!(%error, "recording a validation panicked"),
        }
    }
}

/// The verdict, its one-line summary and the table of route `id`'s candidate.
async fn validate_route(control: &RolloutControl, id: RouteId) -> (bool, String, String) {
    let config = control.config();
    let route = &config.routes[id];
    let Some(candidate) = route.candidate.map(|index| config.upstreams[index].name.clone()) else {
        let said = format!("route {:?} has no candidate to validate", route.name);
        return (false, said.clone(), said);
    };
    let exact = route.models.iter().find_map(|pattern| match pattern {
        ModelPattern::Exact(model) => Some(model.clone()),
        ModelPattern::Prefix(_) => None,
    });
    let model = match exact.map_or_else(|| default_model(&config, &candidate), Ok) {
        Ok(model) => model,
        Err(error) => return (false, error.to_string(), error.to_string()),
    };
    tracing::info!(route = %route.name, %candidate, %model, "validating the candidate before the rollout starts");
    match run_one(&config, &candidate, &model, &Requirement::default()).await {
        Ok(report) => {
            let failed = report.failed_required();
            let summary = if failed.is_empty() {
                format!("every required check passed against {candidate}")
            } else {
                let ids: Vec<&str> = failed.iter().map(|result| result.check.id).collect();
                format!("{} required check(s) did not pass: {}", ids.len(), ids.join(", "))
            };
            (report.passed(), summary, render::report(&report))
        }
        Err(error) => (false, error.to_string(), error.to_string()),
    }
}
