//! The evaluator's loop: every slot it snapshots each arm's cumulative counters into the
//! ring, computes each rule instance's metric over its window, steps its state machine,
//! publishes the board and hands firing and resolved alerts to the notifiers.

use std::sync::Arc;
use std::time::Duration;

use cutover_config::{AlertRule, Config, RouteId};
use cutover_cost::{Nanos, SeriesKey, SeriesTotals};
use cutover_metrics::{DURATION_BUCKETS, FailureReason, Metrics, TTFT_BUCKETS};
use cutover_model::{AlertMetric, Outcome, Role, duration::format_duration, unix_millis};
use cutover_notify::{Message, Notifications};
use serde_json::json;
use tokio::sync::watch;

use super::board::{AlertBoard, AlertStatus};
use super::rule::{Scope, candidate_routes, scopes};
use super::state::{AlertState, Tracker, Transition};
use super::window::{ArmSample, Ring, quantile};

/// Snapshots kept per window at most: the slot grows with the longest window instead.
const SLOTS_PER_WINDOW: u64 = 600;

/// One arm of the metrics, by position.
struct ArmKey {
    route: String,
    upstream: String,
    role: Role,
}

struct Instance {
    rule: AlertRule,
    scope: Scope,
    tracker: Tracker,
}

/// The slot for the longest window: 1 s, or longer so that a window holds at most
/// `SLOTS_PER_WINDOW` snapshots.
pub fn slot_for(longest_window: Duration) -> Duration {
    Duration::from_secs(longest_window.as_secs().div_ceil(SLOTS_PER_WINDOW).max(1))
}

fn arms(metrics: &Metrics) -> Vec<ArmKey> {
    let mut keys = Vec::new();
    for route in metrics.routes().values() {
        for role in Role::ALL {
            if let Some(arm) = route.arm(role) {
                keys.push(ArmKey { route: route.name.clone(), upstream: arm.upstream.clone(), role });
            }
        }
    }
    keys
}

fn sample(metrics: &Metrics) -> Vec<ArmSample> {
    let series = metrics.cost.series();
    let mut samples = Vec::new();
    for (id, route) in metrics.routes().iter() {
        for role in Role::ALL {
            if let Some(arm) = route.arm(role) {
                let fallbacks = match role {
                    Role::Shadow => 0,
                    _ => FailureReason::ALL.iter().map(|reason| route.fallbacks(role, *reason)).sum(),
                };
                samples.push(ArmSample::read(arm, fallbacks, spend_of(&series, id, role)));
            }
        }
    }
    samples
}

/// What the answers of `role` on `route` cost so far, over every model's series.
fn spend_of(series: &[(SeriesKey, SeriesTotals)], route: RouteId, role: Role) -> SeriesTotals {
    let mut spend = SeriesTotals::default();
    for (_, totals) in series.iter().filter(|(key, _)| key.route == route && key.role == role) {
        spend.cost.0 += totals.cost.0;
        spend.priced += totals.priced;
    }
    spend
}

fn instances(config: &Config, previous: &mut Vec<Instance>) -> Vec<Instance> {
    let mut next = Vec::new();
    for rule in &config.alerts {
        for scope in scopes(rule, config) {
            let kept = previous
                .iter()
                .position(|old| old.rule == *rule && old.scope == scope)
                .map(|index| previous.swap_remove(index).tracker);
            next.push(Instance { rule: rule.clone(), scope, tracker: kept.unwrap_or_default() });
        }
    }
    next
}

/// What the evaluator reads of the gateway in force (its configuration, metrics, each
/// route's live rollout and each upstream's health), as the server presents it
/// (`AlertView` in `server.rs`): the evaluator sees these and nothing else of it.
pub trait Observed: Send + Sync + 'static {
    fn config(&self) -> &Arc<Config>;
    fn metrics(&self) -> &Metrics;
    /// The route's overall shadow agreement in its current step; `None` before any pair
    /// was judged.
    fn shadow_agreement(&self, route: RouteId) -> Option<f64>;
    /// Whether the route's rollout is held undecided.
    fn undecided(&self, route: RouteId) -> bool;
    /// Whether upstream `index` (of `Config::upstreams`) is usable: up by its probes and
    /// its circuit breaker closed.
    fn upstream_usable(&self, index: usize) -> bool;
}

/// Runs until `stop`: samples, evaluates, publishes and notifies every slot.
/// `load` gives the gateway in force, anew each slot (a reload changes rules and routes).
pub async fn run<O: Observed>(
    load: impl Fn() -> O + Send + 'static,
    board: Arc<AlertBoard>,
    notifications: Notifications,
    mut stop: watch::Receiver<bool>,
) {
    let first = load();
    let keys = arms(first.metrics());
    let mut config: Option<Arc<Config>> = None;
    let mut instances_now: Vec<Instance> = Vec::new();
    let mut ring: Ring<Vec<ArmSample>> = Ring::new(2);
    let mut slot = Duration::from_secs(1);
    loop {
        let current = load();
        if config.as_ref().is_none_or(|config| config.alerts != current.config().alerts) {
            let longest =
                current.config().alerts.iter().map(|rule| rule.window).max().unwrap_or(Duration::from_secs(1));
            slot = slot_for(longest);
            let capacity = (longest.as_millis() / slot.as_millis().max(1)) as usize + 2;
            if capacity != ring.capacity() {
                ring = Ring::new(capacity);
            }
            instances_now = instances(current.config(), &mut instances_now);
        }
        config = Some(current.config().clone());
        let now = unix_millis();
        ring.push(now, sample(current.metrics()));
        let statuses = instances_now
            .iter_mut()
            .map(|instance| evaluate(instance, &keys, &ring, &current, &notifications, now))
            .collect();
        board.publish(statuses);
        tokio::select! {
            _ = tokio::time::sleep(slot) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

fn evaluate(
    instance: &mut Instance,
    keys: &[ArmKey],
    ring: &Ring<Vec<ArmSample>>,
    gateway: &dyn Observed,
    notifications: &Notifications,
    now: i64,
) -> AlertStatus {
    let value = measure(instance, keys, ring, gateway);
    let (value, no_data) = match value {
        Ok(value) => (Some(value), None),
        Err(reason) => (None, Some(reason)),
    };
    let rule = &instance.rule;
    let breached = value.is_some_and(|value| rule.op.holds(value, rule.threshold));
    let for_ms = rule.for_duration.as_millis() as i64;
    let repeat_ms = rule.repeat_interval.as_millis() as i64;
    if let Some(transition) = instance.tracker.observe(value, breached, for_ms, repeat_ms, now) {
        announce(instance, transition, gateway, notifications);
    }
    AlertStatus {
        alert: rule.name.clone(),
        severity: rule.severity.as_str().into(),
        metric: rule.metric.as_str().into(),
        scope: instance.scope.label.clone(),
        route: instance.scope.route.clone(),
        upstream: instance.scope.upstream.clone(),
        op: rule.op.as_str().into(),
        threshold: rule.threshold,
        state: instance.tracker.state,
        value,
        no_data,
        window: format_duration(rule.window),
        for_duration: format_duration(rule.for_duration),
        active_since: instance.tracker.active_since,
        fired_at: instance.tracker.fired_at,
        resolved_at: instance.tracker.resolved_at,
    }
}

/// The instance's metric over its window, or why there is none.
fn measure(
    instance: &Instance,
    keys: &[ArmKey],
    ring: &Ring<Vec<ArmSample>>,
    gateway: &dyn Observed,
) -> Result<f64, String> {
    let metric = instance.rule.metric;
    let scope = &instance.scope;
    if metric == AlertMetric::UpstreamUp {
        return upstream_up(scope, gateway);
    }
    if metric == AlertMetric::ShadowAgreement {
        return shadow_agreement(scope, gateway);
    }
    if metric == AlertMetric::RolloutUndecided {
        return Ok(rollout_undecided(scope, gateway));
    }
    let (Some((latest_at, latest)), Some((start_at, start))) =
        (ring.latest(), ring.window_start(instance.rule.window.as_millis() as i64))
    else {
        return Err("not sampled yet".to_owned());
    };
    let mut window = ArmSample::default();
    for ((key, now), before) in keys.iter().zip(latest).zip(start) {
        if scope.admits(&key.route, &key.upstream, key.role) {
            window.add(&now.since(before));
        }
    }
    let judged = window.judged();
    let no_requests = || format!("no requests in the last {}", format_duration(instance.rule.window));
    let percent = |count: u64| if judged == 0 { Err(no_requests()) } else { Ok(count as f64 * 100.0 / judged as f64) };
    match metric {
        AlertMetric::ErrorRate => percent(window.outcomes[Outcome::UpstreamError as usize]),
        AlertMetric::SuccessRate => percent(window.outcomes[Outcome::Ok as usize]),
        AlertMetric::FallbackRate => percent(window.fallbacks),
        AlertMetric::LatencyP95Ms => {
            quantile(0.95, DURATION_BUCKETS, &window.duration).map(|seconds| seconds * 1000.0).ok_or_else(no_requests)
        }
        AlertMetric::TtftP95Ms => quantile(0.95, TTFT_BUCKETS, &window.ttft)
            .map(|seconds| seconds * 1000.0)
            .ok_or_else(|| format!("no streams in the last {}", format_duration(instance.rule.window))),
        AlertMetric::CostPerHour => {
            per_hour(&window, latest_at - start_at, gateway, || format_duration(instance.rule.window))
        }
        // Measured above, from the probes, the shadow comparison and the rollouts.
        AlertMetric::UpstreamUp | AlertMetric::ShadowAgreement | AlertMetric::RolloutUndecided => {
            Err("no source".to_owned())
        }
    }
}

/// The scope's spend over the window, in dollars per hour: the priced answers' cost over
/// the time the window's samples span (shorter than the window just after a start), as
/// Prometheus' `rate()` of `cutover_cost_usd_total` does for the exported rule.
fn per_hour(
    window: &ArmSample,
    spanned_ms: i64,
    gateway: &dyn Observed,
    window_name: impl Fn() -> String,
) -> Result<f64, String> {
    if gateway.config().prices.is_empty() {
        return Err("no [prices] configured".to_owned());
    }
    if window.priced == 0 {
        return Err(format!("no priced answers in the last {}", window_name()));
    }
    if spanned_ms <= 0 {
        return Err("not sampled yet".to_owned());
    }
    Ok(Nanos(window.cost_nanos).as_dollars() * 3_600_000.0 / spanned_ms as f64)
}

/// The share (%) of mirrored pairs that agreed on every dimension in the current step, as
/// `cutover_shadow_agreement_ratio{dimension="overall"}` has it; the lowest of the routes
/// in scope (a route, or those whose candidate is the scope's upstream).
fn shadow_agreement(scope: &Scope, gateway: &dyn Observed) -> Result<f64, String> {
    let lowest =
        rollout_routes(scope, gateway.config()).filter_map(|id| gateway.shadow_agreement(id)).min_by(f64::total_cmp);
    lowest.map(|ratio| ratio * 100.0).ok_or_else(|| "no mirrored pairs compared in this step".to_owned())
}

/// 1 while a route in the scope (the rule's route, or the routes whose candidate is the
/// scope's upstream) is paused by a step that ended undecided, else 0.
fn rollout_undecided(scope: &Scope, gateway: &dyn Observed) -> f64 {
    let undecided = rollout_routes(scope, gateway.config()).any(|id| gateway.undecided(id));
    if undecided { 1.0 } else { 0.0 }
}

/// The routes with a candidate in `scope` (`rule::candidate_routes`).
fn rollout_routes<'a>(scope: &'a Scope, config: &'a Config) -> impl Iterator<Item = RouteId> + 'a {
    candidate_routes(config, scope.route.as_deref(), scope.upstream.as_deref()).map(|(id, _)| id)
}

/// 1 when every upstream in the scope is up (its probes and its breaker agree), else 0.
fn upstream_up(scope: &Scope, gateway: &dyn Observed) -> Result<f64, String> {
    let config = gateway.config();
    let mut upstreams: Vec<usize> = Vec::new();
    if let Some(name) = &scope.upstream {
        upstreams.extend(config.upstream_index(name));
    } else if let Some(route) = scope.route.as_deref().and_then(|name| config.route(name)) {
        if scope.roles.contains(&Role::Primary) {
            upstreams.push(route.primary);
        }
        if scope.roles.iter().any(|role| *role != Role::Primary) {
            upstreams.extend(route.candidate);
        }
    }
    if upstreams.is_empty() {
        return Err("no upstream in scope".to_owned());
    }
    let up = upstreams.iter().all(|index| gateway.upstream_usable(*index));
    Ok(if up { 1.0 } else { 0.0 })
}

fn announce(instance: &Instance, transition: Transition, gateway: &dyn Observed, notifications: &Notifications) {
    let rule = &instance.rule;
    let tracker = &instance.tracker;
    let (state, verb) = match transition {
        Transition::Firing { repeat: false } => ("firing", "FIRING"),
        Transition::Firing { repeat: true } => ("firing", "STILL FIRING"),
        Transition::Resolved => ("resolved", "RESOLVED"),
    };
    let value = tracker.value.map_or("no data".to_owned(), |value| format!("{value:.2}"));
    let text = format!(
        "[{}] {verb} {} ({}): {} = {value} (threshold {} {}) over {}",
        rule.severity,
        rule.name,
        instance.scope.label,
        rule.metric,
        rule.op,
        rule.threshold,
        format_duration(rule.window)
    );
    match transition {
        Transition::Resolved => tracing::info!(alert = %rule.name, scope = %instance.scope.label, "{text}"),
        Transition::Firing { .. } => tracing::warn!(alert = %rule.name, scope = %instance.scope.label, "{text}"),
    }
    let json = json!({
        "source": "cutover",
        "type": "alert",
        "alert": rule.name,
        "state": state,
        "repeat": matches!(transition, Transition::Firing { repeat: true }),
        "severity": rule.severity.as_str(),
        "metric": rule.metric.as_str(),
        "value": tracker.value,
        "op": rule.op.as_str(),
        "threshold": rule.threshold,
        "scope": instance.scope.label,
        "window": format_duration(rule.window),
        "started_at": tracker.fired_at,
        "resolved_at": if tracker.state == AlertState::Resolved { tracker.resolved_at } else { None },
        "dashboard": format!("http://{}/dashboard", gateway.config().server.admin_listen),
    });
    notifications.send(Message { severity: rule.severity, text, json });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_keeps_a_window_within_its_snapshot_budget() {
        assert_eq!(slot_for(Duration::from_secs(300)), Duration::from_secs(1));
        assert_eq!(slot_for(Duration::from_secs(3600)), Duration::from_secs(6));
        assert_eq!(slot_for(Duration::from_secs(86_400)), Duration::from_secs(144));
        assert_eq!(slot_for(Duration::from_millis(200)), Duration::from_secs(1));
    }
}
