//! The resolved plan that `cutover check` prints: listeners, upstreams, routes and
//! rollout steps as the gateway will run them. Secrets appear only as the name of the
//! variable that holds them.

use std::fmt;

use cutover_model::{Criteria, duration::format_duration};

use super::{Config, DERIVED_BUDGET_MARGINS, FallbackMode, HarmBudget, RolloutPlan, RolloutStep};

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = &self.server;
        writeln!(
            f,
            "listeners: api {}  admin {}  (max body {} MiB, drain {})",
            server.listen,
            server.admin_listen,
            server.max_body_bytes / (1024 * 1024),
            format_duration(server.drain_timeout)
        )?;
        let (proxy, admin, body) = (&server.proxy_connections, &server.admin_connections, &server.body_timeouts);
        writeln!(
            f,
            "connections: api at most {}, admin at most {}; headers within {}, body within {} (idle {}); \
             HTTP/2 ping every {}, {} streams per connection; closed after {} without a request in flight",
            proxy.max_connections,
            admin.max_connections,
            format_duration(proxy.header_timeout),
            format_duration(body.total),
            format_duration(body.idle),
            format_duration(proxy.http2_keepalive),
            proxy.http2_max_streams,
            format_duration(proxy.idle_timeout)
        )?;
        match self.gateway_keys.len() {
            0 => writeln!(f, "gateway keys: none — the gateway is open to anyone who reaches it")?,
            n => writeln!(
                f,
                "gateway keys: {n} ({})",
                self.gateway_keys.iter().map(|key| key.name.as_str()).collect::<Vec<_>>().join(", ")
            )?,
        }
        writeln!(f, "admin token: {}", if self.admin_token.is_some() { "set" } else { "none — /admin/* answers 401" })?;
        match &self.fleet {
            // The connection string is a secret: only the variable that holds it is shown.
            Some(fleet) => writeln!(
                f,
                "state: postgres (connection string from ${}), instance {:?}, leader lease {}",
                fleet.url_env,
                fleet.instance,
                format_duration(fleet.lease)
            )?,
            None => writeln!(f, "state: {}", self.state_path.display())?,
        }
        writeln!(f, "\nupstreams:")?;
        for upstream in &self.upstreams {
            let timeouts = &upstream.timeouts;
            let key =
                upstream.api_key_env.as_deref().map_or("no key".to_owned(), |variable| format!("key from ${variable}"));
            writeln!(f, "  {:<12} {}  ({key})", upstream.name, upstream.base_url)?;
            writeln!(
                f,
                "               timeouts: total {}, connect {} ({} connects at once), first byte {}, first token {}, \
                 idle {}",
                format_duration(timeouts.total),
                format_duration(timeouts.connect),
                upstream.max_connecting,
                format_duration(timeouts.first_byte),
                format_duration(timeouts.first_token),
                format_duration(timeouts.idle)
            )?;
            if let Some(most) = upstream.max_connections {
                writeln!(f, "               connections: {most} open at most; requests queue for one")?;
            }
            if let Some(file) = &upstream.ca_file {
                let count = upstream.extra_roots.len();
                writeln!(f, "               trusts: the web roots and {count} CA(s) from {}", file.display())?;
            }
            let identity = [("organization", &upstream.organization), ("project", &upstream.project)];
            for (what, value) in identity.iter().filter_map(|(what, value)| Some((what, value.as_ref()?))) {
                writeln!(f, "               sends its own {what}: {}", value.to_str().unwrap_or("?"))?;
            }
            let breaker = &upstream.breaker;
            writeln!(
                f,
                "               breaker: opens after {} failures in a row or {:.0}% of at least {} in {}; probes after {}",
                breaker.consecutive_failures,
                breaker.error_rate * 100.0,
                breaker.min_requests,
                format_duration(breaker.window),
                format_duration(breaker.cooldown)
            )?;
            for (from, to) in &upstream.model_aliases {
                writeln!(f, "               model {from} -> {to}")?;
            }
        }
        writeln!(f, "\nroutes:")?;
        for route in self.routes.values() {
            let models = if route.models.is_empty() {
                "every other model".to_owned()
            } else {
                route.models.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            };
            let name = |index: usize| self.upstreams[index].name.as_str();
            writeln!(f, "  {} ({models})", route.name)?;
            write!(f, "    primary {}", name(route.primary))?;
            match route.candidate {
                Some(candidate) => writeln!(f, ", candidate {}, sticky {}", name(candidate), route.sticky)?,
                None => writeln!(f, ", no candidate")?,
            }
            let fallback = match route.fallback {
                FallbackMode::Off => "off",
                FallbackMode::CandidateToPrimary => "candidate -> primary",
                FallbackMode::Both => "both ways",
            };
            writeln!(
                f,
                "    fallback {fallback} on {}; retries {} (budget {:.0}% + {}/s, Retry-After up to {}); \
                 stream commit {}; shadow {:.0}%{}",
                route.fallback_on.names().join(", "),
                route.retries,
                route.retry_budget.ratio * 100.0,
                route.retry_budget.min_per_sec,
                format_duration(route.max_retry_after),
                format_duration(route.stream_commit),
                route.shadow * 100.0,
                shadow_caps(&route.shadow_settings)
            )?;
            if let Some(plan) = &route.rollout {
                write_plan(f, plan)?;
            }
        }
        super::watch_plan::write_watch(f, self)
    }
}

/// The caps and kept diffs of a route's mirroring, when any is set.
fn shadow_caps(settings: &super::ShadowSettings) -> String {
    let mut caps = Vec::new();
    if let Some(rps) = settings.max_rps {
        caps.push(format!("at most {rps}/s"));
    }
    if let Some(usd) = settings.max_usd_per_hour {
        caps.push(format!("at most ${usd}/h"));
    }
    if settings.keep_diffs > 0 {
        caps.push(format!("keeping {} diffs", settings.keep_diffs));
    }
    if caps.is_empty() { String::new() } else { format!(" ({})", caps.join(", ")) }
}

fn write_plan(f: &mut fmt::Formatter<'_>, plan: &RolloutPlan) -> fmt::Result {
    writeln!(
        f,
        "    rollout{}{}: every {}, {} consecutive failed checks -> {}, undecided at max_duration -> {}",
        if plan.dry_run { " (dry-run)" } else { "" },
        if plan.require_validation { " (starts after a passing validation of the candidate)" } else { "" },
        format_duration(plan.interval),
        plan.failure_limit,
        plan.on_failure.as_str(),
        plan.on_undecided.as_str()
    )?;
    for (index, step) in plan.steps.iter().enumerate() {
        let shadow = if step.shadow > 0.0 { format!(", shadow {:.0}%", step.shadow * 100.0) } else { String::new() };
        writeln!(
            f,
            "      {}/{}: weight {}%{shadow}, at least {} and {} requests{}, {}{}{}",
            index + 1,
            plan.steps.len(),
            f64::from(step.weight_bp) / 100.0,
            format_duration(step.min_duration),
            step.min_requests,
            if step.min_users > 0 { format!(" and {} users", step.min_users) } else { String::new() },
            match step.max_duration {
                Some(max) => format!("undecided after {}", format_duration(max)),
                None => "no max_duration (held until decided)".to_owned(),
            },
            criteria_summary(&step.criteria),
            derived_budget(step)
        )?;
    }
    Ok(())
}

/// The step's harm budgets in words when they are derived (a set one is among the criteria).
fn derived_budget(step: &RolloutStep) -> String {
    if step.weight_bp == 0 {
        return String::new();
    }
    let mut words = match step.harm_budget() {
        Some(HarmBudget::Projected { margin, horizon }) => format!(
            "; excess failures ≤ {DERIVED_BUDGET_MARGINS} × {}pp of the requests expected by {} (derived)",
            margin * 100.0,
            format_duration(horizon)
        ),
        _ => String::new(),
    };
    // The slow margin is known only from the control's latencies; it does not change
    // whether the budget is derived.
    if let (Some(_), Some(HarmBudget::Projected { horizon, .. })) =
        (step.criteria.latency_limits().next(), step.slow_budget(0.0))
    {
        words.push_str(&format!(
            "; excess slow requests ≤ {DERIVED_BUDGET_MARGINS} × what a candidate at each latency limit adds, \
             of the requests expected by {} (derived)",
            format_duration(horizon)
        ));
    }
    words
}

fn criteria_summary(criteria: &Criteria) -> String {
    let mut summary: String =
        criteria.iter().map(|(criterion, threshold)| format!("; {}", criterion.summary(threshold))).collect();
    for (dimension, threshold) in criteria.shadow_dimensions() {
        summary.push_str(&format!("; shadow {dimension} agreement ≥ {threshold}%"));
    }
    summary
}
