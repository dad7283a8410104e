//! The dashboard's time series: once a second, each route's weight and step and each
//! user arm's cumulative counters are read from what the request path already keeps
//! (atomics and the live route state: nothing the proxy locks), turned into rates and
//! latency quantiles over a short trailing window, and appended to a bounded ring per
//! route — an hour at one point a second, whatever the uptime or the traffic.

use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use cutover_alerts::{ArmSample, quantile};
use cutover_metrics::{DURATION_BUCKETS, FailureReason, RouteMetrics, TTFT_BUCKETS};
use cutover_model::{Outcome, Role, unix_millis};
use serde_json::{Value, json};

use crate::proxy::{Gateway, SharedGateway};

/// One point a second…
const PERIOD: Duration = Duration::from_secs(1);
/// …for an hour.
pub const CAPACITY: usize = 3600;
/// Rates and quantiles of a point cover the seconds before it.
const TRAILING_SECONDS: usize = 10;
/// The arms charted: the split's two sides (the shadow is in the rollout view).
const ARMS: [Role; 2] = [Role::Primary, Role::Candidate];

/// One arm's figures over the trailing window before a point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArmPoint {
    pub requests_per_second: f64,
    /// Upstream errors among the judged attempts, in percent; `None` without any.
    pub error_percent: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub fallbacks_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub weight_percent: f64,
    /// Zero-based, as the rollout view's `step`.
    pub step: u32,
    /// Indexed as `ARMS`.
    pub arms: [ArmPoint; 2],
}

struct RouteSeries {
    name: String,
    points: VecDeque<Point>,
}

/// What the recorder publishes and the admin API reads; its lock is held for a push or
/// a copy of the points asked for, never by the proxy.
#[derive(Default)]
pub struct Series {
    routes: Mutex<Vec<RouteSeries>>,
}

impl Series {
    fn push(&self, route: &str, point: Point) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let index = match routes.iter().position(|series| series.name == route) {
            Some(index) => index,
            None => {
                routes.push(RouteSeries { name: route.to_owned(), points: VecDeque::with_capacity(CAPACITY) });
                routes.len() - 1
            }
        };
        let points = &mut routes[index].points;
        if points.len() == CAPACITY {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// Each route's points after `since_ms`, column by column (as uPlot takes them):
    /// times in unix seconds, weights in percent, rates per second, latencies in ms.
    pub fn json(&self, since_ms: i64) -> Value {
        let Ok(routes) = self.routes.lock() else { return json!([]) };
        let routes: Vec<Value> = routes
            .iter()
            .map(|series| {
                let points: Vec<&Point> = series.points.iter().filter(|point| point.at_ms > since_ms).collect();
                let column =
                    |read: &dyn Fn(&Point) -> Value| points.iter().map(|point| read(point)).collect::<Vec<_>>();
                let arm = |index: usize| {
                    json!({
                        "requests_per_second": column(&|point| json!(round(point.arms[index].requests_per_second))),
                        "error_percent": column(&|point| json!(point.arms[index].error_percent.map(round))),
                        "p50_ms": column(&|point| json!(point.arms[index].p50_ms.map(round))),
                        "p95_ms": column(&|point| json!(point.arms[index].p95_ms.map(round))),
                        "ttft_p95_ms": column(&|point| json!(point.arms[index].ttft_p95_ms.map(round))),
                        "fallbacks_per_second": column(&|point| json!(round(point.arms[index].fallbacks_per_second))),
                    })
                };
                json!({
                    "route": series.name,
                    "t": column(&|point| json!(point.at_ms as f64 / 1000.0)),
                    "weight": column(&|point| json!(point.weight_percent)),
                    "step": column(&|point| json!(point.step)),
                    "arms": {"primary": arm(0), "candidate": arm(1)},
                })
            })
            .collect();
        Value::Array(routes)
    }

    #[cfg(test)]
    fn len(&self, route: &str) -> usize {
        self.routes
            .lock()
            .map(|routes| routes.iter().find(|series| series.name == route).map_or(0, |series| series.points.len()))
            .unwrap_or(0)
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The cumulative samples of `ARMS` over the trailing window, oldest first.
type Trail = VecDeque<(i64, [ArmSample; 2])>;

/// The recorder's own memory: each route's last few raw samples, to difference.
struct Recorder {
    /// Indexed by route position.
    raw: Vec<Trail>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder { raw: Vec::new() }
    }

    fn record(&mut self, gateway: &Gateway, series: &Series, now_ms: i64) {
        for (id, metrics) in gateway.metrics.routes().iter() {
            let index = id.position();
            if self.raw.len() <= index {
                self.raw.resize_with(index + 1, || VecDeque::with_capacity(TRAILING_SECONDS + 1));
            }
            let ring = &mut self.raw[index];
            if ring.len() > TRAILING_SECONDS {
                ring.pop_front();
            }
            ring.push_back((now_ms, ARMS.map(|role| read(metrics, role))));
            let live = gateway.live.route(id);
            let point = Point {
                at_ms: now_ms,
                weight_percent: f64::from(live.weight_bp()) / 100.0,
                step: live.step(),
                arms: std::array::from_fn(|arm| figures(ring, arm)),
            };
            series.push(&metrics.name, point);
        }
    }
}

fn read(metrics: &RouteMetrics, role: Role) -> ArmSample {
    let fallbacks = FailureReason::ALL.iter().map(|reason| metrics.fallbacks(role, *reason)).sum();
    // The charts plot rates, errors and latency; spend is in the cost panel, not charted.
    let spend = cutover_cost::SeriesTotals::default();
    metrics.arm(role).map(|arm| ArmSample::read(arm, fallbacks, spend)).unwrap_or_default()
}

/// Arm `arm`'s figures between the ring's oldest and newest samples.
fn figures(ring: &Trail, arm: usize) -> ArmPoint {
    let (Some((start_ms, start)), Some((end_ms, end))) = (ring.front(), ring.back()) else {
        return ArmPoint::default();
    };
    let seconds = (end_ms - start_ms) as f64 / 1000.0;
    if seconds <= 0.0 {
        return ArmPoint::default();
    }
    let delta = end[arm].since(&start[arm]);
    let judged = delta.judged();
    let ms = |value: f64| value * 1000.0;
    ArmPoint {
        requests_per_second: judged as f64 / seconds,
        error_percent: (judged > 0)
            .then(|| delta.outcomes[Outcome::UpstreamError as usize] as f64 / judged as f64 * 100.0),
        p50_ms: quantile(0.5, DURATION_BUCKETS, &delta.duration).map(ms),
        p95_ms: quantile(0.95, DURATION_BUCKETS, &delta.duration).map(ms),
        ttft_p95_ms: quantile(0.95, TTFT_BUCKETS, &delta.ttft).map(ms),
        fallbacks_per_second: delta.fallbacks as f64 / seconds,
    }
}

/// Records a point a second until the series is dropped with the admin service.
pub async fn record(series: Weak<Series>, gateway: SharedGateway) {
    let mut recorder = Recorder::new();
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Some(series) = series.upgrade() else { return };
        recorder.record(&gateway.load(), &series, unix_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_ms: i64) -> Point {
        Point { at_ms, weight_percent: 5.0, step: 1, arms: [ArmPoint::default(); 2] }
    }

    #[test]
    fn a_route_keeps_at_most_an_hour_of_points_whatever_the_uptime() {
        let series = Series::default();
        for second in 0..(CAPACITY as i64 * 3) {
            series.push("default", point(second * 1000));
        }
        assert_eq!(series.len("default"), CAPACITY);
        let newest = series.json((CAPACITY as i64 * 3 - 2) * 1000);
        assert_eq!(newest[0]["t"].as_array().unwrap().len(), 1, "only points after `since` are sent");
    }

    #[test]
    fn rates_and_quantiles_come_from_the_difference_of_two_samples() {
        let mut ring = Trail::new();
        let empty = ArmSample { duration: vec![0; DURATION_BUCKETS.len() + 1], ..ArmSample::default() };
        ring.push_back((0, [empty.clone(), empty.clone()]));
        // 20 requests in 2 s on the candidate, 2 of them upstream errors, all within 50 ms.
        let mut later = empty.clone();
        later.outcomes[Outcome::Ok as usize] = 18;
        later.outcomes[Outcome::UpstreamError as usize] = 2;
        let within_50ms = DURATION_BUCKETS.iter().position(|bound| *bound >= 0.05).unwrap();
        for count in &mut later.duration[within_50ms..] {
            *count = 20;
        }
        later.fallbacks = 2;
        ring.push_back((2000, [empty, later]));
        let candidate = figures(&ring, 1);
        assert_eq!(candidate.requests_per_second, 10.0);
        assert_eq!(candidate.error_percent, Some(10.0));
        assert_eq!(candidate.fallbacks_per_second, 1.0);
        assert!(candidate.p95_ms.unwrap() <= 50.0 && candidate.p95_ms.unwrap() > 25.0);
        let primary = figures(&ring, 0);
        assert_eq!((primary.requests_per_second, primary.error_percent, primary.p50_ms), (0.0, None, None));
    }
}
