//! The reload decision, pure: what a new configuration changes against the running one,
//! or why it takes a restart. Route ids index the metrics, the live rollout state and the
//! controller's tables, so the routes must stay the same names in the same order, each
//! with the same primary and candidate; the listeners, their connection settings, the
//! state file and the notifiers are fixed at start-up.

use std::collections::HashMap;
use std::fmt;

use cutover_config::{Config, Price, Route, ServerConfig, Upstream};
use cutover_model::{NotifierFormat, Severity};

use crate::proxy::keeps_health;

/// A change that this version applies only by a restart.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Routes added, removed, renamed or reordered.
    Routes { before: Vec<String>, after: Vec<String> },
    /// A route's primary or candidate is another upstream (or none): the rollout's state,
    /// its evidence and the metrics' arms are about the old one.
    Arm { route: String, arm: &'static str, before: Option<String>, after: Option<String> },
    /// A listener's address or connection settings, or the state file's path.
    Fixed { key: &'static str, before: String, after: String },
    /// The webhook notifiers are started once, with the gateway.
    Notifiers,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Routes { before, after } => {
                write!(f, "routes changed ([{}] → [{}]): restart to apply", before.join(", "), after.join(", "))
            }
            Refusal::Arm { route, arm, before, after } => {
                let name = |upstream: &Option<String>| upstream.clone().unwrap_or_else(|| "none".to_owned());
                write!(f, "route {route}: {arm} changed ({} → {}): restart to apply", name(before), name(after))
            }
            Refusal::Fixed { key, before, after } => write!(f, "{key} changed ({before} → {after}): restart to apply"),
            Refusal::Notifiers => f.write_str("notifiers changed: restart to apply"),
        }
    }
}

/// Every reason a configuration was refused, found at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused(pub Vec<Refusal>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&reasons.join("; "))
    }
}

impl std::error::Error for Refused {}

/// What an applicable reload changes, at the level of detail of one log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub upstreams_added: usize,
    pub upstreams_removed: usize,
    /// Upstreams of the same name whose address, key, timeouts, aliases or breaker changed.
    pub upstreams_changed: usize,
    pub routes: usize,
    pub routes_changed: usize,
    /// Routes whose rollout plan changed (a running step is paused if its weight changed).
    pub plans_changed: usize,
    pub gateway_keys: (usize, usize),
    pub gateway_keys_changed: bool,
    pub admin_token_changed: bool,
    pub prices_changed: bool,
    pub alerts_changed: bool,
    /// The request limits under `[server]` (body size and timeouts).
    pub limits_changed: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes { routes: self.routes, gateway_keys: self.gateway_keys, ..Changes::default() }
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing changed");
        }
        let yes_no = |changed: bool| if changed { "changed" } else { "unchanged" };
        write!(
            f,
            "upstreams: {} changed, {} added, {} removed; routes: {} of {} changed ({} plans); \
             gateway keys: {} → {} ({}); admin token {}; prices {}; alerts {}; request limits {}",
            self.upstreams_changed,
            self.upstreams_added,
            self.upstreams_removed,
            self.routes_changed,
            self.routes,
            self.plans_changed,
            self.gateway_keys.0,
            self.gateway_keys.1,
            yes_no(self.gateway_keys_changed),
            yes_no(self.admin_token_changed),
            yes_no(self.prices_changed),
            yes_no(self.alerts_changed),
            yes_no(self.limits_changed),
        )
    }
}

/// What replacing `current` by `next` changes, or every reason it takes a restart.
pub fn assess(current: &Config, next: &Config) -> Result<Changes, Refused> {
    let mut refusals = fixed_settings(current, next);
    let names = |config: &Config| config.routes.values().map(|route| route.name.clone()).collect::<Vec<_>>();
    let (before, after) = (names(current), names(next));
    if before != after {
        refusals.insert(0, Refusal::Routes { before, after });
        return Err(Refused(refusals));
    }
    for (id, route) in next.routes.iter() {
        let old = &current.routes[id];
        let arms = [("primary", Some(old.primary), Some(route.primary)), ("candidate", old.candidate, route.candidate)];
        for (arm, was, is) in arms {
            let was = was.map(|index| current.upstreams[index].name.clone());
            let is = is.map(|index| next.upstreams[index].name.clone());
            if was != is {
                refusals.push(Refusal::Arm { route: route.name.clone(), arm, before: was, after: is });
            }
        }
    }
    if !refusals.is_empty() {
        return Err(Refused(refusals));
    }
    Ok(changes(current, next))
}

/// The settings read only at start-up: listeners, connection handling, state file, notifiers.
fn fixed_settings(current: &Config, next: &Config) -> Vec<Refusal> {
    let (old, new) = (&current.server, &next.server);
    let mut refusals = Vec::new();
    let mut fixed = |key: &'static str, before: String, after: String| {
        if before != after {
            refusals.push(Refusal::Fixed { key, before, after });
        }
    };
    fixed("server.listen", old.listen.to_string(), new.listen.to_string());
    fixed("server.admin_listen", old.admin_listen.to_string(), new.admin_listen.to_string());
    fixed("server.drain_timeout", format!("{:?}", old.drain_timeout), format!("{:?}", new.drain_timeout));
    fixed(
        "server connection settings (proxy)",
        format!("{:?}", old.proxy_connections),
        format!("{:?}", new.proxy_connections),
    );
    fixed(
        "server connection settings (admin)",
        format!("{:?}", old.admin_connections),
        format!("{:?}", new.admin_connections),
    );
    fixed(
        "server.max_inflight / max_inflight_per_connection",
        format!("{:?}", old.admission),
        format!("{:?}", new.admission),
    );
    fixed("state.path", current.state_path.display().to_string(), next.state_path.display().to_string());
    let backend = |config: &Config| match &config.fleet {
        Some(fleet) => format!("postgres (${}, instance {})", fleet.url_env, fleet.instance),
        None => "sqlite".to_owned(),
    };
    fixed("state.backend", backend(current), backend(next));
    let notifier = |config: &Config| -> Vec<(String, String, NotifierFormat, Severity)> {
        let notifiers = config.notifiers.iter();
        notifiers.map(|n| (n.name.clone(), n.url.expose().to_owned(), n.format, n.min_severity)).collect()
    };
    if notifier(current) != notifier(next) {
        refusals.push(Refusal::Notifiers);
    }
    refusals
}

fn changes(current: &Config, next: &Config) -> Changes {
    let mut changes = Changes { routes: next.routes.len(), ..Changes::default() };
    for upstream in &next.upstreams {
        match current.upstreams.iter().find(|old| old.name == upstream.name) {
            None => changes.upstreams_added += 1,
            Some(old) if !same_upstream(old, upstream) => changes.upstreams_changed += 1,
            Some(_) => {}
        }
    }
    changes.upstreams_removed =
        current.upstreams.iter().filter(|old| !next.upstreams.iter().any(|new| new.name == old.name)).count();
    for (id, route) in next.routes.iter() {
        let old = &current.routes[id];
        changes.routes_changed += usize::from(!same_route(old, route));
        changes.plans_changed += usize::from(old.rollout != route.rollout);
    }
    let keys = |config: &Config| -> Vec<(String, String)> {
        config.gateway_keys.iter().map(|key| (key.name.clone(), key.secret.expose().to_owned())).collect()
    };
    changes.gateway_keys = (current.gateway_keys.len(), next.gateway_keys.len());
    changes.gateway_keys_changed = keys(current) != keys(next);
    let token = |config: &Config| config.admin_token.as_ref().map(|token| token.expose().to_owned());
    changes.admin_token_changed = token(current) != token(next);
    changes.prices_changed = prices(current) != prices(next);
    changes.alerts_changed = current.alerts != next.alerts;
    changes.limits_changed = !same_limits(&current.server, &next.server);
    changes
}

fn same_upstream(old: &Upstream, new: &Upstream) -> bool {
    keeps_health(old, new) && old.model_aliases == new.model_aliases && old.api_key_env == new.api_key_env
}

/// Whether a route's own settings are the same; its arms are compared by name in `assess`.
fn same_route(old: &Route, new: &Route) -> bool {
    // Destructured so that a new field cannot be forgotten here.
    let Route {
        name: _,
        models,
        primary: _,
        candidate: _,
        sticky,
        salt,
        rehash_interval,
        fallback,
        fallback_on,
        retries,
        retry_budget,
        max_retry_after,
        stream_commit,
        shadow,
        shadow_settings,
        inject_stream_usage,
        rollout,
    } = old;
    *models == new.models
        && *sticky == new.sticky
        && *salt == new.salt
        && *rehash_interval == new.rehash_interval
        && *fallback == new.fallback
        && *fallback_on == new.fallback_on
        && *retries == new.retries
        && *retry_budget == new.retry_budget
        && *max_retry_after == new.max_retry_after
        && *stream_commit == new.stream_commit
        && *shadow == new.shadow
        && *shadow_settings == new.shadow_settings
        && *inject_stream_usage == new.inject_stream_usage
        && *rollout == new.rollout
}

fn same_limits(old: &ServerConfig, new: &ServerConfig) -> bool {
    old.max_body_bytes == new.max_body_bytes && old.body_timeouts == new.body_timeouts
}

/// Prices by upstream name, since upstream indices may differ between the two files.
fn prices(config: &Config) -> HashMap<(&str, &str), Price> {
    let prices = config.prices.iter();
    prices.map(|((index, model), price)| ((config.upstreams[*index].name.as_str(), model.as_str()), *price)).collect()
}
