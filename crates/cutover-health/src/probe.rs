//! The prober: every `health.interval`, one `GET {base_url}{path}` per upstream with its
//! key, all at once, each within `health.timeout`; the results go to each upstream's
//! `UpstreamHealth`, and a change of verdict is logged, kept in the `HealthLog` and
//! handed to the gateway's `OnChange` hook (which records it as a rollout event).

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use cutover_config::HealthConfig;
use cutover_model::unix_millis;
use cutover_net::{body::Chain, upstream::UpstreamConnections};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::state::{Change, HealthEvent, HealthLog, UpstreamHealth};

/// What probing one upstream takes, handed out by the gateway in force.
#[derive(Clone)]
pub struct ProbeTarget {
    pub upstream: String,
    pub uri: Uri,
    /// The upstream's own credential (`Bearer <key>`, sensitive: never logged) and
    /// account identity, as traffic gets them.
    pub headers: HeaderMap,
    /// The upstream's connections, built as its traffic's are, so a probe is refused
    /// where traffic would be (beside the traffic's when those are capped, so a probe
    /// never waits behind them).
    pub connections: UpstreamConnections,
    pub health: Arc<UpstreamHealth>,
}

/// Where each round's policy and targets come from: the configuration in force (a
/// reload retimes and retargets the prober), implemented by the gateway.
pub trait ProbeSource: Send + Sync + 'static {
    fn policy(&self) -> &HealthConfig;
    /// What probing each upstream takes; an upstream that cannot be probed is left out.
    fn probe_targets(&self) -> Vec<ProbeTarget>;
}

/// Told of every change of an upstream's verdict, after the `HealthLog` has it. Called on
/// the prober's task: it must not block (hand blocking work to a blocking thread).
pub type OnChange = Arc<dyn Fn(&HealthEvent) + Send + Sync>;

/// Probes every upstream each `health.interval` (read anew each round, so a reload
/// retimes it) until `stop`; the first round comes one interval after the start.
pub async fn run<S: ProbeSource>(
    source: Arc<ArcSwap<S>>,
    log: Arc<HealthLog>,
    on_change: OnChange,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let interval = source.load().policy().interval;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let (policy, targets) = {
            let source = source.load();
            (source.policy().clone(), source.probe_targets())
        };
        if policy.enabled {
            // A round in flight at shutdown is dropped (its probes with it), not waited for.
            tokio::select! {
                _ = probe_all(&policy, targets, &log, &on_change) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// One round: every target at once, each result recorded as it comes.
pub async fn probe_all(policy: &HealthConfig, targets: Vec<ProbeTarget>, log: &HealthLog, on_change: &OnChange) {
    let mut probes = JoinSet::new();
    for target in targets {
        let policy = policy.clone();
        probes.spawn(async move {
            let result = probe_once(&target, policy.timeout).await;
            let reason = result.as_ref().err().cloned();
            let change = target.health.record(result, &policy, unix_millis());
            change.map(|change| (target.upstream, change, reason))
        });
    }
    while let Some(joined) = probes.join_next().await {
        let Ok(Some((upstream, change, reason))) = joined else { continue };
        let reason = match (change, reason) {
            (Change::Down, Some(error)) => format!("{} probes failed in a row, last: {error}", policy.down_after),
            _ => format!("{} probes succeeded in a row", policy.up_after),
        };
        match change {
            Change::Down => tracing::warn!(%upstream, %reason, "upstream is down"),
            Change::Up => tracing::info!(%upstream, %reason, "upstream is up again"),
        }
        let event = HealthEvent { at: unix_millis(), upstream, change, reason };
        on_change(&event);
        log.push(event);
    }
}

/// One probe: `Ok` on a 2xx answer read to its end within `timeout`, else why not (no
/// secret in it). Read whole, the answer leaves its connection reusable.
pub async fn probe_once(target: &ProbeTarget, timeout: std::time::Duration) -> Result<(), String> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.method_mut() = Method::GET;
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = target.headers.clone();
    let probe = async {
        let response = target.connections.send(request, None).await.map_err(|error| Chain(&error).to_string())?;
        let status = response.status();
        response.into_body().collect().await.map_err(|error| Chain(&error).to_string())?;
        if status.is_success() { Ok(()) } else { Err(format!("HTTP {status}")) }
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(verdict) => verdict,
        Err(_) => Err(format!("no answer within {}", cutover_model::duration::format_duration(timeout))),
    }
}
