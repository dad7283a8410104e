//! `cutover rollout …`: drives a running gateway through its admin API, with the address
//! and token taken from the same configuration file the gateway runs.

use std::fmt::Write as _;

use cutover_config::Config;
use cutover_model::{Criterion, Unit};
use http::{HeaderName, Method};
use serde_json::Value;

use super::admin_call::{AdminCallError, call_json};
use cutover_control::analysis::{RESOLVING_MARGINS, resolves};

/// What to ask the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Status,
    Pause,
    Resume,
    Promote {
        full: bool,
    },
    Abort,
    Retry,
    SetWeight(f64),
    /// The share of primary requests mirrored, in percent.
    SetShadow(f64),
}

/// Sends `verb` for `route` (every route for `status` without one) and returns the
/// gateway's JSON answer.
pub async fn send(config: &Config, verb: &Verb, route: Option<&str>) -> Result<Value, AdminCallError> {
    let route_path = |route: Option<&str>| route.map_or(String::new(), |route| format!("/{route}"));
    let default_route = route.or_else(|| config.routes.values().next().map(|route| route.name.as_str()));
    let (method, path, body) = match verb {
        Verb::Status => (Method::GET, format!("/admin/rollouts{}", route_path(route)), String::new()),
        Verb::SetWeight(weight) => (
            Method::POST,
            format!("/admin/rollouts{}/weight", route_path(default_route)),
            format!(r#"{{"weight": {weight}}}"#),
        ),
        Verb::SetShadow(percent) => (
            Method::POST,
            format!("/admin/rollouts{}/shadow", route_path(default_route)),
            format!(r#"{{"share": {}}}"#, percent / 100.0),
        ),
        Verb::Promote { full: true } => {
            (Method::POST, format!("/admin/rollouts{}/promote?full=true", route_path(default_route)), String::new())
        }
        other => {
            let name = match other {
                Verb::Pause => "pause",
                Verb::Resume => "resume",
                Verb::Abort => "abort",
                Verb::Retry => "retry",
                _ => "promote",
            };
            (Method::POST, format!("/admin/rollouts{}/{name}", route_path(default_route)), String::new())
        }
    };
    let actor = cli_actor(std::env::var("USER").ok().as_deref());
    call_json(config, method, &path, body, &[(HeaderName::from_static("x-cutover-actor"), actor)]).await
}

/// The name the CLI claims in `x-cutover-actor`: `USER@cli`, with the user name kept to
/// the charset the admin API accepts (anything else becomes `_`), or `cli` alone.
fn cli_actor(user: Option<&str>) -> String {
    let plain = |c: char| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' };
    match user.filter(|user| !user.is_empty()) {
        Some(user) => format!("{}@cli", user.chars().take(48).map(plain).collect::<String>()),
        None => "cli".to_owned(),
    }
}

/// A rollout view (or a list of them) for a terminal.
pub fn render(json: &Value) -> String {
    match json {
        Value::Array(views) => views.iter().map(render_one).collect::<Vec<_>>().join("\n"),
        view => render_one(view),
    }
}

fn render_one(view: &Value) -> String {
    let mut out = String::new();
    let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    let _ = writeln!(out, "route {}: {} → {}", text(&view["route"]), text(&view["primary"]), text(&view["candidate"]));
    let plan = if view["steps"].as_u64().unwrap_or(0) == 0 {
        "no rollout plan (manual weight)".to_owned()
    } else {
        format!(
            "step {}/{}  failed checks {}/{}{}",
            view["step"].as_u64().unwrap_or(0) + 1,
            view["steps"],
            view["consecutive_failures"],
            text(&view["failure_limit"]),
            if view["dry_run"] == true { "  (dry-run)" } else { "" }
        )
    };
    let _ = writeln!(
        out,
        "  phase {}  weight {}%  in step {}s  {plan}",
        text(&view["phase"]),
        percent(&view["weight"]),
        view["seconds_in_step"]
    );
    if let Some(unsaved @ 1..) = view["unsaved_transitions"].as_u64() {
        let _ = writeln!(
            out,
            "  warning: {unsaved} change(s) in effect but not saved to the state file yet (see the gateway's log)"
        );
    }
    for arm in ["candidate", "control", "primary", "shadow", "shadow_primary"] {
        let stats = &view["arms"][arm];
        if stats["requests"].as_u64().unwrap_or(0) > 0 {
            let _ = writeln!(
                out,
                "  {arm:<14} {:>8} requests  {:>6} upstream errors  {:>6} client errors  ~{} users",
                stats["requests"], stats["upstream_errors"], stats["client_errors"], stats["users"]
            );
        }
    }
    let validation = &view["validation"];
    if validation["required"] == true || validation["state"].as_str().is_some_and(|state| state != "not_run") {
        let at = validation["at"].as_i64().map(|at| format!(" at {}", utc(at))).unwrap_or_default();
        let summary = validation["summary"].as_str().map(|summary| format!(": {summary}")).unwrap_or_default();
        let _ = writeln!(out, "  validation of the candidate: {}{at}{summary}", text(&validation["state"]));
        if let Some(held) = validation["held"].as_str() {
            let _ = writeln!(out, "  {held}");
        }
    }
    render_agreement(&mut out, view);
    let evaluation = &view["evaluation"];
    if evaluation.is_object() {
        let _ =
            writeln!(out, "  last check: {} (control: {})", text(&evaluation["verdict"]), text(&evaluation["control"]));
        if let Some(held) = evaluation["held"].as_str() {
            let _ = writeln!(out, "  {held}");
        }
        for check in evaluation["checks"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    {:<32} {:<12} candidate {} control {} limit {}  n={}/{}  {}{}",
                text(&check["criterion"]),
                text(&check["verdict"]),
                number(&check["candidate"]),
                number(&check["control"]),
                check["threshold"],
                check["candidate_samples"],
                check["control_samples"],
                text(&check["evidence"]),
                resolution(check),
            );
        }
        for ahead in evaluation["ahead"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "    {}", ahead_line(ahead));
        }
        for gate in evaluation["gates"].as_array().into_iter().flatten().filter(|gate| gate["met"] == false) {
            let eta = gate["eta_seconds"]
                .as_f64()
                .map_or("unknown at the current rate".to_owned(), |eta| format!("~{eta:.0}s"));
            let _ = writeln!(
                out,
                "    still missing: {} {}/{} ({eta})",
                text(&gate["gate"]),
                number(&gate["have"]),
                gate["need"]
            );
        }
    }
    for event in view["events"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  event {} {} by {}: {} → {} at {}%: {}",
            utc(event["at"].as_i64().unwrap_or(0)),
            text(&event["kind"]),
            text(&event["actor"]),
            text(&event["from_phase"]),
            text(&event["to_phase"]),
            percent(&event["weight_percent"]),
            // A validation's reason is its table: indented under the event.
            text(&event["reason"]).trim_end().replace('\n', "\n      "),
        );
    }
    out
}

/// The shadow comparison of the step: how many pairs, the agreement overall and per
/// dimension (those that judged any pair), caps binding, and the figures reported as
/// distributions.
fn render_agreement(out: &mut String, view: &Value) {
    let agreement = &view["shadow_agreement"];
    let pairs = agreement["pairs"].as_u64().unwrap_or(0);
    let share = view["shadow"].as_f64().unwrap_or(0.0);
    if pairs == 0 && share == 0.0 {
        return;
    }
    let ratio = |value: &Value| value.as_f64().map_or("-".to_owned(), |ratio| format!("{:.1}%", ratio * 100.0));
    let caps = &view["shadow_caps"];
    let binding = if caps["binding"] == true { "  cap binding: mirrors dropped over the cap" } else { "" };
    let _ = writeln!(
        out,
        "  shadow {}% mirrored: {pairs} pairs compared, agreement {}{binding}",
        percent(&serde_json::json!(share * 100.0)),
        ratio(&agreement["overall"])
    );
    if let Some(dropped @ 1..) = agreement["dropped_slow_candidate"].as_u64() {
        let _ =
            writeln!(out, "    {dropped} mirrors dropped with every slot busy (counted as the candidate's failures)");
    }
    let _ = writeln!(out, "    {:<22} {:>14} {:>10}", "dimension", "agreed/judged", "agreement");
    for dimension in cutover_model::Dimension::ALL {
        let (name, row) = (dimension.as_str(), &agreement["dimensions"][dimension.as_str()]);
        let judged = row["judged"].as_u64().unwrap_or(0);
        if judged > 0 {
            let counts = format!("{}/{judged}", row["agreed"]);
            let _ = writeln!(out, "    {name:<22} {counts:>14} {:>10}", ratio(&row["ratio"]));
        }
    }
    let mut figures = Vec::new();
    if let Some(f1) = agreement["tool_f1"].as_f64() {
        figures.push(format!("tool-call F1 {f1:.3}"));
    }
    for (key, label) in [("similarity", "similarity"), ("latency_diff_ms", "latency Δms"), ("ttft_diff_ms", "TTFT Δms")]
    {
        let buckets: Vec<String> = agreement[key]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, count)| count.as_u64().unwrap_or(0) > 0)
            .map(|(bucket, count)| format!("{bucket}:{count}"))
            .collect();
        if !buckets.is_empty() {
            figures.push(format!("{label} {}", buckets.join(" ")));
        }
    }
    if !figures.is_empty() {
        let _ = writeln!(out, "    {}", figures.join("; "));
    }
}

fn number(value: &Value) -> String {
    value.as_f64().map_or("-".to_owned(), |number| format!("{number:.2}"))
}

/// A percentage as people write it: `25`, `12.5`, `0.05`.
pub(crate) fn percent(value: &Value) -> String {
    value.as_f64().map_or("-".to_owned(), |percent| format!("{percent}").trim_end_matches(".0").to_owned())
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
fn utc(unix_millis: i64) -> String {
    let [year, month, day, hour, minute, second] = cutover_model::utc_fields(unix_millis);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
}

/// A later step's projection at the current traffic (`analysis::ahead`), in one line.
fn ahead_line(ahead: &Value) -> String {
    let verdict = if ahead["resolves"] == true {
        "resolves its margin".to_owned()
    } else {
        format!("over {RESOLVING_MARGINS} × its margin: that traffic cannot decide it")
    };
    format!(
        "ahead: step {} at {}% sees ~{} requests per arm in {}s at this traffic: detects ≥ {:.2} pp against a {} pp \
         margin, {verdict}",
        ahead["step"],
        percent(&ahead["weight"]),
        ahead["requests_per_arm"],
        ahead["horizon_seconds"],
        ahead["detectable"].as_f64().unwrap_or(f64::NAN),
        ahead["margin"],
    )
}

/// What a check's evidence can resolve so far: the smallest increase it would detect,
/// and a warning when that is above the criterion's margin, since such a check cannot
/// pass or fail at this traffic and the step heads for its `max_duration` undecided.
fn resolution(check: &Value) -> String {
    let Some(detectable) = check["detectable"].as_f64() else { return String::new() };
    let margin = check["threshold"].as_f64();
    let compares =
        check["criterion"].as_str().and_then(Criterion::from_key).map(Criterion::unit) == Some(Unit::PointsOverPrimary);
    match margin {
        Some(margin) if compares && check["verdict"] == "inconclusive" && !resolves(margin, detectable) => {
            format!(
                "; can detect ≥ {detectable:.2}, over {RESOLVING_MARGINS} × the margin {margin}: this traffic cannot \
                 decide it"
            )
        }
        _ => format!("; can detect ≥ {detectable:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_percentages_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_795_700_525_634), "2026-11-26 13:42:05");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(percent(&serde_json::json!(100.0)), "100");
        assert_eq!(percent(&serde_json::json!(12.5)), "12.5");
        assert_eq!(percent(&serde_json::json!(0.05)), "0.05");
    }

    #[test]
    fn the_cli_claims_its_user_within_the_charset_the_admin_api_accepts() {
        assert_eq!(cli_actor(Some("alice")), "alice@cli");
        assert_eq!(cli_actor(Some("CORP\\jane doe")), "CORP_jane_doe@cli");
        assert_eq!(cli_actor(None), "cli");
        assert_eq!(cli_actor(Some("")), "cli");
        assert_eq!(cli_actor(Some(&"x".repeat(100))).len(), 48 + "@cli".len());
    }

    #[test]
    fn a_view_held_by_its_validation_gate_says_why_and_indents_the_table() {
        let validation = serde_json::json!({"required": true, "state": "failed", "at": 0,
            "summary": "1 required check(s) did not pass: streaming.usage", "held": "held: the candidate's validation did not pass"});
        let event = serde_json::json!({"at": 0, "kind": "validation_failed", "actor": "validator", "from_phase": "pending",
            "to_phase": "pending", "weight_percent": 0.0, "reason": "validate relay\n\ncheck  result"});
        let view = serde_json::json!({"route": "default", "phase": "pending", "weight": 0.0, "unsaved_transitions": 0,
            "validation": validation, "events": [event]});
        let text = render(&view);
        assert!(
            text.contains("validation of the candidate: failed at 1970-01-01 00:00:00: 1 required check(s)"),
            "{text}"
        );
        assert!(text.contains("  held: the candidate's validation did not pass"), "{text}");
        assert!(text.contains("validate relay\n      \n      check  result"), "{text}");
    }

    #[test]
    fn a_view_with_unsaved_changes_says_so() {
        let view =
            serde_json::json!({"route": "default", "phase": "rolled_back", "weight": 0.0, "unsaved_transitions": 1});
        assert!(render(&view).contains("warning: 1 change(s) in effect but not saved to the state file yet"));
        let saved =
            serde_json::json!({"route": "default", "phase": "rolled_back", "weight": 0.0, "unsaved_transitions": 0});
        assert!(!render(&saved).contains("warning"));
    }

    #[test]
    fn a_check_whose_traffic_cannot_resolve_its_margin_is_flagged() {
        let check = |detectable: f64, verdict: &str| {
            serde_json::json!({"criterion": "max_error_rate_increase", "verdict": verdict, "threshold": 0.5,
                "detectable": detectable})
        };
        assert_eq!(
            resolution(&check(3.1, "inconclusive")),
            "; can detect ≥ 3.10, over 2 × the margin 0.5: this traffic cannot decide it"
        );
        assert_eq!(resolution(&check(0.9, "inconclusive")), "; can detect ≥ 0.90", "a candidate at 2 × is caught");
        assert_eq!(resolution(&check(3.1, "fail")), "; can detect ≥ 3.10", "a decided check is decided");
        let ceiling = serde_json::json!({"criterion": "max_error_rate", "verdict": "inconclusive", "threshold": 5.0,
            "detectable": 9.0});
        assert_eq!(resolution(&ceiling), "; can detect ≥ 9.00", "a ceiling's figure is not an increase");
        assert_eq!(resolution(&serde_json::json!({"criterion": "max_error_rate_increase"})), "");
    }

    #[test]
    fn a_later_step_that_its_projected_traffic_cannot_decide_is_flagged() {
        let ahead = |detectable: f64, resolves: bool| {
            serde_json::json!({"step": 3, "weight": 25.0, "requests_per_arm": 15000, "horizon_seconds": 3600,
                "margin": 0.5, "detectable": detectable, "resolves": resolves})
        };
        assert_eq!(
            ahead_line(&ahead(1.2, false)),
            "ahead: step 3 at 25% sees ~15000 requests per arm in 3600s at this traffic: detects ≥ 1.20 pp against \
             a 0.5 pp margin, over 2 × its margin: that traffic cannot decide it"
        );
        assert!(ahead_line(&ahead(0.9, true)).ends_with("margin, resolves its margin"));
    }
}
