//! Where answers' usage and cost are kept: cumulative series for `/metrics` (per route,
//! answering role and model label, bounded by the configuration), answers without usage
//! per route and role, and per route the windowed totals of each arm for `cutover cost`.
//! Recorded once per answer, under short locks never held across an await.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use cutover_config::{Config, PerRoute, RouteId};
use cutover_model::Role;
use cutover_wire::usage::Usage;

use super::price::Nanos;
use super::window::{Totals, Window};

/// More series than this (route × role × model) are counted under model `other`: the
/// labels come from the configuration, so this only bounds a reload-happy operator.
const MAX_SERIES: usize = 4096;

/// One cumulative series: a route, the role its upstream answered in, a model label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub route: RouteId,
    pub role: Role,
    pub model: Arc<str>,
}

/// What one series has accumulated.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeriesTotals {
    pub tokens: Usage,
    /// The cost of the priced answers; unpriced ones add tokens only…
    pub cost: Nanos,
    /// …so a series without priced answers has no cost to show (unknown, not $0).
    pub priced: u64,
}

/// How one answer went, for the ledger.
#[derive(Debug, Clone)]
pub struct Entry {
    pub route: RouteId,
    /// The role of the upstream that answered (a fallback's answer is the primary's).
    pub answered_by: Role,
    /// The arm the request belongs to: the split's choice, whoever answered; `Shadow`
    /// for a mirrored copy.
    pub arm: Role,
    pub model: Arc<str>,
    pub usage: Option<Usage>,
    /// `None` when unknown: usage without a price, or no usage on an answer that had some.
    pub cost: Option<Nanos>,
    pub successful: bool,
    /// A 2xx answer of an endpoint that reports usage ended without it.
    pub missing_usage: bool,
}

struct RouteLedger {
    name: String,
    /// The upstream behind each arm, indexed by `Role` (`Config::arm_upstream`).
    upstreams: [Option<String>; 3],
    /// Answers without usage, indexed by the answering `Role`.
    missing: [AtomicU64; 3],
    window: Mutex<Window>,
}

/// Every route's usage and cost since the gateway started (kept in memory: a restart
/// starts the windows over, as it does the Prometheus counters).
pub struct Ledger {
    routes: PerRoute<RouteLedger>,
    series: Mutex<HashMap<SeriesKey, SeriesTotals>>,
    /// When recording began, seconds since the epoch: the span a window really covers.
    started: u64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("started", &self.started).finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
pub fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

impl Ledger {
    pub fn new(config: &Config) -> Ledger {
        let routes = config.routes.map(|_, route| RouteLedger {
            name: route.name.clone(),
            upstreams: Role::ALL.map(|role| config.arm_upstream(route, role).map(str::to_owned)),
            missing: Default::default(),
            window: Mutex::new(Window::default()),
        });
        Ledger { routes, series: Mutex::new(HashMap::new()), started: now_seconds() }
    }

    pub fn started(&self) -> u64 {
        self.started
    }

    /// Records one answer at `now` (seconds since the epoch).
    pub fn record(&self, entry: Entry, now: u64) {
        let route = &self.routes[entry.route];
        if entry.missing_usage {
            route.missing[entry.answered_by as usize].fetch_add(1, Relaxed);
        }
        let totals = Totals {
            requests: 1,
            successful: u64::from(entry.successful),
            known: u64::from(entry.cost.is_some()),
            unknown: u64::from(entry.cost.is_none()),
            cost: entry.cost.unwrap_or_default(),
            tokens: entry.usage.unwrap_or_default(),
        };
        if let Ok(mut window) = route.window.lock() {
            window.add(now, entry.arm as usize, &totals);
        }
        let Some(usage) = entry.usage else { return };
        let Ok(mut series) = self.series.lock() else { return };
        let mut key = SeriesKey { route: entry.route, role: entry.answered_by, model: entry.model };
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            key.model = Arc::from(cutover_config::OTHER_MODEL);
        }
        let totals = series.entry(key).or_default();
        totals.tokens.add(&usage);
        if let Some(cost) = entry.cost {
            totals.cost = Nanos(totals.cost.0.saturating_add(cost.0));
            totals.priced += 1;
        }
    }

    /// Every route's id and name, in the configuration's order.
    pub fn routes(&self) -> impl Iterator<Item = (RouteId, &str)> {
        self.routes.iter().map(|(id, route)| (id, route.name.as_str()))
    }

    pub fn route_id(&self, name: &str) -> Option<RouteId> {
        self.routes.find(|route| route.name == name)
    }

    pub fn route_name(&self, route: RouteId) -> &str {
        &self.routes[route].name
    }

    /// The upstream behind `route`'s arm `role`; `None` for an arm the route does not have.
    pub fn upstream(&self, route: RouteId, role: Role) -> Option<&str> {
        self.routes[route].upstreams[role as usize].as_deref()
    }

    /// Answers of `route` without usage, by the role that answered.
    pub fn missing(&self, route: RouteId, role: Role) -> u64 {
        self.routes[route].missing[role as usize].load(Relaxed)
    }

    /// Every series, sorted for a stable rendering.
    pub fn series(&self) -> Vec<(SeriesKey, SeriesTotals)> {
        let mut all: Vec<_> = match self.series.lock() {
            Ok(series) => series.iter().map(|(key, totals)| (key.clone(), *totals)).collect(),
            Err(_) => Vec::new(),
        };
        all.sort_by(|(a, _), (b, _)| (a.route, a.role as u8, &a.model).cmp(&(b.route, b.role as u8, &b.model)));
        all
    }

    /// `route`'s totals per arm over the `span` seconds before `now`.
    pub fn window(&self, route: RouteId, now: u64, span: u64) -> [Totals; 3] {
        match self.routes[route].window.lock() {
            Ok(window) => window.sum(now, span),
            Err(_) => Default::default(),
        }
    }
}
