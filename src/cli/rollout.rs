//! `cutover rollout …`: drives a running gateway through its admin API, with the address
//! and token taken from the same configuration file the gateway runs.

use std::fmt::Write as _;

use cutover_config::Config;
use cutover_model::Unit;
use cutover_model::evaluation::{Ahead, Check, Evaluation, Verdict};
use cutover_model::view::{RolloutView, ValidationState};
use http::{HeaderName, Method};
use serde::Deserialize;
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

/// A rollout view (or a list of them), as the gateway answered it, for a terminal; an
/// answer that is no rollout view is an error naming what does not fit.
pub fn render(json: &Value) -> Result<String, serde_json::Error> {
    Ok(match json {
        Value::Array(_) => Vec::<RolloutView>::deserialize(json)?.iter().map(render_one).collect::<Vec<_>>().join("\n"),
        view => render_one(&RolloutView::deserialize(view)?),
    })
}

fn render_one(view: &RolloutView) -> String {
    let mut out = String::new();
    let candidate = view.candidate.as_deref().unwrap_or("null");
    let _ = writeln!(out, "route {}: {} → {candidate}", view.route, view.primary);
    let plan = if view.steps == 0 {
        "no rollout plan (manual weight)".to_owned()
    } else {
        format!(
            "step {}/{}  failed checks {}/{}{}",
            view.step + 1,
            view.steps,
            view.consecutive_failures,
            view.failure_limit.map_or("null".to_owned(), |limit| limit.to_string()),
            if view.dry_run { "  (dry-run)" } else { "" }
        )
    };
    let _ = writeln!(
        out,
        "  phase {}  weight {}%  in step {}s  {plan}",
        view.phase.as_str(),
        percent(view.weight),
        view.seconds_in_step
    );
    if view.unsaved_transitions > 0 {
        let _ = writeln!(
            out,
            "  warning: {} change(s) in effect but not saved to the state file yet (see the gateway's log)",
            view.unsaved_transitions
        );
    }
    for (arm, stats) in view.arms.named() {
        let counts = &stats.counts;
        if counts.requests > 0 {
            let _ = writeln!(
                out,
                "  {arm:<14} {:>8} requests  {:>6} upstream errors  {:>6} client errors  ~{} users",
                counts.requests, counts.upstream_errors, counts.client_errors, counts.users
            );
        }
    }
    let validation = &view.validation;
    if validation.required || validation.state != ValidationState::NotRun {
        let at = validation.at.map(|at| format!(" at {}", utc(at))).unwrap_or_default();
        let summary = validation.summary.as_ref().map(|summary| format!(": {summary}")).unwrap_or_default();
        let _ = writeln!(out, "  validation of the candidate: {}{at}{summary}", validation.state.as_str());
        if let Some(held) = &validation.held {
            let _ = writeln!(out, "  {held}");
        }
    }
    render_agreement(&mut out, view);
    if let Some(evaluation) = &view.evaluation {
        render_evaluation(&mut out, evaluation);
    }
    for event in &view.events {
        let _ = writeln!(
            out,
            "  event {} {} by {}: {} → {} at {}%: {}",
            utc(event.at),
            event.kind,
            event.actor,
            event.from_phase,
            event.to_phase,
            percent(event.weight_percent),
            // A validation's reason is its table: indented under the event.
            event.reason.trim_end().replace('\n', "\n      "),
        );
    }
    out
}

/// The step's last analysis: its verdict, each check, the steps ahead, the gates unmet.
fn render_evaluation(out: &mut String, evaluation: &Evaluation) {
    let _ = writeln!(out, "  last check: {} (control: {})", evaluation.verdict.as_str(), evaluation.control.as_str());
    if let Some(held) = &evaluation.held {
        let _ = writeln!(out, "  {held}");
    }
    for check in &evaluation.checks {
        let _ = writeln!(
            out,
            "    {:<32} {:<12} candidate {} control {} limit {}  n={}/{}  {}{}",
            check.criterion.key(),
            check.verdict.as_str(),
            number(check.candidate),
            number(check.control),
            json_number(check.threshold),
            check.candidate_samples,
            check.control_samples,
            check.evidence,
            resolution(check),
        );
    }
    for ahead in &evaluation.ahead {
        let _ = writeln!(out, "    {}", ahead_line(ahead));
    }
    for gate in evaluation.gates.iter().filter(|gate| !gate.met) {
        let eta = gate.eta_seconds.map_or("unknown at the current rate".to_owned(), |eta| format!("~{eta:.0}s"));
        let _ = writeln!(
            out,
            "    still missing: {} {}/{} ({eta})",
            gate.gate,
            number(Some(gate.have)),
            json_number(gate.need)
        );
    }
}

/// The shadow comparison of the step: how many pairs, the agreement overall and per
/// dimension (those that judged any pair), caps binding, and the figures reported as
/// distributions.
fn render_agreement(out: &mut String, view: &RolloutView) {
    let agreement = &view.shadow_agreement;
    if agreement.pairs == 0 && view.shadow == 0.0 {
        return;
    }
    let ratio = |ratio: Option<f64>| ratio.map_or("-".to_owned(), |ratio| format!("{:.1}%", ratio * 100.0));
    let binding = if view.shadow_caps.binding { "  cap binding: mirrors dropped over the cap" } else { "" };
    let _ = writeln!(
        out,
        "  shadow {}% mirrored: {} pairs compared, agreement {}{binding}",
        percent(view.shadow * 100.0),
        agreement.pairs,
        ratio(agreement.overall)
    );
    if agreement.dropped_slow_candidate > 0 {
        let _ = writeln!(
            out,
            "    {} mirrors dropped with every slot busy (counted as the candidate's failures)",
            agreement.dropped_slow_candidate
        );
    }
    let _ = writeln!(out, "    {:<22} {:>14} {:>10}", "dimension", "agreed/judged", "agreement");
    for dimension in cutover_model::Dimension::ALL {
        let name = dimension.as_str();
        if let Some(row) = agreement.dimensions.get(name).filter(|row| row.judged > 0) {
            let counts = format!("{}/{}", row.agreed, row.judged);
            let _ = writeln!(out, "    {name:<22} {counts:>14} {:>10}", ratio(row.ratio));
        }
    }
    let mut figures = Vec::new();
    if let Some(f1) = agreement.tool_f1 {
        figures.push(format!("tool-call F1 {f1:.3}"));
    }
    let distributions = [
        (&agreement.similarity, "similarity"),
        (&agreement.latency_diff_ms, "latency Δms"),
        (&agreement.ttft_diff_ms, "TTFT Δms"),
    ];
    for (counts, label) in distributions {
        let buckets: Vec<String> =
            counts.iter().filter(|(_, count)| **count > 0).map(|(bucket, count)| format!("{bucket}:{count}")).collect();
        if !buckets.is_empty() {
            figures.push(format!("{label} {}", buckets.join(" ")));
        }
    }
    if !figures.is_empty() {
        let _ = writeln!(out, "    {}", figures.join("; "));
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |number| format!("{number:.2}"))
}

/// A figure as JSON writes it (`5.0`, `0.5`), as the status has always shown thresholds.
pub(crate) fn json_number(value: f64) -> String {
    serde_json::Number::from_f64(value).map_or_else(|| "null".to_owned(), |number| number.to_string())
}

/// A percentage as people write it: `25`, `12.5`, `0.05`.
pub(crate) fn percent(value: f64) -> String {
    format!("{value}").trim_end_matches(".0").to_owned()
}

/// `percent` of a JSON number (a webhook's, the demo's), `-` for anything else.
pub(crate) fn percent_json(value: &Value) -> String {
    value.as_f64().map_or_else(|| "-".to_owned(), percent)
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
fn utc(unix_millis: i64) -> String {
    let [year, month, day, hour, minute, second] = cutover_model::utc_fields(unix_millis);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
}

/// A later step's projection at the current traffic (`analysis::ahead`), in one line.
fn ahead_line(ahead: &Ahead) -> String {
    let verdict = if ahead.resolves {
        "resolves its margin".to_owned()
    } else {
        format!("over {RESOLVING_MARGINS} × its margin: that traffic cannot decide it")
    };
    format!(
        "ahead: step {} at {}% sees ~{} requests per arm in {}s at this traffic: detects ≥ {:.2} pp against a {} pp \
         margin, {verdict}",
        ahead.step,
        percent(ahead.weight),
        ahead.requests_per_arm,
        ahead.horizon_seconds,
        ahead.detectable,
        json_number(ahead.margin),
    )
}

/// What a check's evidence can resolve so far: the smallest increase it would detect,
/// and a warning when that is above the criterion's margin, since such a check cannot
/// pass or fail at this traffic and the step heads for its `max_duration` undecided.
fn resolution(check: &Check) -> String {
    let Some(detectable) = check.detectable else { return String::new() };
    let margin = check.threshold;
    let compares = check.criterion.unit() == Unit::PointsOverPrimary;
    if compares && check.verdict == Verdict::Inconclusive && !resolves(margin, detectable) {
        format!(
            "; can detect ≥ {detectable:.2}, over {RESOLVING_MARGINS} × the margin {margin}: this traffic cannot \
             decide it"
        )
    } else {
        format!("; can detect ≥ {detectable:.2}")
    }
}

/// A view of route `default` with nothing in it yet: no plan, no traffic (for tests).
#[cfg(test)]
pub(crate) fn empty_view() -> RolloutView {
    use cutover_model::Phase;
    use cutover_model::view::{Agreement, ArmCost, ArmCounts, ArmView, Arms, ShadowCaps, ValidationView};
    let arm = || ArmView {
        counts: ArmCounts { requests: 0, ok: 0, client_errors: 0, upstream_errors: 0, users: 0 },
        cost: ArmCost { priced_requests: 0, unknown_cost_requests: 0, usd_per_1000_requests: None },
    };
    RolloutView {
        route: "default".to_owned(),
        primary: "openai".to_owned(),
        candidate: Some("relay".to_owned()),
        phase: Phase::Pending,
        step: 0,
        steps: 0,
        weight: 0.0,
        shadow: 0.0,
        step_started_at: 0,
        seconds_in_step: 0,
        active_seconds_in_step: 0,
        step_backs: 0,
        consecutive_failures: 0,
        failure_limit: None,
        dry_run: false,
        on_undecided: None,
        undecided: None,
        arms: Arms { candidate: arm(), control: arm(), primary: arm(), shadow: arm(), shadow_primary: arm() },
        shadow_agreement: Agreement {
            pairs: 0,
            agreeing: 0,
            overall: None,
            dimensions: Default::default(),
            outcomes: Default::default(),
            dropped_slow_candidate: 0,
            tool_f1: None,
            similarity: Default::default(),
            length_ratio: Default::default(),
            latency_diff_ms: Default::default(),
            ttft_diff_ms: Default::default(),
        },
        shadow_caps: ShadowCaps { max_rps: None, max_usd_per_hour: None, binding: false, dropped: 0 },
        evaluation: None,
        events: Vec::new(),
        unsaved_transitions: 0,
        validation: ValidationView {
            required: false,
            state: ValidationState::NotRun,
            since: None,
            at: None,
            summary: None,
            held: None,
        },
        fleet_arms: None,
        plan: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use cutover_model::evaluation::ControlKind;
    use cutover_model::view::ValidationView;
    use cutover_model::{Criterion, EventKind, Phase};

    fn view() -> RolloutView {
        empty_view()
    }

    fn rendered(view: &RolloutView) -> String {
        render(&serde_json::to_value(view).unwrap()).unwrap()
    }

    #[test]
    fn timestamps_and_percentages_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_795_700_525_634), "2026-11-26 13:42:05");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(percent(100.0), "100");
        assert_eq!(percent(12.5), "12.5");
        assert_eq!(percent(0.05), "0.05");
        assert_eq!((json_number(5.0), json_number(0.5)), ("5.0".to_owned(), "0.5".to_owned()));
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
        let mut view = view();
        view.validation = ValidationView {
            required: true,
            state: ValidationState::Failed,
            at: Some(0),
            summary: Some("1 required check(s) did not pass: streaming.usage".to_owned()),
            held: Some("held: the candidate's validation did not pass".to_owned()),
            since: None,
        };
        view.events.push(cutover_model::event::Event {
            id: 1,
            at: 0,
            route: "default".to_owned(),
            kind: EventKind::ValidationFailed,
            actor: "validator".to_owned(),
            from_phase: "pending".to_owned(),
            to_phase: "pending".to_owned(),
            weight_percent: 0.0,
            reason: "validate relay\n\ncheck  result".to_owned(),
        });
        let text = rendered(&view);
        assert!(
            text.contains("validation of the candidate: failed at 1970-01-01 00:00:00: 1 required check(s)"),
            "{text}"
        );
        assert!(text.contains("  held: the candidate's validation did not pass"), "{text}");
        assert!(text.contains("validate relay\n      \n      check  result"), "{text}");
    }

    #[test]
    fn a_view_with_unsaved_changes_says_so() {
        let mut view = view();
        view.phase = Phase::RolledBack;
        assert!(!rendered(&view).contains("warning"));
        view.unsaved_transitions = 1;
        assert!(rendered(&view).contains("warning: 1 change(s) in effect but not saved to the state file yet"));
    }

    #[test]
    fn an_answer_that_is_no_rollout_view_is_an_error_naming_what_is_missing() {
        let error = render(&serde_json::json!({"route": "default", "phase": "pending"})).unwrap_err();
        assert!(error.to_string().contains("missing field"), "{error}");
        let mut json = serde_json::to_value(view()).unwrap();
        json["phase"] = "sideways".into();
        assert!(render(&json).unwrap_err().to_string().contains("unknown phase \"sideways\""));
        assert!(render(&serde_json::json!([serde_json::to_value(view()).unwrap()])).is_ok());
    }

    #[test]
    fn a_views_last_check_shows_each_criterion_its_figures_and_the_gates_unmet() {
        let mut view = view();
        (view.steps, view.failure_limit, view.phase) = (5, Some(3), Phase::Progressing);
        let check = check(0.42, Verdict::Inconclusive);
        let gates = vec![
            cutover_model::evaluation::Gate {
                gate: "min_requests".into(),
                have: 120.0,
                need: 500.0,
                met: false,
                eta_seconds: Some(38.2),
            },
            cutover_model::evaluation::Gate {
                gate: "min_users".into(),
                have: 9.0,
                need: 5.0,
                met: true,
                eta_seconds: None,
            },
        ];
        view.evaluation = Some(Evaluation {
            verdict: Verdict::Inconclusive,
            control: ControlKind::EqualSlice,
            checks: vec![check],
            gates,
            held: None,
            ahead: Vec::new(),
        });
        let text = rendered(&view);
        assert!(text.contains("step 1/5  failed checks 0/3"), "{text}");
        assert!(text.contains("  last check: inconclusive (control: equal_slice)"), "{text}");
        assert!(
            text.contains(
                "    max_error_rate_increase          inconclusive candidate 1.20 control - limit 0.5  n=300/0"
            ),
            "{text}"
        );
        assert!(text.contains("    still missing: min_requests 120.00/500.0 (~38s)"), "{text}");
        assert!(!text.contains("min_users"), "{text}");
    }

    fn check(detectable: f64, verdict: Verdict) -> Check {
        Check {
            criterion: Criterion::MaxErrorRateIncrease,
            threshold: 0.5,
            candidate: Some(1.2),
            control: None,
            verdict,
            candidate_samples: 300,
            control_samples: 0,
            evidence: "no control traffic".to_owned(),
            dimension: None,
            detectable: Some(detectable),
            lower: None,
            upper: None,
            alpha_pass: 0.05,
            alpha_fail: 0.01,
        }
    }

    #[test]
    fn a_check_whose_traffic_cannot_resolve_its_margin_is_flagged() {
        assert_eq!(
            resolution(&check(3.1, Verdict::Inconclusive)),
            "; can detect ≥ 3.10, over 2 × the margin 0.5: this traffic cannot decide it"
        );
        assert_eq!(
            resolution(&check(0.9, Verdict::Inconclusive)),
            "; can detect ≥ 0.90",
            "a candidate at 2 × is caught"
        );
        assert_eq!(resolution(&check(3.1, Verdict::Fail)), "; can detect ≥ 3.10", "a decided check is decided");
        let ceiling = Check { criterion: Criterion::MaxErrorRate, threshold: 5.0, ..check(9.0, Verdict::Inconclusive) };
        assert_eq!(resolution(&ceiling), "; can detect ≥ 9.00", "a ceiling's figure is not an increase");
        assert_eq!(resolution(&Check { detectable: None, ..check(0.0, Verdict::Inconclusive) }), "");
    }

    #[test]
    fn a_later_step_that_its_projected_traffic_cannot_decide_is_flagged() {
        let ahead = |detectable: f64, resolves: bool| Ahead {
            step: 3,
            weight: 25.0,
            requests_per_arm: 15000,
            horizon_seconds: 3600,
            margin: 0.5,
            detectable,
            resolves,
        };
        assert_eq!(
            ahead_line(&ahead(1.2, false)),
            "ahead: step 3 at 25% sees ~15000 requests per arm in 3600s at this traffic: detects ≥ 1.20 pp against \
             a 0.5 pp margin, over 2 × its margin: that traffic cannot decide it"
        );
        assert!(ahead_line(&ahead(0.9, true)).ends_with("margin, resolves its margin"));
    }
}
