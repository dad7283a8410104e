//! A rule's parts as the evaluator uses them: the metric, the comparison, and the scopes
//! it is evaluated over (one per upstream for a rule that names neither an upstream nor a
//! route).

use cutover_config::{AlertRule, Config, Route, RouteId};
use cutover_model::Role;

/// What one rule instance looks at: arms of these upstreams and/or this route, in these
/// roles. `label` is how it is shown (`upstream=relay`, `route=default,role=candidate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub upstream: Option<String>,
    pub route: Option<String>,
    /// Primary and candidate when the rule names no role: the mirrored copies are not
    /// what users get.
    pub roles: Vec<Role>,
    pub label: String,
}

impl Scope {
    pub fn admits(&self, route: &str, upstream: &str, role: Role) -> bool {
        self.roles.contains(&role)
            && self.route.as_deref().is_none_or(|name| name == route)
            && self.upstream.as_deref().is_none_or(|name| name == upstream)
    }
}

/// The scopes `rule` is evaluated over in `config`.
pub fn scopes(rule: &AlertRule, config: &Config) -> Vec<Scope> {
    let roles = match rule.role {
        Some(role) => vec![role],
        None => vec![Role::Primary, Role::Candidate],
    };
    let scope = |upstream: Option<String>, route: Option<String>| {
        let mut parts = Vec::new();
        if let Some(upstream) = &upstream {
            parts.push(format!("upstream={upstream}"));
        }
        if let Some(route) = &route {
            parts.push(format!("route={route}"));
        }
        if let Some(role) = &rule.role {
            parts.push(format!("role={role}"));
        }
        Scope { upstream, route, roles: roles.clone(), label: parts.join(",") }
    };
    if rule.upstream.is_none() && rule.route.is_none() {
        return config.upstreams.iter().map(|upstream| scope(Some(upstream.name.clone()), None)).collect();
    }
    vec![scope(rule.upstream.clone(), rule.route.clone())]
}

/// The routes with a candidate that a rollout-level metric reads (the rollout's
/// undecided mark, the shadow agreement): the one named `route`, or those whose candidate
/// is `upstream`, or all of them. Shared by the evaluator and the Prometheus export.
pub fn candidate_routes<'a>(
    config: &'a Config,
    route: Option<&'a str>,
    upstream: Option<&'a str>,
) -> impl Iterator<Item = (RouteId, &'a Route)> + 'a {
    config.routes.iter().map(|(id, candidate_route)| (id, &**candidate_route)).filter(move |(_, candidate_route)| {
        let Some(candidate) = candidate_route.candidate else { return false };
        route.is_none_or(|name| name == candidate_route.name)
            && upstream.is_none_or(|name| name == config.upstreams[candidate].name)
    })
}
