//! What every gateway of a fleet does in the background, each loop on its own task and
//! none on the request path: `campaign` takes or renews the leader's lease, `follow`
//! takes over route states other instances wrote (announced by `NOTIFY`, polled as the
//! safety net), `flush` saves this instance's evidence of each step every second with
//! its report (the weights it applies); the leader's `campaign` also runs the tables'
//! retention (`retention`) once per lease. While the database is away each loop keeps
//! trying; the request path keeps the last weights it was given, and the evidence keeps
//! accumulating in the step's fixed-size counters, to be flushed when it returns.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cutover_metrics::Metrics;
use tokio::sync::{Notify, watch};

use crate::supervise::supervise;
use crate::{LocalEvidence, RolloutControl};
use cutover_live::stats::Arm;
use cutover_state::StoreError;
use cutover_state::evidence;
use cutover_state::pg::{CAMPAIGN_PERIOD, CHANNEL, EvidenceRow, Flushed, PgStore};

/// How often each instance flushes its evidence and reports.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);
/// How often an instance looks for changes without being notified.
const POLL_PERIOD: Duration = Duration::from_millis(500);

/// One gateway's part in the fleet.
pub struct Fleet {
    pub store: Arc<PgStore>,
    /// Where a snapshot that could not be written is counted (the route's state write
    /// failures, as the controller counts its own).
    metrics: Arc<Metrics>,
    /// Unix milliseconds of the last flush the database took; 0 before the first.
    last_flush_ms: AtomicI64,
    /// Requests counted locally that the database does not have yet.
    buffered: AtomicU64,
    /// Per route: the step and the request count last flushed.
    flushed: Mutex<HashMap<String, (u32, i64, u64)>>,
    /// The steps (route, step, start) this instance no longer flushes: it was expired
    /// while they ran and its rows were folded into the departed ones (`Flushed::Expired`).
    /// At most one per route: a route's entry goes when its step changes.
    forfeited: Mutex<HashSet<(String, u32, i64)>>,
    started: Instant,
}

impl Fleet {
    pub fn new(store: Arc<PgStore>, metrics: Arc<Metrics>) -> Arc<Fleet> {
        Arc::new(Fleet {
            store,
            metrics,
            last_flush_ms: AtomicI64::new(0),
            buffered: AtomicU64::new(0),
            flushed: Mutex::new(HashMap::new()),
            forfeited: Mutex::new(HashSet::new()),
            started: Instant::now(),
        })
    }

    /// Seconds since the last flush the database took (since start before the first).
    pub fn flush_lag(&self) -> f64 {
        match self.last_flush_ms.load(Ordering::Relaxed) {
            0 => self.started.elapsed().as_secs_f64(),
            at => (cutover_model::unix_millis() - at).max(0) as f64 / 1000.0,
        }
    }

    /// Requests in this instance's evidence that the database does not have yet.
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }

    /// Starts the three loops, each restarted if it ever dies (`supervise`); they end
    /// when `stop` turns true.
    pub fn spawn(self: &Arc<Self>, control: Arc<RolloutControl>, stop: watch::Receiver<bool>) {
        let (fleet, control_, stop_) = (self.clone(), control.clone(), stop.clone());
        tokio::spawn(supervise("fleet lease", stop.clone(), move || {
            fleet.clone().campaign(control_.clone(), stop_.clone())
        }));
        let (fleet, control_, stop_) = (self.clone(), control.clone(), stop.clone());
        tokio::spawn(supervise("fleet follower", stop.clone(), move || {
            fleet.clone().follow(control_.clone(), stop_.clone())
        }));
        let (fleet, stop_) = (self.clone(), stop.clone());
        tokio::spawn(supervise("fleet evidence flush", stop, move || {
            fleet.clone().flush_loop(control.clone(), stop_.clone())
        }));
    }

    /// At a clean shutdown, once the listeners drained: the last evidence flushed and
    /// the lease given up, so that another instance leads at once.
    pub async fn finish(&self, control: &Arc<RolloutControl>) {
        let _ = self.flush(control).await;
        self.store.release().await;
    }

    async fn campaign(self: Arc<Self>, control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
        // The leader's retention runs here, once per lease at most: one small transaction,
        // and no task of its own.
        let mut pruned_at: Option<Instant> = None;
        loop {
            let led = self.store.lease().leads();
            match self.store.campaign().await {
                Ok(true) if !led => {
                    // A new leader decides on the database's latest state, not on what it
                    // last saw as a follower.
                    let control = control.clone();
                    let _ = tokio::task::spawn_blocking(move || control.sync()).await;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "leader lease not renewed"),
            }
            if self.store.lease().leads() && pruned_at.is_none_or(|at| at.elapsed() >= self.store.lease().ttl) {
                pruned_at = Some(Instant::now());
                self.prune().await;
            }
            let wait = if self.store.lease().leads() { self.store.lease().renew_period() } else { CAMPAIGN_PERIOD };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn follow(self: Arc<Self>, control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
        let notified = Arc::new(Notify::new());
        tokio::spawn(listen(self.store.clone(), notified.clone(), stop.clone()));
        loop {
            tokio::select! {
                () = notified.notified() => {}
                () = tokio::time::sleep(POLL_PERIOD) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            // Evidence the database does not have yet (after an outage) is flushed before
            // a new step is taken over: taking it over starts the step's counters afresh.
            if (self.buffered() > 0 || self.flush_lag() > 2.0 * FLUSH_PERIOD.as_secs_f64())
                && !self.flush(&control).await
            {
                continue;
            }
            let control = control.clone();
            match tokio::task::spawn_blocking(move || control.sync()).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::debug!(%error, "fleet state not read; the last weights stay"),
                Err(error) => tracing::error!(%error, "taking over the fleet's state panicked"),
            }
        }
    }

    async fn flush_loop(self: Arc<Self>, control: Arc<RolloutControl>, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(FLUSH_PERIOD);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let _ = self.flush(&control).await;
        }
    }

    /// One flush: each route's evidence whose count moved since the last flush (a row is
    /// a running total). Answers whether the database took it.
    async fn flush(&self, control: &Arc<RolloutControl>) -> bool {
        let evidence = {
            let control = control.clone();
            match tokio::task::spawn_blocking(move || control.local_evidence()).await {
                Ok(evidence) => evidence,
                Err(_) => return false,
            }
        };
        let mut rows = Vec::new();
        let mut buffered = 0;
        {
            let flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
            let mut forfeited = self.forfeited.lock().unwrap_or_else(PoisonError::into_inner);
            forfeited.retain(|key| evidence.iter().any(|local| *key == step_key(local)));
            for local in evidence.iter().filter(|local| !forfeited.contains(&step_key(local))) {
                // The primary's and the candidate's (the control arm is part of the primary's).
                let requests =
                    local.snapshot.arm(Arm::Primary).requests() + local.snapshot.arm(Arm::Candidate).requests();
                let before = flushed.get(&local.route);
                let same_step = before.is_some_and(|(step, at, _)| *step == local.step && *at == local.step_started_at);
                let already = if same_step { before.map_or(0, |(_, _, requests)| *requests) } else { 0 };
                if same_step && already == requests {
                    continue;
                }
                buffered += requests.saturating_sub(already);
                // Not written rather than written empty: an empty row would replace the
                // instance's running total with nothing. Kept for the next flush.
                let snapshot = match evidence::encode(&local.route, "step evidence", &local.snapshot) {
                    Ok(snapshot) => snapshot,
                    Err(error) => {
                        self.unwritable(control, &local.route, &error);
                        continue;
                    }
                };
                rows.push(EvidenceRow {
                    route: local.route.clone(),
                    step: local.step,
                    step_started_at: local.step_started_at,
                    requests: requests as i64,
                    snapshot,
                });
            }
        }
        self.buffered.store(buffered, Ordering::Relaxed);
        let applied: serde_json::Map<String, serde_json::Value> =
            evidence.iter().map(|local| (local.route.clone(), serde_json::json!(local.weight_percent))).collect();
        let keys: Vec<(String, u32, i64, u64)> =
            rows.iter().map(|row| (row.route.clone(), row.step, row.step_started_at, row.requests as u64)).collect();
        let reported = self.last_flush_ms.load(Ordering::Relaxed) != 0;
        let applied = serde_json::Value::Object(applied).to_string();
        match self.store.flush(rows, applied, buffered as i64, reported).await {
            Ok(Flushed::Expired) => {
                self.forfeit(&evidence);
                self.buffered.store(0, Ordering::Relaxed);
                self.last_flush_ms.store(cutover_model::unix_millis(), Ordering::Relaxed);
                self.store.set_catching_up(false);
                true
            }
            Ok(Flushed::Taken) => {
                let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
                for (route, step, at, requests) in keys {
                    flushed.insert(route, (step, at, requests));
                }
                self.buffered.store(0, Ordering::Relaxed);
                self.last_flush_ms.store(cutover_model::unix_millis(), Ordering::Relaxed);
                self.store.set_catching_up(false);
                true
            }
            Err(error) => {
                tracing::debug!(%error, buffered, "evidence not flushed; kept for the next flush");
                if buffered > 0 {
                    self.store.set_catching_up(true);
                }
                false
            }
        }
    }
}

impl Fleet {
    /// After this instance was expired: the steps it had flushed rows of are given up
    /// (their rows were folded into the departed ones, so its running totals would count
    /// twice); it flushes again from each route's next step.
    fn forfeit(&self, evidence: &[LocalEvidence]) {
        let flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut forfeited = self.forfeited.lock().unwrap_or_else(PoisonError::into_inner);
        for local in evidence {
            if flushed
                .get(&local.route)
                .is_some_and(|(step, at, _)| *step == local.step && *at == local.step_started_at)
            {
                forfeited.insert(step_key(local));
            }
        }
        tracing::warn!(
            instance = self.store.instance(),
            steps = forfeited.len(),
            "this instance was expired from the fleet (no report taken for {:?}): its evidence of the current steps \
             counts up to its last flush, and it flushes again from each route's next step",
            self.store.expiry()
        );
    }

    /// One retention pass; what it removed is logged, a failure too (the next pass,
    /// a lease later, tries again).
    async fn prune(&self) {
        match self.store.prune().await {
            Ok(pruned) if pruned.instances > 0 || pruned.finished > 0 => tracing::info!(
                expired_instances = pruned.instances,
                folded_rows = pruned.folded,
                finished_step_rows = pruned.finished,
                "fleet tables pruned"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "fleet tables not pruned; tried again a lease later"),
        }
    }

    /// A route's evidence that could not be written: logged and counted as the route's
    /// state write failure.
    fn unwritable(&self, control: &RolloutControl, route: &str, error: &StoreError) {
        tracing::error!(%route, %error, "evidence not flushed: it could not be serialised");
        if let Some(id) = control.config().route_id(route) {
            self.metrics.route(id).record_state_write_failure();
        }
    }
}

/// Which step of which route `local` is evidence of.
fn step_key(local: &LocalEvidence) -> (String, u32, i64) {
    (local.route.clone(), local.step, local.step_started_at)
}

/// Holds a `LISTEN` connection open (opening it again when it drops) and wakes `follow`
/// at each announced change.
async fn listen(store: Arc<PgStore>, notified: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok((client, mut connection)) = store.listener().await {
            // The connection's own task: it must be driven for `LISTEN` to be answered,
            // and it is what hands over the notifications.
            let wake = notified.clone();
            let mut driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => wake.notify_one(),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                // Whatever changed while not listening.
                notified.notify_one();
                tokio::select! {
                    _ = &mut driver => {}
                    _ = stop.wait_for(|stop| *stop) => {
                        driver.abort();
                        return;
                    }
                }
            }
            driver.abort();
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
