//! `cutover fleet status [--json]`: asks a running gateway's admin API (the address and
//! token from the same configuration file) how its fleet stands (`GET /admin/fleet`):
//! the leader and its lease, each instance with its last report and applied weights,
//! the row count of each fleet table, and the asked instance's own view (whether it
//! reaches the database, its flush lag).

use std::fmt::Write as _;

use cutover_config::Config;
use http::Method;
use serde_json::Value;

use super::admin_call::{AdminCallError, call_json};

/// `GET /admin/fleet`.
pub async fn status(config: &Config) -> Result<Value, AdminCallError> {
    call_json(config, Method::GET, "/admin/fleet", String::new(), &[]).await
}

/// The leader, then one line per instance, then the asked instance's own view.
pub fn render_status(json: &Value) -> String {
    let mut out = String::new();
    if json["backend"] != "postgres" {
        let note = json["note"].as_str().unwrap_or("one gateway: no fleet");
        return format!("backend: {}\n{note}", json["backend"].as_str().unwrap_or("sqlite"));
    }
    let this = &json["this"];
    match json.get("leader") {
        Some(leader) if leader["instance"].is_string() => {
            let expires = leader["expires_in_seconds"].as_f64().unwrap_or(0.0);
            let lease =
                if expires > 0.0 { format!("lease expires in {expires:.1}s") } else { "lease expired".to_owned() };
            let _ = writeln!(out, "leader: {} (epoch {}, {lease})", text(&leader["instance"]), leader["epoch"]);
        }
        Some(_) => out.push_str("leader: none yet\n"),
        None => {
            let _ = writeln!(out, "fleet unknown: {}", text(&json["error"]));
        }
    }
    if let Some(instances) = json["instances"].as_array() {
        let _ = writeln!(out, "\n{:<24} {:>12} {:>9}  applied weights", "instance", "last report", "buffered");
        for instance in instances {
            let since = instance["seconds_since_report"].as_f64().unwrap_or(f64::NAN);
            let weights = instance["applied_weights"]
                .as_object()
                .map(|weights| {
                    weights.iter().map(|(route, weight)| format!("{route} {weight}%")).collect::<Vec<_>>().join(", ")
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<24} {:>11.1}s {:>9}  {weights}",
                text(&instance["instance"]),
                since,
                instance["buffered_requests"]
            );
        }
    }
    if let Some(tables) = json["tables"].as_object() {
        let sizes: Vec<String> = tables.iter().map(|(table, rows)| format!("{table} {rows}")).collect();
        let expiry = json["instance_expiry_seconds"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(out, "\ntable rows: {} (an instance silent for {expiry:.0}s is expired)", sizes.join(", "));
    }
    let _ = writeln!(
        out,
        "\nthis gateway: {} — {}; database {}, evidence flushed {:.1}s ago, {} requests buffered, schema v{}",
        text(&this["instance"]),
        text(&this["decisions"]),
        if this["database_reachable"] == true { "reachable" } else { "UNREACHABLE" },
        this["flush_lag_seconds"].as_f64().unwrap_or(f64::NAN),
        this["buffered_requests"],
        this["schema_version"],
    );
    out
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_status_names_the_leader_each_instance_and_what_this_gateway_does() {
        let answer = json!({
            "backend": "postgres",
            "leader": {"instance": "gw-a", "epoch": 3, "expires_in_seconds": 7.5},
            "instances": [
                {"instance": "gw-a", "seconds_since_report": 0.4, "buffered_requests": 0, "applied_weights": {"default": 25.0}},
                {"instance": "gw-b", "seconds_since_report": 0.9, "buffered_requests": 12, "applied_weights": {"default": 25.0}},
            ],
            "this": {"instance": "gw-b", "decisions": "following: the leader decides", "database_reachable": true,
                     "flush_lag_seconds": 0.9, "buffered_requests": 12, "schema_version": 1},
            "tables": {"rollout_state": 1, "step_evidence": 3, "fleet_instances": 2},
            "instance_expiry_seconds": 57.0,
        });
        let text = render_status(&answer);
        assert!(
            text.contains("table rows: fleet_instances 2, rollout_state 1, step_evidence 3 (an instance silent for 57s is expired)"),
            "{text}"
        );
        assert!(text.starts_with("leader: gw-a (epoch 3, lease expires in 7.5s)"), "{text}");
        assert!(text.contains("gw-b") && text.contains("default 25.0%"), "{text}");
        assert!(text.contains("this gateway: gw-b — following"), "{text}");
    }

    #[test]
    fn a_gateway_on_sqlite_says_it_has_no_fleet() {
        let text = render_status(&cutover_control::fleet::single_status());
        assert!(text.starts_with("backend: sqlite"), "{text}");
    }
}
