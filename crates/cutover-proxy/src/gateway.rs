//! The gateway's runtime: the configuration with everything derived from it that the
//! request path needs ready-made (clients, header values, hash seeds), and the shared
//! metrics and live rollout state. Immutable once built: a reload builds a new one
//! (`Gateway::reloaded`) and swaps it in whole (`SharedGateway`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use cutover_config::{Config, HealthConfig, Identity, PerRoute, Route, RouteId, Upstream};
use cutover_health::{HealthLog, ProbeSource, ProbeTarget, UpstreamHealth};
use cutover_metrics::{Metrics, RouteMetrics};
use cutover_net::upstream::UpstreamConnections;
use cutover_shadow::MirrorSlots;
use http::{HeaderMap, HeaderValue, Uri};

use super::breaker::Breaker;
use super::retry::RetryBudget;
use super::split;
use cutover_live::{LiveRoute, LiveState};

pub(super) struct UpstreamRuntime {
    /// Every request to the upstream: traffic, shadow copies.
    pub connections: UpstreamConnections,
    /// Its health probes': the same unless the upstream caps its connections
    /// (`UpstreamConnections::for_probes`).
    pub probes: UpstreamConnections,
    /// Shared with the bodies of committed answers, which report failures after the first byte.
    pub breaker: Arc<Breaker>,
    /// The active probes' verdict, written by the prober (`health`), read once per request.
    pub health: Arc<UpstreamHealth>,
    /// Its key, account identity and API version, ready to set on each request.
    pub identity: Identity,
    pub name_header: HeaderValue,
}

pub(super) struct RouteRuntime {
    pub seed: u64,
    pub retry_budget: RetryBudget,
    pub name_header: HeaderValue,
}

/// One route as a request sees it, looked up once: its configuration, the request path's
/// ready-made values, its live rollout state and its metrics.
#[derive(Clone, Copy)]
pub(super) struct RouteContext<'a> {
    pub id: RouteId,
    pub config: &'a Route,
    pub runtime: &'a RouteRuntime,
    pub live: &'a LiveRoute,
    pub metrics: &'a RouteMetrics,
}

/// The gateway in force, shared by both listeners' services. A request loads it once and
/// keeps that `Arc` to its end (a stream included), so a reload never changes the
/// configuration under a request in flight, and the old `Gateway` is dropped with the last
/// request that started on it.
pub type SharedGateway = Arc<ArcSwap<Gateway>>;

pub struct Gateway {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub live: Arc<LiveState>,
    pub(super) upstreams: Box<[UpstreamRuntime]>,
    routes: PerRoute<RouteRuntime>,
    /// The route without `models`, which takes every model the others do not.
    catch_all: Option<RouteId>,
    /// Slots for mirrored copies in flight and pairs open (`shadow::slots`).
    pub(super) shadow_slots: MirrorSlots,
    /// The upstreams' recent changes of health, kept across reloads.
    pub health_log: Arc<HealthLog>,
}

impl RouteContext<'_> {
    /// The bucket of a request on this route and the hash of its sticky key, or a random
    /// bucket and no hash for a request without a key.
    pub fn bucket(self, key: Option<&[u8]>) -> (u32, Option<u64>) {
        let Some(key) = key.filter(|key| !key.is_empty()) else { return (split::random_bucket(), None) };
        let mut seed = self.runtime.seed;
        if let Some(interval) = self.config.rehash_interval {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            seed = split::rehashed_seed(seed, now.as_secs() / interval.as_secs().max(1));
        }
        let hash = split::hash(seed, key);
        (split::bucket_of(hash), Some(hash))
    }
}

/// An upstream's runtime, reusing `previous` (the same upstream before a reload) where its
/// settings allow.
fn upstream_runtime(upstream: &Upstream, previous: Option<(&Upstream, &UpstreamRuntime)>) -> UpstreamRuntime {
    let kept = previous.filter(|(before, _)| UpstreamConnections::serve_both(before, upstream));
    let connections = match kept {
        Some((_, runtime)) => runtime.connections.clone(),
        None => UpstreamConnections::for_upstream(upstream),
    };
    let probes = match kept {
        Some((_, runtime)) => runtime.probes.clone(),
        None => UpstreamConnections::for_probes(upstream, &connections),
    };
    let breaker = match previous {
        Some((before, runtime)) if keeps_health(before, upstream) => runtime.breaker.clone(),
        _ => Arc::new(Breaker::new(upstream.breaker)),
    };
    let health = match previous {
        Some((before, runtime)) if keeps_health(before, upstream) => runtime.health.clone(),
        _ => Arc::new(UpstreamHealth::default()),
    };
    UpstreamRuntime {
        connections,
        probes,
        breaker,
        health,
        identity: upstream.identity(),
        name_header: header_value(&upstream.name),
    }
}

/// Whether an upstream's circuit breaker state still means something after a reload: the
/// same address, API, credential, timeouts and breaker policy. A change to any of them may be
/// the fix for what opened the breaker, so it starts closed again; aliases do not matter.
pub fn keeps_health(before: &Upstream, after: &Upstream) -> bool {
    let key = |upstream: &Upstream| upstream.api_key.as_ref().map(|key| key.expose().to_owned());
    before.base_url == after.base_url
        && before.api == after.api
        && key(before) == key(after)
        && before.timeouts == after.timeouts
        && before.breaker == after.breaker
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

impl Gateway {
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>, live: Arc<LiveState>) -> Gateway {
        let upstreams = config.upstreams.iter().map(|upstream| upstream_runtime(upstream, None)).collect();
        Gateway::assemble(config, metrics, live, upstreams, MirrorSlots::default(), Arc::default())
    }

    /// The gateway for a reloaded `config`, carrying over from `self` what must not reset:
    /// the metrics and the live rollout state (the routes are the same, `reload` checks),
    /// the shadow slots (mirrored requests in flight still hold theirs), and per upstream of
    /// the same name its connections if what they were built from is unchanged, and its
    /// circuit breaker if nothing that decides its health changed (`keeps_health`): an
    /// upstream that is failing still is, whatever else the file says.
    pub fn reloaded(&self, config: Arc<Config>) -> Gateway {
        let upstreams = config
            .upstreams
            .iter()
            .map(|upstream| {
                let previous = self.config.upstream_index(&upstream.name).map(|index| {
                    let runtime = &self.upstreams[index];
                    (self.config.upstreams[index].as_ref(), runtime)
                });
                upstream_runtime(upstream, previous)
            })
            .collect();
        let (shadow_slots, health_log) = (self.shadow_slots.clone(), self.health_log.clone());
        Gateway::assemble(config, self.metrics.clone(), self.live.clone(), upstreams, shadow_slots, health_log)
    }

    fn assemble(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        live: Arc<LiveState>,
        upstreams: Box<[UpstreamRuntime]>,
        shadow_slots: MirrorSlots,
        health_log: Arc<HealthLog>,
    ) -> Gateway {
        let routes = config.routes.map(|_, route| RouteRuntime {
            seed: split::seed_for(&route.salt),
            retry_budget: RetryBudget::new(route.retry_budget),
            name_header: header_value(&route.name),
        });
        let catch_all = config.routes.find(|route| route.models.is_empty());
        Gateway { config, metrics, live, upstreams, routes, catch_all, shadow_slots, health_log }
    }

    /// The route for `model`: the first whose patterns match, else the catch-all. A request
    /// without a model (e.g. `GET /v1/models`) goes to the catch-all or the first route.
    pub fn route_for(&self, model: Option<&str>) -> Option<RouteId> {
        let Some(model) = model else { return self.catch_all.or(self.config.routes.first_id()) };
        self.config.routes.find(|route| route.models.iter().any(|pattern| pattern.matches(model))).or(self.catch_all)
    }

    /// Everything about route `id` that a request needs.
    pub(super) fn route(&self, id: RouteId) -> RouteContext<'_> {
        RouteContext {
            id,
            config: &self.config.routes[id],
            runtime: &self.routes[id],
            live: self.live.route(id),
            metrics: self.metrics.route(id),
        }
    }

    /// Whether each upstream's circuit breaker is open, in `Config::upstreams` order.
    pub fn breakers_open(&self) -> Vec<bool> {
        self.upstreams.iter().map(|upstream| upstream.breaker.is_open()).collect()
    }

    /// Whether upstream `index` is usable: up by its probes and its circuit breaker
    /// closed. `/readyz` and the `upstream_up` alert both read this.
    pub fn upstream_usable(&self, index: usize) -> bool {
        let upstream = &self.upstreams[index];
        upstream.health.is_up() && !upstream.breaker.is_open()
    }

    /// Whether upstream `index`'s active probes say it is up: one atomic load.
    pub fn upstream_up(&self, index: usize) -> bool {
        self.upstreams[index].health.is_up()
    }

    /// The routes none of whose upstreams is usable: every one is down by its probes or
    /// has its circuit breaker open. `/readyz` is not ready while there is one.
    pub fn routes_without_an_upstream_up(&self) -> impl Iterator<Item = &str> {
        self.config
            .routes
            .values()
            .filter(move |route| {
                !self.upstream_usable(route.primary)
                    && !route.candidate.is_some_and(|index| self.upstream_usable(index))
            })
            .map(|route| route.name.as_str())
    }

    /// How each upstream's traffic connections stand, in `Config::upstreams` order.
    pub fn upstream_connections(&self) -> impl Iterator<Item = cutover_net::upstream::ConnectionCounts> + '_ {
        self.upstreams.iter().map(|upstream| upstream.connections.counts())
    }

    /// Each upstream's active health, in `Config::upstreams` order.
    pub fn upstream_health(&self) -> impl Iterator<Item = &UpstreamHealth> {
        self.upstreams.iter().map(|upstream| upstream.health.as_ref())
    }

    /// Opens every upstream's circuit breaker, as a run of failures would (for other
    /// crates' tests, through the `testing` feature).
    #[cfg(any(test, feature = "testing"))]
    pub fn open_every_breaker(&self) {
        for breaker in self.upstreams.iter().map(|upstream| &upstream.breaker) {
            while !breaker.is_open() {
                breaker.on_failure(breaker.admit());
            }
        }
    }

    pub fn gateway_keys_required(&self) -> bool {
        !self.config.gateway_keys.is_empty()
    }

    /// The name of the gateway key `token` is, if any.
    pub fn gateway_key_name(&self, token: &[u8]) -> Option<&str> {
        self.config.gateway_keys.iter().find(|key| key.secret.matches(token)).map(|key| key.name.as_str())
    }
}

impl ProbeSource for Gateway {
    fn policy(&self) -> &HealthConfig {
        &self.config.health
    }

    /// What the prober needs for each upstream: `GET {base_url}{health.path}` with its key
    /// and headers, over the connections its traffic uses (beside them when they are
    /// capped). An upstream whose URL cannot take the path is left out.
    fn probe_targets(&self) -> Vec<ProbeTarget> {
        let path = &self.config.health.path;
        self.config
            .upstreams
            .iter()
            .zip(self.upstreams.iter())
            .filter_map(|(upstream, runtime)| {
                let uri = Uri::builder()
                    .scheme(upstream.scheme.clone())
                    .authority(upstream.authority.clone())
                    .path_and_query(format!("{}{path}", upstream.base_path))
                    .build()
                    .ok()?;
                let mut headers = HeaderMap::new();
                runtime.identity.apply(&mut headers, None);
                Some(ProbeTarget {
                    upstream: upstream.name.clone(),
                    uri,
                    headers,
                    connections: runtime.probes.clone(),
                    health: runtime.health.clone(),
                })
            })
            .collect()
    }
}
