//! What `cutover check` prints of the watch sections: the health probes, the alert rules
//! in force (the defaults when the file has none) and the notifiers, by name only (their
//! URLs are secrets).

use std::fmt;

use cutover_model::duration::format_duration;

use super::{AlertRule, Config};

pub(super) fn write_watch(f: &mut fmt::Formatter<'_>, config: &Config) -> fmt::Result {
    let health = &config.health;
    if health.enabled {
        writeln!(
            f,
            "\nhealth: GET {{base_url}}{} every {} (within {}), down after {} failures in a row, up after {} successes",
            health.path,
            format_duration(health.interval),
            format_duration(health.timeout),
            health.down_after,
            health.up_after
        )?;
    } else {
        writeln!(f, "\nhealth: probes off (the circuit breakers still judge live traffic)")?;
    }
    let origin = if config.alerts_are_defaults { " (the defaults: no [[alerts]] in the file)" } else { "" };
    writeln!(f, "\nalerts{origin}:")?;
    for rule in &config.alerts {
        writeln!(f, "  {}", rule_summary(rule))?;
    }
    if config.notifiers.is_empty() {
        writeln!(f, "\nnotifiers: none — alerts are shown by the admin API and /metrics only")?;
    } else {
        writeln!(f, "\nnotifiers:")?;
        for notifier in &config.notifiers {
            writeln!(f, "  {}: {}, {} and above (URL hidden)", notifier.name, notifier.format, notifier.min_severity)?;
        }
    }
    Ok(())
}

/// One line per rule, e.g. `error_rate_high [critical]: error_rate > 5 over 5m for 5m,
/// per upstream, repeated every 1h`.
pub fn rule_summary(rule: &AlertRule) -> String {
    let mut scope = Vec::new();
    if let Some(upstream) = &rule.upstream {
        scope.push(format!("upstream {upstream}"));
    }
    if let Some(route) = &rule.route {
        scope.push(format!("route {route}"));
    }
    if let Some(role) = &rule.role {
        scope.push(format!("role {role}"));
    }
    let scope = if rule.upstream.is_none() && rule.route.is_none() {
        let mut per = vec!["per upstream".to_owned()];
        per.extend(scope);
        per.join(", ")
    } else {
        scope.join(", ")
    };
    // `upstream_up` and `rollout_undecided` are read as they are now, not over a window.
    let now = rule.metric.is_instant();
    let over = if now { "now".to_owned() } else { format!("over {}", format_duration(rule.window)) };
    format!(
        "{} [{}]: {} {} {} {over} for {}, {scope}, repeated every {}",
        rule.name,
        rule.severity,
        rule.metric,
        rule.op,
        rule.threshold,
        format_duration(rule.for_duration),
        format_duration(rule.repeat_interval)
    )
}
